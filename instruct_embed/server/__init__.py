"""The local Triton server: the tritonserver binary from the nvidia-pytriton wheel."""

from instruct_embed.server.install import TritonInstall, find_triton
from instruct_embed.server.process import LocalTritonServer, ServerOptions, ServerStartError

__all__ = ["LocalTritonServer", "ServerOptions", "ServerStartError", "TritonInstall", "find_triton"]
