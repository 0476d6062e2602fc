"""Benchmark suites: TOML suites -> cells -> one results file per cell, resumable, with provenance.

Layers: :mod:`~recsys_coldstart.bench.suite` (the TOML layout, :func:`load_suite`,
:func:`suite_cells`), :mod:`~recsys_coldstart.bench.loading` (datasets and splits),
:mod:`~recsys_coldstart.bench.models` (what is read off a fitted model),
:mod:`~recsys_coldstart.bench.cells` (one cell), :mod:`~recsys_coldstart.bench.resume`,
:mod:`~recsys_coldstart.bench.provenance` and :mod:`~recsys_coldstart.bench.runner`
(:func:`run_suite`). Model and policy classes are passed in; names become classes only in the
CLI (``recsys_coldstart.cli.registry``), which this package never imports.
"""

from recsys_coldstart.bench.loading import load_data, load_split
from recsys_coldstart.bench.models import resolved_device
from recsys_coldstart.bench.runner import RunSummary, run_suite
from recsys_coldstart.bench.suite import (
    Cell,
    DatasetSpec,
    ElicitationSpec,
    ModelSpec,
    SplitSpec,
    Suite,
    load_suite,
    parse_suite,
    read_toml,
    suite_cells,
)
from recsys_coldstart.bench.tuning import TuneSpec
from recsys_coldstart.evaluate.results import read_results

__all__ = [
    "Suite", "Cell", "TuneSpec", "DatasetSpec", "ElicitationSpec", "ModelSpec", "SplitSpec",
    "parse_suite", "load_suite", "read_toml", "suite_cells", "load_data", "load_split", "resolved_device",
    "run_suite", "RunSummary", "read_results",
]
