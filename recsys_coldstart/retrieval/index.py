"""Top-k retrieval over item embeddings: exact (torch) or approximate (faiss flat / IVF / IVF-PQ / HNSW)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_coldstart._utils import check_random_state, resolve_device
from recsys_coldstart.retrieval.ranking import PAD_ID, drop_excluded, topk

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("exact", "flat", "ivf", "ivfpq", "hnsw")
METRICS: tuple[str, ...] = ("ip", "cosine", "l2")


def faiss_has_gpu() -> bool:
    """Whether the installed faiss was built with GPU support (the ``gpu`` extra) and sees a GPU."""
    import faiss  # a core dependency; imported here to keep ``import recsys_coldstart`` fast

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


class EmbeddingIndex:
    """A top-``k`` index over item vectors, returning ``(ids, scores)`` and skipping seen items.

    Back ends:

    - ``"exact"``: brute force ``query @ items^T`` ranked by :func:`~recsys_coldstart.retrieval.topk`
      on the resolved device, in query blocks (memory ``block x n_items`` floats).
    - ``"flat"``: faiss exact search (``IndexFlatIP`` / ``IndexFlatL2``).
    - ``"ivf"``: faiss inverted file over a k-means coarse quantiser (Jégou, Douze & Schmid,
      "Product quantization for nearest neighbor search", TPAMI 2011); ``nlist`` cells,
      ``nprobe`` visited per query.
    - ``"ivfpq"``: the same inverted file with product-quantised residuals (``IndexIVFPQ``,
      Jégou et al. 2011): ``pq_m`` sub-vectors of ``pq_bits`` bits each, so an item costs
      ``pq_m * pq_bits / 8`` bytes of codes (16 for d = 64 by default) instead of ``4 d``.
      With ``refine=r`` the ``k * r`` best PQ candidates of a query are re-ranked exactly
      against the stored float vectors (the returned scores are then exact).
    - ``"hnsw"``: faiss hierarchical navigable small-world graph (Malkov & Yashunin, TPAMI
      2018); ``hnsw_m`` links per node, ``ef_search`` beam width. CPU only in faiss.

    faiss runs on the GPU (``StandardGpuResources``) when the device resolves to CUDA and faiss
    has GPU support (``flat`` and ``ivf``; the ``gpu`` extra); otherwise on the CPU (Johnson,
    Douze & Jégou, "Billion-scale similarity search with GPUs", IEEE TBD 2019). An explicit
    ``device="cuda"`` for ``flat`` / ``ivf`` without faiss GPU support is an error;
    ``device="auto"`` falls back to the CPU.

    Results follow the package's one top-``k`` rule (:mod:`recsys_coldstart.retrieval.ranking`):
    excluded items (a user's train positives) are never returned; the row width is
    ``min(k, n_items)``; a row with fewer admissible results is padded, after them, with id
    ``-1`` and score ``-inf`` (test ``ids >= 0``). The exact back end is
    :func:`~recsys_coldstart.retrieval.topk` itself (masks, drops nothing else, ties in item
    order). faiss back ends over-fetch (``k`` + the block's 90th-percentile excluded count, then
    ``k`` + the row's own count for the rows that fell short) and filter with the same padding;
    they keep faiss's order among tied scores, and an approximate index (IVF, HNSW) may find
    fewer than ``k`` items for a query, which pads the same way.

    Parameters
    ----------
    item_vectors : np.ndarray of float32, shape (n_items, d)
        Row ``i`` is item index ``i``; returned ids are these indices.
    backend : {"exact", "flat", "ivf", "hnsw"}
    metric : {"ip", "cosine", "l2"}
        Inner product (the scores of dot-product models), cosine (vectors and queries
        L2-normalised), or Euclidean (scores are negative squared distances, higher = closer).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    nlist : int, optional
        IVF cells; default ``~4 sqrt(n_items)`` (at most ``n_items // 39`` so every cell gets
        training points, at least 1).
    nprobe : int
        IVF / IVF-PQ cells searched per query (:meth:`tune` picks it for a recall target).
    pq_m : int, optional
        IVF-PQ sub-quantisers (must divide ``d``); default the largest divisor of ``d`` that is
        at most ``d // 4``.
    pq_bits : int
        Bits per IVF-PQ sub-code (8 = 256 centroids per sub-space; lowered to fit small
        catalogues, which need ``2^bits`` training points).
    refine : int or None
        IVF-PQ: re-rank the top ``k * refine`` PQ candidates exactly (None: PQ order and scores).
    train_sample : int or None
        IVF / IVF-PQ: train the k-means quantisers on this many randomly chosen vectors (None:
        all, which faiss itself subsamples to 256 per cell); 10^7 items need far fewer.
    hnsw_m : int
        HNSW links per node.
    ef_construction, ef_search : int
        HNSW beam widths when building / searching.
    batch_size : int
        Queries per block (exact back end and faiss calls).
    random_state : int or None
        Seeds the IVF k-means.

    Attributes
    ----------
    n_items, dim : int
    device : torch.device
        The resolved device.
    on_gpu : bool
        Whether the faiss index lives on the GPU.
    """

    def __init__(self, item_vectors: np.ndarray, *, backend: str = "exact", metric: str = "ip", device: Any = "auto",
                 nlist: int | None = None, nprobe: int = 16, hnsw_m: int = 32, ef_construction: int = 200,
                 ef_search: int = 128, batch_size: int = 1024, random_state: int | None = 0,
                 pq_m: int | None = None, pq_bits: int = 8, refine: int | None = None,
                 train_sample: int | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
        vecs = np.ascontiguousarray(np.asarray(item_vectors, dtype=np.float32))
        if vecs.ndim != 2 or vecs.shape[0] == 0:
            raise ValueError(f"item_vectors must be a non-empty 2-D array, got shape {vecs.shape}")
        if metric == "cosine":
            vecs = _normalize(vecs)
        self.backend = backend
        self.metric = metric
        self.device = resolve_device(device)
        self.n_items, self.dim = vecs.shape
        self.batch_size = int(batch_size)
        self.nprobe = int(nprobe)
        self.ef_search = int(ef_search)
        if refine is not None and (backend != "ivfpq" or int(refine) < 1):
            raise ValueError(f"refine must be None or an int >= 1, and only for backend='ivfpq' (got {refine!r} "
                             f"for {backend!r})")
        self.refine = None if refine is None else int(refine)
        self.on_gpu = False
        self._vectors = vecs
        self._index = None
        self._torch_items = None
        if backend == "exact":
            import torch

            self._torch_items = torch.from_numpy(vecs).to(self.device)
            return
        import faiss  # a core dependency; imported here to keep ``import recsys_coldstart`` fast

        faiss_metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        if backend == "flat":
            index = faiss.IndexFlatL2(self.dim) if metric == "l2" else faiss.IndexFlatIP(self.dim)
        elif backend in ("ivf", "ivfpq"):
            if nlist is None:
                nlist = int(round(4 * np.sqrt(self.n_items)))
            nlist = int(max(1, min(nlist, self.n_items // 39 or 1)))
            quantizer = faiss.IndexFlatL2(self.dim) if metric == "l2" else faiss.IndexFlatIP(self.dim)
            if backend == "ivf":
                index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss_metric)
            else:
                if pq_m is None:
                    pq_m = max(m for m in range(1, max(self.dim // 4, 1) + 1) if self.dim % m == 0)
                if self.dim % int(pq_m) != 0:
                    raise ValueError(f"pq_m={pq_m} must divide the vector dimension {self.dim}")
                bits = int(max(1, min(int(pq_bits), int(np.log2(self.n_items)) - 1)))
                self.pq_m, self.pq_bits = int(pq_m), bits
                index = faiss.IndexIVFPQ(quantizer, self.dim, nlist, self.pq_m, bits, faiss_metric)
            index.cp.seed = int(check_random_state(random_state).integers(0, 2**31 - 1))
            self._quantizer = quantizer  # keep the Python object alive with the index
            self.nlist = nlist
        else:
            index = faiss.IndexHNSWFlat(self.dim, int(hnsw_m), faiss_metric)
            index.hnsw.efConstruction = int(ef_construction)
        gpu_ok = self.device.type == "cuda" and backend != "hnsw" and faiss_has_gpu()
        if gpu_ok:  # pragma: no cover - GPU only
            self._gpu_res = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(self._gpu_res, self.device.index or 0, index)
            self.on_gpu = True
        elif self.device.type == "cuda" and backend != "hnsw" and _explicit_cuda(device):
            raise ImportError(f"device={device!r} asks for a GPU faiss {backend!r} index, but the installed faiss "
                              "has no GPU support: install the 'gpu' extra, or use device='auto' or 'cpu'")
        elif self.device.type == "cuda":
            logger.info("faiss %s index runs on the CPU (%s)", backend,
                        "faiss has no GPU HNSW" if backend == "hnsw" else "no faiss GPU support: the 'gpu' extra")
        if backend in ("ivf", "ivfpq"):
            train = vecs
            if train_sample is not None and int(train_sample) < self.n_items:
                pick = check_random_state(random_state).choice(self.n_items, int(train_sample), replace=False)
                train = vecs[np.sort(pick)]
            index.train(train)
        index.add(vecs)
        self._index = index
        self._set_search_params()

    def _set_search_params(self) -> None:
        if self.backend in ("ivf", "ivfpq"):
            self._index.nprobe = min(self.nprobe, self.nlist)
        elif self.backend == "hnsw":
            self._index.hnsw.efSearch = self.ef_search

    def __repr__(self) -> str:
        return (f"EmbeddingIndex(backend={self.backend!r}, metric={self.metric!r}, n_items={self.n_items}, "
                f"dim={self.dim}, device={str(self.device)!r}, on_gpu={self.on_gpu})")

    @classmethod
    def from_model(cls, model: Any, *, backend: str = "exact", **kwargs: Any) -> EmbeddingIndex:
        """An index over a fitted embedding model's ``item_factors_`` (dot-product scores).

        Parameters
        ----------
        model : EmbeddingModel
            Has ``item_factors_`` of shape (n_items, d).
        backend : str
        **kwargs
            Other :class:`EmbeddingIndex` options.
        """
        if not hasattr(model, "item_factors_"):
            raise TypeError(f"{type(model).__name__} has no item_factors_: fit an embedding model first")
        kwargs.setdefault("metric", "ip")
        return cls(model.item_factors_, backend=backend, **kwargs)

    # -- search -------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, *, exclude: sp.spmatrix | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items for each query vector, never an excluded one.

        Parameters
        ----------
        query : np.ndarray of float32, shape (b, d)
            E.g. ``model.user_factors_[user_idx]`` or ``model.embed_users(...)``.
        k : int
            Results per query (clipped to ``n_items``).
        exclude : scipy CSR of shape (b, n_items), optional
            Items not to return for each query row (train positives, revealed support).

        Returns
        -------
        ids : np.ndarray of int64, shape (b, min(k, n_items))
            Item indices, best first; ``-1`` pads a row with fewer admissible items than that.
        scores : np.ndarray of float32, shape (b, k)
            Inner product / cosine, or ``-||q - v||^2`` for ``metric="l2"``; ``-inf`` on padding.
        """
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32))
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"query must have shape (b, {self.dim}), got {q.shape}")
        if self.metric == "cosine":
            q = _normalize(q)
        b = q.shape[0]
        k = int(min(k, self.n_items))
        ex = None
        if exclude is not None:
            ex = sp.csr_matrix(exclude)
            if ex.shape != (b, self.n_items):
                raise ValueError(f"exclude must have shape ({b}, {self.n_items}), got {ex.shape}")
            ex.sum_duplicates()
        ids_out = np.full((b, k), PAD_ID, np.int64)
        scores_out = np.full((b, k), -np.inf, np.float32)
        if b == 0 or k == 0:
            return ids_out, scores_out
        for start in range(0, b, self.batch_size):
            stop = min(start + self.batch_size, b)
            ex_b = None if ex is None else ex[start:stop]
            ids, scores = self._search_block(q[start:stop], k, ex_b)
            ids_out[start:stop, : ids.shape[1]] = ids[:, :k]
            scores_out[start:stop, : ids.shape[1]] = scores[:, :k]
        return ids_out, scores_out

    def _search_block(self, q: np.ndarray, k: int, ex_b: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` admissible results for one block of queries.

        The exact back end masks excluded items before its top-k. faiss back ends over-fetch:
        first ``k`` + the 90th percentile of the block's excluded counts, then the rows that came
        back with fewer than ``k`` admissible ids are searched again with ``k`` + their own
        excluded count, which always suffices. Dropping excluded ids from a longer list of the
        same ranking gives exactly the top-``k`` admissible ids.
        """
        if ex_b is None or ex_b.nnz == 0 or self.backend == "exact":
            return self._raw_search(q, k, ex_b)
        n_ex = np.diff(ex_b.indptr)
        fetch = min(k + int(np.ceil(np.quantile(n_ex, 0.9))), self.n_items)
        ids, scores = drop_excluded(*self._raw_search(q, fetch, None), ex_b, k)
        short = np.flatnonzero((ids < 0).any(axis=1) & (k + n_ex > fetch))
        if len(short):
            fetch2 = min(k + int(n_ex[short].max()), self.n_items)
            ex_s = ex_b[short]
            ids[short], scores[short] = drop_excluded(*self._raw_search(q[short], fetch2, None), ex_s, k)
        return ids, scores

    def _raw_search(self, q: np.ndarray, fetch: int, ex_b: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        if self.backend == "exact":
            import torch

            with torch.no_grad():
                qt = torch.from_numpy(q).to(self.device)
                items = self._torch_items
                if self.metric == "l2":
                    s = 2 * qt @ items.T - (items * items).sum(1)[None, :] - (qt * qt).sum(1)[:, None]
                else:
                    s = qt @ items.T
                # exact search masks instead of over-fetching; s is ours, so mask it in place
                return topk(s, fetch, exclude=ex_b, overwrite=True)
        if self.refine is not None:
            return self._refined_search(q, fetch)
        dist, ids = self._index.search(q, fetch)
        scores = -dist if self.metric == "l2" else dist
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        return ids.astype(np.int64), scores

    def _refined_search(self, q: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """IVF-PQ candidates (``fetch * refine``) re-ranked by exact scores against the stored vectors,
        in sub-blocks so the gathered candidates stay under ~64 MB."""
        wide = min(fetch * self.refine, self.n_items)
        _, cand = self._index.search(q, wide)
        cand = cand.astype(np.int64)
        ids_out = np.full((len(q), fetch), PAD_ID, np.int64)
        sc_out = np.full((len(q), fetch), -np.inf, np.float32)
        step = max(1, (64 << 20) // max(wide * self.dim * 4, 1))
        for s in range(0, len(q), step):
            c = cand[s:s + step]
            vec = self._vectors[np.maximum(c, 0)]  # (b, wide, d)
            if self.metric == "l2":
                sc = -((vec - q[s:s + step, None, :]) ** 2).sum(-1)
            else:
                sc = np.einsum("bkd,bd->bk", vec, q[s:s + step])
            sc = np.where(c < 0, -np.inf, sc).astype(np.float32)
            order = np.argsort(-sc, axis=1, kind="stable")[:, :fetch]
            ids_out[s:s + step] = np.where(np.take_along_axis(sc, order, 1) > -np.inf,
                                           np.take_along_axis(c, order, 1), PAD_ID)
            sc_out[s:s + step] = np.take_along_axis(sc, order, 1)
        return ids_out, sc_out

    # -- tuning and size -----------------------------------------------------------------------
    def tune(self, queries: np.ndarray, k: int, *, target_recall: float = 0.95, sample: int = 1000,
             random_state: int | None = 0) -> dict[str, Any]:
        """Set the smallest ``nprobe`` (IVF, IVF-PQ) or ``ef_search`` (HNSW) that reaches a recall target.

        Recall@k of this index against exact search (torch, in blocks) is measured on a sample of
        ``queries``, for ``nprobe`` = 1, 2, 4, ... up to ``nlist`` or ``ef_search`` = k, 2k, ...
        up to 64k; the first value reaching ``target_recall`` is kept (else the largest tried).

        Parameters
        ----------
        queries : np.ndarray of float32, shape (q, d)
            Representative queries (e.g. user vectors).
        k : int
        target_recall : float
            In (0, 1].
        sample : int
            Queries used (a random subset when ``q`` is larger).
        random_state : int or None

        Returns
        -------
        dict
            ``param`` (``"nprobe"`` or ``"ef_search"``), ``value``, ``recall`` (at that value),
            ``reached`` (bool), ``curve`` (list of ``(value, recall, seconds)``: the search time
            of the sample at each value).
        """
        import time

        if self.backend not in ("ivf", "ivfpq", "hnsw"):
            raise ValueError(f"tune() needs an approximate backend (ivf, ivfpq, hnsw), not {self.backend!r}")
        if not 0.0 < target_recall <= 1.0:
            raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
        q = np.ascontiguousarray(np.asarray(queries, dtype=np.float32))
        if len(q) > sample:
            q = q[np.sort(check_random_state(random_state).choice(len(q), sample, replace=False))]
        k = int(min(k, self.n_items))
        truth = exact_topk_ids(self._vectors, _normalize(q) if self.metric == "cosine" else q, k, self.metric)
        if self.backend == "hnsw":
            param, values = "ef_search", [k * 2**i for i in range(7)]
        else:
            param = "nprobe"
            values = sorted({min(2**i, self.nlist) for i in range(int(np.ceil(np.log2(self.nlist))) + 1)})
        curve = []
        chosen, best = values[-1], 0.0
        for v in values:
            setattr(self, param, int(v))
            self._set_search_params()
            t0 = time.perf_counter()
            ids, _ = self.search(q, k)
            sec = time.perf_counter() - t0
            rec = _recall(ids, truth)
            curve.append((int(v), rec, sec))
            chosen, best = v, rec
            if rec >= target_recall:
                break
        setattr(self, param, int(chosen))
        self._set_search_params()
        logger.info("tuned %s %s=%d: recall@%d %.4f (target %.2f)", self.backend, param, chosen, k, best, target_recall)
        return {"param": param, "value": int(chosen), "recall": best, "reached": best >= target_recall,
                "curve": curve}

    def memory_bytes(self) -> dict[str, int]:
        """Bytes held by the search structure (not counting the copy of the vectors every index keeps).

        Returns
        -------
        dict
            ``codes`` (per-item payload: float vectors for flat / IVF / HNSW, PQ codes for IVF-PQ),
            ``ids`` (inverted-list ids, 8 bytes per item for IVF / IVF-PQ), ``centroids`` (coarse
            + PQ codebooks), ``graph`` (HNSW links, approximate: ``2 M`` int32 per item on level 0
            plus the upper levels' share), ``refine`` (the float vectors re-ranking reads, IVF-PQ
            with ``refine``), ``total``.
        """
        n, d = self.n_items, self.dim
        out = {"codes": 0, "ids": 0, "centroids": 0, "graph": 0, "refine": 0}
        if self.backend in ("exact", "flat"):
            out["codes"] = n * d * 4
        elif self.backend == "ivf":
            out.update(codes=n * d * 4, ids=n * 8, centroids=self.nlist * d * 4)
        elif self.backend == "ivfpq":
            out.update(codes=n * int(self._index.code_size), ids=n * 8,
                       centroids=self.nlist * d * 4 + (2**self.pq_bits) * d * 4,
                       refine=n * d * 4 if self.refine is not None else 0)
        else:
            m = int(self._index.hnsw.nb_neighbors(0)) if hasattr(self._index.hnsw, "nb_neighbors") else 64
            out.update(codes=n * d * 4, graph=int(n * m * 4 * 1.1))
        out["total"] = int(sum(out.values()))
        return out

    def recall_against(self, other: EmbeddingIndex, query: np.ndarray, k: int,
                       exclude: sp.spmatrix | None = None) -> float:
        """Mean recall@k of this index's results against ``other``'s (e.g. exact) on ``query``.

        Returns
        -------
        float
            ``mean_q |ids_self ∩ ids_other| / |ids_other|`` over the valid (non ``-1``) ids.
        """
        a, _ = self.search(query, k, exclude=exclude)
        b, _ = other.search(query, k, exclude=exclude)
        hits = 0
        total = 0
        for ra, rb in zip(a, b, strict=True):
            rb = rb[rb >= 0]
            hits += len(np.intersect1d(ra[ra >= 0], rb))
            total += len(rb)
        return hits / max(total, 1)


def exact_topk_ids(vectors: np.ndarray, query: np.ndarray, k: int, metric: str = "ip",
                   block: int = 256, max_block_bytes: int = 1 << 29) -> np.ndarray:
    """Exact top-``k`` item ids (torch matmul + ``torch.topk``, ``block`` queries at a time, fewer
    when a block's ``(block, n_items)`` float32 scores would exceed ``max_block_bytes``: 256
    queries against 10^7 items would be 10 GB).

    Parameters
    ----------
    vectors : np.ndarray of float32, shape (n_items, d)
    query : np.ndarray of float32, shape (b, d)
    k : int
    metric : {"ip", "cosine", "l2"}
        ``"cosine"`` expects both already normalised (it ranks by inner product).
    block : int
    max_block_bytes : int
        Memory bound of one block's score matrix (default 512 MiB).

    Returns
    -------
    np.ndarray of int64, shape (b, k)
    """
    import torch

    block = int(max(1, min(block, max_block_bytes // max(4 * len(vectors), 1))))
    items = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    sq = (items * items).sum(1) if metric == "l2" else None
    out = np.empty((len(query), k), np.int64)
    with torch.no_grad():
        for s in range(0, len(query), block):
            q = torch.from_numpy(np.ascontiguousarray(query[s:s + block], dtype=np.float32))
            sc = q @ items.T
            if sq is not None:
                sc = 2 * sc - sq[None, :]
            out[s:s + block] = torch.topk(sc, k, dim=1).indices.numpy()
    return out


def _recall(ids: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(a[a >= 0], t)) for a, t in zip(ids, truth, strict=True))
    return hits / max(truth.size, 1)


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0).astype(np.float32, copy=False)


def _explicit_cuda(device: Any) -> bool:
    """Whether the caller named CUDA (a string or ``torch.device``) rather than ``"auto"``."""
    return device is not None and device != "auto" and str(device).startswith("cuda")
