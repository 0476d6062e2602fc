"""recsys_coldstart: a toolkit for cold-start recommendation."""
__version__ = "0.1.0"
