"""``coldstart pretrain``: train a graph model (LightGCN, SGL, SimGCL, XSimGCL) and save it."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import typer

from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

GRAPH_MODELS = ("lightgcn", "sgl", "simgcl", "xsimgcl")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a pretraining TOML file.

    Layout: optional top-level ``model``, ``dataset``, ``split`` strings and a ``[config]``
    table whose keys are fields of the model's config (e.g. ``n_layers = 3``); see
    ``benchmarks/configs/*.toml``.
    """
    from recsys_coldstart.bench.suite import read_toml  # the package's one TOML reader

    p = Path(path)
    doc = read_toml(p, what="config file")
    unknown = set(doc) - {"model", "dataset", "split", "config", "description", "source"}
    if unknown:
        raise DataError(f"{p}: unknown top-level keys {sorted(unknown)}; expected model, dataset, split, [config]")
    return doc


def build_model(name: str, options: dict[str, Any]):
    """Instantiate graph model ``name`` with config ``options``; a bad option names the valid ones."""
    from recsys_coldstart.cli.registry import model_class

    if name not in GRAPH_MODELS:
        raise DataError(f"unknown graph model {name!r}; choose one of: {', '.join(GRAPH_MODELS)}")
    cls = model_class(name)
    fields = {f.name for f in dataclasses.fields(cls.config_class)}
    bad = sorted(set(options) - fields)
    if bad:
        raise DataError(f"{name}: unknown option(s) {bad}; valid options: {sorted(fields)}")
    try:
        return cls(**options)
    except (TypeError, ValueError) as e:
        raise DataError(f"{name}: {e}") from None


def explain_stop(history: dict[str, Any], best_epoch: int, n_epochs: int, *, key: str = "val_ndcg@20") -> str | None:
    """One line when validation fell from its first evaluation and early stopping ended the run.

    Parameters
    ----------
    history : dict of str to np.ndarray
        A model's ``history_`` (``epoch`` and ``val_*`` arrays, NaN where not evaluated).
    best_epoch : int
        The kept epoch.
    n_epochs : int
        The configured maximum.
    key : str
        The validation metric.

    Returns
    -------
    str or None
        ``"val ndcg@20 fell from 0.0510 at the start (epoch 5) to 0.0362 (epoch 20): stopping;
        lower lr or cl_weight (--lr, --cl-weight or --set)"``, else None.
    """
    import numpy as np

    if key not in history:
        return None
    vals = np.asarray(history[key], float)
    epochs = np.asarray(history["epoch"], float)
    ok = np.isfinite(vals)
    if ok.sum() < 2:
        return None
    v, e = vals[ok], epochs[ok]
    if best_epoch > int(e[0]) or int(epochs[-1]) >= n_epochs or not v[-1] < v[0]:
        return None
    return (f"{key.replace('val_', 'val ')} fell from {v[0]:.4f} at the start (epoch {int(e[0])}) to {v[-1]:.4f} "
            f"(epoch {int(e[-1])}): stopping; lower lr or cl_weight (--lr, --cl-weight or --set)")


def fit_split(split, seed: int):
    """``(train, val)`` a graph model fits on: the split's own for ``warm``; for a cold split, a
    seeded 10% warm hold-out of the training pairs (the split's val holds cold users / items a
    graph model has no embedding for, so it cannot drive early stopping)."""
    if split.kind == "warm":
        return split.train, split.val, None
    from recsys_coldstart.data.splits import warm_split

    inner = warm_split(split.train, val_frac=0.1, test_frac=0.0, random_state=seed)
    return inner.train, inner.val, (f"{split.kind} split: early stopping on a 10% warm hold-out of the training "
                                    f"pairs ({inner.val.nnz:,}); the model trains on the other {inner.train.nnz:,}")


