"""The instruct-embed client SDK (tritonclient HTTP and gRPC, sync and asyncio)."""

from .async_client import AsyncEmbedClient
from .errors import EmbedError, InvalidRequest, ModelNotFound, ServerError, ServerUnavailable
from .request import Item, ServedModel
from .sync_client import EmbedClient, encode
from .windows import TextWindows

__all__ = [
    "AsyncEmbedClient",
    "EmbedClient",
    "EmbedError",
    "InvalidRequest",
    "Item",
    "ModelNotFound",
    "ServedModel",
    "ServerError",
    "ServerUnavailable",
    "TextWindows",
    "encode",
]
