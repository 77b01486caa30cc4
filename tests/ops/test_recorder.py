"""Percentiles merged across workers are exact: merging the histograms of
workers that each saw part of a known data set gives the percentiles of
the whole set (to the histograms' precision), which averaging the workers'
percentiles would not."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from landform.ops.fleet import Fleet
from landform.ops.recorder import (
    Recorder,
    cumulative_counts_and_mean,
    merge_window,
    new_histogram,
    percentiles_and_mean,
)
from landform.ops.sla import Alerts, Sla


def exact_percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(0, int(round(q / 100 * len(ordered))) - 1)]


def test_merged_percentiles_match_the_whole_data_set() -> None:
    rng = random.Random(4)
    now = 1_000_000.0
    # Two workers with very different traffic: one fast and busy, one slow.
    fast = [rng.randint(200, 2_000) for _ in range(9_000)]
    slow = [rng.randint(50_000, 400_000) for _ in range(1_000)]
    snapshots = []
    for values in (fast, slow):
        recorder = Recorder(clock=lambda: now)
        for micros in values:
            recorder.observe("api_gateway", micros)
        recorder.fold()
        snapshots.append(recorder.snapshot())
    merged = merge_window(snapshots, "1m", now).histograms["api_gateway"]
    everything = fast + slow
    assert merged.get_total_count() == 10_000
    for q in (50, 90, 95, 99, 99.9):
        expected = exact_percentile(everything, q)
        assert abs(merged.get_value_at_percentile(q) - expected) <= expected * 0.01 + 1, q
    # What averaging the workers' own p99s would have said instead:
    averaged = (exact_percentile(fast, 99) + exact_percentile(slow, 99)) / 2
    assert abs(averaged - exact_percentile(everything, 99)) > 50_000


def test_windows_keep_only_their_slots() -> None:
    now = [1_000_000.0]
    recorder = Recorder(clock=lambda: now[0])
    recorder.observe("api_gateway", 1_000)
    recorder.fold()
    now[0] += 120  # two minutes later
    recorder.observe("api_gateway", 2_000)
    recorder.fold()
    snapshot = recorder.snapshot()
    one_minute = merge_window([snapshot], "1m", now[0]).histograms["api_gateway"]
    five_minutes = merge_window([snapshot], "5m", now[0]).histograms["api_gateway"]
    assert one_minute.get_total_count() == 1
    assert five_minutes.get_total_count() == 2


def test_a_window_since_a_moment_holds_what_came_after_it() -> None:
    """A load test's figures are its run's (`/ops/performance?since=`), not
    a named window's around it: what came before (its preparation, other
    traffic) is left out, to the ring's slot (10 s; 60 s past 5 minutes)."""
    now = [1_000_000.0]
    recorder = Recorder(clock=lambda: now[0])
    recorder.observe("websocket", 5_000)  # before the run
    recorder.fold()
    now[0] += 30
    run_started = now[0]
    for minute in range(7):
        recorder.observe("api_gateway", 1_000 + minute)
        recorder.fold()
        now[0] += 60
    snapshot = recorder.snapshot()
    # Seven minutes back: the long ring, without what came before.
    whole = merge_window([snapshot], "1h", now[0], since=run_started).histograms
    assert whole["api_gateway"].get_total_count() == 7
    assert "websocket" not in whole
    assert "websocket" in merge_window([snapshot], "1h", now[0]).histograms  # the named hour
    # The last two minutes and a bit: the short ring, from that moment on.
    recent = merge_window([snapshot], "1h", now[0], since=now[0] - 130).histograms
    assert recent["api_gateway"].get_total_count() == 2
    assert "websocket" not in recent


def test_a_request_counts_under_its_route_the_gateway_and_its_component() -> None:
    recorder = Recorder(clock=lambda: 1_000_000.0)
    for failed in (False, False, True):
        recorder.observe("route:POST /graphql", 100, failed)
    recorder.observe("database", 50)  # not a request: a time, no outcome
    recorder.fold()
    merged = merge_window([recorder.snapshot()], "1m", 1_000_000.0)
    for key in ("route:POST /graphql", "api_gateway", "graphql"):
        assert merged.outcomes[key] == [3, 1]
        assert merged.histograms[key].get_total_count() == 3
    assert "database" not in merged.outcomes
    assert merged.histograms["database"].get_total_count() == 1
    assert recorder.totals["route:POST /graphql"] == 3
    assert recorder.totals["route:POST /graphql:failed"] == 1


def test_the_operators_probes_and_scrapes_are_no_api_gateway_requests() -> None:
    recorder = Recorder(clock=lambda: 1_000_000.0)
    for route in ("route:GET /metrics", "route:GET /healthz", "route:HEAD /readyz"):
        recorder.observe(route, 200_000)
    recorder.observe("route:GET /landing-pages", 1_000)
    recorder.fold()
    merged = merge_window([recorder.snapshot()], "1m", 1_000_000.0)
    assert merged.outcomes["api_gateway"] == [1, 0]
    assert merged.outcomes["route:GET /metrics"] == [1, 0]


