"""Fixtures of the elicitation tests: a user-cold split of the synthetic data and a cheap item space.

The item space is a truncated SVD of the binary train matrix (users x items): quick, deterministic
and independent of the ALS baseline, so policy tests do not depend on another model's training.
"""

from __future__ import annotations

import numpy as np
import pytest

from recsys_coldstart.base import EmbeddingRecommender
from recsys_coldstart.data.splits import user_cold_split


class SVDFactors(EmbeddingRecommender):
    """Test-only embedding model: rank-``d`` truncated SVD of the binary train matrix."""

    def __init__(self, factors: int = 8) -> None:
        super().__init__()
        self.factors = factors

    def fit(self, train, *, val=None, callback=None):
        from scipy.sparse.linalg import svds

        x = train.user_items.astype(np.float64)
        u, s, vt = svds(x, k=self.factors, random_state=0)
        root = np.sqrt(s)
        self.user_factors_ = (u * root).astype(np.float32)
        self.item_factors_ = (vt.T * root).astype(np.float32)
        return self


@pytest.fixture(scope="module")
def cold_split(synthetic):
    """User-cold split (K=0) of the synthetic fixture."""
    return user_cold_split(synthetic, n_support=0, random_state=0)


@pytest.fixture(scope="module")
def svd_model(cold_split):
    """An 8-factor SVD item space fitted on the split's train part."""
    return SVDFactors(8).fit(cold_split.train)
