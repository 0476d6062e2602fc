"""Full-ranking evaluation: metrics, segment protocol, result records.

The lowest layer above ``data``: it imports nothing above it (the benchmark runner is
:mod:`recsys_coldstart.bench`).
"""

from recsys_coldstart.evaluate.metrics import (
    coverage_at_k,
    hitrate_at_k,
    hits_matrix,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from recsys_coldstart.evaluate.protocol import (
    SEGMENTS,
    default_segments,
    evaluate,
    metric_value,
    rank_and_score,
)
from recsys_coldstart.evaluate.results import (
    portable_command,
    read_json,
    read_results,
    summary_table,
    to_markdown,
    to_records,
    write_cell,
    write_json,
)

__all__ = [
    "hits_matrix", "recall_at_k", "ndcg_at_k", "precision_at_k", "hitrate_at_k", "mrr_at_k", "coverage_at_k",
    "evaluate", "rank_and_score", "default_segments", "metric_value", "SEGMENTS",
    "to_records", "write_json", "read_json", "summary_table", "to_markdown",
    "read_results", "write_cell", "portable_command",
]
