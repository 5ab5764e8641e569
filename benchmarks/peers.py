"""Other embedding servers measured beside ours in the side-by-side run: infinity-emb, as its users run it.

infinity-emb 0.0.78 cannot share the project's environment (it pins sentence-transformers 3.4.1 and uvicorn 0.32.1),
so it lives in its own virtual environment (`make bench-peers`: `.cache/bench/infinity-venv`) and is started from
there as a server of its own, in its own process group, on a free loopback port:

    infinity_emb v2 --model-id HF_DIR --engine torch --no-bettertransformer --device cpu --batch-size 32 ...

The torch engine (sentence-transformers under the hood) with infinity's defaults otherwise; the same thread count as
every other system (OMP_NUM_THREADS / MKL_NUM_THREADS), offline (HF_HUB_OFFLINE), no telemetry (DO_NOT_TRACK). The
texts are sent through its OpenAI-compatible `POST /embeddings` with the model card's template already applied
(`texts.prompted`), exactly the strings the other systems embed.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.client
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .ratios import INFINITY  # the system's name in the tables

REPO_ROOT = Path(__file__).resolve().parent.parent
INFINITY_VENV = REPO_ROOT / ".cache" / "bench" / "infinity-venv"
INFINITY_VERSION = "0.0.78"  # what `make bench-peers` installs (Makefile: INFINITY_EMB)


class PeerError(RuntimeError):
    """A peer server did not start, or answered something other than embeddings."""


def infinity_executable(venv: Path = INFINITY_VENV) -> Path:
    return venv / "bin" / "infinity_emb"


def infinity_missing(venv: Path = INFINITY_VENV) -> str | None:
    """Why infinity-emb cannot be measured here (one line), or None when its environment is in place."""
    if not infinity_executable(venv).is_file():
        return f"infinity-emb is not measured: {infinity_executable(venv)} is missing (run `make bench-peers`)"
    return None


def installed_version(venv: Path = INFINITY_VENV, package: str = "infinity-emb") -> str:
    """`package`'s version in `venv` (its own interpreter answers), or "unknown"."""
    probe = f"from importlib.metadata import version; print(version({package!r}))"
    try:
        done = subprocess.run(
            [str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def parse_embeddings(body: bytes | str, count: int) -> np.ndarray:
    """An OpenAI-style embeddings response -> float32 [count, dim], rows in input order (by each item's `index`),
    L2-normalised. Items may come as float lists or base64 float32 (`encoding_format: base64`)."""
    data = json.loads(body)["data"]
    if len(data) != count:
        raise PeerError(f"asked for {count} embeddings, got {len(data)}")
    rows: list[np.ndarray | None] = [None] * count
    for position, item in enumerate(data):
        index = int(item.get("index", position))
        if not 0 <= index < count or rows[index] is not None:
            raise PeerError(f"embedding index {index} is out of range or repeated (of {count})")
        vector = item["embedding"]
        if isinstance(vector, str):
            rows[index] = np.frombuffer(base64.b64decode(vector), dtype="<f4")
        else:
            rows[index] = np.asarray(vector, dtype=np.float32)
    vectors = np.stack([r for r in rows if r is not None]).astype(np.float32, copy=False)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))


