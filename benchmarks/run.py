"""Run a benchmark suite: ``python benchmarks/run.py benchmarks/suites/ml100k.toml --data-dir ../shared/data``.

A thin wrapper on ``coldstart bench`` (:func:`recsys_coldstart.bench.run_suite`); the
same options apply (``--out``, ``--resume/--no-resume``, ``--only``, ``--report``).
"""

from __future__ import annotations

import sys

from recsys_coldstart.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
