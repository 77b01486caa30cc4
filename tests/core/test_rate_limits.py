"""Rate limits per route group: token buckets with a burst allowance, 429
with Retry-After and RateLimit headers in the one error shape, shared by
replicas through Redis (and per process without it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis

from landform.app import create_app
from landform.cache.remote import RemoteCache
from landform.cache.shared_buckets import SharedBuckets
from landform.core.breaker import CircuitBreaker
from landform.core.rate_limits import route_group
from landform.core.token_buckets import Buckets, Decision, LocalBuckets, Rule
from landform.settings import Settings
from tests.conftest import REDIS_URL, assert_error, signed_in, two_replicas

TIGHT = {
    "rate_limit_public_per_second": 0.01,
    "rate_limit_public_burst": 3,
    "rate_limit_api_per_second": 0.01,
    "rate_limit_api_burst": 5,
    "rate_limit_auth_per_second": 0.01,
    "rate_limit_auth_burst": 100,
}


@pytest.fixture
async def tight(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(settings.model_copy(update=TIGHT))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, app


@pytest.mark.parametrize(
    ("path", "group"),
    [
        ("/spring-sale", "public"),
        ("/assets/ab/cd.png", "public"),
        ("/", "public"),
        ("/analytics/track-view", "tracking"),
        ("/analytics/track-event", "tracking"),
        ("/auth/login", "auth"),
        ("/auth/register", "auth"),
        ("/auth/verify-email", "auth"),
        ("/auth/me", "api"),
        ("/auth/api-keys/123", "api"),
        ("/landing-pages/1/publish", "api"),
        ("/analytics/dashboard", "api"),
        ("/graphql", "api"),
        ("/healthz", None),
        ("/readyz", None),
        ("/metrics", None),
        ("/ops/performance", None),
    ],
)
def test_each_path_belongs_to_its_group(path: str, group: str | None) -> None:
    assert route_group(path) == group


async def test_the_api_allows_a_burst_per_account_then_429s_with_headers(
    tight: tuple[httpx.AsyncClient, Any],
) -> None:
    client, app = tight
    ada = await signed_in(client, app, "ada@example.com")
    remaining = []
    for _ in range(5):
        answer = await client.get("/landing-pages", headers=ada)
        assert answer.status_code == 200
        assert answer.headers["ratelimit-limit"] == "5"
        assert answer.headers["ratelimit-policy"] == "5;w=500"
        remaining.append(int(answer.headers["ratelimit-remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    refused = await client.get("/landing-pages", headers=ada)
    error = assert_error(refused, 429, "rate_limited")
    assert error["details"] == {"group": "api", "limit": 5, "retry_after": 100}
    assert refused.headers["retry-after"] == "100"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit"].startswith("limit=5, remaining=0, reset=")
    # Refused before anything else, and still with its id, as every answer.
    echoed = await client.get("/landing-pages", headers={**ada, "X-Request-ID": "probe-123"})
    assert echoed.status_code == 429 and echoed.headers["x-request-id"] == "probe-123"
    assert echoed.headers["cache-control"] == "no-store"
    assert echoed.headers["x-content-type-options"] == "nosniff"
    assert len(refused.headers["x-request-id"]) == 16
    # Another account has an allowance of its own; so has an anonymous
    # caller (by address), who is refused by authentication, not the limit.
    bob = await signed_in(client, app, "bob@example.com")
    assert (await client.get("/landing-pages", headers=bob)).status_code == 200
    assert_error(await client.get("/landing-pages"), 401)
    # The refusal is in the metrics, as a route of its own, not a failure.
    recorder = app.components.recorder
    recorder.fold()
    assert recorder.totals["route:GET (rate limited: api)"] == 2
    assert recorder.totals["route:GET (rate limited: api):failed"] == 0


async def test_made_up_api_keys_share_one_allowance_and_a_real_one_gets_its_own(
    tight: tuple[httpx.AsyncClient, Any],
) -> None:
    client, app = tight
    ada = await signed_in(client, app, "ada@example.com")
    key = (await client.post("/auth/api-keys", json={"name": "ci"}, headers=ada)).json()["key"]
    # A key not yet seen valid spends the address's allowance for such keys
    # (5 here): its first request proves it.
    assert (await client.get("/auth/me", headers={"Authorization": f"Bearer {key}"})).is_success
    # A fresh made-up key each time: one allowance for them all, not one each.
    statuses = [
        (await client.get("/auth/me", headers={"X-API-Key": f"lf_{i:040d}"})).status_code
        for i in range(6)
    ]
    assert statuses == [401] * 4 + [429] * 2
    # Requests without a credential have an allowance of their own...
    assert [(await client.get("/templates")).status_code for _ in range(6)] == [200] * 5 + [429]
    # ...and the proven key one of its own, by X-API-Key as by Authorization.
    answers = [await client.get("/auth/me", headers={"X-API-Key": key}) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]


async def test_public_pages_are_limited_per_address_without_cacheable_headers(
    tight: tuple[httpx.AsyncClient, Any],
) -> None:
    client, _app = tight
    answers = [await client.get("/no-such-page") for _ in range(3)]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert all("ratelimit-remaining" not in a.headers for a in answers)
    refused = await client.get("/no-such-page")
    assert_error(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "100"
    # Another address (a different peer) is not affected.
    other = httpx.ASGITransport(app=client._transport.app, client=("203.0.113.9", 5000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=other, base_url="http://testserver") as visitor:
        assert (await visitor.get("/no-such-page")).status_code == 404


async def test_health_checks_are_never_limited(tight: tuple[httpx.AsyncClient, Any]) -> None:
    client, _app = tight
    for _ in range(20):
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200


@asynccontextmanager
async def sign_ins_allowed(settings: Settings, burst: int) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose auth group allows ``burst`` and barely refills."""
    update = {"rate_limit_auth_burst": burst, "rate_limit_auth_per_second": 0.01}
    app = create_app(settings.model_copy(update=update))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


