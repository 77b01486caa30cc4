"""A run stopped from outside: SIGTERM (a timeout, a CI job cancelled,
systemd) does what Ctrl-C does, the measured part written and judged
interrupted, the generator processes stopped."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.loadtest.test_preparation import _views
from tests.loadtest.test_run import harness_env

pytestmark = pytest.mark.server

MEASURING = re.compile(r"^\s+\d+ s\s+\d+ users")  # the runner's progress line


def test_sigterm_writes_what_was_measured_as_ctrl_c_does(server: str, tmp_path: Path) -> None:
    views = _views(tmp_path)
    views.write_text(views.read_text().replace("duration: 2s", "duration: 60s"))
    output = tmp_path / "out"
    running = subprocess.Popen(
        [sys.executable, "-m", "landform.cli.main", "loadtest", "run", "views",
         "--file", str(views), "--host", server, "--output", str(output),
         "--accounts", "1", "--pages", "1", "--processes", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=harness_env(),
    )  # fmt: skip
    assert running.stderr is not None
    said = []
    for line in running.stderr:
        said.append(line)
        if MEASURING.match(line):
            break
    generators = psutil.Process(running.pid).children()
    assert generators, "".join(said)
    running.send_signal(signal.SIGTERM)
    out, rest = running.communicate(timeout=60)
    stderr = "".join(said) + rest
    assert running.returncode == 1, stderr
    assert "Traceback" not in stderr
    result = json.loads((output / "result.json").read_text())
    assert "the run was interrupted" in result["verdict"]["reasons"]
    assert result["performanceResults"]["loadTest"]["totalRequests"] > 0
    assert (output / "report.html").exists()
    assert "FAILED" in out and "the run was interrupted" in out
    _, alive = psutil.wait_procs(generators, timeout=10)
    assert not alive  # the generator processes stopped with it
