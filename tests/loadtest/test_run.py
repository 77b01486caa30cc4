"""Each of the spec's load tests, at a tiny scale, against a real Landform
server: the data prepared through the API, every journey's requests
answered without an error, the verdict's files written in the spec's
shape; and the ways a run cannot start (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from landform.loadtest.config import built_in, find
from landform.loadtest.fixtures import Fixture
from tests.live_server import free_port, live_server

pytestmark = pytest.mark.server

TOKEN = "ops-token-for-the-load-tests"
# The failed-login throttle, out of the way as docs/loadtest.md says: tests
# sign in as closed accounts on purpose, and a cleanup meeting accounts
# closed already fails to sign in as each.
ROOMY_LOGINS = {
    "LANDFORM_LOGIN_MAX_FAILURES": "100000",
    "LANDFORM_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",
    "LANDFORM_LOGIN_MAX_FAILURES_PER_ACCOUNT": "200000",  # must be above the first
}
# Big enough that every journey of the peak mix comes up in a few seconds.
SCALES = {"peak_traffic_simulation": "0.002", "stress_test": "0.0005", "endurance_test": "0.001"}


def harness_env(ops_token: str = TOKEN) -> dict[str, str]:
    """A bare environment, so no LANDFORM_* setting of the shell reaches the
    harness; PYTHONPATH is kept, so the code under test is what runs (a
    checkout beside the one the virtualenv has installed)."""
    env = {"PATH": "/usr/bin:/bin"}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    if ops_token:
        env["LANDFORM_OPS_TOKEN"] = ops_token
    return env


def loadtest(
    *args: str, timeout: float = 180, ops_token: str = TOKEN
) -> subprocess.CompletedProcess[str]:
    env = harness_env(ops_token)
    return subprocess.run(
        [sys.executable, "-m", "landform.cli.main", "loadtest", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_the_specs_load_tests_run_against_a_real_server(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    with live_server(tmp_path / "server", LANDFORM_OPS_TOKEN=TOKEN, **ROOMY_LOGINS) as base:
        fixture = tmp_path / "fixture.json"
        prepared = loadtest(
            "prepare", "--host", base, "--output", str(fixture), "--accounts", "2", "--pages", "2"
        )
        assert prepared.returncode == 0, prepared.stderr
        accounts = Fixture.load(fixture).accounts
        assert [len(a.pages) for a in accounts] == [2, 2]
        slug = accounts[0].pages[0]["slug"]
        assert httpx.get(f"{base}/{slug}").status_code == 200  # published

        for name, scale in SCALES.items():
            output = tmp_path / name
            ran = loadtest(
                "run", name, "--host", base, "--scale", scale, "--duration", "8s",
                "--fixture", str(fixture), "--output", str(output), "--processes", "1",
            )  # fmt: skip
            # Pass or fail is the machine's business; that it judged is ours.
            assert ran.returncode in (0, 1), ran.stderr
            assert ("PASSED" in ran.stdout) == (ran.returncode == 0)
            result = json.loads((output / "result.json").read_text())
            assert (output / "report.html").stat().st_size > 5000
            load = result["performanceResults"]["loadTest"]
            assert load["totalRequests"] > 0
            assert load["results"]["successRate"] == 100.0, result["operations"]
            expected = {
                f"{method} {path}"
                for scenario in find(built_in(), name).scenarios
                for method, path in scenario.operations
            }
            measured = {op["name"]: op for op in result["operations"]}
            if name == "peak_traffic_simulation":
                assert set(measured) == expected  # every journey's every step
                files = result["performanceResults"]["fileOperations"]
                assert files["downloadThroughput"] > 0 and files["cdnCacheHitRatio"] is None
                # Each server sample keeps the database's figures, for a
                # server that stops answering before the run's end.
                assert {"dbQueries", "dbQueryAverage", "dbQueryP99"} <= set(result["server"][0])
            assert all(op["errors"] == 0 for op in measured.values())
            assert result["server"], "the server's figures were read"
            assert "databasePerformance" in result["performanceResults"]
            assert {row["name"] for row in result["components"]} >= {
                "API Gateway", "Page Generation", "File Upload", "Database Queries",
            }  # fmt: skip
            if name == "stress_test":
                assert "stressTest" in result["performanceResults"]
                assert [c["metric"] for c in result["failureCriteria"]] == [
                    "error_rate", "response_time_p99", "cpu_usage", "memory_usage",
                ]  # fmt: skip
            if name == "endurance_test":
                assert [t["monitor"] for t in result["trends"]] == [
                    "memory_leaks", "connection_pool_exhaustion", "cache_efficiency_degradation",
                ]  # fmt: skip

        searched = loadtest(
            "capacity", "--host", base, "--start", "5", "--factor", "2", "--ceiling", "10",
            "--step-duration", "4s", "--warm-up", "2s", "--fixture", str(fixture),
            "--processes", "1",
            "--output", str(tmp_path / "capacity"),
        )  # fmt: skip
        assert searched.returncode in (0, 1), searched.stderr
        found = json.loads((tmp_path / "capacity" / "capacity.json").read_text())
        rates = [step["rate"] for step in found["steps"]]
        assert rates[:2] == [5.0, 10.0][: len(rates[:2])]
        passed = [step["rate"] for step in found["steps"] if step["passed"]]
        assert found["capacity"] == (max(passed) if passed else None)
        assert (tmp_path / "capacity" / "step-1-5" / "report.html").exists()

        cleaned = loadtest("cleanup", "--fixture", str(fixture))
        assert cleaned.returncode == 0, cleaned.stderr
        # Each account closed, and its pages (a published one is gone from
        # its address) with it.
        with httpx.Client(base_url=base) as client:
            for account in accounts:
                login = {"email": account.email, "password": account.password}
                assert client.post("/auth/login", json=login).status_code == 401
            assert client.get(f"/{accounts[0].pages[0]['slug']}").status_code == 404
        # The fixture outlived its data: said before anything runs, not 404s.
        stale = loadtest(
            "run", "peak_traffic_simulation", "--host", base, "--scale", "0.001",
            "--duration", "5s", "--fixture", str(fixture), "--output", str(tmp_path / "stale"),
        )  # fmt: skip
        assert stale.returncode == 2, stale.stdout
        assert "cleaned up or made on another server" in stale.stderr
        assert "cannot sign in" in stale.stderr
        # Without --fixture, what a run makes is recorded beside its result.
        fresh = tmp_path / "fresh"
        ran = loadtest(
            "run", "peak_traffic_simulation", "--host", base, "--scale", "0.001",
            "--duration", "4s", "--accounts", "1", "--pages", "1", "--processes", "1",
            "--output", str(fresh),
        )  # fmt: skip
        assert ran.returncode in (0, 1), ran.stderr
        made = Fixture.load(fresh / "fixture.json")
        assert [len(a.pages) for a in made.accounts] == [1]
        removed = loadtest("cleanup", "--fixture", str(fresh / "fixture.json"))
        assert removed.returncode == 0, removed.stderr


def test_a_run_that_cannot_start_exits_2(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    unreachable = loadtest("run", "peak_traffic_simulation", "--host", nowhere, timeout=60)
    assert unreachable.returncode == 2
    assert "is not reachable" in unreachable.stderr
    # Paths and lengths that cannot work are refused before the host is
    # even asked (it is unreachable here): nothing is created, no run lost.
    afile = tmp_path / "afile"
    afile.write_text("x")
    peak = ("peak_traffic_simulation", "--host", nowhere)
    for args, complaint in (
        (("run", *peak, "--output", str(afile)), f"cannot write into {afile}"),
        (("run", *peak, "--fixture", str(afile / "fx.json")), f"cannot write into {afile}"),
        (("run", *peak, "--fixture", str(tmp_path)), "is a directory"),
        (("run", *peak, "--duration", "0s"), "--duration must be longer than 0"),
        (("prepare", "--host", nowhere, "--output", str(tmp_path)), "is a directory"),
        (("capacity", "--host", nowhere, "--start", "50", "--ceiling", "10"),
         "--start 50 is above --ceiling 10"),
        (("capacity", "--host", nowhere, "--step-duration", "0s"),
         "--step-duration must be longer than 0"),
    ):  # fmt: skip
        refused = loadtest(*args, timeout=60)
        assert refused.returncode == 2, (args, refused.stderr)
        assert complaint in refused.stderr, (args, refused.stderr)
        assert "Traceback" not in refused.stderr
    odd = tmp_path / "odd.yaml"
    odd.write_text(
        "load_tests:\n  - name: odd\n    duration: 5s\n    concurrent_users: 1\n"
        "    requests_per_second: 1\n    scenarios:\n      - name: x\n        weight: 100%\n"
        "        operations:\n          - DELETE /everything\n"
    )
    unknown = loadtest("run", "odd", "--file", str(odd), "--host", nowhere, timeout=60)
    assert unknown.returncode == 2
    assert "no journey step for DELETE /everything" in unknown.stderr
    (tmp_path / "server").mkdir()
    with live_server(tmp_path / "server", workers=1) as base:  # no ops token set
        refused = loadtest("run", "peak_traffic_simulation", "--host", base, timeout=60)
        assert refused.returncode == 2
        assert "refused the ops token (401)" in refused.stderr
        untold = loadtest(
            "run", "peak_traffic_simulation", "--host", base, timeout=60, ops_token=""
        )
        assert untold.returncode == 2
        assert "no ops token" in untold.stderr
        assert "--ops-token" in untold.stderr
    # Mail over SMTP: the harness could not read the verification mail.
    (tmp_path / "smtp-server").mkdir()
    with live_server(
        tmp_path / "smtp-server",
        workers=1,
        LANDFORM_OPS_TOKEN=TOKEN,
        LANDFORM_SMTP_URL="smtp://127.0.0.1:1",
    ) as base:
        smtp = loadtest("run", "peak_traffic_simulation", "--host", base, timeout=60)
        assert smtp.returncode == 2
        assert "sends its mail over SMTP" in smtp.stderr
