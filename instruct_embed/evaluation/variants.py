"""Which template each side of the retrieval pair gets: the model card's, none, or each other's."""

from __future__ import annotations

from enum import StrEnum


class Variant(StrEnum):
    """A prompting variant, expressed as the ROLE the server is sent for queries and for documents."""

    CARD = "card"  # queries get the card's query template, documents its document template (the intended use)
    NONE = "none"  # role raw on both sides: no prefix at all
    SWAPPED = "swapped"  # queries get the document template, documents the query template

    @property
    def query_role(self) -> str:
        return {Variant.CARD: "query", Variant.NONE: "raw", Variant.SWAPPED: "document"}[self]

    @property
    def document_role(self) -> str:
        return {Variant.CARD: "document", Variant.NONE: "raw", Variant.SWAPPED: "query"}[self]
