"""Report rendering: Markdown + one self-contained HTML page from a folder of records."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_coldstart.bench import parse_suite, run_suite
from recsys_coldstart.cli.registry import model_classes
from recsys_coldstart.evaluate.results import to_records, write_json
from recsys_coldstart.report import render_report

REPO = Path(__file__).resolve().parents[2]


def _elicitation_records(path: Path) -> None:
    rows, budgets = [], []
    for seed in (0, 1):
        for pol, slope in (("random", 0.0), ("greedy", 0.02)):
            for b in range(0, 4):
                for metric, k in (("ndcg", 10), ("recall", 20)):
                    rows.append(("p" if False else pol, "toy", "user-cold", "elicitation-curve", metric, k,
                                 0.1 + slope * b + 0.001 * seed, seed))
                    budgets.append(b)
    df = pd.DataFrame(rows, columns=["model", "dataset", "split", "segment", "metric", "k", "value", "seed"])
    recs = to_records(df, extra={"record_type": "elicitation", "status": "ok", "cell": "elicit"})
    for r, b in zip(recs, budgets, strict=True):
        r["budget"] = b
    write_json(recs, path)


def _teacher_student_and_tune_records(path: Path) -> None:
    df = pd.DataFrame([("teacher", "toy", "warm", "warm", "ndcg", 20, 0.30, 0),
                       ("student", "toy", "warm", "warm", "ndcg", 20, 0.27, 0)],
                      columns=["model", "dataset", "split", "segment", "metric", "k", "value", "seed"])
    recs = []
    for (_, row), role, lat, n in zip(df.iterrows(), ("teacher", "student"), (40.0, 4.0), (10**6, 10**4),
                                      strict=True):
        recs += to_records(row.to_frame().T, device="cpu", extra={
            "status": "ok", "record_type": "metric", "cell": f"ts-{role}", "role": role,
            "latency_ms_per_1k_users": lat, "n_params": n})
    tune_df = pd.DataFrame([("als", "toy", "warm", "warm", "ndcg", 20, v, 0) for v in (0.20, 0.25, 0.19, 0.24)],
                           columns=["model", "dataset", "split", "segment", "metric", "k", "value", "seed"])
    trecs = to_records(tune_df, extra={"record_type": "tune", "status": "ok", "study": "s1", "cell": "tune",
                                       "best_params": {"factors": 64}, "n_complete": 2, "n_pruned": 1,
                                       "trial_values": [0.2, None, 0.25], "trial_states":
                                       ["COMPLETE", "PRUNED", "COMPLETE"]})
    for r, (variant, which) in zip(trecs, [("default", "val"), ("tuned", "val"), ("default", "test"),
                                           ("tuned", "test")], strict=True):
        r.update(variant=variant, which=which)
    # a model without a role in the same trade-off table: its role cell reads "—", never "nan"
    base = pd.DataFrame([("base", "toy", "warm", "warm", "ndcg", 20, 0.25, 0)],
                        columns=["model", "dataset", "split", "segment", "metric", "k", "value", "seed"])
    recs += to_records(base, device="cpu", extra={"status": "ok", "record_type": "metric", "cell": "ts-base",
                                                  "latency_ms_per_1k_users": 2.0, "n_params": 10**5})
    write_json(recs + trecs, path)


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results")
    suite = parse_suite({"name": "r", "seeds": [0, 1],
                         "datasets": [{"name": "synthetic", "splits": ["warm"],
                                       "options": {"n_users": 150, "n_items": 100, "mean_ratings": 15}}],
                         "models": [{"name": "popularity"}, {"name": "random"},
                                    {"name": "popularity", "label": "broken", "config": {"x": 1}}]},
                        models=model_classes())
    run_suite(suite, out, models=model_classes())
    # a per-epoch training curve
    curve = pd.DataFrame([("popularity", "synthetic", "warm", "train", "loss", 0, 0.1, 0)],
                         columns=["model", "dataset", "split", "segment", "metric", "k", "value", "seed"])
    recs = to_records(curve, extra={"record_type": "curve", "status": "ok", "cell": "synthetic__warm__popularity__s0"})
    recs[0].update(curve=[1.0, 0.5, 0.2, 0.1], epochs=[1, 2, 3, 4])
    write_json(recs, out / "extra" / "curve.json")
    _elicitation_records(out / "extra" / "elicit.json")
    _teacher_student_and_tune_records(out / "extra" / "ts.json")
    return out


def test_report_markdown_and_html(results_dir, tmp_path):
    md_path, html_path = render_report(results_dir, tmp_path / "rep", title="Test report")
    md = md_path.read_text()
    page = html_path.read_text()
    # the best mean of warm ndcg@20 (computed here from the records) is bold in both formats
    from recsys_coldstart.bench import read_results

    df = read_results(results_dir)
    sel = df[(df.status == "ok") & (df.segment == "warm") & (df.metric == "ndcg") & (df.k == 20)
             & (df.dataset == "synthetic")]
    means = sel.groupby("model").value.agg(["mean", "std"])
    best = means["mean"].idxmax()
    best_cell = f"{means.loc[best, 'mean']:.4f} ± {means.loc[best, 'std']:.4f}"
    assert f"**{best_cell}**" in md
    assert "| base | — |" in md and "| base | nan |" not in md  # a model without a role in the trade-off table
    assert f"<b>{best_cell}</b>" in page
    worst = means["mean"].idxmin()
    assert f"**{means.loc[worst, 'mean']:.4f}" not in md
    # sections
    for title in ("Accuracy", "Failed cells", "Elicitation", "Teacher vs student", "Training curves",
                  "Hyper-parameter tuning", "Cells: config, command, versions, device"):
        assert title in md and title in page
    assert "takes no configuration" in md
    assert "0.2500" in md  # the tuned config's test number
    # self-contained html: inline CSS, every figure a base64 PNG, nothing fetched from elsewhere
    imgs = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(imgs) >= 4 and all(src.startswith("data:image/png;base64,") for src in imgs)
    assert "<style>" in page and "<link" not in page and "http://" not in page and "https://" not in page
    figs = sorted(p.name for p in (tmp_path / "rep" / "figures").glob("*.png"))
    assert len(figs) == len(imgs)
    for f in figs:
        assert f"figures/{f}" in md
    # provenance of each cell
    assert md.count("synthetic__warm__popularity__s") >= 2 and "&quot;python&quot;" in page


def test_cli_report(results_dir, tmp_path):
    from recsys_coldstart.cli import main

    assert main(["report", str(results_dir), "--out", str(tmp_path / "r2"), "--notes", "CPU run"]) == 0
    assert "CPU run" in (tmp_path / "r2" / "report.md").read_text()
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "r3")]) == 2


@pytest.mark.browser
@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
                    reason="no chromium on PATH (apt-get install chromium)")
def test_report_in_headless_chromium(results_dir, tmp_path):
    _, html_path = render_report(results_dir, tmp_path / "rep")
    png = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "screenshot_report.py"), str(html_path), str(png),
                           "--width", "1280", "--height", "1600"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.shape[:2] == (1600, 1280)
    assert float(np.std(img[..., :3])) > 0.02  # not a blank page
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from screenshot_report import dump_dom
    finally:
        sys.path.pop(0)
    dom = dump_dom(html_path)
    assert dom.count("<table") >= 3 and dom.count("data:image/png;base64,") >= 4
