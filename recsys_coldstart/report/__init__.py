"""Benchmark reports: a folder of result records -> Markdown + one self-contained HTML page."""

from recsys_coldstart.report.render import (
    build_report,
    load_records,
    render_report,
    to_html,
    to_markdown,
)

__all__ = ["render_report", "build_report", "load_records", "to_markdown", "to_html"]
