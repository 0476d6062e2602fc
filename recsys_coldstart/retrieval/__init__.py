"""Top-k retrieval over item embeddings: exact torch search or faiss (flat / IVF / HNSW)."""

from recsys_coldstart.retrieval.index import BACKENDS, METRICS, EmbeddingIndex, faiss_has_gpu

__all__ = ["EmbeddingIndex", "BACKENDS", "METRICS", "faiss_has_gpu"]
