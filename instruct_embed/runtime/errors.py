"""The one error type the Python models turn into a per-request Triton error."""


class RequestError(ValueError):
    """A request is malformed; the message names what was wrong and what is allowed."""
