"""A worker that is gone (restarted, crashed, rolled) leaves its counts: the
replica's counters never go back, and its windows keep the requests it
served; its gauges (memory, CPU, connections) leave with it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from landform.ops import fleet as fleet_module
from landform.ops.departed import NO_RESOURCES, RETIRED_FILE
from landform.ops.fleet import Fleet, Resources
from landform.ops.performance import performance_metrics
from landform.ops.prometheus import exposition
from landform.ops.recorder import Recorder


def gauges() -> dict[str, Any]:
    return {
        "database": {"slow_queries": 2, "deadlocks": 0, "pool_utilization": 40.0},
        "cache": {"l1": {"pages": {"hits": 9, "misses": 1, "evictions": 0, "bytes": 4096}}},
    }


def worker(run_dir: Path, name: str, requests: int) -> Fleet:
    fleet = Fleet(Recorder(), run_dir, gauges)
    fleet.worker = name
    fleet.directory.mkdir(parents=True, exist_ok=True)
    for _ in range(requests):
        fleet.recorder.observe("route:GET /{slug}", 500)
    return fleet


def requests_total(snapshots: list[dict[str, Any]]) -> float:
    for line in exposition(snapshots).decode().splitlines():
        if line.startswith('landform_requests_total{route="GET /{slug}"}'):
            return float(line.split()[-1])
    return 0.0


async def test_a_stopped_workers_counts_stay_and_its_gauges_go(tmp_path: Path) -> None:
    leaving, staying = worker(tmp_path, "a-1", 30), worker(tmp_path, "a-2", 12)
    await leaving.stop()
    other_file = staying.directory / "alert-state.json"  # no snapshot: left alone
    other_file.write_text('{"since": {}, "alerted": []}')

    snapshots = await staying.replica()
    assert other_file.exists()
    assert requests_total(snapshots) == 42
    metrics = performance_metrics(snapshots, "5m", "replica")
    assert metrics["throughput"]["totalRequests"] == 42
    assert metrics["workers"] == 1
    assert metrics["cache"]["lookups"] == 20  # both workers' lookups
    assert metrics["database"]["slowQueryCount"] == 4
    assert "landform_workers 1.0" in exposition(snapshots).decode()
    assert {*NO_RESOURCES, "cpu_count"} == set(Resources().sample())


async def test_counts_of_workers_gone_past_every_window_are_folded_once(
    tmp_path: Path, monkeypatch: Any
) -> None:
    crashed = worker(tmp_path, "b-1", 25)
    await crashed.publish()  # its last publish, then nothing (kill -9)
    other = worker(tmp_path, "b-2", 5)
    later = worker(tmp_path, "b-3", 0)
    path = crashed.directory / "b-1.json"
    an_hour_ago = time.time() - fleet_module.DEPARTED_KEPT_SECONDS - 1
    snapshot = json.loads(path.read_text())
    path.write_text(json.dumps({**snapshot, "at": an_hour_ago}))

    first, second = await other.replica(), await later.replica()

    assert not path.exists()
    assert (crashed.directory / RETIRED_FILE).exists()
    assert requests_total(first) == 30  # b-1 (folded) + b-2
    assert requests_total(second) == 30  # the same counts, folded once
    assert performance_metrics(second, "1h", "replica")["workers"] == 2


async def test_between_two_answers_of_two_workers_counters_never_go_back(
    tmp_path: Path,
) -> None:
    one, two = worker(tmp_path, "c-1", 10), worker(tmp_path, "c-2", 10)
    await one.publish()
    await two.publish()
    seen = []
    for answering in (one, two, one, two):
        answering.recorder.observe("route:GET /{slug}", 500)
        seen.append(requests_total(await answering.replica()))
    assert seen == sorted(seen) and seen[-1] == 24
    assert not [name for name in os.listdir(one.directory) if name.endswith(".tmp")]
