"""Two-tower teacher, lightweight student, distillation losses and the Distiller.

The tower layers and the shared base estimator live in :mod:`recsys_coldstart.towers`, the
new-user fold-in modes (and :func:`~recsys_coldstart.foldin.fold_in_for`) in
:mod:`recsys_coldstart.foldin`.
"""

from recsys_coldstart.distill.distiller import (
    Distiller,
    DistillerConfig,
    distill_demo,
    scoring_latency,
)
from recsys_coldstart.distill.losses import (
    bpr_loss,
    rank_position_weights,
    ranking_distillation_loss,
)
from recsys_coldstart.distill.strategies import (
    DistillStrategy,
    EmbeddingAlignment,
    RankingDistillation,
    ScoreDistillation,
)
from recsys_coldstart.distill.student import Student, StudentConfig, student_split_defaults
from recsys_coldstart.distill.teacher import TwoTowerTeacher, TwoTowerTeacherConfig
from recsys_coldstart.towers.losses import (
    embedding_alignment_loss,
    pairwise_alignment_loss,
    sampled_softmax_loss,
    score_distillation_loss,
    score_regression_loss,
)

__all__ = [
    "DistillStrategy", "Distiller", "DistillerConfig", "EmbeddingAlignment", "RankingDistillation",
    "ScoreDistillation", "Student", "StudentConfig", "TwoTowerTeacher", "TwoTowerTeacherConfig",
    "bpr_loss", "distill_demo", "embedding_alignment_loss", "pairwise_alignment_loss", "rank_position_weights",
    "ranking_distillation_loss", "sampled_softmax_loss", "score_distillation_loss", "score_regression_loss",
    "scoring_latency", "student_split_defaults",
]
