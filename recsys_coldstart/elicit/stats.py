"""Paired bootstrap confidence intervals over users, for elicitation curves."""

from __future__ import annotations

import numpy as np

from recsys_coldstart._utils import check_random_state


def paired_bootstrap(a: np.ndarray, b: np.ndarray | None = None, *, n_boot: int = 2000, level: float = 0.95,
                     random_state: int | np.random.Generator | None = 0) -> dict[str, float]:
    """Percentile bootstrap interval of ``mean(a - b)`` over users (resampling users, paired).

    Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13 (percentile interval);
    the pairs stay together, so the per-user correlation of two policies is kept.

    Parameters
    ----------
    a : np.ndarray of float, shape (n,)
        One value per user (e.g. policy A's paired NDCG@10 lift); NaN = not evaluated.
    b : np.ndarray of float, shape (n,), optional
        The other value per user, same users in the same order (default 0: an interval of
        ``mean(a)``). Users with NaN in ``a`` or ``b`` are dropped.
    n_boot : int
        Bootstrap resamples.
    level : float
        Coverage, in (0, 1).
    random_state : int, Generator or None

    Returns
    -------
    dict
        ``mean`` (the observed mean difference), ``lo``, ``hi`` (interval bounds), ``n`` (users).
    """
    a = np.asarray(a, np.float64).ravel()
    b = np.zeros_like(a) if b is None else np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"a and b need one value per user each; got {a.shape} and {b.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    d = a - b
    d = d[~np.isnan(d)]
    if len(d) == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    rng = check_random_state(random_state)
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    means = d[idx].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return {"mean": float(d.mean()), "lo": float(lo), "hi": float(hi), "n": int(len(d))}