def _wait_gone(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class InfinityServer:
    """infinity-emb serving `hf_dir` (a sentence-transformers folder) on CPU, started from its own environment.

    A context manager: the server is in its own process group, which stop() ends (SIGTERM, then SIGKILL after
    `stop_timeout_s`); the kernel kills it should this process end first (PR_SET_PDEATHSIG, as for tritonserver).
    """

    def __init__(
        self,
        model: str,
        hf_dir: Path,
        threads: int,
        batch_size: int = 32,
        venv: Path = INFINITY_VENV,
        port: int | None = None,
        log_file: Path | None = None,
        ready_timeout_s: float = 300.0,
        stop_timeout_s: float = 20.0,
        encoding_format: str = "base64",
    ) -> None:
        from instruct_embed.server.process import free_port

        self.model, self.threads, self.batch_size, self.venv = model, threads, batch_size, venv
        self.hf_dir = Path(hf_dir).resolve()
        self.port = port or free_port()
        self.log_file = log_file or REPO_ROOT / ".cache" / "bench" / f"infinity-{model}.log"
        self.ready_timeout_s, self.stop_timeout_s = ready_timeout_s, stop_timeout_s
        self.encoding_format = encoding_format
        self.process: subprocess.Popen[bytes] | None = None
        self.version = INFINITY_VERSION
        self.last_latencies_ms: tuple[float, ...] = ()
        self._local = threading.local()

    @property
    def label(self) -> str:
        return (
            f"{INFINITY} {self.version} (torch engine, no BetterTransformer, CPU, batch {self.batch_size}, "
            f"{self.threads} threads, HTTP JSON {self.encoding_format})"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(infinity_executable(self.venv)),
            "v2",
            "--model-id",
            str(self.hf_dir),
            "--served-model-name",
            self.model,
            "--engine",
            "torch",
            "--no-bettertransformer",
            "--device",
            "cpu",
            "--batch-size",
            str(self.batch_size),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def environment(self) -> dict[str, str]:
        """This process's environment less what belongs to the project's venv, plus threads and offline."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        # The harness sets TOKENIZERS_PARALLELISM=false for itself (as the server's stubs run); infinity gets its own
        # default back.
        env.pop("TOKENIZERS_PARALLELISM", None)
        env.update(
            {
                "OMP_NUM_THREADS": str(self.threads),
                "MKL_NUM_THREADS": str(self.threads),
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "DO_NOT_TRACK": "1",
                "INFINITY_ANONYMOUS_USAGE_STATS": "0",
                "PYTHONNOUSERSITE": "1",
                "PATH": os.pathsep.join([str(self.venv / "bin"), env.get("PATH", "")]).strip(os.pathsep),
            }
        )
        return env

    # -- life cycle ------------------------------------------------------------------------------------------
    def start(self) -> InfinityServer:
        from instruct_embed.server.process import die_with_owner, port_is_free

        missing = infinity_missing(self.venv)
        if missing:
            raise PeerError(missing)
        if not port_is_free("127.0.0.1", self.port):
            raise PeerError(f"port {self.port} is taken: infinity-emb cannot start there")
        self.version = installed_version(self.venv)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                cwd=str(self.log_file.parent),
                start_new_session=True,
                preexec_fn=functools.partial(die_with_owner, os.getpid()),
            )
        try:
            self.wait_ready(self.ready_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout_s: float) -> None:
        """Until GET /models lists the model (infinity answers only once the model is loaded and warmed up)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise PeerError(f"infinity-emb ended at start (exit {self.process.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException, ValueError, KeyError):
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                try:
                    connection.request("GET", "/models")
                    response = connection.getresponse()
                    listed = json.loads(response.read()) if response.status == 200 else {"data": []}
                finally:
                    connection.close()
                if any(m.get("id") == self.model for m in listed["data"]):
                    return
            time.sleep(0.5)
        raise PeerError(f"infinity-emb not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> int | None:
        """SIGTERM the whole process group, wait, SIGKILL what is left; then wait for the port to be free."""
        from instruct_embed.server.process import port_is_free

        if self.process is None:
            return None
        process, self.process = self.process, None
        _signal_group(process.pid, signal.SIGTERM)
        _wait_gone(process, self.stop_timeout_s)
        _signal_group(process.pid, signal.SIGKILL)  # workers that outlived their parent
        deadline = time.monotonic() + 10
        while not port_is_free("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        return process.returncode

    def __enter__(self) -> InfinityServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- requests -------------------------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        """One keep-alive connection per thread and port (as an HTTP client pool would keep them)."""
        connections: dict[int, http.client.HTTPConnection] = self._local.__dict__.setdefault("connections", {})
        if self.port not in connections:
            connections[self.port] = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        return connections[self.port]

    def request(self, texts: Sequence[str]) -> np.ndarray:
        """One POST /embeddings of `texts` (already prompted): float32 [len(texts), dim] in their order."""
        payload: dict[str, Any] = {"model": self.model, "input": list(texts), "encoding_format": self.encoding_format}
        body = json.dumps(payload).encode()
        for attempt in range(2):  # a keep-alive connection the server closed meanwhile is opened again, once
            connection = self._connection()
            try:
                connection.request("POST", "/embeddings", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                connection.close()
                if attempt:
                    raise
        if response.status != 200:
            raise PeerError(f"infinity-emb answered {response.status}: {answer[:300]!r}")
        return parse_embeddings(answer, len(texts))

    def embed(self, texts: Sequence[str], role: str, batch: int | None = None, in_flight: int = 4) -> np.ndarray:
        """`texts` (raw) with the model card's template for `role`, `batch` per request, `in_flight` at once."""
        return self._requests(self._prompted(texts, role), batch or self.batch_size, in_flight)

    def _prompted(self, texts: Sequence[str], role: str) -> list[str]:
        from .texts import prompted

        return prompted(self.model, texts, role)

    def _requests(self, texts: Sequence[str], batch: int, in_flight: int) -> np.ndarray:
        chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
        with ThreadPoolExecutor(max(1, in_flight)) as pool:
            return np.concatenate(list(pool.map(self.request, chunks)))

    def online(self, queries: Sequence[str], concurrency: int) -> tuple[float, np.ndarray]:
        """Every query its own request (1 text), `concurrency` in flight (threads), as the server's online stream:
        a first pass over 4 x concurrency queries warms the connections. Seconds and the vectors in order; each
        request's latency goes to `last_latencies_ms`."""
        texts = self._prompted(queries, "query")
        with ThreadPoolExecutor(concurrency) as pool:

            def one(text: str) -> tuple[np.ndarray, float]:
                begin = time.perf_counter()
                vector = self.request([text])
                return vector, (time.perf_counter() - begin) * 1000.0

            list(pool.map(one, texts[: 4 * concurrency]))
            start = time.perf_counter()
            answered = list(pool.map(one, texts))
            seconds = time.perf_counter() - start
        self.last_latencies_ms = tuple(ms for _, ms in answered)
        return seconds, np.concatenate([v for v, _ in answered])

    def bulk(self, documents: Sequence[str], batch: int = 32, in_flight: int = 4) -> tuple[float, np.ndarray]:
        """`batch` documents per request in input order (infinity sorts and batches what is queued itself),
        `in_flight` requests at once: seconds and the vectors, float32 [n, dim] in input order."""
        texts = self._prompted(documents, "document")
        start = time.perf_counter()
        vectors = self._requests(texts, batch, in_flight)
        return time.perf_counter() - start, vectors
