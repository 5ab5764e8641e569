"""Code that runs inside Triton's Python backend.

Rendering copies this package, unchanged, next to each Python model's `model.py`, so it may import only the
standard library, numpy, tokenizers and onnxruntime: never the rest of instruct_embed. The project imports it
as `instruct_embed.runtime`, so the same code is unit-tested without Triton. Its `contract` module is the
vocabulary the server and its callers share (docs/architecture.md).
"""
