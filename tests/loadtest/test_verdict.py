"""The verdict on made-up runs whose figures are known: a pass is a pass,
and each way of missing (a component's Target, a failure criterion, the
rate, a compliance check, a trend) is reported as a miss that says why."""

from __future__ import annotations

from landform.loadtest.config import Criterion
from landform.loadtest.harness import summary_lines
from landform.loadtest.trends import fit
from landform.loadtest.verdict import NOT_MEASURED, breaches, evaluate, window_figures
from landform.ops.sla import Sla
from tests.loadtest.synthetic import result, run_data


def status_of(found: dict, name: str) -> str:
    return next(row["status"] for row in found["components"] if row["name"] == name)


def test_a_fast_clean_run_passes_with_the_specs_field_names() -> None:
    found = result()
    assert found["verdict"] == {"passed": True, "reasons": [], "warnings": []}
    load = found["performanceResults"]["loadTest"]
    assert set(load["results"]) == {
        "averageResponseTime", "p50ResponseTime", "p95ResponseTime", "p99ResponseTime",
        "successRate", "errorsPerSecond", "requestsPerSecond",
    }  # fmt: skip
    assert load["totalRequests"] == 30 * 10 * 14
    assert load["results"]["successRate"] == 100.0
    assert load["results"]["requestsPerSecond"] == 140.0
    assert 7.9 <= load["results"]["p50ResponseTime"] <= 8.1
    assert load["duration"] == "30 seconds"
    assert status_of(found, "API Gateway") == "OK"
    assert status_of(found, "Page Generation") == "OK"
    # The server's rows without the server's figures: no data, not a miss.
    assert status_of(found, "Database Queries") == "NO_DATA"
    operations = {op["name"]: op for op in found["operations"]}
    assert operations["GET /{slug}"]["component"] == "Page Generation"
    assert operations["POST /files/upload"]["component"] == "File Upload"
    assert operations["GET /templates"]["component"] == "API Gateway"
    assert len(found["timeline"]) == 30


def test_a_slow_tail_leaves_the_target_column_and_fails() -> None:
    # One request in ten of every operation takes 150 ms: p99 150 ms is
    # over the gateway's Target (100 ms) but inside Acceptable (200 ms).
    found = result(slow_ms=150.0, per_second=10)
    assert status_of(found, "API Gateway") == "ACCEPTABLE"
    assert status_of(found, "Page Generation") == "OK"  # its Target is 500 ms
    assert not found["verdict"]["passed"]
    assert any(
        reason.startswith("API Gateway: p99 1") and "ACCEPTABLE (Target < 100 ms)" in reason
        for reason in found["verdict"]["reasons"]
    )


def test_errors_break_the_specs_success_rate_check() -> None:
    found = result(error_every=100)  # 1 % errors
    assert found["performanceResults"]["loadTest"]["results"]["successRate"] == 99.0
    check = next(c for c in found["checks"] if c["name"] == "Success Rate")
    assert check["status"] == "BREACH"
    assert not found["verdict"]["passed"]


def test_a_rate_short_of_the_target_fails() -> None:
    found = result(rate=200.0)  # 140 req/s delivered
    assert found["throughput"]["status"] == "BELOW_TARGET"
    assert found["throughput"]["ratio"] == 0.7
    assert any(r.startswith("throughput: 140.0 req/s") for r in found["verdict"]["reasons"])


def test_failure_criteria_are_judged_over_the_last_ten_seconds() -> None:
    criteria = (
        Criterion("error_rate", ">", 5.0),
        Criterion("response_time_p99", ">", 2000.0),
        Criterion("cpu_usage", ">", 85.0),
    )
    healthy = run_data(seconds=12)
    assert breaches(criteria, window_figures(healthy.seconds, [{"cpuPercent": 40.0}])) == []
    failing = run_data(seconds=12, error_every=10)  # 10 % errors
    found = breaches(criteria, window_figures(failing.seconds, [{"cpuPercent": 91.0}]))
    assert [b["metric"] for b in found] == ["error_rate", "cpu_usage"]
    assert found[0]["text"] == "error_rate 10.0% > 5%"
    # Without server samples CPU is not measured, so it cannot breach.
    assert [b["metric"] for b in breaches(criteria, window_figures(failing.seconds, []))] == [
        "error_rate"
    ]


