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


def register(app: typer.Typer) -> None:
    """Add ``pretrain`` to ``app``."""
    from recsys_coldstart.cli.data import (
        DATA_DIR_OPT,
        DATASET_OPT,
        INTERACTIONS_OPT,
        ITEM_COL_OPT,
        ITEM_FEATURES_OPT,
        RATING_COL_OPT,
        SUPPORT_OPT,
        THRESHOLD_OPT,
        TIMESTAMP_COL_OPT,
        USER_COL_OPT,
        USER_FEATURES_OPT,
    )

    @app.command("pretrain")
    def pretrain_cmd(
        model: str = typer.Option(None, "--model", "-m", help=f"Graph model: {', '.join(GRAPH_MODELS)}."),
        dataset: str = DATASET_OPT, data_dir: str = DATA_DIR_OPT, interactions: str = INTERACTIONS_OPT,
        user_features: str = USER_FEATURES_OPT, item_features: str = ITEM_FEATURES_OPT,
        user_col: str = USER_COL_OPT, item_col: str = ITEM_COL_OPT, rating_col: str = RATING_COL_OPT,
        timestamp_col: str = TIMESTAMP_COL_OPT, threshold: float = THRESHOLD_OPT,
        split: str = typer.Option(None, "--split", "-s", help="Split kind (default: warm, or the config file's)."),
        k_support: int = SUPPORT_OPT,
        epochs: int = typer.Option(None, "--epochs", help="Maximum epochs (early stopping on val NDCG@20)."),
        dim: int = typer.Option(None, "--dim", help="Embedding size (default 64)."),
        layers: int = typer.Option(None, "--layers", help="Propagation layers (default 3)."),
        lr: float = typer.Option(None, "--lr", help="Adam learning rate (default 1e-3)."),
        batch_size: int = typer.Option(None, "--batch-size", help="Positives per batch (default 2048)."),
        patience: int = typer.Option(None, "--patience", help="Evaluations without improvement before stopping."),
        eval_every: int = typer.Option(None, "--eval-every", help="Evaluate on val every N epochs."),
        device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, cuda:N."),
        seed: int = typer.Option(0, "--seed", help="Seed of the split and the model."),
        config: Path = typer.Option(None, "--config", help="TOML file with the model and its [config] table."),
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
    ) -> None:
        """Pretrain a graph model, print its val/test metrics and save it (loadable with --model-path)."""
        from recsys_coldstart.cli.data import get_split, load_from_options, print_results
        from recsys_coldstart.evaluate import evaluate, metric_value, to_records, write_json
        from recsys_coldstart.io import config_to_dict, save_model
        from recsys_coldstart.train.distributed import env_world_size, init_from_env, relaunch

        if nproc > 1 and env_world_size() == 1:
            import sys

            from recsys_coldstart.cli import _STATE

            raise typer.Exit(relaunch(nproc, _STATE.get("argv") or sys.argv[1:]))
        world = init_from_env(device)  # torchrun's WORLD_SIZE / RANK / LOCAL_RANK; one process otherwise
        progress = progress and world.is_main  # rank 0 alone shows progress, evaluates and saves
        doc = read_config_file(config) if config is not None else {}
        name = (model or doc.get("model") or "").strip().lower()
        if not name:
            raise DataError("give --model NAME or a --config file with model = \"...\"")
        if dataset is None and interactions is None and doc.get("dataset"):
            dataset = doc["dataset"]
        kind = split or doc.get("split", "warm")
        opts: dict[str, Any] = dict(doc.get("config", {}))
        for key, val in (("n_epochs", epochs), ("dim", dim), ("n_layers", layers), ("lr", lr),
                         ("batch_size", batch_size), ("patience", patience), ("eval_every", eval_every)):
            if val is not None:
                opts[key] = val
        opts.update(device=device, random_state=seed, show_progress=progress, resume=resume,
                    checkpoint_dir=str(checkpoint_dir) if checkpoint_dir is not None else None)
        if checkpoint_every is not None:
            opts["checkpoint_every"] = checkpoint_every
        est = build_model(name, opts)
        data = load_from_options(dataset, data_dir, interactions, user_features, item_features, user_col=user_col,
                                 item_col=item_col, rating_col=rating_col, timestamp_col=timestamp_col,
                                 threshold=threshold)
        s = get_split(data, kind, seed, k_support, data_dir)
        typer.echo(f"{name} on {s!r}")
        t0 = time.perf_counter()
        est.fit(s.train, val=s.val)
        fit_s = time.perf_counter() - t0
        if not world.is_main:
            return
        typer.echo(f"trained {len(est.history_['epoch'])} epochs in {fit_s:.1f}s (best epoch {est.best_epoch_})")
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
        meta = {"model": name, "dataset": data.name if dataset is not None else None,
                "interactions": interactions, "split": kind, "seed": seed,
                "n_support": k_support if kind == "user-cold" else 0, "metrics": metrics,
                "fit_seconds": fit_s, "epochs": int(len(est.history_["epoch"])), "best_epoch": int(est.best_epoch_)}
        folder = save_model(est, save, meta=meta)
        typer.echo(f"model -> {folder}")
        if output is not None:
            write_json(to_records(res, config=config_to_dict(est.config), seconds=fit_s, device=str(device)), output)
            typer.echo(f"results -> {output}")
