"""OpenAI-compatible `/v1/embeddings` in front of Triton (gRPC), instruction-aware through `input_type`."""
