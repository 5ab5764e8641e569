"""The instruct-embed client SDK (tritonclient HTTP and gRPC)."""

from .errors import EmbedError, InvalidRequest, ModelNotFound, ServerUnavailable
from .sync_client import EmbedClient, Item, ServedModel, encode

__all__ = [
    "EmbedClient",
    "EmbedError",
    "InvalidRequest",
    "Item",
    "ModelNotFound",
    "ServedModel",
    "ServerUnavailable",
    "encode",
]