def test_a_stress_test_stopped_by_a_breach_reports_its_breaking_point() -> None:
    data = run_data(name="stress_test", seconds=20, error_every=10, server=[
        {"at": 18.0, "cpuPercent": 70.0, "memoryPercent": 12.0},
    ])  # fmt: skip
    data.breaches = breaches(data.test.failure_criteria, window_figures(data.seconds, data.server))
    data.stopped_early = "failure criteria: " + data.breaches[0]["text"]
    found = evaluate(data, Sla.load(), 0.001)
    stress = found["performanceResults"]["stressTest"]
    assert stress["breakingPoint"]["errorRate"] == 10.0
    assert stress["breakingPoint"]["cpuUtilization"] == 70.0
    assert stress["breakingPoint"]["requestsPerSecond"] == 140.0
    rows = {c["metric"]: c for c in found["failureCriteria"]}
    assert rows["error_rate"]["breached"] and not rows["cpu_usage"]["breached"]
    assert rows["memory_usage"]["worst"] == 12.0
    assert found["verdict"]["reasons"][0] == "failure criterion: error_rate 10.0% > 5%"


def test_a_breach_in_the_runs_last_seconds_shows_as_its_criterions_worst() -> None:
    # Ten healthy seconds, then six slow ones: the breach is judged over a
    # window ending at second 16, between the ten-second steps.
    data = run_data(name="stress_test", seconds=10)
    data.seconds += run_data(name="stress_test", seconds=6, latency_ms=3000, slow_ms=3000).seconds
    data.breaches = breaches(data.test.failure_criteria, window_figures(data.seconds, []))
    data.stopped_early = "failure criteria: " + data.breaches[0]["text"]
    rows = {c["metric"]: c for c in evaluate(data, Sla.load(), 0.001)["failureCriteria"]}
    p99 = rows["response_time_p99"]
    assert p99["breached"] and p99["worst"] > p99["limit"], p99
    assert not rows["error_rate"]["breached"] and rows["error_rate"]["worst"] == 0.0


def test_a_stress_test_that_held_has_no_breaking_point() -> None:
    found = result(name="stress_test")
    assert found["performanceResults"]["stressTest"]["breakingPoint"] is None
    assert found["verdict"]["passed"]


def test_server_rows_and_the_cache_check_come_from_the_servers_figures() -> None:
    final = {
        "components": {
            "database": {"p99": 75.0, "count": 900, "average": 9.0},
            "cache": {"p99": 1.0, "count": 5000, "average": 0.2},
        },
        "database": {"slowQueryCount": 9, "replicationLag": 0.0},
        "cache": {"hitRatio": 50.0},
    }
    server = [
        {"at": 2.0 * n, "cpuPercent": 30.0, "memoryPercent": 5.0, "memoryMB": 300.0,
         "poolUtilization": 10.0, "cacheHits": 90.0 * n, "cacheLookups": 100.0 * n}
        for n in range(1, 15)
    ]  # fmt: skip
    found = result(server=server, server_final=final)
    assert status_of(found, "Database Queries") == "ACCEPTABLE"
    assert status_of(found, "Cache Operations") == "OK"
    database = found["performanceResults"]["databasePerformance"]
    assert database["slowQueries"] == 1.0
    # The hit ratio over the run (from the counts), not since the server started.
    assert database["cacheHitRatio"] == 90.0
    assert database["connectionPoolUtilization"] == 10.0
    assert not found["verdict"]["passed"]


def test_endurance_monitors_flag_a_leak_not_noise() -> None:
    def samples(memory: list[float]) -> list[dict[str, float]]:
        return [
            {"at": 10.0 + 2 * n, "cpuPercent": 20.0, "memoryPercent": 3.0, "memoryMB": mb,
             "poolUtilization": 20.0 + (n % 3), "cacheHitRatio": 97.0 - (n % 2)}
            for n, mb in enumerate(memory)
        ]  # fmt: skip

    noisy = [300.0 + (7 if n % 2 else -7) for n in range(30)]
    leaking = [300.0 + 2.0 * n + (3 if n % 2 else -3) for n in range(30)]
    steady = result(name="endurance_test", seconds=70, server=samples(noisy))
    assert [t["flagged"] for t in steady["trends"]] == [False, False, False]
    assert steady["verdict"]["passed"]
    leak = result(name="endurance_test", seconds=70, server=samples(leaking))
    memory = next(t for t in leak["trends"] if t["monitor"] == "memory_leaks")
    assert memory["flagged"] and memory["slopePerHour"] > 3000  # 1 MB/s
    assert any(r.startswith("memory_leaks: +") for r in leak["verdict"]["reasons"])


