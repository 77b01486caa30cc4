"""Cache benchmark: L1 and L2 operations per second and p99, from Python.

    .venv/bin/python bench/cache.py [--seconds 3] [--redis-url redis://127.0.0.1:6379/14]

- **L1**: ``LocalCache.get`` and ``set`` on 10,000 keys of 1 KB, one
  process; and a hit through ``TieredCache.get_or_load`` (the interface the
  domains call, async).
- **L2**: ``RemoteCache.get``/``set`` (Landform's layer: a timeout and the
  circuit breaker around each call) against bare redis-py ``GET``/``SET`` on
  the same client, same keys, in the same run, alternating; one connection
  sequentially, and 16 concurrent callers.
- ``redis-benchmark -t get,set -n 100000 -q`` (50 clients, unpipelined) for
  scale.

Each latency is timed per operation; p99 over all of them. Writes its
section of docs/benchmarks.md (between the cache markers).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from public_pages import log, machine_info, verdict, write_doc  # noqa: E402

from landform.cache.local import LocalCache  # noqa: E402
from landform.cache.remote import PREFIX, RemoteCache  # noqa: E402
from landform.cache.tiered import TieredCache  # noqa: E402
from landform.core.breaker import CircuitBreaker  # noqa: E402

START = "<!-- cache:start -->"
END = "<!-- cache:end -->"
SCRIPT = "bench/cache.py"

TARGET_L1_GETS = 500_000.0
TARGET_L2_RATIO = 0.8
SPEC_OPS = 100_000.0
SPEC_P99_MS = 5.0

KEYS = 10_000
VALUE = b"v" * 1024


class Result:
    def __init__(self, ops: int, seconds: float, latencies: list[float]) -> None:
        self.ops = ops
        self.rate = ops / seconds
        latencies.sort()
        self.p99_ms = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0.0

    def __str__(self) -> str:
        return f"{self.rate:12,.0f} ops/s  p99 {self.p99_ms:.3f} ms"


def timed_sync(seconds: float, op: Callable[[int], Any]) -> Result:
    """Run ``op`` back to back for ``seconds``; time every call."""
    latencies: list[float] = []
    clock = time.perf_counter
    keys = list(range(KEYS))
    random.shuffle(keys)
    n = 0
    end = clock() + seconds
    started = clock()
    while True:
        for key in keys:
            t = clock()
            op(key)
            latencies.append(clock() - t)
        n += len(keys)
        if clock() >= end:
            break
    return Result(n, clock() - started, latencies)


async def timed_async(
    seconds: float, op: Callable[[int], Awaitable[Any]], concurrency: int = 1
) -> Result:
    latencies: list[float] = []
    clock = time.perf_counter
    count = 0
    end = clock() + seconds

    async def worker(offset: int) -> None:
        nonlocal count
        key = offset
        while clock() < end:
            t = clock()
            await op(key % KEYS)
            latencies.append(clock() - t)
            key += concurrency
            count += 1

    started = clock()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return Result(count, clock() - started, latencies)


def redis_benchmark(url: str) -> dict[str, float]:
    tool = shutil.which("redis-benchmark")
    if not tool:
        return {}
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    out = subprocess.run(
        [
            tool, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379),
            "-t", "get,set", "-n", "100000", "-d", str(len(VALUE)), "-q",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rates: dict[str, float] = {}
    for line in out.replace("\r", "\n").splitlines():
        if ":" in line and "requests per second" in line:
            name, rest = line.split(":", 1)
            rates[name.strip()] = float(rest.split("requests per second")[0].strip())
    return rates


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    local = LocalCache(max_bytes=64 * 1024 * 1024)
    for key in range(KEYS):
        local.set(f"page:{key}", VALUE, ttl=300)
    results["l1_get"] = timed_sync(args.seconds, lambda k: local.get(f"page:{k}"))
    results["l1_set"] = timed_sync(args.seconds, lambda k: local.set(f"page:{k}", VALUE, 300))
    tiered = TieredCache(local)

    async def load() -> bytes:
        return VALUE

    results["tiered_hit"] = await timed_async(
        args.seconds, lambda k: tiered.get_or_load("page", str(k), load, 300)
    )
    log(f"L1 get {results['l1_get']}; set {results['l1_set']}; tiered hit {results['tiered_hit']}")

    redis = Redis.from_url(args.redis_url)
    await redis.flushdb()
    remote = RemoteCache(redis, timeout=0.5, breaker=CircuitBreaker())
    for key in range(KEYS):
        await redis.set(f"{PREFIX}page:{key}", VALUE)
    cases: dict[str, Callable[[int], Awaitable[Any]]] = {
        "bare_get": lambda k: redis.get(f"{PREFIX}page:{k}"),
        "layer_get": lambda k: remote.get(f"page:{k}"),
        "bare_set": lambda k: redis.set(f"{PREFIX}page:{k}", VALUE, px=300_000),
        "layer_set": lambda k: remote.set(f"page:{k}", VALUE, 300),
    }
    for concurrency in (1, 16):
        for name in cases:
            results.setdefault(f"{name}_{concurrency}", [])
        for _ in range(args.repeats):
            for name, op in cases.items():
                r = await timed_async(args.seconds, op, concurrency)
                results[f"{name}_{concurrency}"].append(r)
                log(f"L2 {name:10} x{concurrency:<2} {r}")
    await redis.flushdb()
    await redis.aclose()
    results["redis_benchmark"] = redis_benchmark(args.redis_url)
    log(f"redis-benchmark: {results['redis_benchmark']}")
    return results


def median_rate(runs: list[Result]) -> float:
    return statistics.median(r.rate for r in runs)


def median_p99(runs: list[Result]) -> float:
    return statistics.median(r.p99_ms for r in runs)


def build_section(args: argparse.Namespace, info: dict[str, str], r: dict[str, Any]) -> str:
    rows = [
        f"| L1 `LocalCache.get` (1 KB, 10,000 keys) | {r['l1_get'].rate:,.0f} | "
        f"{r['l1_get'].p99_ms:.4f} |",
        f"| L1 `LocalCache.set` | {r['l1_set'].rate:,.0f} | {r['l1_set'].p99_ms:.4f} |",
        f"| L1 hit through `TieredCache.get_or_load` (async) | {r['tiered_hit'].rate:,.0f} | "
        f"{r['tiered_hit'].p99_ms:.4f} |",
    ]
    ratios = []
    for concurrency in (1, 16):
        for op in ("get", "set"):
            bare = r[f"bare_{op}_{concurrency}"]
            layer = r[f"layer_{op}_{concurrency}"]
            ratio = median_rate(layer) / median_rate(bare)
            ratios.append(ratio)
            rows.append(
                f"| L2 {op.upper()}, {concurrency} caller{'s' if concurrency > 1 else ''}: "
                f"bare redis-py | {median_rate(bare):,.0f} | {median_p99(bare):.3f} |"
            )
            rows.append(
                f"| L2 {op.upper()}, {concurrency} caller{'s' if concurrency > 1 else ''}: "
                f"Landform's layer ({ratio:.0%} of bare) | {median_rate(layer):,.0f} | "
                f"{median_p99(layer):.3f} |"
            )
    for name, rate in r["redis_benchmark"].items():
        rows.append(f"| redis-benchmark {name} (50 clients, C) | {rate:,.0f} | – |")
    worst_ratio = min(ratios)
    l1 = r["l1_get"]
    targets = [
        f"| L1 ≥ {TARGET_L1_GETS:,.0f} gets/s per process | {l1.rate:,.0f} | "
        f"{verdict(l1.rate >= TARGET_L1_GETS)} |",
        f"| L2 layer ≥ {TARGET_L2_RATIO:.0%} of bare redis-py (worst case above) | "
        f"{worst_ratio:.0%} | {verdict(worst_ratio >= TARGET_L2_RATIO)} |",
        f"| spec: cache operations ≥ {SPEC_OPS:,.0f}/s, p99 < {SPEC_P99_MS:.0f} ms (L1) | "
        f"{l1.rate:,.0f}/s, p99 {l1.p99_ms:.4f} ms | "
        f"{verdict(l1.rate >= SPEC_OPS and l1.p99_ms < SPEC_P99_MS)} |",
    ]
    head = textwrap.dedent(
        f"""\
        ## Cache operations (`{SCRIPT}`)

        Run {info["date"]} at commit {info["commit"]}: {info["cpu"]}, {info["nproc"]} CPUs,
        Python {info["python"]}; load {info["load"]}. Command: `.venv/bin/python {SCRIPT}
        --seconds {args.seconds:g} --repeats {args.repeats}`. Every operation timed on its
        own; L2 cases alternate bare and layered for {args.repeats} rounds (medians), on
        one redis-py client (its connection pool) against the local Redis.

        | operation | ops/s | p99 ms |
        | --- | ---: | ---: |
        """
    )
    middle = textwrap.dedent(
        """
        ### Targets

        | target | measured | verdict |
        | --- | --- | --- |
        """
    )
    tail = textwrap.dedent(
        """
        The hit ratio during the spec's peak mix comes from the load tests,
        once the domains read through this cache (not yet).
        """
    )
    return (
        START + "\n" + head + "\n".join(rows) + "\n" + middle + "\n".join(targets) + "\n"
        + tail + END
    )  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3, help="seconds per case (3)")
    p.add_argument("--repeats", type=int, default=3, help="alternating L2 rounds (3)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    p.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = p.parse_args()
    info = machine_info()
    results = asyncio.run(run(args))
    section = build_section(args, info, results)
    print(section)
    if not args.no_write:
        write_doc(section, START, END)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
