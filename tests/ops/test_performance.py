"""The operators' view over real requests: the spec's PerformanceMetrics
shape, the SLA evaluation, Prometheus metrics, and who may see them."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.conftest import assert_error, signed_in
from tests.live_server import free_port

OPS_TOKEN = "ops-token-for-tests-0123456789"


@pytest.fixture
def settings_update(request: pytest.FixtureRequest) -> dict[str, Any]:
    # The test client's address (127.0.0.1) is not an open network here.
    extra = getattr(request, "param", {})
    return {"ops_token": OPS_TOKEN, "ops_open_networks": ["192.0.2.0/24"], **extra}


OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


async def traffic(client: httpx.AsyncClient, app: Any) -> dict[str, str]:
    ada = await signed_in(client, app, "ada@example.com")
    page = (
        await client.post("/landing-pages", json={"title": "Sale", "slug": "sale"}, headers=ada)
    ).json()
    assert (await client.post(f"/landing-pages/{page['id']}/publish", headers=ada)).is_success
    for _ in range(20):
        assert (await client.get("/sale")).status_code == 200
        assert (await client.get("/landing-pages", headers=ada)).status_code == 200
    assert (await client.get("/no-such-page")).status_code == 404
    beacon = await client.post("/analytics/track-view", json={"slug": "sale"})
    assert beacon.status_code == 202
    return ada


async def test_performance_metrics_have_the_specs_shape(
    client: httpx.AsyncClient, app: Any
) -> None:
    await traffic(client, app)
    answer = await client.get("/ops/performance?window=1m", headers=OPS)
    assert answer.status_code == 200, answer.text
    metrics = answer.json()
    assert set(metrics["responseTime"]) == {"p50", "p95", "p99", "p999", "average", "median"}
    assert set(metrics["throughput"]) == {
        "requestsPerSecond", "totalRequests", "successRate", "errorRate",
    }  # fmt: skip
    assert set(metrics["resources"]) == {
        "cpuUsage", "memoryUsage", "diskIO", "networkIO", "openConnections",
        "cpuPercent", "memoryPercent",
    }  # fmt: skip
    assert 0 <= metrics["resources"]["cpuPercent"] <= 100
    assert 0 < metrics["resources"]["memoryPercent"] < 100
    assert set(metrics["database"]) == {
        "queryTime", "connectionPoolUtilization", "slowQueryCount", "deadlockCount",
        "replicationLag", "replicas",
    }  # fmt: skip
    assert metrics["database"]["replicas"] == []  # none configured here
    assert set(metrics["cache"]) == {
        "hitRatio", "missRatio", "evictionRate", "memoryFragmentation", "hits", "lookups",
        "windowLookups",
    }  # fmt: skip
    # The window's lookups are those since start here (the server is new).
    assert 0 < metrics["cache"]["windowLookups"] == metrics["cache"]["lookups"]
    throughput = metrics["throughput"]
    # Everything up to this request: sign-up, the page, 40 reads and a 404.
    assert throughput["totalRequests"] >= 45
    assert throughput["successRate"] == 100.0 and throughput["errorRate"] == 0.0
    times = metrics["responseTime"]
    assert 0 < times["p50"] <= times["p95"] <= times["p99"] <= times["p999"]
    assert times["median"] == times["p50"]
    routes = metrics["routes"]
    assert routes["GET /{slug}"]["requests"] == 21
    assert routes["GET /landing-pages"]["requests"] == 20
    assert routes["POST /analytics/track-view"]["requests"] == 1  # timed in its own layer
    assert metrics["components"]["database"]["count"] > 0
    assert metrics["components"]["page_generation"]["count"] == 1
    # 19 or 20 page hits; the misses: /sale's first view, the unknown slug.
    assert metrics["cache"]["hitRatio"] >= 85
    assert metrics["workers"] == 1 and metrics["scope"] == "replica"
    # Samplers leave the per-route figures out; the rest is the same.
    light = (await client.get("/ops/performance?window=1m&routes=false", headers=OPS)).json()
    assert light["routes"] == {}
    assert light["throughput"]["totalRequests"] >= throughput["totalRequests"]
    assert light["components"]["page_generation"]["count"] == 1
    refused = await client.get("/ops/performance?routes=maybe", headers=OPS)
    assert_error(refused, 422, "validation_failed")
    # From a moment on (a load test's run); not one still to come.
    assert (await client.get(f"/ops/performance?since={time.time() - 5}", headers=OPS)).is_success
    for never in ("-5", str(time.time() + 3600), "inf", "nan"):
        assert_error(await client.get(f"/ops/performance?since={never}", headers=OPS), 422)


async def test_graphql_is_a_route_and_the_specs_component(
    client: httpx.AsyncClient, app: Any
) -> None:
    """GraphQL is a plain route, not one of FastAPI's: its requests are
    still named by it, and counted under "GraphQL Queries"."""
    ada = await signed_in(client, app, "ada@example.com")
    for _ in range(3):
        asked = await client.post("/graphql", json={"query": "{ me { id } }"}, headers=ada)
        assert asked.status_code == 200 and "errors" not in asked.json()
    assert (await client.get("/graphql?query={me{id}}", headers=ada)).status_code == 200
    metrics = (await client.get("/ops/performance?window=1m", headers=OPS)).json()
    routes = metrics["routes"]
    assert routes["POST /graphql"]["requests"] == 3
    assert routes["GET /graphql"]["requests"] == 1
    assert "POST (no route)" not in routes and "GET (no route)" not in routes
    assert metrics["components"]["graphql"]["count"] == 4
    sla = (await client.get("/ops/sla?window=1m", headers=OPS)).json()
    graphql = next(row for row in sla["components"] if row["name"] == "GraphQL Queries")
    assert graphql["samples"] == 4 and graphql["status"] != "NO_DATA"


async def test_sla_status_follows_the_specs_table(client: httpx.AsyncClient, app: Any) -> None:
    await traffic(client, app)
    answer = await client.get("/ops/sla?window=1m", headers=OPS)
    assert answer.status_code == 200, answer.text
    sla = answer.json()
    names = [row["name"] for row in sla["components"]]
    assert names == [
        "API Gateway", "GraphQL Queries", "Database Queries", "Cache Operations",
        "File Upload", "Page Generation", "WebSocket Connect",
    ]  # fmt: skip
    by_name = {row["name"]: row for row in sla["components"]}
    gateway = by_name["API Gateway"]
    assert (gateway["target"], gateway["acceptable"], gateway["critical"]) == (100, 200, 500)
    assert gateway["status"] in ("OK", "ACCEPTABLE", "DEGRADED", "CRITICAL")
    assert by_name["File Upload"]["status"] == "NO_DATA"
    assert [c["name"] for c in sla["checks"]] == [
        "Response Time P99", "Success Rate", "Cache Hit Ratio",
    ]  # fmt: skip
    assert sla["checks"][1]["status"] == "OK"  # no 5xx
    assert sla["overallStatus"] in ("OK", "WARNING", "BREACH")


async def test_a_check_over_nothing_yet_has_no_data(client: httpx.AsyncClient) -> None:
    """A new replica has served no request and looked nothing up: its hit
    ratio is no reading, neither a perfect one nor a warning."""
    sla = (await client.get("/ops/sla?window=1m", headers=OPS)).json()
    statuses = {check["name"]: check["status"] for check in sla["checks"]}
    assert statuses == {
        "Response Time P99": "NO_DATA", "Success Rate": "NO_DATA", "Cache Hit Ratio": "NO_DATA",
    }  # fmt: skip
    assert sla["overallStatus"] == "OK"
    assert [check["current"] for check in sla["checks"]] == [None, None, None]  # no 100 %


async def test_prometheus_metrics(client: httpx.AsyncClient, app: Any) -> None:
    await traffic(client, app)
    answer = await client.get("/metrics", headers=OPS)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'landform_requests_total{route="GET /{slug}"} 21.0' in text
    assert 'landform_request_duration_seconds_bucket{le="+Inf",route="GET /{slug}"} 21.0' in text
    assert 'landform_component_duration_seconds_count{component="database"}' in text
    hits = re.search(
        r'landform_cache_lookups_total\{kind="pages",outcome="hit",tier="l1"\} (\S+)', text
    )
    assert hits and float(hits.group(1)) >= 19  # the first view of /sale loaded it
    # Stored once, when that first view loaded it.
    assert 'landform_cache_sets_total{kind="pages",tier="l1"} 1.0' in text
    assert "landform_workers 1.0" in text


async def test_a_made_up_method_is_one_series_not_one_each(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Any token is a method to HTTP: each must not become a label value
    (a scrape that grows with every request a stranger sends)."""
    for method in ("XABCDEF", "XGHIJKL", "FOO"):
        for path in ("/anything", "/landing-pages", "/api/nothing"):
            assert (await client.request(method, path)).status_code in (404, 405)
    text = (await client.get("/metrics", headers=OPS)).text
    assert "XABCDEF" not in text and "FOO /" not in text
    assert 'landform_requests_total{route="OTHER (no route)"} 3.0' in text
    # A page's address (a slug) refuses them itself, counted as one series too.
    assert 'landform_requests_total{route="OTHER /{slug}"} 3.0' in text