def test_bucket_counts_match_hdrhs_own_walk() -> None:
    """The one-pass counts /metrics uses agree with hdrh's recorded
    iterator, bound by bound."""
    rng = random.Random(11)
    histogram = new_histogram()
    for _ in range(5_000):
        histogram.record_value(int(rng.lognormvariate(8, 2)) + 1)
    bounds = (1_000, 2_500, 5_000, 10_000, 100_000, 1_000_000, 10_000_000)
    expected = [0] * len(bounds)
    for item in histogram.get_recorded_iterator():
        for index, bound in enumerate(bounds):
            if item.value_iterated_to <= bound:
                expected[index] += item.count_at_value_iterated_to
    counts, mean = cumulative_counts_and_mean(histogram, bounds)
    assert counts == expected
    assert mean == pytest.approx(histogram.get_mean_value())
    assert cumulative_counts_and_mean(new_histogram(), bounds) == ([0] * len(bounds), 0.0)


def test_the_gateway_adds_up_every_route_in_every_window_and_since_start() -> None:
    now = [1_000_000.0]
    recorder = Recorder(clock=lambda: now[0])
    for micros in range(100, 1_100, 100):
        recorder.observe("route:GET /a", micros)
    recorder.observe("route:GET /b", 60_000)
    recorder.fold()
    now[0] += 30
    recorder.observe("route:GET /b", 50_000)
    recorder.fold()
    merged = merge_window([recorder.snapshot()], "1m", now[0])
    gateway = merged.histograms["api_gateway"]
    assert gateway.get_total_count() == 12
    assert abs(gateway.get_max_value() - 60_000) <= 600
    assert abs(gateway.get_value_at_percentile(50) - 600) <= 6
    assert merged.histograms["route:GET /a"].get_total_count() == 10
    assert merged.histograms["route:GET /b"].get_total_count() == 2
    assert recorder.cumulative["api_gateway"].get_total_count() == 12
    assert recorder.totals["api_gateway"] == 12


def status(p99: float, success: float = 100.0) -> dict[str, object]:
    metrics = {
        "components": {"api_gateway": {"p99": p99, "count": 10}},
        "responseTime": {"p99": p99},
        "throughput": {"successRate": success},
        "cache": {"hitRatio": 99.0},
    }
    return Sla.load().evaluate(metrics)


def test_each_status_transition_of_a_component() -> None:
    def gateway(p99: float) -> str:
        result = status(p99)
        return next(c["status"] for c in result["components"] if c["name"] == "API Gateway")

    assert gateway(99) == "OK"
    assert gateway(150) == "ACCEPTABLE"
    assert gateway(300) == "DEGRADED"
    assert gateway(600) == "CRITICAL"
    assert status(99)["overallStatus"] == "OK"
    assert status(300)["overallStatus"] == "WARNING"
    assert status(600)["overallStatus"] == "BREACH"
    assert status(99, success=99.0)["overallStatus"] == "BREACH"


def test_an_alert_fires_once_after_the_hold_and_once_on_recovery() -> None:
    alerts = Alerts(hold=60)
    assert alerts.update(status(600), now=0) == []  # breaching, not yet held
    assert alerts.update(status(600), now=30) == []
    fired = alerts.update(status(600), now=61)
    assert [(a["event"], a["name"]) for a in fired] == [
        ("breach", "API Gateway"),
        ("breach", "Response Time P99"),
    ]
    assert alerts.update(status(600), now=120) == []  # once, not again
    recovered = alerts.update(status(99), now=130)
    assert [(a["event"], a["name"]) for a in recovered] == [
        ("recovered", "API Gateway"),
        ("recovered", "Response Time P99"),
    ]
    assert alerts.update(status(99), now=200) == []
    # A short breach (under the hold) fires nothing at all.
    assert alerts.update(status(600), now=300) == []
    assert alerts.update(status(99), now=330) == []


def test_one_pass_percentiles_match_hdrh_exactly() -> None:
    # The quick summary must give hdrh's own answers, value for value.
    for seed in range(30):
        rng = random.Random(seed)
        histogram = new_histogram()
        for _ in range(rng.randrange(1, 3000)):
            histogram.record_value(int(rng.paretovariate(0.8) * rng.choice([10, 1000, 50000])) + 1)
        wanted = (50, 95, 99, 99.9)
        values, mean = percentiles_and_mean(histogram, wanted)
        assert values == {p: histogram.get_value_at_percentile(p) for p in wanted}
        assert mean == pytest.approx(histogram.get_mean_value(), rel=1e-9)
    assert percentiles_and_mean(new_histogram(), (50,)) == ({50: 0}, 0.0)


def test_a_windows_cache_hit_ratio_is_that_windows(tmp_path: Path) -> None:
    """The cache's counters run since start; each snapshot adds what they
    grew by into the windows, so a window's hit ratio is of its lookups (a
    cold start's misses leave it with the window)."""
    now = [1_000_000.0]
    recorder = Recorder(clock=lambda: now[0])
    counters = {"hits": 0, "misses": 100, "evictions": 0}  # a cold start: misses

    def gauges() -> dict[str, Any]:
        return {"cache": {"l1": {"page": dict(counters)}, "l2": {}}}

    fleet = Fleet(recorder, tmp_path, gauges)
    fleet.snapshot()
    now[0] += 120  # two minutes on, warm: 90 hits, 10 misses more
    counters.update(hits=90, misses=110)
    windows = fleet.snapshot()["windows"]
    last_minute = merge_window([windows], "1m", now[0]).outcomes
    assert last_minute["cache:hits"][0] == 90 and last_minute["cache:lookups"][0] == 100
    five_minutes = merge_window([windows], "5m", now[0]).outcomes
    assert five_minutes["cache:lookups"][0] == 200