WRONG_LOGIN = {"email": "nobody@example.com", "password": "wrong password here"}


async def test_sign_in_attempts_are_limited_per_address(settings: Settings) -> None:
    async with sign_ins_allowed(settings, 2) as client:
        first = [(await client.post("/auth/login", json=WRONG_LOGIN)).status_code for _ in "ab"]
        assert first == [401, 401]
        assert_error(await client.post("/auth/login", json=WRONG_LOGIN), 429, "rate_limited")


async def test_sign_ins_through_graphql_spend_the_same_allowance(settings: Settings) -> None:
    """GraphQL's register, verifyEmail, login and refresh are the auth
    group's, per alias: no way around POST /auth/login's limit."""
    async with sign_ins_allowed(settings, 3) as client:
        assert (await client.post("/auth/login", json=WRONG_LOGIN)).status_code == 401
        wrong = 'email: "x@example.com", password: "nope nope"'
        query = (
            'mutation { a: register(email: "a@example.com", password: "a long passphrase") { id }'
            f" b: login({wrong}) {{ accessToken }} c: login({wrong}) {{ accessToken }} }}"
        )
        answer = (await client.post("/graphql", json={"query": query})).json()
        codes = {e["path"][0]: e["extensions"]["code"] for e in answer["errors"]}
        # The 2nd token registered a, the 3rd was b's; c, the 4th, was refused.
        assert codes == {"b": "invalid_credentials", "c": "rate_limited"}
        assert_error(await client.post("/auth/login", json=WRONG_LOGIN), 429, "rate_limited")


