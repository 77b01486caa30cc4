"""Test data against a real server: a preparation stopped with Ctrl-C
leaves a record that cleanup works from, and the ops token is asked for
only by what reads mail (preparing, journeys that register)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from landform.loadtest.fixtures import Account, Fixture
from tests.loadtest.test_run import harness_env, loadtest

pytestmark = pytest.mark.server

VIEWS = """\
load_tests:
  - name: views
    duration: 2s
    ramp_up: 0s
    concurrent_users: 2
    requests_per_second: 10
    scenarios:
      - name: visit
        weight: 100%
        operations:
          - GET /{slug}
          - GET /assets/{file}
"""


def test_ctrl_c_while_preparing_leaves_a_record_cleanup_uses(server: str, tmp_path: Path) -> None:
    fixture = tmp_path / "fixture.json"
    preparing = subprocess.Popen(
        [sys.executable, "-m", "landform.cli.main", "loadtest", "prepare", "--host", server,
         "--output", str(fixture), "--accounts", "8", "--pages", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=harness_env(),
        # As at a terminal: a run started in the background (`.ci/run &`,
        # nohup) ignores SIGINT, and its children inherit that.
        preexec_fn=_interruptible,
    )  # fmt: skip
    assert preparing.stderr is not None
    said = []
    for line in preparing.stderr:
        said.append(line)
        if line.startswith("prepared lt-"):  # one account is whole, the next under way
            preparing.send_signal(signal.SIGINT)
            break
    out, rest = preparing.communicate(timeout=60)
    stderr = "".join(said) + rest
    assert preparing.returncode == 2, stderr
    assert f"recorded in {fixture}" in stderr
    assert f"landform loadtest cleanup --fixture {fixture}` removes it" in stderr
    record = Fixture.load(fixture)
    assert not record.complete and 1 <= len(record.accounts) < 8
    assert len(record.accounts[0].pages) == 2
    # Half-made data is no fixture to run on...
    refused = loadtest(
        "run", "views", "--file", str(_views(tmp_path)), "--host", server,
        "--fixture", str(fixture), "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert refused.returncode == 2
    assert "records a preparation that was interrupted" in refused.stderr
    # ...but enough for cleanup: the accounts it records are closed.
    cleaned = loadtest("cleanup", "--fixture", str(fixture))
    assert cleaned.returncode == 0, cleaned.stderr
    assert int(cleaned.stdout.split()[1]) == len(record.accounts), cleaned.stdout
    again = loadtest("cleanup", "--fixture", str(fixture))
    assert again.returncode == 0 and again.stdout.startswith("closed 0 accounts"), again.stdout


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _views(folder: Path) -> Path:
    path = folder / "views.yaml"
    path.write_text(VIEWS)
    return path


def test_only_a_run_that_reads_mail_needs_the_ops_token(server: str, tmp_path: Path) -> None:
    fixture = tmp_path / "fixture.json"
    prepared = loadtest(
        "prepare", "--host", server, "--output", str(fixture), "--accounts", "1", "--pages", "1"
    )
    assert prepared.returncode == 0, prepared.stderr
    # Views of prepared pages read no mail: no token, and it says what it missed.
    output = tmp_path / "views"
    ran = loadtest(
        "run", "views", "--file", str(_views(tmp_path)), "--host", server,
        "--fixture", str(fixture), "--output", str(output), "--processes", "1", ops_token="",
    )  # fmt: skip
    assert ran.returncode in (0, 1), ran.stderr
    assert "no ops token: the server's own figures are not measured" in ran.stderr
    assert "warning: no ops token" in ran.stdout
    result = json.loads((output / "result.json").read_text())
    assert result["server"] == [] and "databasePerformance" not in result["performanceResults"]
    assert result["performanceResults"]["loadTest"]["totalRequests"] > 0
    files = result["performanceResults"]["fileOperations"]
    assert files["downloadThroughput"] > 0 and files["cdnCacheHitRatio"] is None
    # The peak mix registers and verifies addresses: that still needs it.
    peak = loadtest(
        "run", "peak_traffic_simulation", "--host", server, "--fixture", str(fixture),
        "--output", str(tmp_path / "peak"), ops_token="",
    )  # fmt: skip
    assert peak.returncode == 2
    assert "no ops token" in peak.stderr and "GET /ops/outbox" in peak.stderr


def test_a_fixture_is_for_its_owners_eyes_only(tmp_path: Path) -> None:
    fixture = tmp_path / "fixture.json"
    # A partial file an interrupted save left behind, readable by all.
    (tmp_path / ".fixture.json.partial").write_text("{}")
    (tmp_path / ".fixture.json.partial").chmod(0o644)
    Fixture("http://x", "r", [Account("a@loadtest.example", "secret")]).save(fixture)
    assert fixture.stat().st_mode & 0o777 == 0o600
    assert Fixture.load(fixture).accounts[0].password == "secret"
