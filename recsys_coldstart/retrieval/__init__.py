"""Ranking: the one top-k (:func:`topk`) and top-k over item embeddings (:class:`EmbeddingIndex`:
exact torch search or faiss flat / IVF / HNSW), both with the same padding rule (see :mod:`.ranking`).

Imports nothing above ``evaluate`` (no models, evaluation or CLI), so ``evaluate`` may rank with it.
"""

from recsys_coldstart.retrieval.index import BACKENDS, METRICS, EmbeddingIndex, faiss_has_gpu
from recsys_coldstart.retrieval.ranking import PAD_ID, topk

__all__ = ["EmbeddingIndex", "BACKENDS", "METRICS", "PAD_ID", "faiss_has_gpu", "topk"]
