"""Render a report.html in headless Chromium and save a PNG screenshot.

    python scripts/screenshot_report.py benchmarks/results/report/report.html \
        benchmarks/results/report/report.png [--width 1280 --height 2000]

Needs Debian's ``chromium`` (``apt-get install chromium``). The page is opened from a
``file://`` URL with networking, sync and component updates off, in a throw-away profile, so
the screenshot shows only what the self-contained HTML itself carries. Exits 2 when Chromium
is missing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    """Path of a Chromium-family browser on PATH, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_args(browser: str, profile: str) -> list[str]:
    """The hardened headless command line (no network, no GPU, no first-run UI)."""
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={profile}"]


def screenshot(html: Path, png: Path, *, width: int = 1280, height: int = 2000, timeout: float = 120.0) -> Path:
    """Screenshot ``html`` into ``png`` with headless Chromium; returns ``png``.

    Raises
    ------
    FileNotFoundError
        When no Chromium is installed or ``html`` is missing.
    RuntimeError
        When Chromium fails or writes no file.
    """
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError("no chromium on PATH: apt-get install chromium")
    html = Path(html).resolve()
    if not html.is_file():
        raise FileNotFoundError(html)
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = chromium_args(browser, profile) + [f"--screenshot={png}", f"--window-size={width},{height}",
                                                 html.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not png.is_file():
        raise RuntimeError(f"chromium failed ({proc.returncode}): {proc.stderr[-800:]}")
    return png


def dump_dom(html: Path, *, timeout: float = 120.0) -> str:
    """The DOM Chromium built from ``html`` after loading it (``--dump-dom``)."""
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError("no chromium on PATH: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        cmd = chromium_args(browser, profile) + ["--dump-dom", Path(html).resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium failed ({proc.returncode}): {proc.stderr[-800:]}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("png", type=Path)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=2000)
    args = ap.parse_args(argv)
    try:
        out = screenshot(args.html, args.png, width=args.width, height=args.height)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