async def test_operators_only(client: httpx.AsyncClient, app: Any) -> None:
    for path in ("/ops/performance", "/ops/sla", "/metrics", "/ops/cache"):
        assert_error(await client.get(path), 401, "not_authenticated")
        wrong = {"Authorization": "Bearer not-the-token"}
        assert (await client.get(path, headers=wrong)).status_code == 401
    ada = await signed_in(client, app, "ada@example.com")
    assert_error(await client.get("/ops/sla", headers=ada), 403, "operator_only")
    await app.components.auth.set_role("ada@example.com", "admin")
    assert (await client.get("/ops/sla", headers=ada)).status_code == 200
    # Probes and /metrics answer an open network without credentials.
    assert_error(await client.get("/healthz"), 401)
    inside = httpx.ASGITransport(app=app, client=("192.0.2.10", 4000))
    async with httpx.AsyncClient(transport=inside, base_url="http://testserver") as probe:
        assert (await probe.get("/healthz")).status_code == 200
        assert (await probe.get("/readyz")).json() == {"status": "ready"}
        assert (await probe.get("/metrics")).status_code == 200
        assert_error(await probe.get("/ops/performance"), 401)


@pytest.mark.parametrize("query", ["scope=galaxy", "window=2d"])
async def test_bad_parameters_are_refused(client: httpx.AsyncClient, query: str) -> None:
    assert_error(await client.get(f"/ops/performance?{query}", headers=OPS), 422)


