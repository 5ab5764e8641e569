"""A failing integration test carries the logs of the servers that wrote while it ran (tests/conftest.py).

The suite's conftest runs inside a small pytest session of its own, with log files standing in for servers'.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

SUITE_CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"


def test_a_failing_integration_test_shows_the_logs_written_while_it_ran(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    old = home / "models" / "tritonserver-old.log"
    old.write_text("written before the session\n")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    monkeypatch.setenv("INSTRUCT_EMBED_HOME", str(home))
    pytester.makeconftest(SUITE_CONFTEST.read_text())
    pytester.makepyfile(
        """
        import time
        import pytest

        pytestmark = pytest.mark.integration

        def test_a_server_dies(tmp_path):
            (tmp_path / "tritonserver.log").write_text("I1127 model loaded\\nSignal (11) received.\\n")
            time.sleep(1.1)  # past the second of slack on file times: older than the next test's start
            assert False, "connection refused"

        def test_a_quiet_failure():
            assert False

        def test_a_pass(tmp_path):
            (tmp_path / "tritonserver.log").write_text("Signal (6) received.\\n")
        """
    )
    result = pytester.runpytest_subprocess("-o", "markers=integration", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*test_a_server_dies0/tritonserver.log (last 2 lines)*", "I1127 model loaded", "Signal (11) received."]
    )
    assert output.count("(last 2 lines)") == 1  # not shown again for the quiet failure
    assert "written before the session" not in output
    assert "Signal (6) received." not in output  # passing tests show nothing
