"""Layering of the benchmark code: names become classes only in the CLI, evaluate sits below bench."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "recsys_coldstart"


def _imports(folder: Path) -> dict[str, set[str]]:
    """Every module each file of ``folder`` imports (absolute, lazy imports inside functions included)."""
    out: dict[str, set[str]] = {}
    for f in sorted(folder.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
        out[str(f.relative_to(PKG))] = names
    return out


def _offending(folder: str, banned: tuple[str, ...]) -> dict[str, list[str]]:
    bad = {}
    for path, names in _imports(PKG / folder).items():
        hits = sorted(n for n in names if any(n == b or n.startswith(b + ".") for b in banned))
        if hits:
            bad[path] = hits
    return bad


def test_bench_never_imports_the_cli_or_reflects_over_elicit():
    assert _offending("bench", ("recsys_coldstart.cli",)) == {}
    # policies are injected: bench may use the replay, never the package's list of policies
    for path, names in _imports(PKG / "bench").items():
        assert "recsys_coldstart.elicit" not in names, path
        assert "importlib" not in names, path


def test_evaluate_imports_nothing_above_it():
    above = ("recsys_coldstart.cli", "recsys_coldstart.bench", "recsys_coldstart.elicit", "recsys_coldstart.io",
             "recsys_coldstart.tune", "recsys_coldstart.report", "recsys_coldstart.train",
             "recsys_coldstart.pretrain", "recsys_coldstart.distill", "recsys_coldstart.coldstart")
    assert _offending("evaluate", above) == {}
    assert not (PKG / "evaluate" / "runner.py").exists()


def test_tune_and_report_do_not_need_the_cli_or_bench():
    assert _offending("tune", ("recsys_coldstart.cli", "recsys_coldstart.bench")) == {}
    assert _offending("report", ("recsys_coldstart.cli", "recsys_coldstart.bench")) == {}


def test_bench_files_stay_small():
    for f in (PKG / "bench").glob("*.py"):
        assert len(f.read_text().splitlines()) < 400, f.name
