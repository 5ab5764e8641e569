"""The stub watchdog beside a tritonserver that instruct-embed did not start (the compose image's entrypoint runs it):

    python3 -m instruct_embed.server.watch --server-pid PID --http-url 127.0.0.1:8000

It waits until the server is ready (every model loaded: the stubs running then are the expected ones), reloads a
model whose stub dies (see stubs.py), logs each reload on stderr, and exits when the server does. Standard library
only, and Python 3.10 (the Triton container's) is enough: the image copies this package's server folder as it is.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from instruct_embed.server import repository_api
from instruct_embed.server.stubs import Restart, StubWatchdog, is_alive

log = logging.getLogger("instruct_embed.server.watch")


def wait_until_ready(server_pid: int, http_url: str, poll_s: float = 0.25) -> bool:
    """True once the server says ready; False when it exits first. No deadline: big engines load for minutes.
    Polled often: a stub that dies between readiness and the watchdog's first look is never seen, so not reloaded."""
    while is_alive(server_pid):
        if repository_api.server_ready(http_url):
            return True
        time.sleep(poll_s)
    return False


def report(restart: Restart) -> None:
    """The death and a failed reload are logged by the watchdog itself; this adds the success."""
    if restart.error is None:
        log.warning("reloaded %s in %.1f s", restart.model, restart.seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m instruct_embed.server.watch", description=__doc__.split("\n")[0])
    parser.add_argument("--server-pid", type=int, required=True, help="the tritonserver process")
    parser.add_argument("--http-url", default="127.0.0.1:8000", help="its HTTP endpoint, HOST:PORT")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between looks at the stubs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="instruct-embed watchdog: %(message)s", stream=sys.stderr)
    if not wait_until_ready(args.server_pid, args.http_url):
        return 0  # the server ended before it was ready: nothing to watch
    watchdog = StubWatchdog(args.server_pid, args.http_url, interval_s=args.interval, on_restart=report).start()
    watched = sorted(watchdog.expected())
    log.info(
        "watching %d Python model processes of tritonserver %d: %s", len(watched), args.server_pid, ", ".join(watched)
    )
    while is_alive(args.server_pid):
        time.sleep(1.0)
    watchdog.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
