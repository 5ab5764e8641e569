"""Where requests go: one Triton server, or several replicas behind one address, in client-side round robin.

gRPC keeps a connection open for its whole life, so a plain load-balancing address (a Kubernetes ClusterIP
Service) pins each client to the replica it first reached. The client spreads requests itself instead, over

- a comma-separated list of `host:port` entries (`triton-0:8001,triton-1:8001`), or
- `dns:///host:port` (gRPC's own name syntax): every address `host` resolves to, re-resolved every `refresh_s`, so
  the replicas behind a headless Service are found, and replicas that come or go are followed.

A replica that cannot be reached, or says it is stopping, is skipped for `cooldown_s`; the request is retried on
the next one at once. A plain `host:port` is one endpoint, as before.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable

DNS_SCHEME = "dns:///"
# Refusals that say the replica is loaded, not gone: the next request may go there again.
LOAD_REFUSALS = ("exceeds maximum queue", "request timeout expired")


def resolve_all(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, as `address:port`, in a stable order (IPv6 in brackets)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = sorted({str(info[4][0]) for info in infos})
    return [f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addresses]


def _split_port(entry: str) -> tuple[str, int]:
    host, _, port = entry.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            f"endpoint {entry!r} is not host:port; send host:port, a comma-separated list, or dns:///host:port"
        )
    return host, int(port)


class Endpoints:
    """The replicas one client talks to, picked in turn; thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        cooldown_s: float = 5.0,
        refresh_s: float = 30.0,
        resolver: Callable[[str, int], list[str]] = resolve_all,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.cooldown_s = cooldown_s
        self.refresh_s = refresh_s
        self._resolver = resolver
        self._clock = clock
        self._lock = threading.Lock()
        self._down_until: dict[str, float] = {}
        self._dns = url.startswith(DNS_SCHEME)
        if self._dns:
            self._host, self._port = _split_port(url.removeprefix(DNS_SCHEME))
            self._endpoints: list[str] = []
            self._resolved_at = float("-inf")
        else:
            self._endpoints = [entry.strip() for entry in url.split(",") if entry.strip()]
            if not self._endpoints:
                raise ValueError("no endpoint given; send host:port, a comma-separated list, or dns:///host:port")
            for entry in self._endpoints:
                _split_port(entry)
        self._turn = itertools.count()

    def all(self) -> list[str]:
        """Every endpoint known now (DNS names resolved afresh when due)."""
        with self._lock:
            self._refresh()
            return list(self._endpoints)

    def pick(self) -> str:
        """The next endpoint in turn that is not cooling down; where all are, the one that recovers first."""
        with self._lock:
            self._refresh()
            if not self._endpoints:
                raise OSError(f"{self.url} resolves to no address")
            now = self._clock()
            start = next(self._turn)
            for offset in range(len(self._endpoints)):
                endpoint = self._endpoints[(start + offset) % len(self._endpoints)]
                if self._down_until.get(endpoint, 0.0) <= now:
                    return endpoint
            return min(self._endpoints, key=lambda e: self._down_until.get(e, 0.0))

    def mark_down(self, endpoint: str) -> None:
        with self._lock:
            self._down_until[endpoint] = self._clock() + self.cooldown_s

    def failed(self, endpoint: str, server_message: str) -> bool:
        """Notes an UNAVAILABLE answer from `endpoint`; True where the request should go to another replica now.
        A refusal that says the replica is loaded (queue full, queue timeout) leaves it in turn: backoff handles it."""
        if not means_endpoint_down(server_message):
            return False
        self.mark_down(endpoint)
        return self.healthy() > 0

    def healthy(self) -> int:
        """How many endpoints are not cooling down."""
        with self._lock:
            now = self._clock()
            return sum(1 for e in self._endpoints if self._down_until.get(e, 0.0) <= now)

    def _refresh(self) -> None:
        if not self._dns or self._clock() - self._resolved_at < self.refresh_s:
            return
        try:
            self._endpoints = self._resolver(self._host, self._port)
        except OSError:
            if not self._endpoints:
                raise  # nothing known yet: the caller sees why
        self._resolved_at = self._clock()


def means_endpoint_down(server_message: str) -> bool:
    """Whether an UNAVAILABLE answer says the replica is gone (unreachable, stopping) rather than loaded."""
    lowered = server_message.lower()
    return not any(refusal in lowered for refusal in LOAD_REFUSALS)
