"""What workers that are gone had counted, kept where the living read it.

A worker that exits (a restart, a crash, a rolling deploy) took requests
that its replica's counters, windows and SLA figures must go on showing:
Prometheus reads a summed counter that drops as a reset (a false spike in
every ``rate()``), and the SLA view would forget the evidence it alerted on.

So a departed worker's last snapshot stays among the snapshots read, with
its counters and histograms and none of its gauges (it holds no memory,
CPU or connections now), for as long as the longest window it can still
fall in. After that its totals and since-start histograms are folded into
one ``retired.json`` per replica, which keeps the counters whole for good.
One reader folds each snapshot: it claims the file by renaming it, and the
fold itself takes a lock, so two workers never count one twice."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

RETIRED_FILE = "retired.json"
_LOCK_FILE = "retired.lock"
_CLAIMED = ".folding"
CACHE_COUNTERS = ("hits", "misses", "evictions", "sets")
DATABASE_COUNTERS = ("slow_queries", "deadlocks")
# fleet.Resources's gauges, as a worker that holds nothing reports them
NO_RESOURCES = dict.fromkeys(
    (
        "cpu_percent",
        "memory_bytes",
        "memory_percent",
        "open_connections",
        "disk_bytes_per_second",
        "network_bytes_per_second",
    ),
    0.0,
)


def counters_only(snapshot: dict[str, Any]) -> dict[str, Any]:
    """``snapshot`` of a worker that is gone: what it counted, no gauges."""
    resources = snapshot.get("resources", {})
    return {
        "worker": snapshot.get("worker", "?"),
        "at": snapshot.get("at", 0.0),
        "started": snapshot.get("started", snapshot.get("at", 0.0)),
        "departed": True,
        "windows": snapshot.get("windows", {}),
        "totals": snapshot.get("totals", {}),
        "resources": {**NO_RESOURCES, "cpu_count": resources.get("cpu_count", 1.0)},
        "database": {name: snapshot.get("database", {}).get(name, 0) for name in DATABASE_COUNTERS},
        "cache": {
            tier: {
                kind: {name: counts.get(name, 0) for name in CACHE_COUNTERS}
                for kind, counts in kinds.items()
            }
            for tier, kinds in snapshot.get("cache", {}).items()
        },
    }


def retired(directory: Path) -> dict[str, Any] | None:
    """The folded counters of workers long gone (a snapshot of no worker)."""
    try:
        return dict(json.loads((directory / RETIRED_FILE).read_text()))
    except (OSError, ValueError):
        return None


def fold_into_retired(directory: Path, path: Path) -> None:
    """Add the snapshot at ``path`` to ``retired.json`` and remove it; a
    no-op when another worker claimed it first."""
    claimed = path.with_name(path.name + _CLAIMED)
    try:
        os.rename(path, claimed)
    except OSError:
        return  # claimed by another reader, or gone
    try:
        snapshot = counters_only(json.loads(claimed.read_text()))
    except (OSError, ValueError):
        claimed.unlink(missing_ok=True)
        return
    with open(directory / _LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        total = retired(directory) or _empty()
        _add(total, snapshot)
        temporary = directory / (RETIRED_FILE + ".tmp")
        temporary.write_text(json.dumps(total, separators=(",", ":")))
        temporary.replace(directory / RETIRED_FILE)
    with contextlib.suppress(OSError):
        claimed.unlink()


def _empty() -> dict[str, Any]:
    return {
        "worker": "retired",
        "at": 0.0,
        "started": None,
        "departed": True,
        "windows": {"cumulative": {}},
        "totals": {},
        "resources": {**NO_RESOURCES, "cpu_count": 1.0},
        "database": dict.fromkeys(DATABASE_COUNTERS, 0),
        "cache": {},
    }


def _add(total: dict[str, Any], snapshot: dict[str, Any]) -> None:
    started = [s for s in (total["started"], snapshot["started"]) if s is not None]
    total["started"] = min(started, default=None)
    total["at"] = max(total["at"], snapshot["at"])
    for key, count in snapshot["totals"].items():
        total["totals"][key] = total["totals"].get(key, 0) + count
    histograms = total["windows"]["cumulative"]
    for key, payload in snapshot["windows"].get("cumulative", {}).items():
        added = HdrHistogram.decode(payload.encode())
        if key in histograms:
            added.add(HdrHistogram.decode(histograms[key].encode()))
        histograms[key] = added.encode().decode()
    for name in DATABASE_COUNTERS:
        total["database"][name] += snapshot["database"].get(name, 0)
    for tier, kinds in snapshot["cache"].items():
        for kind, counts in kinds.items():
            into = total["cache"].setdefault(tier, {}).setdefault(kind, {})
            for name, count in counts.items():
                into[name] = into.get(name, 0) + count
