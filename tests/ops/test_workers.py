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
        ops = {"Authorization": f"Bearer {TOKEN}"}
        # Each worker publishes every 2 s: within a few seconds, whichever
        # worker answers gives the same totals.
        deadline = time.monotonic() + 15
        agreeing = 0
        while agreeing < 4:
            assert time.monotonic() < deadline, "the workers' totals never added up"
            with httpx.Client(base_url=base, timeout=10) as fresh:
                text = fresh.get("/metrics", headers=ops).text
                found = re.search(r'landform_requests_total\{route="GET /templates"\} (\S+)', text)
                performance = fresh.get("/ops/performance?window=1m", headers=ops).json()
            routes = performance["routes"]
            if (
                "landform_workers 2.0" in text
                and found
                and float(found.group(1)) == 60
                and performance["workers"] == 2
                and routes.get("GET /templates", {}).get("requests") == 60
            ):
                agreeing += 1
            else:
                agreeing = 0
                time.sleep(0.5)
