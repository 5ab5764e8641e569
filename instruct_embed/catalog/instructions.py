"""Task instructions published by the model authors.

E5_MISTRAL_TASKS follows the instruction table the e5-mistral authors released with their MTEB evaluation
(the same instructions are used by gte-Qwen2 and, for retrieval, by multilingual-e5-large-instruct).
Keys are lower-case task names a caller passes as TASK.
"""

from __future__ import annotations

WEB_SEARCH = "Given a web search query, retrieve relevant passages that answer the query"

E5_MISTRAL_TASKS: dict[str, str] = {
    # retrieval
    "web_search": WEB_SEARCH,
    "msmarco": WEB_SEARCH,
    "scifact": "Given a scientific claim, retrieve documents that support or refute the claim",
    "nq": "Given a question, retrieve Wikipedia passages that answer the question",
    "fiqa": "Given a financial question, retrieve user replies that best answer the question",
    "arguana": "Given a claim, find documents that refute the claim",
    "hotpotqa": "Given a multi-hop question, retrieve documents that can help answer the question",
    "nfcorpus": "Given a question, retrieve relevant documents that best answer the question",
    "trec_covid": "Given a query on COVID-19, retrieve documents that answer the query",
    "quora": "Given a question, retrieve questions that are semantically equivalent to the given question",
    # semantic similarity
    "sts": "Retrieve semantically similar text.",
    "summarization": "Given a news summary, retrieve other semantically similar summaries",
    # classification
    "banking77": "Given a online banking query, find the corresponding intents",
    "amazon_polarity": "Classify Amazon reviews into positive or negative sentiment",
    "emotion": "Classify the emotion expressed in the given Twitter message into one of the six emotions: "
    "anger, fear, joy, love, sadness, and surprise",
    # clustering
    "arxiv_clustering": "Identify the main and secondary category of Arxiv papers based on the titles and abstracts",
    "twenty_newsgroups": "Identify the topic or theme of the given news articles",
}

# NV-Embed-v2's model card uses "Given a question, retrieve passages that answer the question" for its example;
# its MTEB instructions otherwise follow the same table.
NV_EMBED_TASKS: dict[str, str] = {
    "question_answering": "Given a question, retrieve passages that answer the question",
    **E5_MISTRAL_TASKS,
}
