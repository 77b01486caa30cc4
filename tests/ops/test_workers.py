"""Several workers, one answer: /metrics and /ops/performance merge every
worker's measurements (each worker publishes its histograms; the one that
answers adds them up), so the counts are exact whichever worker answers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.live_server import live_server

pytestmark = pytest.mark.server

TOKEN = "ops-token-for-the-worker-test"


def test_metrics_count_every_workers_requests(tmp_path: Path) -> None:
    with live_server(tmp_path, workers=2, LANDFORM_OPS_TOKEN=TOKEN) as base:
        answered_by: set[int] = set()
        for _ in range(60):
            # A new connection each time, so the requests spread over workers.
            with httpx.Client(base_url=base, timeout=10) as fresh:
                assert fresh.get("/templates").status_code == 200
                answered_by.add(fresh.get("/healthz").json()["worker"])
        assert len(answered_by) == 2, "both workers answered"
        time.sleep(2.5)  # every worker has published since
        ops = {"Authorization": f"Bearer {TOKEN}"}
        for _ in range(4):  # whichever worker answers, the same totals
            with httpx.Client(base_url=base, timeout=10) as fresh:
                text = fresh.get("/metrics", headers=ops).text
                assert "landform_workers 2.0" in text
                found = re.search(r'landform_requests_total\{route="GET /templates"\} (\S+)', text)
                assert found and float(found.group(1)) == 60
                performance = fresh.get("/ops/performance?window=1m", headers=ops).json()
                assert performance["workers"] == 2
                assert performance["routes"]["GET /templates"]["requests"] == 60
