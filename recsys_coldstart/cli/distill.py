"""``coldstart distill``: train a two-tower teacher from a pretrained model and distil a small student."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import typer

from recsys_coldstart.exceptions import DataError

DISTILL_SPLITS = ("item-cold", "user-cold")


def teacher_leakage(teacher_meta: dict, split, data, data_opts, *, path: str) -> str | None:
    """Why distilling from a saved model on ``split`` would leak held-out pairs, or None.

    The saved model's data manifest names the split it was trained on (kind, seed, K); that split
    is cut again from ``data`` and its training pairs are intersected with this split's val and
    test pairs. Models saved before the manifest only carry ``split`` / ``seed``: a different kind
    or seed counts as leaking (it cannot be ruled out).

    Parameters
    ----------
    teacher_meta : dict
        The saved model's ``meta``.
    split : ColdStartSplit
        The split the student is distilled and evaluated on.
    data : Interactions
        The data ``split`` was cut from.
    data_opts : DataOptions
        For the predefined-split lookup (``data_dir``).
    path : str
        The model folder (named in the message).

    Returns
    -------
    str or None
    """
    from recsys_coldstart.cli.data import get_split

    manifest = teacher_meta.get("data") if isinstance(teacher_meta.get("data"), dict) else None
    if manifest is not None:
        tsp = manifest.get("split") or {}
        kind, seed, k = tsp.get("kind"), tsp.get("seed"), int(tsp.get("k_support") or 0)
    else:
        kind, seed, k = teacher_meta.get("split"), teacher_meta.get("seed"), teacher_meta.get("n_support")
    if kind is None:
        return None  # nothing recorded: nothing to check against
    this_k = int(split.n_support) if split.kind == "user-cold" else 0
    k = this_k if k is None else int(k)  # an old model that did not record K: K cannot differ
    if kind == split.kind and seed is not None and int(seed) == data_opts.seed_ \
            and (kind != "user-cold" or k == this_k):
        return None
    what = f"{path} was trained on the {kind} split (seed {seed}{f', K={k}' if kind == 'user-cold' else ''})"
    if manifest is None or seed is None:
        return (f"{what}, not this {split.kind} split (seed {data_opts.seed_}): its embeddings may have seen this "
                "split's val/test pairs")
    other = get_split(data, kind, int(seed), k, data_opts.data_dir)
    seen = other.train.user_items.copy()
    seen.data[:] = 1
    held = (split.val.user_items + split.test.user_items).tocsr()
    held.data[:] = 1
    n_overlap = int(seen.multiply(held).nnz)
    if n_overlap == 0:
        return None
    return (f"{what}, whose training pairs include {n_overlap:,} of this {split.kind} split's "
            f"{int(held.nnz):,} val/test pairs (seed {data_opts.seed_})")


def register(app: typer.Typer) -> None:
    """Add ``distill`` to ``app``."""
    from recsys_coldstart.cli.data import DataOptions, data_options
    from recsys_coldstart.cli.options import SET_OPT

    @app.command("distill")
    @data_options(split="item-cold", split_help="item-cold or user-cold (default item-cold).")
    def distill_cmd(
        teacher: Path = typer.Option(..., "--teacher", help="A saved model folder: a pretrained embedding model "
                                     "(LightGCN, SimGCL, ALS, ...) that initialises the two-tower teacher, "
                                     "or a saved TwoTowerTeacher used as is. It must have been trained on this "
                                     "split (same kind and seed), else the command refuses before training."),
        student_dim: int = typer.Option(32, "--student-dim", help="Student embedding size."),
        lam: float = typer.Option(None, "--lambda", help="Weight of the distillation loss (0..1; default 0.5, "
                                  "1 for a hybrid student on user-cold)."),
        loss: str = typer.Option("score", "--loss", help="Distillation loss: score, rank or embed."),
        temperature: float = typer.Option(1.0, "--temperature", help="Score-distillation temperature T."),
        top_k: int = typer.Option(20, "--top-k", help="K of ranking distillation."),
        item_ids: bool = typer.Option(None, "--item-ids/--no-item-ids",
                                      help="Hybrid student with item IDs (default: on for user-cold, where every "
                                           "item is warm, so no item-ID dropout either)."),
        fold_in: str = typer.Option(None, "--fold-in", help="How new users are embedded: ridge (learned fold-in fitted "
                                    "on warm users' first-K reveals; the user-cold default) or tower."),
        epochs: int = typer.Option(None, "--epochs", help="Maximum epochs of the teacher and the student."),
        set_: list[str] = SET_OPT,
        allow_leakage: bool = typer.Option(False, "--allow-leakage", help="Distil from a model trained on another "
                                           "split even though it may have seen this split's val/test pairs."),
        device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda."),
        save: Path = typer.Option(..., "--save", help="Folder to save the student in."),
        save_teacher: Path = typer.Option(None, "--save-teacher", help="Also save the trained teacher here."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
        *, data_opts: DataOptions,
    ) -> None:
        """Distil a two-tower teacher into a lightweight student; print size, latency and cold-segment NDCG@20.

        --set key=value sets a student config field; --set teacher.key=value a teacher one.
        """
        from recsys_coldstart.cli.data import data_manifest, record_extra, saved_data
        from recsys_coldstart.cli.options import parse_set
        from recsys_coldstart.cli.registry import DISTILL_STRATEGIES, distill_strategy
        from recsys_coldstart.distill import (
            Student,
            StudentConfig,
            TwoTowerTeacher,
            TwoTowerTeacherConfig,
            student_split_defaults,
        )
        from recsys_coldstart.distill.distiller import cold_segment, scoring_latency
        from recsys_coldstart.evaluate import evaluate, metric_value
        from recsys_coldstart.foldin import TOWER_FOLD_IN_MODES, fold_in_for
        from recsys_coldstart.io import load_model, save_model

        split = data_opts.split or "item-cold"
        data_opts.split = split
        if split not in DISTILL_SPLITS:
            raise DataError(f"unknown --split {split!r}; choose one of: {', '.join(DISTILL_SPLITS)}")
        if loss not in DISTILL_STRATEGIES:
            raise DataError(f"unknown --loss {loss!r}; choose one of: {', '.join(DISTILL_STRATEGIES)}")
        if lam is not None and not 0.0 <= lam <= 1.0:
            raise DataError("--lambda must be in [0, 1]")
        fold_in = fold_in or fold_in_for(split)
        if fold_in not in TOWER_FOLD_IN_MODES:
            raise DataError(f"unknown --fold-in {fold_in!r}; choose one of: {', '.join(TOWER_FOLD_IN_MODES)}")
        t_set = parse_set([x.split(".", 1)[1] for x in set_ if x.startswith("teacher.")], TwoTowerTeacherConfig,
                          what="teacher")
        s_set = parse_set([x.removeprefix("student.") for x in set_ if not x.startswith("teacher.")], StudentConfig,
                          what="student")
        tmeta = saved_data(teacher, data_opts, split_fields=False)
        seed = data_opts.seed_
        k_support = data_opts.k_support_
        data = data_opts.load()
        s = data_opts.make_split(data, split)
        typer.echo(f"distill on {s.summary()}")
        leak = teacher_leakage(tmeta, s, data, data_opts, path=str(teacher))
        if leak and not allow_leakage:
            raise DataError(f"{leak}: distilling from it leaks held-out data; pretrain it with --split {split} "
                            f"--seed {seed}, or pass --allow-leakage")
        if leak:
            typer.echo(f"warning: {leak} (--allow-leakage)", err=True)
        base = load_model(teacher)
        n_items = getattr(base, "n_items_", None)
        if n_items is not None and n_items != s.train.n_items:
            raise DataError(f"{teacher}: the model has {n_items} items, the split {s.train.n_items}: "
                            "pretrain it on the same dataset and split")
        extra = {"fold_in": fold_in, "fold_in_k": max(int(k_support), 1)}
        if epochs is not None:
            extra["n_epochs"] = epochs
        t0 = time.perf_counter()
        if isinstance(base, TwoTowerTeacher):
            tm = base
            typer.echo(f"teacher: loaded TwoTowerTeacher from {teacher}")
        else:
            tcfg = TwoTowerTeacherConfig(**{**dict(random_state=seed, device=device, show_progress=progress, **extra),
                                            **t_set})
            tm = TwoTowerTeacher(tcfg).fit(s.train, val=s.val, init_factors=base, support=s.support)
            typer.echo(f"teacher: trained from {type(base).__name__} in {time.perf_counter() - t0:.1f}s")
        hybrid = (split == "user-cold") if item_ids is None else item_ids
        chosen = {"lam": lam} if lam is not None else {}
        scfg = StudentConfig(**{**dict(dim=student_dim, hidden=(student_dim,),
                                       distill=distill_strategy(loss, temperature=temperature, top_k=top_k),
                                       item_ids=hybrid, random_state=seed, device=device, show_progress=progress,
                                       **student_split_defaults(split, hybrid), **extra),
                                **chosen, **s_set})
        t1 = time.perf_counter()
        st = Student(scfg).fit(s.train, val=s.val, teacher=tm, support=s.support)
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
        manifest = data_manifest(data_opts, data, s)
        meta = {"model": "student", "dataset": data.name if data_opts.dataset is not None else None, "split": split,
                "seed": seed, "n_support": k_support if split == "user-cold" else 0, "teacher": str(teacher),
                "metrics": metrics, "fit_seconds": fit_s, "config": dataclasses.asdict(scfg),
                **record_extra(manifest), "data": manifest}
        typer.echo(f"student -> {save_model(st, save, meta=meta)}")
        if save_teacher is not None:
            tmeta_out = dict(meta, model="teacher", config=dataclasses.asdict(tm.config))
            typer.echo(f"teacher -> {save_model(tm, save_teacher, meta=tmeta_out)}")
