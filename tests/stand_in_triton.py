"""A stand-in tritonserver for tests about the processes around it: a Python script that answers readiness.

`write_stand_in(path, python, then)` writes an executable that serves 200 on every GET at its --http-port (in a
background thread) and then runs `then`, Python code with os, signal, sys and time imported.
"""

from __future__ import annotations

from pathlib import Path

READY_IN_BACKGROUND = """
import http.server, os, signal, sys, threading, time

port = int(next(a for a in sys.argv if a.startswith("--http-port=")).split("=")[1])


class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


threading.Thread(target=http.server.HTTPServer(("127.0.0.1", port), Ready).serve_forever, daemon=True).start()
"""


def write_stand_in(path: Path, python: str | Path, then: str) -> Path:
    path.write_text(f"#!{python}\n{READY_IN_BACKGROUND}\n{then}\n")
    path.chmod(0o755)
    return path
