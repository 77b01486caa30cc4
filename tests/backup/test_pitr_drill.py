"""The point-in-time recovery drill (bench/pitr_drill.py) on a small
dataset: a throwaway PostgreSQL 15 cluster archiving WAL to pgBackRest, a
full backup, timestamped rows before and after a time T, a restore to T —
and exactly the rows at or before T are back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ON_POSTGRES

DRILL = Path(__file__).resolve().parents[2] / "bench" / "pitr_drill.py"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PORT = "55441"

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES, reason="runs in the PostgreSQL run of the suite (it needs no test database)"
)


def missing_tools() -> str | None:
    if not (PG_BIN / "initdb").is_file():
        return (
            f"PostgreSQL 15's server binaries are not in {PG_BIN} (apt-get install postgresql-15)"
        )
    if shutil.which("pgbackrest") is None:
        return "pgBackRest is not installed (apt-get install pgbackrest)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is missing (it runs the cluster as postgres)"
    return None


def test_restore_to_a_point_in_time_brings_back_exactly_the_rows_before_it() -> None:
    if reason := missing_tools():
        if os.environ.get("LANDFORM_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    answer = subprocess.run(
        [sys.executable, str(DRILL), "--size", "16MB", "--port", PORT, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert answer.returncode == 0, answer.stdout + answer.stderr
    result = json.loads(answer.stdout)
    assert result["verified"] is True
    assert result["rows_before_target"] > 0 and result["rows_after_target"] > 0
    assert result["rows_restored"] == result["rows_before_target"]
    # The spec's drill criterion: point-in-time restore in under 15 minutes.
    assert result["pitr_seconds"] < 15 * 60
