"""The report cache (over the tiered cache): a burst of misses computes a
report once; a new stamp computes again; failures are not kept."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from landform.analytics.reports import ReportCache
from landform.cache.local import LocalCache
from landform.cache.tiered import TieredCache


def report_cache() -> ReportCache:
    return ReportCache(TieredCache(LocalCache(1 << 20)), ttl=10)


async def test_concurrent_misses_compute_once_per_stamp() -> None:
    cache = report_cache()
    computed = 0

    async def compute() -> dict[str, Any]:
        nonlocal computed
        computed += 1
        await asyncio.sleep(0.05)
        return {"n": computed}

    results = await asyncio.gather(*(cache.get_or_compute(("k",), 1, compute) for _ in range(50)))
    assert computed == 1
    assert all(result == {"n": 1} for result in results)
    # Cached now; a new stamp (new data) computes again, once.
    assert await cache.get_or_compute(("k",), 1, compute) == {"n": 1}
    results = await asyncio.gather(*(cache.get_or_compute(("k",), 2, compute) for _ in range(10)))
    assert computed == 2 and all(result == {"n": 2} for result in results)


async def test_a_failed_computation_fails_its_waiters_and_is_not_kept() -> None:
    cache = report_cache()
    calls = 0

    async def failing() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("database away")

    outcomes = await asyncio.gather(
        *(cache.get_or_compute(("k",), 1, failing) for _ in range(5)), return_exceptions=True
    )
    assert calls == 1
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)

    async def working() -> dict[str, Any]:
        return {"ok": True}

    assert await cache.get_or_compute(("k",), 1, working) == {"ok": True}
    with pytest.raises(RuntimeError):
        await cache.get_or_compute(("other",), 1, failing)


async def test_no_caching_when_the_lifetime_is_zero() -> None:
    cache = ReportCache(TieredCache(LocalCache(1 << 20)), ttl=0)
    computed = 0

    async def compute() -> dict[str, Any]:
        nonlocal computed
        computed += 1
        return {"n": computed}

    assert [await cache.get_or_compute(("k",), 1, compute) for _ in range(2)] == [
        {"n": 1},
        {"n": 2},
    ]


class Counting:
    """A report computation that counts its runs, and a clock to move."""

    def __init__(self) -> None:
        self.runs = 0
        self.now = 1000.0

    async def compute(self) -> dict[str, Any]:
        self.runs += 1
        return {"n": self.runs}

    def cache(self, refresh_after: float = 0.0) -> ReportCache:
        return ReportCache(
            TieredCache(LocalCache(1 << 20)),
            ttl=10,
            max_lag=5,
            clock=lambda: self.now,
            refresh_after=refresh_after,
        )


async def test_new_data_within_the_lag_answers_the_old_report_and_refreshes_it() -> None:
    counting = Counting()
    cache = counting.cache()
    assert await cache.get_or_compute(("k",), 1, counting.compute) == {"n": 1}
    counting.now += 3  # new data (stamp 2), 3 s after the report was computed
    assert await cache.get_or_compute(("k",), 2, counting.compute) == {"n": 1}
    for _ in range(10):  # the background refresh
        await asyncio.sleep(0)
    assert counting.runs == 2
    assert await cache.get_or_compute(("k",), 2, counting.compute) == {"n": 2}


async def test_new_data_past_the_lag_computes_before_answering() -> None:
    counting = Counting()
    cache = counting.cache()
    assert await cache.get_or_compute(("k",), 1, counting.compute) == {"n": 1}
    counting.now += 6
    assert await cache.get_or_compute(("k",), 2, counting.compute) == {"n": 2}
    # A caller whose read of the stamp lagged (a replica) takes the newer report.
    assert await cache.get_or_compute(("k",), 1, counting.compute) == {"n": 2}
    assert counting.runs == 2


async def test_new_data_refreshes_a_report_only_once_it_is_refresh_after_old() -> None:
    counting = Counting()
    cache = counting.cache(refresh_after=2)
    assert await cache.get_or_compute(("k",), 1, counting.compute) == {"n": 1}
    counting.now += 1  # new data 1 s after: answered as is, nothing computed
    assert await cache.get_or_compute(("k",), 2, counting.compute) == {"n": 1}
    for _ in range(10):
        await asyncio.sleep(0)
    assert counting.runs == 1
    counting.now += 1.5  # 2.5 s old: answered, and computed in the background
    assert await cache.get_or_compute(("k",), 3, counting.compute) == {"n": 1}
    for _ in range(10):
        await asyncio.sleep(0)
    assert counting.runs == 2
    assert await cache.get_or_compute(("k",), 3, counting.compute) == {"n": 2}
    counting.now += 6  # past the lag: computed before answering, whatever refresh_after says
    assert await cache.get_or_compute(("k",), 4, counting.compute) == {"n": 3}
