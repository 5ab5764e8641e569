"""Client-side round robin over replicas: turns, cooldown of a replica that is down, DNS names followed."""

from __future__ import annotations

import pytest

from instruct_embed.client.endpoints import Endpoints, means_endpoint_down


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_plain_address_is_one_endpoint() -> None:
    endpoints = Endpoints("127.0.0.1:8001")
    assert [endpoints.pick() for _ in range(3)] == ["127.0.0.1:8001"] * 3


def test_a_list_is_used_in_turn() -> None:
    endpoints = Endpoints("a:1, b:2,c:3")
    assert [endpoints.pick() for _ in range(6)] == ["a:1", "b:2", "c:3", "a:1", "b:2", "c:3"]


def test_a_replica_that_is_down_is_skipped_until_its_cooldown_ends() -> None:
    clock = Clock()
    endpoints = Endpoints("a:1,b:2,c:3", cooldown_s=5, clock=clock)
    endpoints.mark_down("b:2")
    assert "b:2" not in {endpoints.pick() for _ in range(6)} and endpoints.healthy() == 2
    clock.now += 5
    assert "b:2" in {endpoints.pick() for _ in range(3)} and endpoints.healthy() == 3


def test_when_every_replica_is_down_the_first_to_recover_is_tried() -> None:
    clock = Clock()
    endpoints = Endpoints("a:1,b:2", cooldown_s=5, clock=clock)
    endpoints.mark_down("a:1")
    clock.now += 1
    endpoints.mark_down("b:2")
    assert endpoints.healthy() == 0 and endpoints.pick() == "a:1"


def test_a_dns_name_means_every_address_it_resolves_to_followed_over_time() -> None:
    clock = Clock()
    answers = [["10.0.0.1:8001", "10.0.0.2:8001"], ["10.0.0.2:8001", "10.0.0.3:8001"]]
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return answers[min(len(asked), len(answers)) - 1]

    endpoints = Endpoints("dns:///triton-headless:8001", refresh_s=30, resolver=resolver, clock=clock)
    assert {endpoints.pick() for _ in range(4)} == {"10.0.0.1:8001", "10.0.0.2:8001"}
    assert asked == [("triton-headless", 8001)], "resolved once until the refresh is due"
    clock.now += 30
    assert endpoints.all() == ["10.0.0.2:8001", "10.0.0.3:8001"], "a replica gone, a new one found"


def test_a_failed_lookup_keeps_the_replicas_known_and_a_first_one_says_why() -> None:
    clock = Clock()
    calls = {"n": 0}

    def resolver(host: str, port: int) -> list[str]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("temporary failure in name resolution")
        return ["10.0.0.1:8001"]

    endpoints = Endpoints("dns:///svc:8001", resolver=resolver, clock=clock)
    assert endpoints.pick() == "10.0.0.1:8001"
    clock.now += 60
    assert endpoints.pick() == "10.0.0.1:8001"

    def failing(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(OSError, match="no such host"):
        Endpoints("dns:///nowhere:8001", resolver=failing).pick()


def test_localhost_resolves_through_the_system_resolver() -> None:
    assert "127.0.0.1:8001" in Endpoints("dns:///localhost:8001").all()


@pytest.mark.parametrize("url", ["", " , ", "nohost", "a:b", "dns:///svc"])
def test_a_malformed_address_is_refused_naming_the_forms_allowed(url: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        Endpoints(url)


def test_load_refusals_do_not_take_a_replica_out() -> None:
    assert not means_endpoint_down("Exceeds maximum queue size")
    assert not means_endpoint_down("Request timeout expired")
    assert means_endpoint_down("failed to connect to all addresses")
    assert means_endpoint_down("Server is stopping")


def test_a_failure_moves_the_request_on_only_when_the_replica_is_gone_and_another_is_up() -> None:
    endpoints = Endpoints("a:1,b:2")
    assert not endpoints.failed("a:1", "Exceeds maximum queue size") and endpoints.healthy() == 2
    assert endpoints.failed("a:1", "failed to connect to all addresses") and endpoints.healthy() == 1
    assert not endpoints.failed("b:2", "Server is stopping") and endpoints.healthy() == 0  # none left: back off
