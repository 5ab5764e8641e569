"""The NVIDIA containers the GPU deployment runs in, and the facts about them that other files must agree with.

One NGC release ties them together: a TensorRT plan only deserialises in the TensorRT that built it, so the image
that builds engines (TENSORRT_IMAGE) and the image that serves them (TRITON_IMAGE) come from the same release, and
that release's Triton is the one bundled in nvidia-pytriton, which runs our local server and its tests.
docker-compose.yml, docker/*/Dockerfile and the docs are checked against these values by tests/unit/test_compose.py.
"""

from __future__ import annotations

NGC_RELEASE = "24.10"
TRITON_VERSION = "2.51.0"  # the server in NGC 24.10, and the tritonserver inside nvidia-pytriton 0.7.0
TRITON_IMAGE = f"nvcr.io/nvidia/tritonserver:{NGC_RELEASE}-py3"
TENSORRT_IMAGE = f"nvcr.io/nvidia/tensorrt:{NGC_RELEASE}-py3"
TENSORRT_VERSION = "10.5.0"  # TensorRT in both images; the Python bindings installed for 3.11 must match it
CUDA_VERSION = "12.6"
# NGC 24.10 needs driver R560+, or on data-center GPUs R470.57+, R525.85+, R535.86+ or R545.23+ (CUDA forward
# compatibility), per the Triton 24.10 release notes.
MIN_DRIVER = "560"

# The Python that runs the Python backend stub inside TRITON_IMAGE (Ubuntu 22.04). The preprocess model's code and
# its pinned wheels must work on it, although the project itself targets 3.11.
CONTAINER_PYTHON = (3, 10)

READY_PATH = "/v2/health/ready"  # 200 once every loaded model is ready (with --strict-readiness=true)
METRICS_PATH = "/metrics"
