"""Retrieval quality through the server: BEIR SciFact, nDCG@10 / Recall@100 / MRR@10, server vs in-process."""

from instruct_embed.evaluation.data import DataError, RetrievalSet, find_data_dir, limit, load_scifact
from instruct_embed.evaluation.metrics import RetrievalMetrics, evaluate_rankings
from instruct_embed.evaluation.ranking import rank_by_cosine
from instruct_embed.evaluation.runner import EvalResult, run_retrieval
from instruct_embed.evaluation.variants import Variant

__all__ = [
    "DataError",
    "EvalResult",
    "RetrievalMetrics",
    "RetrievalSet",
    "Variant",
    "evaluate_rankings",
    "find_data_dir",
    "limit",
    "load_scifact",
    "rank_by_cosine",
    "run_retrieval",
]