# Redis configured, but nothing listens there.
REDIS_AWAY = {"redis_url": f"redis://127.0.0.1:{free_port()}/0"}


@pytest.mark.parametrize("settings_update", [REDIS_AWAY], indirect=True)
async def test_with_redis_away_the_replica_stays_ready_and_the_views_answer(
    client: httpx.AsyncClient, app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis outage costs its features, not the replica: /readyz stays
    200 (saying so), and the cluster view shows this replica with a note
    instead of failing (it was a 500), logged once, not at every ask (the
    /ops/ page asks every 2 s)."""
    await traffic(client, app)
    ready = await client.get("/readyz", headers=OPS)
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["redis"].startswith("unreachable")
    for path in ("/ops/performance?scope=cluster&window=1m", "/ops/sla?scope=cluster"):
        answer = await client.get(path, headers=OPS)
        assert answer.status_code == 200, answer.text
        assert answer.json()["scope"] == "replica"
        assert "Redis cannot be reached" in answer.json()["note"]
    for _ in range(3):
        assert (await client.get("/ops/sla?scope=cluster", headers=OPS)).status_code == 200
    said = [r for r in caplog.records if "no cluster view" in r.getMessage()]
    assert len(said) == 1


async def test_without_redis_the_cluster_view_says_it_is_this_replica(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Replicas see each other only through Redis: asked for the cluster
    without one, the answer says whose it is rather than calling this
    replica the cluster."""
    await traffic(client, app)
    for path in ("/ops/performance?scope=cluster&window=1m", "/ops/sla?scope=cluster"):
        answer = (await client.get(path, headers=OPS)).json()
        assert answer["scope"] == "replica"
        assert answer["note"].startswith("no Redis is configured (LANDFORM_REDIS_URL)")
    assert "note" not in (await client.get("/ops/sla?scope=replica", headers=OPS)).json()


@pytest.mark.parametrize(
    "settings_update",
    [{"ops_token": OPS_TOKEN, "page_change_poll_interval": 0.01}],
    indirect=True,
)
async def test_database_queries_are_the_statements_of_requests(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change log's poll (here every 10 ms) and the readiness probe run
    statements too, but nobody waits on them: counted, they outnumbered
    requests' statements many times over and hid a slow one under the p99."""
    statements: list[int] = []
    recorder = app.components.recorder
    observe = recorder.observe

    def counting(key: str, micros: int, failed: bool = False) -> None:
        if key == "database":
            statements.append(micros)
        observe(key, micros, failed)

    monkeypatch.setattr(recorder, "observe", counting)
    ran: list[str] = []
    engine = app.components.db.primary.sync_engine
    listener = lambda *args: ran.append(args[2])  # noqa: E731 - (conn, cursor, statement, …)
    event.listen(engine, "after_cursor_execute", listener)
    try:
        for _ in range(5):
            assert (await client.get("/readyz", headers=OPS)).status_code == 200
        await asyncio.sleep(0.3)  # some 30 polls
    finally:
        event.remove(engine, "after_cursor_execute", listener)
    assert len(ran) > 20 and any("page_changes" in s for s in ran)
    assert statements == []
    ada = await signed_in(client, app, "ada@example.com")
    before = len(statements)
    assert (await client.get("/landing-pages", headers=ada)).status_code == 200
    assert len(statements) > before  # a request's own statements are
