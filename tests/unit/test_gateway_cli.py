"""`instruct-embed gateway` options: the access log stays on unless --no-access-log (uvicorn's own name)."""

from __future__ import annotations

import argparse

from instruct_embed.gateway.cli import register_gateway


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register_gateway(parser.add_subparsers())
    return parser.parse_args(["gateway", *argv])


def test_the_access_log_is_on_by_default_and_off_on_request() -> None:
    assert parse().access_log is True
    assert parse("--no-access-log").access_log is False
