"""Run a suite: every cell in order, one cell file each, resumable.

Model and policy classes are **injected** (``models=`` / ``policies=`` name -> class mappings);
this package never maps names to classes itself. The ``coldstart bench`` command passes the CLI
registry's tables (:func:`recsys_coldstart.cli.registry.model_classes`); Python callers pass
their own (a dict, or the registry's).

Each cell writes ``OUT/cells/<cell id>.json`` (:func:`recsys_coldstart.evaluate.results.write_cell`):
provenance (config, command, versions, machine, device, git commit) once per cell, then the
records (see :mod:`recsys_coldstart.bench.cells` for their fields). A model with a ``tune``
budget is first tuned on the validation set of the first seed's split
(:mod:`recsys_coldstart.bench.tuning`; study under ``OUT/tune/``), then its best config runs on
every seed; records say ``tuned = {...}`` or ``tuned = None``. A run is resumable: cells
whose file holds ``status="ok"`` records are skipped (failed cells are retried, and so are cells
whose definition changed since: records carry a ``spec_hash``). ``peak_rss_mb`` is the process's
peak so far, because cells run in one process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import inspect
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys_coldstart.bench.cells import error_record, lookup, run_elicitation_cell, run_model_cell
from recsys_coldstart.bench.loading import SplitCache, data_rule
from recsys_coldstart.bench.provenance import run_provenance
from recsys_coldstart.bench.resume import cell_done, cell_path, cell_spec_hash
from recsys_coldstart.bench.suite import Cell, Suite, check_name, load_suite, suite_cells
from recsys_coldstart.bench.tuning import tune_cell_config
from recsys_coldstart.evaluate.results import read_results, write_cell
from recsys_coldstart.train.validation import split_fit_kwargs
from recsys_coldstart.tune.study import make_model

logger = logging.getLogger(__name__)

__all__ = ["RunSummary", "run_suite", "read_results"]


@dataclass
class RunSummary:
    """What :func:`run_suite` did: cell ids run ok, failed, and skipped (already finished)."""

    out_dir: Path
    ok: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _check_names(suite: Suite, models: Mapping[str, type], policies: Mapping[str, type]) -> None:
    for m in suite.models:
        check_name(m.name, models, "model")
    for e in suite.elicitation:
        check_name(e.model, models, "model")
        for p in e.policies:
            check_name(p, policies, "elicitation policy")


def run_suite(suite: Suite | str | Path, out_dir: str | Path, *, models: Mapping[str, type],
              policies: Mapping[str, type] | None = None, data_dir: str | Path | None = None,
              resume: bool = True, only: str | None = None, device: str | None = None,
              command: str | Sequence[str] | None = None, show_progress: bool = False) -> RunSummary:
    """Run every cell of a suite, writing ``OUT/cells/<cell>.json`` after each.

    Parameters
    ----------
    suite : Suite or path to a TOML file
    out_dir : path
        Results folder (created).
    models : mapping of str to class
        The model class of every model name the suite uses.
    policies : mapping of str to class, optional
        The policy class of every elicitation policy name (needed when the suite has
        ``[[elicitation]]`` cells).
    data_dir : path, optional
        Folder that contains the dataset folders (``ml-100k/``, ...); not needed for synthetic.
    resume : bool
        Skip cells whose records already exist with status ok.
    only : str, optional
        fnmatch pattern on cell ids (e.g. ``"ml-100k__warm__*"``).
    device : str, optional
        Overrides the suite's device for models with a ``device`` field.
    command : str or sequence of str, optional
        The command recorded (default: this process's command line); recorded portably, with
        the data folder as ``$RECSYS_COLDSTART_DATA`` and repository paths relative.
    show_progress : bool
        tqdm bar with the time left.

    Returns
    -------
    RunSummary
    """
    policies = dict(policies or {})
    if not isinstance(suite, Suite):
        suite = load_suite(suite, models=models, policies=policies)
    _check_names(suite, models, policies)
    out = Path(out_dir)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    prov = run_provenance(command, data_dir=data_dir)
    cells = suite_cells(suite)
    if only:
        cells = [c for c in cells if fnmatch.fnmatch(c.id, only)]
    summary = RunSummary(out_dir=out)
    todo = []
    for c in cells:
        if resume and cell_done(cell_path(out, c), cell_spec_hash(c, suite)):
            summary.skipped.append(c.id)
        else:
            todo.append(c)
    logger.info("suite %s: %d cells, %d already done, %d to run", suite.name, len(cells), len(summary.skipped),
                len(todo))
    t_suite = time.perf_counter()
    bar = None
    redirect = contextlib.nullcontext()
    if show_progress:
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        bar = tqdm(total=len(cells), initial=len(summary.skipped), desc=f"bench {suite.name}", unit="cell")
        redirect = logging_redirect_tqdm()
    runner = _Runner(suite, out, summary, models=models, policies=policies, data_dir=data_dir,
                     device=device or suite.device, command=prov["command"],
                     run_meta={"git_commit": prov["git_commit"]})
    with redirect:
        try:
            for cell in todo:
                if bar is not None:
                    bar.set_postfix_str(cell.id[-60:], refresh=True)
                runner.run(cell)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
    summary.seconds = time.perf_counter() - t_suite
    return summary


class _Runner:
    """Runs cells in suite order, reusing the split, the teacher and the elicitation item space
    between consecutive cells of the same dataset, split and seed."""

    def __init__(self, suite: Suite, out: Path, summary: RunSummary, *, models: Mapping[str, type],
                 policies: Mapping[str, type], data_dir, device: str | None, command: str,
                 run_meta: Mapping[str, Any]) -> None:
        self.suite, self.out, self.summary = suite, out, summary
        self.models, self.policies = models, policies
        self.device, self.command, self.run_meta = device, command, dict(run_meta)
        self.splits = SplitCache(data_dir)
        self.base_cache: dict[tuple, Any] = {}
        self.fitted: dict[str, Any] = {}  # label -> fitted model of the current (dataset, split, seed)
        self.current: tuple | None = None
        self.tuned: dict[tuple, tuple[dict, dict | None]] = {}  # (dataset, split, label) -> (config, tuned)
        self.tune_splits = SplitCache(data_dir)

    def run(self, cell: Cell) -> None:
        """Run one cell and write its file; a failure is recorded, never raised."""
        key = (cell.dataset.name, cell.split.name, cell.seed)
        if key != self.current:
            self.fitted.clear()
            self.current = key
        t0 = time.perf_counter()
        extra = {"status": "ok", "cell": cell.id, "suite": self.suite.name, **self.run_meta,
                 "spec_hash": cell_spec_hash(cell, self.suite),
                 **data_rule(cell.dataset.loader, cell.dataset.options)}  # the positive rule, as every command keeps it
        try:
            split = self.splits.get(cell)
            if cell.kind == "model":
                teacher = None if cell.model.teacher is None else self._teacher(cell, split)
                cls = lookup(self.models, cell.model.name)
                config, tuned = self._config(cell, split, cls, teacher)
                extra["tuned"] = tuned
                extra["tuning"] = ("tuned" if tuned is not None else
                                   "no-parameters" if cell.model.tune is not None else "default")
                recs = run_model_cell(cell, split, cls=cls, ks=self.suite.ks, config=config,
                                      device=self.device, teacher=teacher, fitted=self.fitted,
                                      max_train_seconds=cell.max_train_seconds(self.suite),
                                      command=self.command, extra=extra)
            else:
                base, base_s = self._base_model(cell, split)
                recs = run_elicitation_cell(cell, split, policy_cls=lookup(self.policies, cell.policy, "policy"),
                                            ks=self.suite.ks, command=self.command, extra=extra,
                                            base_model=base, base_seconds=base_s)
            self.summary.ok.append(cell.id)
        except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the suite
            logger.warning("cell %s failed: %s: %s", cell.id, type(exc).__name__, exc)
            recs = [error_record(cell, exc, command=self.command, seconds=time.perf_counter() - t0, extra=extra)]
            self.summary.failed.append(cell.id)
        write_cell(recs, cell_path(self.out, cell))

    def _config(self, cell: Cell, split, cls: type, teacher: Any) -> tuple[dict, dict | None]:
        """The config a model cell runs with and its ``tuned`` field: the suite's config, or the
        best config of its study (tuned once per dataset, split and label, on the first seed)."""
        m = cell.model
        if m.tune is None:
            return dict(m.config), None
        key = (cell.dataset.name, cell.split.name, m.label)
        if key not in self.tuned:
            seed0 = self.suite.seeds[0] if self.suite.seeds else cell.seed
            tsplit = split if cell.seed == seed0 else self.tune_splits.get(dataclasses.replace(cell, seed=seed0))
            fit_kwargs = None
            if teacher is not None:
                params = inspect.signature(cls.fit).parameters
                fit_kwargs = {"init_factors" if "init_factors" in params else "teacher": teacher}
            self.tuned[key] = tune_cell_config(cell, tsplit, cls=cls, out_dir=self.out, seed=seed0,
                                               device=self.device, fit_kwargs=fit_kwargs)
        return self.tuned[key]

    def _teacher(self, cell: Cell, split) -> Any:
        """The fitted teacher of a student cell: the same split and seed's model labelled
        ``cell.model.teacher`` (fitted here when its own cell was skipped or failed)."""
        label = cell.model.teacher
        if label not in self.fitted:
            spec = next(m for m in self.suite.models if m.label == label)
            # the teacher's own config: its tuned one when its suite entry is tuned (read back from its
            # finished study when the teacher's cell was skipped on resume), never silently the default
            cls = lookup(self.models, spec.name)
            config = self._config(dataclasses.replace(cell, model=spec), split, cls, None)[0]
            model = make_model(cls, config, seed=cell.seed, device=self.device)
            model.fit(split.train, val=split.val, **split_fit_kwargs(model, split))
            self.fitted[label] = model
        return self.fitted[label]

    def _base_model(self, cell: Cell, split) -> tuple[Any, float]:
        """The elicitation cell's item-space model, fitted once per (dataset, split, seed)."""
        e = cell.elicitation
        key = (cell.dataset.name, cell.split.name, cell.seed, e.model,
               json.dumps(dict(e.model_config), sort_keys=True))
        if key not in self.base_cache:
            self.base_cache.clear()
            t0 = time.perf_counter()
            model = make_model(lookup(self.models, e.model), e.model_config, seed=cell.seed, device=self.device)
            model.fit(split.train)
            self.base_cache[key] = (model, time.perf_counter() - t0)
            return self.base_cache[key]
        return self.base_cache[key][0], 0.0
