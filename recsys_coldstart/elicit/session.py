"""Online elicitation: one new user, one question at a time."""

from __future__ import annotations

import logging

import numpy as np

from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.elicit.state import ANSWERS, ElicitationState, ItemSpace
from recsys_coldstart.exceptions import DataError
from recsys_coldstart.retrieval import topk

logger = logging.getLogger(__name__)


class ElicitationSession:
    """Onboard one new user: ``ask()`` an item, ``answer()`` it, ``recommend()`` at any time.

    Parameters
    ----------
    policy : BasePolicy
        The question-asking strategy (e.g. ``LinUCBPolicy()``).
    model : EmbeddingModel
        Fitted; its ``item_factors_`` define the item space, its ``user_factors_`` the prior.
    user_features : np.ndarray of float, shape (d_user,), optional
        The new user's side features (the columns of ``train.user_features``); shift the prior
        mean when ``train`` (or ``space``) has a feature regression.
    train : Interactions, optional
        The data ``model`` was fitted on: gives the warm-user prior, the per-item known
        probabilities and the feature regression. Without it (and without ``space``) every
        item is equally likely to be known.
    space : ItemSpace, optional
        A prebuilt item space (shared between sessions; takes precedence over ``train``).

    Examples
    --------
    >>> session = ElicitationSession(LinUCBPolicy(), als, train=split.train)   # doctest: +SKIP
    >>> item = session.ask(); session.answer(item, "like")                    # doctest: +SKIP
    >>> ids, scores = session.recommend(10)                                    # doctest: +SKIP
    """

    def __init__(self, policy, model, user_features: np.ndarray | None = None, *, train: Interactions | None = None,
                 space: ItemSpace | None = None) -> None:
        self.policy = policy
        self.model = model
        if space is None:
            if train is None:
                logger.warning("ElicitationSession without train data: every item is assumed equally known")
            space = ItemSpace.from_model(model, train)
        self.space = space
        feats = None if user_features is None else np.asarray(user_features, np.float64).reshape(1, -1)
        self.state: ElicitationState = policy.init_state(space, features=feats, n_users=1)
        self._pending: int | None = None

    @property
    def n_items(self) -> int:
        """Catalogue size."""
        return self.space.n_items

    @property
    def pending(self) -> int | None:
        """The item asked and not yet answered, or None."""
        return self._pending

    @property
    def history(self) -> list[tuple[int, str]]:
        """``(item_idx, answer)`` pairs so far, in order."""
        names = {v: k for k, v in ANSWERS.items()}
        return [(int(i[0]), names[int(r[0])]) for i, r in zip(self.state.items, self.state.responses, strict=True)]

    def ask(self) -> int:
        """The next item to ask about (an item index).

        Raises
        ------
        ValueError
            If the previous question has not been answered, or every item has been asked.
        """
        if self._pending is not None:
            raise ValueError(f"item {self._pending} was asked and not answered yet: call answer({self._pending}, ...) first")
        if self.state.asked.all():
            raise ValueError("every item in the catalogue has already been asked")
        self._pending = int(self.policy.select(self.state)[0])
        return self._pending

    def answer(self, item: int, response: str) -> None:
        """Record the user's answer about ``item``.

        Parameters
        ----------
        item : int
            The item index returned by the last :meth:`ask`.
        response : {"like", "dislike", "unknown"}

        Raises
        ------
        DataError
            ``item`` is out of range.
        ValueError
            ``response`` is not one of the three answers, or ``item`` is not the pending question.
        """
        if not isinstance(response, str) or response.strip().lower() not in ANSWERS:
            raise ValueError(f"invalid answer {response!r}; choose one of: {', '.join(ANSWERS)}")
        try:
            item = int(item)
        except (TypeError, ValueError):
            raise DataError(f"item must be an integer index, got {item!r}") from None
        if not 0 <= item < self.n_items:
            raise DataError(f"item index {item} out of range [0, {self.n_items})")
        if self._pending is None:
            raise ValueError(f"item {item} was not asked: call ask() first")
        if item != self._pending:
            raise ValueError(f"item {item} was not asked; the pending question is item {self._pending}")
        code = ANSWERS[response.strip().lower()]
        self.policy.update(self.state, np.array([item]), np.array([code]))
        self._pending = None

    def user_vector(self) -> np.ndarray:
        """Current estimate of the user's vector, float64 of shape (d,)."""
        return self.policy.user_vector(self.state)[0]

    def recommend(self, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items from the posterior mean, excluding every item asked.

        Ranked by :func:`recsys_coldstart.retrieval.topk`, so padded like every ``recommend``.

        Returns
        -------
        ids : np.ndarray of int64, shape (min(k, n_items),)
            Best first, never an asked item; ``-1`` pads when fewer items are left unasked.
        scores : np.ndarray of float32, same shape
            ``-inf`` on padding.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        scores = (self.user_vector() @ self.space.item_factors.T).astype(np.float32)
        ids, vals = topk(scores[None, :], k, exclude=self.state.asked[:1], overwrite=True)
        return ids[0], vals[0]
