"""Two-tower teacher, lightweight student, distillation losses and the Distiller."""

from recsys_coldstart.distill._base import FOLD_IN_MODES, fold_in_for
from recsys_coldstart.distill.distiller import (
    Distiller,
    DistillerConfig,
    distill_demo,
    scoring_latency,
)
from recsys_coldstart.distill.losses import (
    bpr_loss,
    embedding_alignment_loss,
    pairwise_alignment_loss,
    rank_position_weights,
    ranking_distillation_loss,
    sampled_softmax_loss,
    score_distillation_loss,
    score_regression_loss,
)
from recsys_coldstart.distill.student import Student, StudentConfig
from recsys_coldstart.distill.teacher import TwoTowerTeacher, TwoTowerTeacherConfig
from recsys_coldstart.distill.towers import Tower

__all__ = [
    "FOLD_IN_MODES", "fold_in_for", "Distiller", "DistillerConfig", "Student", "StudentConfig", "Tower", "TwoTowerTeacher", "TwoTowerTeacherConfig",
    "bpr_loss", "distill_demo", "embedding_alignment_loss", "pairwise_alignment_loss", "rank_position_weights",
    "ranking_distillation_loss", "sampled_softmax_loss", "score_distillation_loss", "score_regression_loss",
    "scoring_latency",
]
