"""Real texts of several lengths and scripts, used to validate every exported artifact."""

from __future__ import annotations

VALIDATION_TEXTS: tuple[str, ...] = (
    "how much protein should a female eat",
    "Definition of summit for English Language Learners: the highest point of a mountain.",
    "As a general guideline, the CDC's average requirement of protein for women ages 19 to 70 is 46 grams "
    "per day. But, as you can see from this chart, you'll need to increase that if you're expecting or "
    "training for a marathon. Check out the chart below to see how much protein you should be eating each day.",
    "Le chat est assis sur le tapis.",
    "東京は日本の首都です。",
    "Ein kurzer Satz.",
    "x",
    " ".join(["Retrieval-augmented generation grounds answers in documents retrieved by embeddings."] * 60),
)
