"""Typed errors raised by the client; each carries the server's own message."""

from __future__ import annotations


class EmbedError(RuntimeError):
    """Base class: the request failed; `server_message` is what Triton said, when it said something."""

    def __init__(self, message: str, server_message: str | None = None) -> None:
        super().__init__(message)
        self.server_message = server_message


class ModelNotFound(EmbedError):
    pass


class InvalidRequest(EmbedError):
    """The server refused the input (unknown role or task, bad text, over-length with truncate=none...)."""


class ServerUnavailable(EmbedError):
    """The server could not be reached, is overloaded (its queue is full or the wait ran out), or a model process
    is down; retried with backoff before this is raised."""


class ServerError(EmbedError):
    """The server failed on a valid request (an internal error); not retried, the message says what failed."""
