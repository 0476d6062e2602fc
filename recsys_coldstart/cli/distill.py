"""``coldstart distill``: train a two-tower teacher from a pretrained model and distil a small student."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import typer

from recsys_coldstart.exceptions import DataError

DISTILL_SPLITS = ("item-cold", "user-cold")


def register(app: typer.Typer) -> None:
    """Add ``distill`` to ``app``."""
    from recsys_coldstart.cli.data import (
        DATA_DIR_OPT,
        DATASET_OPT,
        INTERACTIONS_OPT,
        ITEM_FEATURES_OPT,
        SUPPORT_OPT,
        THRESHOLD_OPT,
        USER_FEATURES_OPT,
    )

    @app.command("distill")
    def distill_cmd(
        dataset: str = DATASET_OPT, data_dir: str = DATA_DIR_OPT, interactions: str = INTERACTIONS_OPT,
        user_features: str = USER_FEATURES_OPT, item_features: str = ITEM_FEATURES_OPT,
        threshold: float = THRESHOLD_OPT,
        split: str = typer.Option("item-cold", "--split", "-s", help="item-cold or user-cold."),
        k_support: int = SUPPORT_OPT,
        teacher: Path = typer.Option(..., "--teacher", help="A saved model folder: a pretrained embedding model "
                                     "(LightGCN, SimGCL, ALS, ...) that initialises the two-tower teacher, "
                                     "or a saved TwoTowerTeacher used as is."),
        student_dim: int = typer.Option(32, "--student-dim", help="Student embedding size."),
        lam: float = typer.Option(0.5, "--lambda", help="Weight of the distillation loss (0..1)."),
        loss: str = typer.Option("score", "--loss", help="Distillation loss: score, rank or embed."),
        temperature: float = typer.Option(1.0, "--temperature", help="Score-distillation temperature T."),
        top_k: int = typer.Option(20, "--top-k", help="K of ranking distillation."),
        item_ids: bool = typer.Option(None, "--item-ids/--no-item-ids",
                                      help="Hybrid student with item IDs (default: on for user-cold)."),
        fold_in: str = typer.Option(None, "--fold-in", help="How new users are embedded: ridge (learned fold-in fitted "
                                    "on warm users' first-K reveals; the user-cold default) or tower."),
        epochs: int = typer.Option(None, "--epochs", help="Maximum epochs of the teacher and the student."),
        seed: int = typer.Option(0, "--seed", help="Seed of the split and the models."),
        device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda."),
        save: Path = typer.Option(..., "--save", help="Folder to save the student in."),
        save_teacher: Path = typer.Option(None, "--save-teacher", help="Also save the trained teacher here."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    ) -> None:
        """Distil a two-tower teacher into a lightweight student; print size, latency and cold-segment NDCG@20."""
        from recsys_coldstart.cli.data import get_split, load_from_options
        from recsys_coldstart.cli.registry import DISTILL_STRATEGIES, distill_strategy
        from recsys_coldstart.distill import (
            Student,
            StudentConfig,
            TwoTowerTeacher,
            TwoTowerTeacherConfig,
        )
        from recsys_coldstart.distill.distiller import cold_segment, scoring_latency
        from recsys_coldstart.evaluate import evaluate, metric_value
        from recsys_coldstart.foldin import TOWER_FOLD_IN_MODES, fold_in_for
        from recsys_coldstart.io import load_model, read_model_config, save_model

        if split not in DISTILL_SPLITS:
            raise DataError(f"unknown --split {split!r}; choose one of: {', '.join(DISTILL_SPLITS)}")
        if loss not in DISTILL_STRATEGIES:
            raise DataError(f"unknown --loss {loss!r}; choose one of: {', '.join(DISTILL_STRATEGIES)}")
        if not 0.0 <= lam <= 1.0:
            raise DataError("--lambda must be in [0, 1]")
        fold_in = fold_in or fold_in_for(split)
        if fold_in not in TOWER_FOLD_IN_MODES:
            raise DataError(f"unknown --fold-in {fold_in!r}; choose one of: {', '.join(TOWER_FOLD_IN_MODES)}")
        tmeta = read_model_config(teacher).get("meta", {})
        if dataset is None and interactions is None and tmeta.get("dataset"):
            dataset = tmeta["dataset"]
        data = load_from_options(dataset, data_dir, interactions, user_features, item_features, threshold=threshold)
        s = get_split(data, split, seed, k_support, data_dir)
        base = load_model(teacher)
        n_items = getattr(base, "n_items_", None)
        if n_items is not None and n_items != s.train.n_items:
            raise DataError(f"{teacher}: the model has {n_items} items, the split {s.train.n_items}: "
                            "pretrain it on the same dataset and split")
        if tmeta.get("split") not in (None, split) or int(tmeta.get("seed", seed)) != seed:
            typer.echo(f"warning: {teacher} was trained on split {tmeta.get('split')!r} seed {tmeta.get('seed')}; "
                       f"its embeddings may have seen this split's held-out data", err=True)
        extra = {"fold_in": fold_in, "fold_in_k": max(int(k_support), 1)}
        if epochs is not None:
            extra["n_epochs"] = epochs
        t0 = time.perf_counter()
        if isinstance(base, TwoTowerTeacher):
            tm = base
            typer.echo(f"teacher: loaded TwoTowerTeacher from {teacher}")
        else:
            tcfg = TwoTowerTeacherConfig(random_state=seed, device=device, show_progress=progress, **extra)
            tm = TwoTowerTeacher(tcfg).fit(s.train, val=s.val, init_factors=base)
            typer.echo(f"teacher: trained from {type(base).__name__} in {time.perf_counter() - t0:.1f}s")
        scfg = StudentConfig(dim=student_dim, hidden=(student_dim,), lam=lam,
                             distill=distill_strategy(loss, temperature=temperature, top_k=top_k),
                             item_ids=(split == "user-cold") if item_ids is None else item_ids,
                             random_state=seed, device=device, show_progress=progress, **extra)
        t1 = time.perf_counter()
        st = Student(scfg).fit(s.train, val=s.val, teacher=tm)
        fit_s = time.perf_counter() - t1
        seg = cold_segment(split)
        users = np.resize(np.arange(s.train.n_users), 1000)
        obs = (s.train.user_items + s.support.user_items)[users].tocsr()
        feats = None if s.train.user_features is None else s.train.user_features.take(users)
        rows = []
        metrics = {}
        for name, m in (("teacher", tm), ("student", st)):
            nd = metric_value(evaluate(m, s, segments=[seg]), "ndcg", 20, seg)
            ms = scoring_latency(m, obs, feats)
            rows.append((name, m.n_parameters, ms, nd))
            metrics[f"{name}_{seg}_ndcg@20"] = nd
            metrics[f"{name}_ms_per_1k_users"] = ms
            metrics[f"{name}_parameters"] = m.n_parameters
        typer.echo(f"{'model':<10}{'parameters':>14}{'ms/1k users':>14}{'NDCG@20 ' + seg:>22}")
        for name, npar, ms, nd in rows:
            typer.echo(f"{name:<10}{npar:>14,}{ms:>14.1f}{nd:>22.4f}")
        t, sd = rows[0], rows[1]
        typer.echo(f"student/teacher: {sd[1] / t[1]:.1%} of the parameters, {t[2] / sd[2]:.1f}x faster scoring, "
                   f"{sd[3] / t[3] if t[3] else float('nan'):.1%} of the NDCG@20")
        meta = {"model": "student", "dataset": data.name if dataset is not None else None, "split": split,
                "seed": seed, "n_support": k_support if split == "user-cold" else 0, "teacher": str(teacher),
                "metrics": metrics, "fit_seconds": fit_s, "config": dataclasses.asdict(scfg)}
        typer.echo(f"student -> {save_model(st, save, meta=meta)}")
        if save_teacher is not None:
            tmeta_out = dict(meta, model="teacher", config=dataclasses.asdict(tm.config))
            typer.echo(f"teacher -> {save_model(tm, save_teacher, meta=tmeta_out)}")