async def test_no_limits_when_switched_off(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={**TIGHT, "rate_limit_enabled": False}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            statuses = {(await client.get("/no-such-page")).status_code for _ in range(10)}
            assert statuses == {404}


# One contract for both implementations of Buckets.


def local_buckets() -> LocalBuckets:
    return LocalBuckets()


async def shared_buckets() -> SharedBuckets:
    if not REDIS_URL:
        pytest.skip("LANDFORM_TEST_REDIS_URL is not set")
    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    return SharedBuckets(RemoteCache(client, 1.0, CircuitBreaker()))


@pytest.fixture(params=["local", "redis"])
async def buckets(request: pytest.FixtureRequest) -> AsyncIterator[Buckets]:
    made: Buckets = local_buckets() if request.param == "local" else await shared_buckets()
    yield made
    await made.close()
    if isinstance(made, SharedBuckets):
        await made.remote.redis.flushdb()
        await made.remote.redis.aclose()


async def test_buckets_allow_the_burst_then_refuse(buckets: Buckets) -> None:
    rule = Rule(rate=0.5, burst=4)
    decisions = [Decision.of(*await buckets.take("t:a", rule), rule) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, True, False]
    assert [d.remaining for d in decisions[:4]] == [3, 2, 1, 0]
    assert decisions[-1].retry_after == 2  # one token at 0.5 a second
    assert (await buckets.take("t:b", rule))[0]  # keys do not share


async def test_buckets_refill_at_their_rate(buckets: Buckets) -> None:
    import asyncio

    rule = Rule(rate=20, burst=2)
    assert [(await buckets.take("t:r", rule))[0] for _ in range(3)] == [True, True, False]
    await asyncio.sleep(0.12)  # two tokens back at 20 a second
    assert [(await buckets.take("t:r", rule))[0] for _ in range(2)] == [True, True]


def count_redis_calls(buckets: SharedBuckets) -> list[int]:
    """A one-item list that counts the bucket script's runs from now on."""
    calls = [0]
    take = buckets._take

    def counted(**kwargs: Any) -> Any:
        calls[0] += 1
        return take(**kwargs)

    buckets._take = counted  # type: ignore[method-assign]
    return calls


async def test_shared_buckets_lease_tokens_to_save_round_trips() -> None:
    buckets = await shared_buckets()
    calls = count_redis_calls(buckets)
    rule = Rule(rate=0.01, burst=200)  # leases of 10
    allowed = [(await buckets.take("t:lease", rule))[0] for _ in range(205)]
    assert allowed == [True] * 200 + [False] * 5
    assert calls == [20 + 5]
    # What a lease holds is decided without Redis; an empty lease cannot be.
    assert buckets.take_held("t:lease", rule) is None
    await buckets.remote.redis.flushdb()
    await buckets.remote.redis.aclose()


async def test_requests_in_flight_together_get_the_whole_burst_no_more() -> None:
    """Many requests of one client that find the lease spent at the same
    moment share the next lease: the client gets its burst, exactly."""
    import asyncio

    buckets = await shared_buckets()
    calls = count_redis_calls(buckets)
    rule = Rule(rate=0.01, burst=300)  # leases of 15
    allowed = 0
    for _ in range(10):  # 10 rounds of 40 requests in flight at once
        takes = await asyncio.gather(*(buckets.take("t:flight", rule) for _ in range(40)))
        allowed += sum(1 for granted, _ in takes if granted)
    assert allowed == 300
    assert calls[0] <= 300 // 15 + 10 + 1  # a lease at a time, and a refusal a round
    await buckets.remote.redis.flushdb()
    await buckets.remote.redis.aclose()


async def test_shared_buckets_give_a_new_key_its_first_token_without_a_round_trip() -> None:
    buckets = await shared_buckets()
    calls = count_redis_calls(buckets)
    rule = Rule(rate=0.01, burst=3)
    assert all([(await buckets.take(f"t:visitor{n}", rule))[0] for n in range(50)])
    assert calls == [0]  # fifty visitors, one beacon each: no Redis call
    # The free token is paid for with the next lease: three in all, still.
    assert [(await buckets.take("t:visitor0", rule))[0] for _ in range(3)] == [True, True, False]
    assert calls == [3]
    await buckets.remote.redis.flushdb()
    await buckets.remote.redis.aclose()


async def test_shared_buckets_give_a_key_back_from_a_pause_its_token_without_a_round_trip() -> None:
    buckets = await shared_buckets()
    now = [1000.0]
    buckets.clock = lambda: now[0]
    calls = count_redis_calls(buckets)
    rule = Rule(rate=1, burst=10)  # an empty bucket fills in 10 s
    # A visitor's beacons, a page read (20 s) apart: none asks Redis.
    for _ in range(3):
        assert (await buckets.take("t:reader", rule))[0]
        now[0] += 20
    assert calls == [0]
    # Beacons in quick succession lease as before, and the burst still holds:
    # ten in all, the first of them free and paid for with the first lease.
    allowed = [(await buckets.take("t:reader", rule))[0] for _ in range(12)]
    assert allowed == [True] * 10 + [False] * 2
    assert calls == [9 + 2]
    # A pause shorter than the fill time is no pause.
    now[0] += 5
    assert not (await buckets.take("t:reader", rule))[0]
    await buckets.remote.redis.flushdb()
    await buckets.remote.redis.aclose()


async def test_shared_buckets_fall_back_to_this_process_when_redis_is_down() -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0")
    buckets = SharedBuckets(RemoteCache(dead, 0.1, CircuitBreaker(failures=1)))
    rule = Rule(rate=0.01, burst=3)
    allowed = [(await buckets.take("t:down", rule))[0] for _ in range(4)]
    assert allowed == [True, True, True, False]
    await dead.aclose()


# Two replicas, one allowance.


async def test_two_replicas_share_one_allowance_through_redis(
    settings: Settings, tmp_path: Path, redis: Redis
) -> None:
    update = {**TIGHT, "rate_limit_public_burst": 10}
    async with two_replicas(settings, tmp_path, **update) as (_first, _second, a, b):
        statuses = []
        for _ in range(10):
            statuses.append((await a.get("/nothing-here")).status_code)
            statuses.append((await b.get("/nothing-here")).status_code)
    # The burst of 10 is spent across both, not 10 on each.
    assert statuses.count(404) == 10
    assert statuses.count(429) == 10
