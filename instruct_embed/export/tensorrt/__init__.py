"""ONNX -> TensorRT plan for the `tensorrt_plan` Triton target.

Only the modules that talk to TensorRT (builder.py, runner.py) import `tensorrt`, and only inside functions, so
the planning, graph preparation, command lines and config rendering import and test on machines without it.
"""
