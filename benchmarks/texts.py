"""The texts every benchmark sends: real SciFact queries and abstracts, in a fixed order, with fixed subsets.

All systems compared in one run get exactly these strings (the model's template is applied by each system the
same way: by the server's preprocess step, or here with the same prompt-resolution function).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SHORT_QUERY_WORDS = 12  # "short queries" for the pipeline ceiling: at most this many words


@dataclass(frozen=True)
class BenchTexts:
    """queries: the 300 SciFact test queries; documents: a fixed subset of the corpus (title + abstract)."""

    queries: tuple[str, ...]
    documents: tuple[str, ...]
    source: str  # what the subset is, for the report

    @property
    def short_queries(self) -> tuple[str, ...]:
        return tuple(q for q in self.queries if len(q.split()) <= SHORT_QUERY_WORDS)


def load_texts(max_docs: int | None = 1000, data_dir: Path | None = None) -> BenchTexts:
    """SciFact's test queries and `max_docs` documents (None: all 5,183), the evaluation's deterministic subset."""
    from instruct_embed.evaluation.data import limit, load_scifact

    data = load_scifact(data_dir)
    subset = data if max_docs is None or max_docs >= len(data.corpus) else limit(data, max_docs=max_docs)
    documents = tuple(subset.corpus[d] for d in sorted(subset.corpus))
    queries = tuple(data.queries[q] for q in sorted(data.queries))
    where = "all" if subset is data else "a fixed subset of"
    return BenchTexts(queries, documents, f"SciFact test: {len(queries)} queries, {where} {len(documents)} documents")


def prompted(model: str, texts: Sequence[str], role: str) -> list[str]:
    """`texts` with the model card's template for `role`, exactly as the server's preprocess step writes them."""
    from instruct_embed.catalog import get_spec
    from instruct_embed.runtime.prompting import PromptTemplates, resolve_prompt

    templates = PromptTemplates.from_config(get_spec(model).runtime_config())
    return [resolve_prompt(templates, text, role).full for text in texts]
