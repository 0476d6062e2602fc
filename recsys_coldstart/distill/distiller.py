"""Teacher -> student pipeline, latency measurement and the demo hook.

:class:`Distiller` trains a :class:`~recsys_coldstart.distill.teacher.TwoTowerTeacher` from a
pretrained embedding model (or uses a fitted one) and distils it into a
:class:`~recsys_coldstart.distill.student.Student`; :func:`scoring_latency` measures serving cost
and :func:`distill_demo` returns the numbers ``coldstart demo`` prints.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_coldstart.data.splits import ColdStartSplit
from recsys_coldstart.distill.student import Student, StudentConfig, student_split_defaults
from recsys_coldstart.distill.teacher import TwoTowerTeacher, TwoTowerTeacherConfig

logger = logging.getLogger(__name__)


def cold_segment(kind: str) -> str:
    """The evaluation segment holding a split kind's cold entities (``cold-item`` / ``cold-user``)."""
    return {"item-cold": "cold-item", "user-cold": "cold-user"}.get(kind, "warm")


def scoring_latency(model: Any, observed: sp.csr_matrix, features: np.ndarray | None = None, *,
                    k: int | None = None, n_repeats: int = 5, per: int = 1000) -> float:
    """Median milliseconds to score ``per`` users against the whole catalogue.

    Each repeat runs ``model.score_new_users(observed, features)``: for a two-tower model that is
    the user tower online (what serving a request costs) followed by the ``users x catalogue``
    dot products against the precomputed item vectors; with ``k`` the top-``k`` selection is
    included too.

    Parameters
    ----------
    model : Recommender
        Fitted, with ``score_new_users``.
    observed : scipy CSR of shape (b, n_items)
        The users' interactions (train rows for warm users, support for cold ones).
    features : np.ndarray, shape (b, d_user), optional
    k : int, optional
        Also take the top-``k`` of each row.
    n_repeats : int
    per : int
        Report per this many users.

    Returns
    -------
    float
        Median ms per ``per`` users.
    """
    from recsys_coldstart.retrieval import topk

    b = observed.shape[0]
    times = []
    for _ in range(n_repeats):
        t0 = time.perf_counter()
        s = model.score_new_users(observed, features)
        if k is not None:
            topk(s, k)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0 * per / b)


@dataclass(frozen=True)
class DistillerConfig:
    """Configuration of :class:`Distiller`: the teacher's and the student's configs."""

    teacher: TwoTowerTeacherConfig = field(default_factory=TwoTowerTeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)


class Distiller:
    """Fit a two-tower teacher (initialised from a pretrained model), then a distilled student.

    Parameters
    ----------
    config : DistillerConfig, optional

    Attributes (after :meth:`fit`)
    ------------------------------
    teacher_ : TwoTowerTeacher
    student_ : Student
    """

    def __init__(self, config: DistillerConfig | None = None) -> None:
        self.config = config or DistillerConfig()

    def fit(self, train, *, val=None, base: Any = None, teacher: TwoTowerTeacher | None = None,
            callback=None) -> Distiller:
        """Train the teacher (unless a fitted ``teacher`` is given) and distil the student.

        Parameters
        ----------
        train, val : Interactions
        base : EmbeddingModel, tuple (U, V) or None
            Pretrained factors initialising the teacher's ID embeddings.
        teacher : TwoTowerTeacher, optional
            An already fitted teacher (then ``base`` is ignored).
        callback : callable, optional
            Passed to both fits.

        Returns
        -------
        self
        """
        if teacher is None:
            teacher = TwoTowerTeacher(self.config.teacher).fit(train, val=val, init_factors=base, callback=callback)
        self.teacher_ = teacher
        self.student_ = Student(self.config.student).fit(train, val=val, teacher=teacher, callback=callback)
        return self


def distill_demo(split: ColdStartSplit, base_model: Any = None, *, random_state: int = 0,
                 teacher_config: TwoTowerTeacherConfig | None = None,
                 student_config: StudentConfig | None = None) -> dict[str, Any]:
    """Teacher vs distilled student on a split's cold segment (for ``coldstart demo``).

    Parameters
    ----------
    split : ColdStartSplit
        ``item-cold`` or ``user-cold`` (``warm`` reports the warm segment).
    base_model : EmbeddingModel, optional
        Pretrained model fitted on ``split.train`` (e.g. SimGCL); None = SVD factors.
    random_state : int
    teacher_config, student_config : optional
        Defaults: the library defaults with ``random_state`` (the student uses item IDs on a
        user-cold split, where every item is warm).

    Returns
    -------
    dict
        ``teacher_params``, ``student_params``, ``param_ratio``, ``teacher_ms_per_1k``,
        ``student_ms_per_1k``, ``speedup``, ``teacher_ndcg@20``, ``student_ndcg@20``,
        ``student_nodistill_ndcg@20``, ``segment``. Prints nothing.
    """
    from recsys_coldstart.evaluate.protocol import evaluate, metric_value

    tc = dataclasses.replace(teacher_config or TwoTowerTeacherConfig(), random_state=random_state)
    hybrid = split.kind == "user-cold"  # every item warm: the student keeps item IDs
    sc = student_config or StudentConfig(item_ids=hybrid, **student_split_defaults(split.kind, hybrid))
    sc = dataclasses.replace(sc, random_state=random_state)
    seg = cold_segment(split.kind)
    teacher = TwoTowerTeacher(tc).fit(split.train, val=split.val, init_factors=base_model, support=split.support)
    student = Student(sc).fit(split.train, val=split.val, teacher=teacher, support=split.support)
    # the no-distillation baseline has no teacher to start from: random towers
    plain = Student(dataclasses.replace(sc, content_init="random")).fit(split.train, val=split.val,
                                                                         support=split.support)
    users = _latency_users(split)
    obs = _latency_observed(split, users)
    feats = None if split.train.user_features is None else split.train.user_features.take(users)
    out: dict[str, Any] = {"segment": seg}
    for name, m in (("teacher", teacher), ("student", student), ("student_nodistill", plain)):
        out[f"{name}_ndcg@20"] = metric_value(evaluate(m, split, segments=[seg]), "ndcg", 20, seg)
    out["teacher_params"] = teacher.n_parameters
    out["student_params"] = student.n_parameters
    out["param_ratio"] = student.n_parameters / teacher.n_parameters
    out["teacher_ms_per_1k"] = scoring_latency(teacher, obs, feats)
    out["student_ms_per_1k"] = scoring_latency(student, obs, feats)
    out["speedup"] = out["teacher_ms_per_1k"] / out["student_ms_per_1k"]
    return out


def _latency_users(split: ColdStartSplit, n: int = 1000) -> np.ndarray:
    """Up to ``n`` user indices (cycled to exactly ``n`` when fewer users exist)."""
    return np.resize(np.arange(split.train.n_users), n)


def _latency_observed(split: ColdStartSplit, users: np.ndarray) -> sp.csr_matrix:
    """What each latency user has revealed: train rows, plus support for cold users."""
    return (split.train.user_items + split.support.user_items)[users].tocsr()
