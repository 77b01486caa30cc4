"""`landform serve` refuses to start beside what it would collide with:
a port another server listens on (granian's SO_REUSEPORT would otherwise
split that server's connections between the two), or a data folder a
restore is replacing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from landform.core.serving_lock import alone
from tests.live_server import live_server

pytestmark = pytest.mark.server


def serve(port: int, data_dir: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "LANDFORM_DATA_DIR": str(data_dir)}
    environment.pop("LANDFORM_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "landform.cli.main", "serve", "--port", str(port), "--workers", "1"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_second_server_on_a_taken_port_exits(tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    with live_server(tmp_path / "first", workers=1) as base:
        port = int(base.rsplit(":", 1)[1])
        worker = httpx.get(f"{base}/healthz").json()["worker"]
        second = serve(port, tmp_path / "second")
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
        # The first server still answers every request.
        assert {httpx.get(f"{base}/healthz").json()["worker"] for _ in range(8)} == {worker}


def test_a_server_does_not_start_while_a_restore_runs(tmp_path: Path) -> None:
    with alone(tmp_path):
        refused = serve(0, tmp_path)
    assert refused.returncode == 1
    assert "a restore is replacing the data" in refused.stderr
