"""`coldstart bench`, `coldstart report`, `coldstart tune`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from recsys_coldstart.cli.data import DataOptions, data_options, own_table_options
from recsys_coldstart.cli.registry import MODELS
from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)


def bench(config: Path = typer.Argument(..., help="Suite TOML file (models x datasets x splits x seeds)."),
          data_dir: str = typer.Option(None, "--data-dir", help="Folder holding the datasets (default: "
                                       "$RECSYS_COLDSTART_DATA)."),
          out: Path = typer.Option(None, "--out", "-o", help="Results folder (default: results/<suite name>)."),
          resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip cells already finished in --out."),
          only: str = typer.Option(None, "--only", help="Run only cells whose id matches this glob, e.g. "
                                   "'ml-100k__warm__*'."),
          device: str = typer.Option(None, "--device", help="Override the suite's device (auto, cpu, cuda)."),
          report: bool = typer.Option(False, "--report/--no-report", help="Render OUT/report afterwards."),
          progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar with time left.")) -> None:
    """Run a benchmark suite; one JSON records file per cell under OUT/cells/ (resumable)."""
    import optuna

    from recsys_coldstart.bench import load_suite, run_suite, suite_cells
    from recsys_coldstart.cli.registry import model_classes, policy_classes
    from recsys_coldstart.evaluate.results import read_cell_records

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # suites with `tune`: one line per study, not per trial

    models, policies = model_classes(), policy_classes()
    suite = load_suite(config, models=models, policies=policies)
    out_dir = out or Path("results") / suite.name
    n = len(suite_cells(suite))
    typer.echo(f"suite {suite.name}: {n} cells -> {out_dir}")
    summary = run_suite(suite, out_dir, models=models, policies=policies, data_dir=data_dir, resume=resume,
                        only=only, device=device, show_progress=progress)
    typer.echo(f"done in {summary.seconds:.0f}s: {len(summary.ok)} ok, {len(summary.failed)} failed, "
               f"{len(summary.skipped)} skipped (already finished)")
    for cid in summary.failed:
        recs = read_cell_records(out_dir / "cells" / f"{cid}.json")
        typer.echo(f"  FAILED {cid}: {recs[0].get('error', '?') if recs else '?'}", err=True)
    if report:
        from recsys_coldstart.report import render_report

        md, page = render_report(out_dir, out_dir / "report", title=f"Benchmark report: {suite.name}")
        typer.echo(f"report: {md} and {page}")
    if summary.failed:
        raise typer.Exit(1)


def report(results_dir: list[Path] = typer.Argument(..., help="Folder(s) of JSON records (searched recursively)."),
           out: Path = typer.Option(..., "--out", "-o", help="Output folder for report.md, report.html, figures/."),
           title: str = typer.Option(None, "--title", help="Report title."),
           notes: str = typer.Option("", "--notes", help="A paragraph for the overview (e.g. what a CPU run "
                                     "shortened)."),
           notes_file: Path = typer.Option(None, "--notes-file", help="Read the overview paragraph from a file.")) -> None:
    """Render benchmark records into report.md and one self-contained report.html."""
    from recsys_coldstart.report import render_report

    for d in results_dir:
        if not d.is_dir():
            raise DataError(f"{d}: not a folder of results")
    if notes_file is not None:
        notes = (notes + "\n\n" + notes_file.read_text()).strip()
    md, page = render_report(results_dir, out, title=title, notes=notes)
    typer.echo(f"wrote {md} and {page}")


def tune(model: str = typer.Option(..., "--model", "-m", help="Model to tune: " + ", ".join(
             m for m in MODELS if m != "popularity") + " (popularity has no parameters)."),
         predefined: bool = typer.Option(False, "--predefined/--no-predefined",
                                         help="Use the dataset's own split (LightGCN sets, CiteULike)."),
         metric: str = typer.Option("ndcg@20", "--metric", help="Validation metric to maximise, e.g. ndcg@20."),
         segment: str = typer.Option(None, "--segment", help="Segment scored (default: the split's first)."),
         trials: int = typer.Option(20, "--trials", "-n", help="Total trials of the study (resumed ones count)."),
         storage: str = typer.Option(None, "--storage", help="Optuna storage, e.g. sqlite:///study.db (resumable)."),
         study_name: str = typer.Option(None, "--study-name", help="Study name in the storage."),
         timeout: float = typer.Option(None, "--timeout", help="Stop starting trials after this many seconds."),
         config_json: str = typer.Option("{}", "--config", help="Fixed config overrides as JSON, e.g. "
                                         "'{\"n_epochs\": 30}'."),
         set_: list[str] = typer.Option([], "--set", help="A fixed config field of every trial, key=value "
                                        "(repeatable; a searched field set here is not searched), e.g. --set "
                                        "n_epochs=30; an unknown key lists the valid ones."),
         device: str = typer.Option(None, "--device", help="Model device (auto, cpu, cuda)."),
         prune: bool = typer.Option(True, "--prune/--no-prune", help="Median pruning from per-epoch val logs."),
         out: Path = typer.Option(Path("best.toml"), "--out", "-o", help="Write the best config here, as a suite "
                                  "TOML that `coldstart bench` runs."),
         results: Path = typer.Option(None, "--results", help="Write report records (default vs tuned, val and "
                                      "test) to this JSON file (default: next to --out)."),
         progress: bool = typer.Option(True, "--progress/--no-progress"),
         *, data_opts: DataOptions) -> None:
    """Tune a model's hyper-parameters on the validation set with optuna (TPE + median pruning).

    The default config is trial 0: the written config is a tuned one only when it beat the
    default on val (the output says when the default won). With --storage the study resumes
    (new draws only); Ctrl-C stops it cleanly.
    """
    import optuna

    from recsys_coldstart.bench import SplitSpec, load_split, resolved_device
    from recsys_coldstart.cli.registry import model_class
    from recsys_coldstart.evaluate.results import current_command
    from recsys_coldstart.tune import TuneInterrupted, make_model, tune_records, write_best_toml
    from recsys_coldstart.tune import tune as run_tune

    try:
        base = json.loads(config_json)
    except json.JSONDecodeError as e:
        raise DataError(f"--config is not valid JSON ({e})") from None
    if not isinstance(base, dict):
        raise DataError("--config must be a JSON object")
    if set_:
        from recsys_coldstart.cli.options import parse_set

        cfg_cls = getattr(model_class(model), "config_class", None)
        if cfg_cls is None:
            raise DataError(f"{model} has no config: --set does not apply")
        base.update(parse_set(set_, cfg_cls, what=model))
    # the shared data option group (cli.data): a dataset name or the user's own table
    data_dir, split, n_support, seed = data_opts.data_dir, data_opts.split or "warm", data_opts.k_support or 0, \
        data_opts.seed_
    own = data_opts.load() if data_opts.interactions is not None else None
    if own is None and data_opts.dataset is None:
        raise DataError("give exactly one of --dataset NAME or --interactions FILE")
    dataset = data_opts.dataset or own.name
    cls = model_class(model)
    if not callable(getattr(cls, "search_space", None)):
        raise DataError(f"{model} has no hyper-parameters (no search_space): nothing to tune; evaluate it as it is "
                        f"with `coldstart evaluate --model {model}`")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = SplitSpec(name=split if not n_support else f"{split}-k{n_support}", kind=split, n_support=n_support,
                     predefined=predefined)
    sp = load_split(dataset, spec, seed, data_dir=data_dir, data=own)
    try:
        res = run_tune(cls, sp, metric=metric, segment=segment, n_trials=trials, storage=storage,
                       study_name=study_name, timeout=timeout, random_state=seed, base_config=base, device=device,
                       prune=prune, show_progress=progress, echo=typer.echo)
    except TuneInterrupted as e:
        hint = "run the same command to resume it" if storage else "give --storage sqlite:///study.db to make it resumable"
        typer.echo(f"interrupted: study {e.study_name!r} has {e.n_finished} finished trials; {hint}", err=True)
        raise typer.Exit(130) from None
    cmd = current_command(data_dir=data_dir)
    path = write_best_toml(res, out, model=model, dataset=dataset, split_kind=split, n_support=n_support,
                           command=cmd, dataset_options=own_table_options(data_opts))
    if predefined:
        text = path.read_text().replace(f'kind = "{split}"', f'kind = "{split}"\npredefined = true', 1)
        path.write_text(text)
    dev = resolved_device(make_model(cls, base, seed=seed, device=device))
    recs = tune_records(res, model=f"{model}", dataset=dataset, split=spec.name, seed=seed, command=cmd, device=dev)
    from recsys_coldstart.bench.loading import data_rule

    rule = data_rule(dataset, own_table_options(data_opts) or {"threshold": data_opts.threshold})
    for r in recs:  # the positive rule, as every record keeps it
        r.update(rule)
    from recsys_coldstart.evaluate.results import write_json

    rpath = write_json(recs, results or out.with_name(out.stem + "_tune.json"))
    typer.echo(f"{res.n_complete} complete, {res.n_pruned} pruned, {res.n_failed} failed trials in {res.seconds:.0f}s")
    if res.default_won:
        typer.echo(f"the default config won: no tried config beat its val {metric} ({res.segment}) "
                   f"{_f(res.default_value)}; {path} holds the default config")
        typer.echo(f"test {metric}: default {_f(res.default_test_value)}")
    else:
        typer.echo(f"val {metric} ({res.segment}): default {_f(res.default_value)} -> tuned {res.best_value:.5f}; "
                   f"test: default {_f(res.default_test_value)} -> tuned {_f(res.test_value)}")
        typer.echo(f"best params: {json.dumps(res.best_params)}")
    typer.echo(f"wrote {path} (run it with `coldstart bench {path}`) and {rpath}")


def _f(v: float | None) -> str:
    return "—" if v is None else f"{v:.5f}"


def register(app: typer.Typer) -> None:
    """Add ``bench``, ``report`` and ``tune`` to `app`."""
    app.command("bench")(bench)
    app.command("report")(report)
    app.command("tune")(data_options(split="warm")(tune))
