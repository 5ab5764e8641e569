"""Task instructions published by the model authors, each with its kind.

E5_MISTRAL_TASKS follows the instruction table the e5-mistral authors released with their MTEB evaluation
(unilm e5/utils.py; the same instructions are used by gte-Qwen2 and multilingual-e5-large-instruct). A task's
kind says which texts get the instruction: retrieval puts it on queries only, symmetric on every text (the
authors' code and MTEB do so for STS, classification, clustering, pair classification and summarization).
Keys are lower-case task names a caller passes as TASK.
"""

from __future__ import annotations

from dataclasses import dataclass

from instruct_embed.catalog.enums import TaskKind


@dataclass(frozen=True)
class Task:
    instruction: str
    kind: TaskKind = TaskKind.RETRIEVAL


def symmetric(instruction: str) -> Task:
    return Task(instruction, TaskKind.SYMMETRIC)


WEB_SEARCH = "Given a web search query, retrieve relevant passages that answer the query"

E5_MISTRAL_TASKS: dict[str, Task] = {
    # retrieval
    "web_search": Task(WEB_SEARCH),
    "msmarco": Task(WEB_SEARCH),
    "scifact": Task("Given a scientific claim, retrieve documents that support or refute the claim"),
    "nq": Task("Given a question, retrieve Wikipedia passages that answer the question"),
    "fiqa": Task("Given a financial question, retrieve user replies that best answer the question"),
    "arguana": Task("Given a claim, find documents that refute the claim"),
    "hotpotqa": Task("Given a multi-hop question, retrieve documents that can help answer the question"),
    "nfcorpus": Task("Given a question, retrieve relevant documents that best answer the question"),
    "trec_covid": Task("Given a query on COVID-19, retrieve documents that answer the query"),
    "quora": Task("Given a question, retrieve questions that are semantically equivalent to the given question"),
    # semantic similarity
    "sts": symmetric("Retrieve semantically similar text."),
    "summarization": symmetric("Given a news summary, retrieve other semantically similar summaries"),
    # classification
    "banking77": symmetric("Given a online banking query, find the corresponding intents"),
    "amazon_polarity": symmetric("Classify Amazon reviews into positive or negative sentiment"),
    "emotion": symmetric(
        "Classify the emotion expressed in the given Twitter message into one of the six emotions: "
        "anger, fear, joy, love, sadness, and surprise"
    ),
    # clustering
    "arxiv_clustering": symmetric(
        "Identify the main and secondary category of Arxiv papers based on the titles and abstracts"
    ),
    "twenty_newsgroups": symmetric("Identify the topic or theme of the given news articles"),
}

# NV-Embed-v2's model card uses "Given a question, retrieve passages that answer the question" for its example;
# its MTEB instructions otherwise follow the same table.
NV_EMBED_TASKS: dict[str, Task] = {
    "question_answering": Task("Given a question, retrieve passages that answer the question"),
    **E5_MISTRAL_TASKS,
}

# The Qwen embedders' authors drop the final period of the STS instruction (Qwen3-Embedding's evaluation code,
# evaluation/qwen3_embedding_model.py in QwenLM/Qwen3-Embedding; the same string for gte-Qwen2) and use it for
# STS and pair classification on both sides; the rest of their table follows e5-mistral's.
QWEN_TASKS: dict[str, Task] = {**E5_MISTRAL_TASKS, "sts": symmetric("Retrieve semantically similar text")}