def test_a_trend_needs_both_significance_and_size() -> None:
    times = [float(t) for t in range(20)]
    assert fit(times, [100.0 + 0.001 * t for t in times]).rising() is False  # tiny
    assert fit(times, [100.0 + 5 * t for t in times]).rising() is True
    assert fit(times, [100.0 - 5 * t for t in times]).falling() is True
    assert fit(times[:3], [1.0, 2.0, 3.0]) is None


def test_a_low_cache_hit_ratio_warns_without_failing() -> None:
    # The spec's check gives WARNING, not BREACH, for the hit ratio.
    server = [
        {"at": 2.0 * n, "cpuPercent": 30.0, "memoryPercent": 5.0, "memoryMB": 300.0,
         "poolUtilization": 10.0, "cacheHits": 80.0 * n, "cacheLookups": 100.0 * n}
        for n in range(1, 15)
    ]  # fmt: skip
    found = result(server=server)
    check = next(c for c in found["checks"] if c["name"] == "Cache Hit Ratio")
    assert (check["status"], check["current"]) == ("WARNING", 80.0)
    assert found["verdict"]["passed"]
    # (Beside the note that, without server_final, the server did not answer at the end.)
    assert [w for w in found["verdict"]["warnings"] if w.startswith("Cache")] == [
        "Cache Hit Ratio: 80.00 is WARNING (target 90)"
    ]


def test_rate_limited_requests_fail_the_run_and_say_what_to_raise() -> None:
    data = run_data(seconds=10)
    for _ in range(10):  # 10 of 1,410: the success rate falls under 99.9 %
        data.seconds[3].sample("GET /{slug}").record(0.001, 0.001, "429", True)
    found = evaluate(data, Sla.load(), 0.001)
    assert not found["verdict"]["passed"]  # an error like any other 4xx
    assert any(
        w.startswith("10 requests were refused with 429") and "LANDFORM_RATE_LIMIT_*" in w
        for w in found["verdict"]["warnings"]
    )


def test_the_console_summary_shows_the_failure_criteria() -> None:
    lines = summary_lines(result(name="stress_test"))
    criteria = [line for line in lines if line.startswith("  fails when")]
    assert [line.split(":")[0] for line in criteria] == [
        "  fails when error_rate > 5%",
        "  fails when response_time_p99 > 2000ms",
        "  fails when cpu_usage > 85%",
        "  fails when memory_usage > 90%",
    ]
    assert all(line.endswith(("held", "BREACHED")) for line in criteria)


def test_file_operations_have_the_specs_download_fields() -> None:
    data = run_data(seconds=10)
    for second in data.seconds:  # 10 asset answers of 50 kB a second: 0.5 MB/s
        second.operations["GET /assets/{file}"].bytes = 10 * 50_000
    files = evaluate(data, Sla.load(), 0.001)["performanceResults"]["fileOperations"]
    assert files["downloadThroughput"] == 0.5
    # No CDN in front of the harness: not measured, and not made up.
    assert "cdnCacheHitRatio" in files and files["cdnCacheHitRatio"] is None


def test_a_server_gone_at_the_end_still_gives_database_figures_from_its_samples() -> None:
    server = [
        {"at": 2.0 * n, "cpuPercent": 30.0, "memoryPercent": 5.0, "memoryMB": 300.0,
         "poolUtilization": 10.0 + n, "cacheHits": 90.0 * n, "cacheLookups": 100.0 * n,
         "dbQueries": 400.0, "dbQueryAverage": 1.5, "dbQueryP99": 7.0 + n,
         "slowQueryCount": 4.0, "replicationLag": 0.0}
        for n in range(1, 11)
    ]  # fmt: skip
    found = result(server=server, server_final=None)  # /ops/performance did not answer
    database = found["performanceResults"]["databasePerformance"]
    assert database == {
        "averageQueryTime": 1.5, "p99QueryTime": 17.0, "slowQueries": 1.0,
        "connectionPoolUtilization": 20.0, "replicationLag": 0.0, "cacheHitRatio": 90.0,
    }  # fmt: skip
    assert any(w.startswith("the server did not answer at the end") for w in
               found["verdict"]["warnings"])  # fmt: skip


def test_a_run_without_the_ops_token_says_what_it_did_not_measure() -> None:
    data = run_data(seconds=10)
    data.server_watched = False
    found = evaluate(data, Sla.load(), 0.001)
    assert found["verdict"]["passed"]
    assert [w for w in found["verdict"]["warnings"] if w.startswith("no ops token")] == [
        NOT_MEASURED
    ]
    assert "cpu_usage and memory_usage criteria" in NOT_MEASURED
