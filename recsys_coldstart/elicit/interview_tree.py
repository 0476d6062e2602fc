"""Decision-tree interview: a tree of questions fitted on the warm users (Golbandi et al. 2011)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recsys_coldstart.config import at_least, between
from recsys_coldstart.elicit._base import BasePolicy
from recsys_coldstart.elicit.state import (
    DISLIKE,
    LIKE,
    UNKNOWN,
    ElicitationState,
    ItemSpace,
    PosteriorConfig,
)
from recsys_coldstart.exceptions import DataError

_BRANCH = {LIKE: 0, DISLIKE: 1, UNKNOWN: 2}


@dataclass(frozen=True)
class InterviewTreeConfig(PosteriorConfig):
    """Configuration of :class:`InterviewTreePolicy`.

    Parameters
    ----------
    n_candidates : int
        Items considered at a node: the ones most known among the node's warm users.
    min_users : int
        A node with fewer warm users does not search: it asks its most-known unasked item.
    shrinkage : float
        Pseudo-count of the parent's vector in a node's vector: ``(sum u + s parent) / (n + s)``.
    leaf_weight : float
        Recommend from ``(1 - w) posterior mean + w (node vector + the user's feature offset)``;
        1 is Golbandi et al.'s leaf vector, 0 the answers' posterior only.
    (plus every field of :class:`~recsys_coldstart.elicit.state.PosteriorConfig`)
    """

    n_candidates: int = field(default=200, metadata=at_least(1, integer=True))
    min_users: int = field(default=20, metadata=at_least(2, integer=True))
    shrinkage: float = field(default=10.0, metadata=at_least(0.0))
    leaf_weight: float = field(default=0.5, metadata=between(0.0, 1.0))


class _Tree:
    """Nodes grown on demand: the warm users of a node, its question, vector and children."""

    def __init__(self, space: ItemSpace, config: InterviewTreeConfig) -> None:
        if space.warm_answers is None or space.warm_vectors is None:
            raise DataError("the interview tree needs an ItemSpace built with the train data (warm users' answers)")
        self.space, self.config = space, config
        a = sp.csr_matrix(space.warm_answers)
        self.like = sp.csr_matrix(a == LIKE, dtype=np.float64)
        self.dislike = sp.csr_matrix(a == DISLIKE, dtype=np.float64)
        self.known = (self.like + self.dislike).tocsr()
        self.u = np.asarray(space.warm_vectors, np.float64)
        v = space.item_factors
        self.gram = v.T @ v  # error measured in score space: ||V (u - u_b)||^2
        self.pop_order = np.argsort(-space.n_ratings, kind="stable")
        self.users: list[np.ndarray] = [np.arange(self.u.shape[0])]
        self.path_items: list[frozenset] = [frozenset()]
        self.vector: list[np.ndarray] = [self.u.mean(0)]
        self.item: list[int | None] = [None]
        self.children: list[dict[int, int]] = [{}]

    def question(self, node: int, asked: np.ndarray) -> int:
        """The node's item (computed once); ``asked`` (n_items,) bool is the user's asked mask."""
        if self.item[node] is None:
            self.item[node] = self._split(node)
        it = self.item[node]
        if not asked[it]:
            return it
        # the node's question was already asked (a shared path can't do that; kept for safety)
        for j in self.pop_order:
            if not asked[j]:
                return int(j)
        raise ValueError("every item has already been asked")

    def _split(self, node: int) -> int:
        r = self.users[node]
        banned = self.path_items[node]
        n = len(r)
        counts = np.asarray(self.known[r].sum(0)).ravel() if n else np.zeros(self.space.n_items)
        for j in banned:
            counts[j] = -1
        if n < self.config.min_users or counts.max() <= 0:
            order = np.lexsort((-self.space.n_ratings, -counts))
            return int(next(j for j in order if j not in banned))
        cand = np.argsort(-counts, kind="stable")[: self.config.n_candidates]
        cand = cand[counts[cand] > 0]
        u = self.u[r]
        tot = u.sum(0)
        s_like = np.asarray(self.like[r][:, cand].T @ u)  # (c, d)
        s_dis = np.asarray(self.dislike[r][:, cand].T @ u)
        n_like = np.asarray(self.like[r][:, cand].sum(0)).ravel()
        n_dis = np.asarray(self.dislike[r][:, cand].sum(0)).ravel()
        s_unk = tot[None, :] - s_like - s_dis
        n_unk = n - n_like - n_dis
        # SSE = const - sum_b s_b^T G s_b / n_b: maximise the explained part
        gain = np.zeros(len(cand))
        for s_b, n_b in ((s_like, n_like), (s_dis, n_dis), (s_unk, n_unk)):
            q = np.einsum("cd,de,ce->c", s_b, self.gram, s_b)
            gain += np.where(n_b > 0, q / np.maximum(n_b, 1), 0.0)
        return int(cand[int(np.argmax(gain))])

    def child(self, node: int, answer: int) -> int:
        """The node reached from ``node`` by ``answer`` (created on first use)."""
        br = _BRANCH[int(answer)]
        kids = self.children[node]
        if br not in kids:
            it = self.item[node]
            r = self.users[node]
            col = np.asarray(self.space.warm_answers[r][:, [it]].toarray()).ravel() if len(r) else np.zeros(0)
            rr = r[col == answer]
            s = self.config.shrinkage
            vec = (self.u[rr].sum(0) + s * self.vector[node]) / (len(rr) + s) if (len(rr) + s) > 0 \
                else self.vector[node]
            kids[br] = len(self.users)
            self.users.append(rr)
            self.path_items.append(self.path_items[node] | {it})
            self.vector.append(vec)
            self.item.append(None)
            self.children.append({})
        return kids[br]


class InterviewTreePolicy(BasePolicy):
    """Ask the question of the user's node in a tree fitted on the warm users.

    Golbandi, Koren & Lempel, "Adaptive bootstrapping of recommender systems using decision
    trees", WSDM 2011. Each node holds the warm users routed to it; its item is the one (among
    the node's ``n_candidates`` most-known items) whose like / dislike / unknown split of those
    users minimises the squared error of predicting each user by its branch's mean vector,
    measured in score space (``||V (u - mean_branch)||^2``, the error over all items' scores).
    A node's vector is its users' mean shrunk towards the parent's (``shrinkage``); a new user
    walks down the tree with their answers, and is recommended from a blend of the node vector
    and the Bayesian posterior of their answers (``leaf_weight``; 1 = the paper's leaf vector).
    Nodes are grown lazily (only along answer paths that users take), once per item space, and
    the walk is deterministic: the same answers give the same questions in a session and in
    the replay.
    """

    config_class = InterviewTreeConfig
    name = "interview-tree"

    def _tree(self, space: ItemSpace) -> _Tree:
        t = getattr(self, "_fitted_tree", None)
        if t is None or t.space is not space:
            t = _Tree(space, self.config)
            self._fitted_tree = t
        return t

    def init_state(self, space: ItemSpace, **kwargs) -> ElicitationState:
        """The prior state (see :meth:`BasePolicy.init_state`), every user at the root."""
        state = super().init_state(space, **kwargs)
        state.extra["tree_node"] = np.zeros(state.n_users, np.int64)
        state.extra["tree_offset"] = state.mu - space.prior_mean[None, :]
        return state

    def acquisition(self, state: ElicitationState) -> np.ndarray:
        """One-hot of each user's node question, shape (b, n_items)."""
        out = np.zeros((state.n_users, state.space.n_items))
        out[np.arange(state.n_users), self.select(state)] = 1.0
        return out

    def select(self, state: ElicitationState) -> np.ndarray:
        """Each user's node question, int64 of shape (b,)."""
        if state.asked.all(axis=1).any():
            raise ValueError("every item has already been asked")
        tree = self._tree(state.space)
        nodes = state.extra["tree_node"]
        out = np.empty(state.n_users, np.int64)
        for node in np.unique(nodes):
            idx = np.flatnonzero(nodes == node)
            for i in idx:
                out[i] = tree.question(int(node), state.asked[i])
        return out

    def update(self, state: ElicitationState, items: np.ndarray, responses: np.ndarray) -> ElicitationState:
        """Fold the answers into the posterior and move each user to the child node of their answer."""
        tree = self._tree(state.space)
        nodes = state.extra["tree_node"]
        resp = np.asarray(responses).reshape(-1)
        state.observe(items, responses)
        keys = nodes * 3 + np.vectorize(_BRANCH.get)(resp)
        new = nodes.copy()
        for key in np.unique(keys):
            idx = keys == key
            node, a = int(key // 3), int(resp[np.flatnonzero(idx)[0]])
            new[idx] = tree.child(node, a)
        state.extra["tree_node"] = new
        return state

    def user_vector(self, state: ElicitationState) -> np.ndarray:
        """``(1 - w) posterior + w (node vector + feature offset)``, float64 of shape (b, d)."""
        w = self.config.leaf_weight
        post = state.score_vector()
        if w == 0:
            return post.copy()
        tree = self._tree(state.space)
        node_vec = np.stack([tree.vector[int(n)] for n in state.extra["tree_node"]])
        return (1 - w) * post + w * (node_vec + state.extra["tree_offset"])