def register(app: typer.Typer) -> None:
    """Add ``pretrain`` to ``app``."""
    from recsys_coldstart.cli.data import DataOptions, data_options
    from recsys_coldstart.cli.options import SET_OPT

    @app.command("pretrain")
    @data_options(split="warm", split_help="Split kind: warm, user-cold, item-cold (default: warm, or the config "
                  "file's).")
    def pretrain_cmd(
        model: str = typer.Option(None, "--model", "-m", help=f"Graph model: {', '.join(GRAPH_MODELS)}."),
        epochs: int = typer.Option(None, "--epochs", help="Maximum epochs (default 300; early stopping on val "
                                   "NDCG@20 usually ends far sooner)."),
        dim: int = typer.Option(None, "--dim", help="Embedding size (default 64)."),
        layers: int = typer.Option(None, "--layers", help="Propagation layers (default 3)."),
        lr: float = typer.Option(None, "--lr", help="Adam learning rate (default 1e-2; papers: 1e-3 on big graphs)."),
        cl_weight: float = typer.Option(None, "--cl-weight", help="Contrastive weight lambda of SGL / SimGCL / "
                                        "XSimGCL (default 0.02; papers: 0.1-0.5 on big graphs)."),
        batch_size: int = typer.Option(None, "--batch-size", help="Positives per batch (default 2048)."),
        patience: int = typer.Option(None, "--patience", help="Evaluations without improvement before stopping "
                                     "(default 3)."),
        eval_every: int = typer.Option(None, "--eval-every", help="Evaluate on val every N epochs (default 5)."),
        set_: list[str] = SET_OPT,
        device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, cuda:N."),
        config: Path = typer.Option(None, "--config", help="TOML file with the model and its \\[config] table "
                                    "(see benchmarks/configs/*.toml for the published settings)."),
        checkpoint_dir: Path = typer.Option(
            None, "--checkpoint-dir",
            help="Checkpoint folder; a checkpoint there is resumed only if this same run (model, config, seed, "
                 "data) wrote it."),
        checkpoint_every: int = typer.Option(
            None, "--checkpoint-every", help="Checkpoint every N epochs (default with --checkpoint-dir: every "
                                             "evaluation)."),
        resume: str = typer.Option(
            "auto", "--resume",
            help="auto: resume a matching checkpoint, refuse another run's; must: a matching one must exist; "
                 "never: start fresh and replace it."),
        save: Path = typer.Option(..., "--save", help="Folder to save the trained model in."),
        output: Path = typer.Option(None, "--output", "-o", help="Also write the JSON result records here."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
        nproc: int = typer.Option(
            1, "--nproc", min=1,
            help="Data-parallel processes on this machine: re-launches through torch.distributed.run (same as "
                 "torchrun --nproc-per-node N -m recsys_coldstart.cli pretrain ...); --batch-size is the global "
                 "batch."),
        *, data_opts: DataOptions,
    ) -> None:
        """Pretrain a graph model, print its val/test metrics and save it (loadable with --model-path).

        Defaults suit an ml-100k-sized table; the published big-graph settings are in
        benchmarks/configs/*.toml (--config FILE). Any config field: --set key=value.
        """
        from recsys_coldstart.cli.data import data_manifest, print_results, record_extra
        from recsys_coldstart.cli.options import parse_set
        from recsys_coldstart.cli.registry import model_class
        from recsys_coldstart.evaluate import evaluate, metric_value, to_records, write_json
        from recsys_coldstart.io import config_to_dict, save_model
        from recsys_coldstart.train.distributed import distributed_session, env_world_size, relaunch

        if nproc > 1 and env_world_size() == 1:
            import sys

            from recsys_coldstart.cli import _STATE

            raise typer.Exit(relaunch(nproc, _STATE.get("argv") or sys.argv[1:]))
        with distributed_session(device) as world:  # torchrun's WORLD_SIZE / RANK / LOCAL_RANK; one process otherwise
            progress = progress and world.is_main  # rank 0 alone shows progress, evaluates and saves
            doc = read_config_file(config) if config is not None else {}
            name = (model or doc.get("model") or "").strip().lower()
            if not name:
                raise DataError("give --model NAME or a --config file with model = \"...\"")
            if name not in GRAPH_MODELS:
                raise DataError(f"unknown graph model {name!r}; choose one of: {', '.join(GRAPH_MODELS)}")
            if data_opts.dataset is None and data_opts.interactions is None and doc.get("dataset"):
                data_opts.dataset = doc["dataset"]
            data_opts.split = data_opts.split or doc.get("split", "warm")
            seed = data_opts.seed_
            opts: dict[str, Any] = dict(doc.get("config", {}))
            for key, val in (("n_epochs", epochs), ("dim", dim), ("n_layers", layers), ("lr", lr),
                             ("cl_weight", cl_weight), ("batch_size", batch_size), ("patience", patience),
                             ("eval_every", eval_every)):
                if val is not None:
                    if key == "cl_weight" and name == "lightgcn":
                        raise DataError("--cl-weight: lightgcn has no contrastive loss (sgl, simgcl, xsimgcl do)")
                    opts[key] = val
            opts.update(parse_set(set_, model_class(name).config_class, what=name))
            opts.update(device=device, random_state=seed, show_progress=progress, resume=resume,
                        checkpoint_dir=str(checkpoint_dir) if checkpoint_dir is not None else None)
            if checkpoint_every is not None:
                opts["checkpoint_every"] = checkpoint_every
            est = build_model(name, opts)
            data = data_opts.load()
            s = data_opts.make_split(data)
            typer.echo(f"{name} on {s.summary()}")
            train, val, why = fit_split(s, seed)
            if why:
                typer.echo(why)
            cfg = est.config
            typer.echo(f"training up to {cfg.n_epochs} epochs, validating every {cfg.eval_every} (stops after "
                       f"{cfg.patience} evaluations without a better val NDCG@{cfg.eval_k})")
            t0 = time.perf_counter()
            est.fit(train, val=val)
            fit_s = time.perf_counter() - t0
            if not world.is_main:
                return
            n_run = int(len(est.history_["epoch"]))
            typer.echo(f"trained {n_run} epochs in {fit_s:.1f}s (best epoch {est.best_epoch_})")
            why_stop = explain_stop(est.history_, int(est.best_epoch_), int(cfg.n_epochs),
                                    key=f"val_{cfg.val_metric}@{cfg.eval_k}")
            if why_stop:
                typer.echo(why_stop)
            import pandas as pd

            res = pd.concat([evaluate(est, s, which="val", model_name=f"{name} (val)", seed=seed),
                             evaluate(est, s, which="test", model_name=name, seed=seed)], ignore_index=True)
            print_results(res)
            metrics = {}
            for seg in sorted(set(res.segment)):
                for which, label in (("val", f"{name} (val)"), ("test", name)):
                    sub = res[res.model == label]
                    for m in ("ndcg", "recall"):
                        try:
                            metrics[f"{which}_{seg}_{m}@20"] = metric_value(sub, m, 20, seg)
                        except KeyError:
                            pass
            manifest = data_manifest(data_opts, data, s)
            meta = {"model": name, "dataset": data.name if data_opts.dataset is not None else None,
                    "interactions": data_opts.interactions, "split": s.kind, "seed": seed,
                    "n_support": s.n_support if s.kind == "user-cold" else 0, "metrics": metrics,
                    "fit_seconds": fit_s, "epochs": n_run, "best_epoch": int(est.best_epoch_),
                    "threshold": manifest["threshold"], "rating_col": manifest["rating_col"], "data": manifest}
            folder = save_model(est, save, meta=meta)
            typer.echo(f"model -> {folder}")
            if output is not None:
                write_json(to_records(res, config=config_to_dict(est.config), seconds=fit_s, device=str(device),
                                      extra=record_extra(manifest)), output)
                typer.echo(f"results -> {output}")
