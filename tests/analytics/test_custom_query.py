"""The custom-query language: every metric, dimension and filter on a small
hand-counted dataset; rollups, raw events and a Python reference agreeing on
random traffic; errors that name their field; the cost limit; owner scoping."""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from landform.analytics import writes
from landform.analytics.events import Event
from landform.analytics.models import AnalyticsEvent
from landform.analytics.query import parse_custom_query, run_custom_query
from landform.core.errors import DomainError
from landform.pages import repository as page_repo
from tests.analytics.conftest import BROWSER, GOOGLEBOT, IPHONE
from tests.conftest import assert_error
from tests.sql_statements import counted_statements, only_stamps_read

DAY = 20_000  # 2024-10-04, a Friday
H = DAY * 24
NOW_MS = (DAY + 40) * 86_400_000
HOUR_MS = 3_600_000
WHOLE = {"from": "2024-10-04", "to": "2024-11-04"}


@dataclass
class World:
    ada: uuid.UUID
    bob: uuid.UUID
    a: str  # ada's pages
    b: str
    c: str  # bob's page


async def user_id(client: httpx.AsyncClient, headers: dict[str, str]) -> uuid.UUID:
    response = await client.get("/auth/me", headers=headers)
    assert response.status_code == 200, response.text
    return uuid.UUID(response.json()["id"])


async def new_page(client: httpx.AsyncClient, headers: dict[str, str], slug: str) -> str:
    response = await client.post(
        "/landing-pages", json={"title": slug, "slug": slug}, headers=headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
async def world(client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]) -> World:
    return World(
        ada=await user_id(client, ada),
        bob=await user_id(client, bob),
        a=await new_page(client, ada, "alpha"),
        b=await new_page(client, ada, "beta"),
        c=await new_page(client, bob, "gamma"),
    )


def event(
    page: str,
    owner: uuid.UUID,
    visitor: str,
    ms: int,
    kind: str = "view",
    *,
    agent: str = BROWSER,
    referrer: str = "",
    source: str = "",
    medium: str = "",
    campaign: str = "",
    width: int | None = None,
    country: str = "",
) -> Event:
    return Event(
        id=uuid.uuid4().hex,
        received_ms=ms,
        kind=kind,
        page_id=page,
        owner_id=str(owner),
        visitor=visitor.ljust(16, "0"),
        user_agent=agent,
        path="/",
        referrer=referrer,
        utm_source=source,
        utm_medium=medium,
        utm_campaign=campaign,
        screen_width=width,
        country=country,
        name="cta_click" if kind == "event" else None,
        value=None,
    )


async def store(app: Any, events: list[Event]) -> None:
    async with app.components.db.write() as session:
        await writes.write_batch(session, events, NOW_MS)


async def run(
    app: Any,
    owner: uuid.UUID,
    payload: Any,
    *,
    source: str | None = None,
    max_cost: int = 2000,
    now_ms: int = NOW_MS,
) -> dict[str, Any]:
    query = parse_custom_query(payload)
    async with app.components.db.read_primary() as session:
        return await run_custom_query(
            session, owner, page_repo.owned_ids(owner), query, now_ms, max_cost, source=source
        )


def at(day: int, hour: int, minute: int = 0) -> int:
    return (DAY + day) * 86_400_000 + hour * HOUR_MS + minute * 60_000


@pytest.fixture
async def known(app: Any, world: World) -> World:
    """Five visitor-days on ada's pages, a bot, and bob's traffic alongside."""
    w = world
    v1 = {"referrer": "google.com", "source": "newsletter", "medium": "email"}
    await store(
        app,
        [
            event(
                w.a, w.ada, "v1", at(0, 9, 10), agent=IPHONE, campaign="spring", country="DE", **v1
            ),
            event(w.a, w.ada, "v1", at(0, 9, 40), agent=IPHONE, country="DE"),
            event(w.a, w.ada, "v1", at(0, 10, 5), "event", agent=IPHONE),
            event(w.a, w.ada, "v2", at(0, 10, 0), country="US"),
            event(w.a, w.ada, "bot", at(0, 11, 0), agent=GOOGLEBOT),
            event(
                w.a,
                w.ada,
                "v1",
                at(1, 1),
                referrer="t.co",
                source="ads",
                medium="cpc",
                campaign="Spring_Sale",
                width=400,
                country="DE",
            ),
            event(w.b, w.ada, "v3", at(3, 8), campaign="autumn", country="FR", **v1),
            event(w.b, w.ada, "v3", at(3, 8, 30), "event"),
            event(w.b, w.ada, "v4", at(30, 12), country="US"),
            event(w.c, w.bob, "v1", at(0, 9), country="DE", **v1),
            event(w.c, w.bob, "v9", at(0, 9), "event"),
        ],
    )
    return w


# Metrics and dimensions


async def test_every_metric_over_the_whole_range(app: Any, known: World) -> None:
    metrics = ["views", "visitors", "conversions", "conversion_rate"]
    result = await run(app, known.ada, {"metrics": metrics, "date_range": WHOLE})
    assert result["source"] == "rollups"
    assert result["columns"] == metrics
    assert result["rows"] == [[6, 5, 2, 0.4]]
    assert result["date_range"] == {"from": "2024-10-04T00:00:00Z", "to": "2024-11-04T00:00:00Z"}
    assert result["truncated"] is False


async def test_by_day_in_time_order_with_daily_visitors(app: Any, known: World) -> None:
    result = await run(
        app,
        known.ada,
        {
            "metrics": ["views", "visitors", "conversion_rate"],
            "dimensions": ["day"],
            "date_range": WHOLE,
        },
    )
    assert result["columns"] == ["day", "views", "visitors", "conversion_rate"]
    assert result["rows"] == [
        ["2024-10-04", 3, 2, 0.5],
        ["2024-10-05", 1, 1, 0.0],
        ["2024-10-07", 1, 1, 1.0],
        ["2024-11-03", 1, 1, 0.0],
    ]


async def test_by_hour_counts_visitors_per_hour_and_leaves_out_bots(app: Any, known: World) -> None:
    result = await run(
        app,
        known.ada,
        {
            "metrics": ["views", "conversions", "visitors", "conversion_rate"],
            "dimensions": ["hour"],
            "filters": [{"dimension": "page", "op": "eq", "value": known.a}],
            "date_range": {"from": "2024-10-04", "to": "2024-10-05"},
        },
    )
    # v1 is counted in hour 9 and again in hour 10; the bot's hour 11 is empty.
    assert result["rows"] == [
        ["2024-10-04T09:00:00Z", 2, 0, 1, 0.0],
        ["2024-10-04T10:00:00Z", 1, 1, 2, 0.5],
    ]


async def test_weeks_start_on_monday_and_months_are_calendar_months(app: Any, known: World) -> None:
    weeks = await run(
        app,
        known.ada,
        {"metrics": ["views", "visitors"], "dimensions": ["week"], "date_range": WHOLE},
    )
    assert weeks["rows"] == [["2024-09-30", 4, 3], ["2024-10-07", 1, 1], ["2024-10-28", 1, 1]]
    assert date.fromisoformat("2024-09-30").weekday() == 0
    months = await run(
        app,
        known.ada,
        {"metrics": ["views", "visitors"], "dimensions": ["month"], "date_range": WHOLE},
    )
    assert months["rows"] == [["2024-10", 5, 4], ["2024-11", 1, 1]]


@pytest.mark.parametrize(
    ("dimension", "expected"),
    [
        ("referrer", {"": (2, 2), "google.com": (3, 2), "t.co": (1, 1)}),
        ("utm_source", {"": (2, 2), "newsletter": (3, 2), "ads": (1, 1)}),
        ("utm_medium", {"": (2, 2), "email": (3, 2), "cpc": (1, 1)}),
        ("utm_campaign", {"": (2, 2), "spring": (2, 1), "autumn": (1, 1), "Spring_Sale": (1, 1)}),
        ("device", {"mobile": (3, 2), "desktop": (3, 3)}),
        ("browser", {"Mobile Safari": (2, 1), "Chrome": (4, 4)}),
        ("os", {"iOS": (2, 1), "Windows": (4, 4)}),
        ("country", {"DE": (3, 2), "US": (2, 2), "FR": (1, 1)}),
    ],
)
async def test_every_breakdown_dimension(
    app: Any, known: World, dimension: str, expected: dict[str, tuple[int, int]]
) -> None:
    query = {"metrics": ["views", "visitors"], "dimensions": [dimension], "date_range": WHOLE}
    result = await run(app, known.ada, query)
    assert result["source"] == "rollups"
    assert {row[0]: (row[1], row[2]) for row in result["rows"]} == expected
    # Default order: the first metric, largest first.
    assert [row[1] for row in result["rows"]] == sorted(
        (v for v, _ in expected.values()), reverse=True
    )
    raw = await run(app, known.ada, query, source="events")
    assert raw["rows"] == result["rows"]


async def test_page_dimension_gives_page_ids(app: Any, known: World) -> None:
    result = await run(
        app,
        known.ada,
        {"metrics": ["views", "visitors"], "dimensions": ["page"], "date_range": WHOLE},
    )
    assert result["rows"] == [[known.a, 4, 3], [known.b, 2, 2]]


# Filters


@pytest.mark.parametrize(
    ("dimension", "op", "value", "views"),
    [
        ("utm_campaign", "eq", "spring", 2),
        ("utm_campaign", "neq", "spring", 4),
        ("utm_campaign", "in", ["spring", "autumn"], 3),
        ("utm_campaign", "contains", "PRING", 3),  # case-insensitive
        ("utm_campaign", "contains", "_", 1),  # a literal underscore, not a wildcard
        ("utm_campaign", "starts_with", "spr", 3),
        ("utm_campaign", "starts_with", "%", 0),
        ("country", "in", ["DE", "FR"], 4),
        ("referrer", "eq", "", 2),
    ],
)
async def test_filters(
    app: Any, known: World, dimension: str, op: str, value: Any, views: int
) -> None:
    query = {
        "metrics": ["views"],
        "filters": [{"dimension": dimension, "op": op, "value": value}],
        "date_range": WHOLE,
    }
    assert (await run(app, known.ada, query))["rows"] == [[views]]
    assert (await run(app, known.ada, query, source="events"))["rows"] == [[views]]


async def test_page_filters(app: Any, known: World) -> None:
    def query(op: str, value: Any) -> dict[str, Any]:
        return {
            "metrics": ["views"],
            "filters": [{"dimension": "page", "op": op, "value": value}],
            "date_range": WHOLE,
        }

    assert (await run(app, known.ada, query("eq", known.a)))["rows"] == [[4]]
    assert (await run(app, known.ada, query("neq", known.a)))["rows"] == [[2]]
    assert (await run(app, known.ada, query("in", [known.a, known.b])))["rows"] == [[6]]
    for value in (known.c, str(uuid.uuid4())):
        with pytest.raises(DomainError) as caught:
            await run(app, known.ada, query("eq", value))
        assert (caught.value.status, caught.value.code) == (404, "page_not_found")


async def test_filters_combine_with_and(app: Any, known: World) -> None:
    result = await run(
        app,
        known.ada,
        {
            "metrics": ["views"],
            "dimensions": ["day"],
            "filters": [
                {"dimension": "utm_source", "op": "eq", "value": "newsletter"},
                {"dimension": "country", "op": "neq", "value": "FR"},
            ],
            "date_range": WHOLE,
        },
    )
    assert result["source"] == "events"
    assert result["cost"] == 31 * 1 * 4
    assert result["rows"] == [["2024-10-04", 2]]


# Ordering, limit, defaults


async def test_order_by_and_limit(app: Any, known: World) -> None:
    query = {
        "metrics": ["views", "visitors"],
        "dimensions": ["country"],
        "order_by": [
            {"field": "visitors", "direction": "asc"},
            {"field": "country", "direction": "desc"},
        ],
        "limit": 2,
        "date_range": WHOLE,
    }
    result = await run(app, known.ada, query)
    assert result["rows"] == [["FR", 1, 1], ["US", 2, 2]]
    assert result["truncated"] is True


async def test_the_default_range_is_the_last_30_days_through_today(app: Any, known: World) -> None:
    now = at(30, 15)
    result = await run(app, known.ada, {"metrics": ["views"]}, now_ms=now)
    assert result["date_range"] == {"from": "2024-10-05T00:00:00Z", "to": "2024-11-04T00:00:00Z"}
    assert result["rows"] == [[3]]  # 10-05, 10-07 and 11-03
    assert result["cost"] == 30


async def test_a_range_starting_mid_day_counts_visitors_first_seen_in_it(
    app: Any, known: World
) -> None:
    # v1 was first seen at 09:10, before the range, and first converted at
    # 10:05, in it: they count as that day's converter but not its visitor.
    # v2, first seen at 10:00, is the visitor.
    query = {
        "metrics": ["views", "conversions", "visitors", "conversion_rate"],
        "date_range": {"from": "2024-10-04T10:00:00Z", "to": "2024-10-05T00:00:00"},
    }
    for source in ("rollups", "events"):
        assert (await run(app, known.ada, query, source=source))["rows"] == [[1, 1, 1, 1.0]]


async def test_an_empty_result(app: Any, known: World) -> None:
    base = {
        "metrics": ["views", "conversion_rate"],
        "date_range": {"from": "2020-01-01", "to": "2020-02-01"},
    }
    assert (await run(app, known.ada, base))["rows"] == [[0, 0.0]]
    assert (await run(app, known.ada, {**base, "dimensions": ["day"]}))["rows"] == []


# Source choice and cost


@pytest.mark.parametrize(
    ("dimensions", "filters", "source"),
    [
        ([], [], "rollups"),
        (["day", "utm_source"], [], "rollups"),
        (
            ["page", "week", "country"],
            [{"dimension": "country", "op": "eq", "value": "DE"}],
            "rollups",
        ),
        (["utm_source", "utm_medium"], [], "events"),
        (["utm_source"], [{"dimension": "device", "op": "eq", "value": "mobile"}], "events"),
    ],
)
async def test_rollups_answer_when_at_most_one_breakdown_is_used(
    app: Any, known: World, dimensions: list[str], filters: list[dict[str, Any]], source: str
) -> None:
    query = {
        "metrics": ["views"],
        "dimensions": dimensions,
        "filters": filters,
        "date_range": WHOLE,
    }
    assert (await run(app, known.ada, query))["source"] == source


async def test_costly_queries_are_refused_with_the_cost_and_the_way_out(
    app: Any, known: World
) -> None:
    query = {
        "metrics": ["views"],
        "dimensions": ["day", "page", "utm_source"],
        "date_range": {"from": "2023-01-01", "to": "2025-01-01"},
    }
    with pytest.raises(DomainError) as caught:
        await run(app, known.ada, query)
    error = caught.value
    assert (error.status, error.code) == (422, "query_too_costly")
    assert error.details == {"cost": 731 * 3, "max_cost": 2000}
    assert "2193" in error.message and "2000" in error.message and "date_range" in error.message
    raw = {**query, "dimensions": ["utm_source", "country"], "date_range": WHOLE}
    assert (await run(app, known.ada, raw))["cost"] == 31 * 2 * 4
    with pytest.raises(DomainError) as caught:
        await run(app, known.ada, raw, max_cost=200)
    assert caught.value.details == {"cost": 248, "max_cost": 200}


# Scoping


async def test_only_the_callers_existing_pages_are_seen(app: Any, known: World) -> None:
    orphan = str(uuid.uuid4())  # a deleted page's rows, not yet swept
    await store(app, [event(orphan, known.ada, "v7", at(0, 9))])
    query = {"metrics": ["views"], "dimensions": ["page"], "date_range": WHOLE}
    for source in ("rollups", "events"):
        ada = await run(app, known.ada, query, source=source)
        assert {row[0] for row in ada["rows"]} == {known.a, known.b}
        bob = await run(app, known.bob, query, source=source)
        assert bob["rows"] == [[known.c, 1]]
    carol = uuid.uuid4()  # no pages at all
    assert (await run(app, carol, {"metrics": ["views"]}))["rows"] == [[0]]


# Errors


@pytest.mark.parametrize(
    ("payload", "code", "path"),
    [
        ([], "validation_failed", ""),
        ({}, "validation_failed", "metrics"),
        ({"metrics": []}, "validation_failed", "metrics"),
        ({"metrics": ["clicks"]}, "validation_failed", "metrics[0]"),
        ({"metrics": ["views"], "sql": "DROP TABLE"}, "validation_failed", "sql"),
        ({"metrics": ["views"], "dimensions": ["city"]}, "validation_failed", "dimensions[0]"),
        ({"metrics": ["views"], "limit": 1001}, "validation_failed", "limit"),
        ({"metrics": ["views"], "limit": 0}, "validation_failed", "limit"),
        (
            {
                "metrics": ["views"],
                "filters": [
                    {"dimension": "country", "op": "eq", "value": "DE"},
                    {"dimension": "country", "op": "like", "value": "D%"},
                ],
            },
            "validation_failed",
            "filters[1].op",
        ),
        (
            {"metrics": ["views"], "filters": [{"dimension": "os", "op": "in", "value": "iOS"}]},
            "validation_failed",
            "filters[0].value",
        ),
        (
            {"metrics": ["views"], "filters": [{"dimension": "os", "op": "eq", "value": ["iOS"]}]},
            "validation_failed",
            "filters[0].value",
        ),
        (
            {"metrics": ["views"], "filters": [{"dimension": "os", "op": "in", "value": []}]},
            "validation_failed",
            "filters[0].value",
        ),
        (
            {
                "metrics": ["views"],
                "filters": [{"dimension": "os", "op": "eq", "value": "x" * 256}],
            },
            "validation_failed",
            "filters[0].value",
        ),
        (
            {"metrics": ["views"], "order_by": [{"field": "views", "direction": "up"}]},
            "validation_failed",
            "order_by[0].direction",
        ),
        (
            {"metrics": ["views"], "date_range": {"from": "yesterday"}},
            "validation_failed",
            "date_range.from",
        ),
        (
            {"metrics": ["views"], "date_range": {"since": "2024-01-01"}},
            "validation_failed",
            "date_range.since",
        ),
        ({"metrics": ["views", "views"]}, "invalid_query", "metrics[1]"),
        (
            {"metrics": ["views"], "dimensions": ["day", "country", "day"]},
            "invalid_query",
            "dimensions[2]",
        ),
        (
            {"metrics": ["views"], "order_by": [{"field": "visitors"}]},
            "invalid_query",
            "order_by[0].field",
        ),
        (
            {
                "metrics": ["views"],
                "filters": [{"dimension": "day", "op": "eq", "value": "2024-10-04"}],
            },
            "invalid_query",
            "filters[0].dimension",
        ),
        (
            {
                "metrics": ["views"],
                "filters": [{"dimension": "page", "op": "contains", "value": "a"}],
            },
            "invalid_query",
            "filters[0].op",
        ),
        (
            {
                "metrics": ["views"],
                "filters": [{"dimension": "page", "op": "eq", "value": "alpha"}],
            },
            "invalid_query",
            "filters[0].value",
        ),
        (
            {"metrics": ["views"], "date_range": {"from": "2024-10-05", "to": "2024-10-04"}},
            "invalid_query",
            "date_range.to",
        ),
        (
            {
                "metrics": ["views"],
                "date_range": {"from": "2024-10-04T10:00", "to": "2024-10-04T10:00"},
            },
            "invalid_query",
            "date_range.to",
        ),
        (
            {"metrics": ["views"], "date_range": {"from": "2020-01-01", "to": "2022-01-02"}},
            "invalid_query",
            "date_range",
        ),
        (
            {"metrics": ["views"], "date_range": {"from": "1969-12-31"}},
            "validation_failed",
            "date_range.from",
        ),
        (
            {"metrics": ["views"], "date_range": {"to": "9999-12-31T23:00-01:00"}},
            "validation_failed",
            "date_range.to",
        ),
        (
            {
                "metrics": ["views"],
                "date_range": {"from": "9999-12-30T00:00", "to": "9999-12-31T23:59:59.999999"},
            },
            "validation_failed",
            "date_range.to",
        ),
        (
            {"metrics": ["views"], "date_range": {"from": "0001-01-01T00:00:00+23:59"}},
            "validation_failed",
            "date_range.from",
        ),
        (
            {"metrics": ["views"], "date_range": {"to": "1970-01-01T00:00"}},
            "invalid_query",
            "date_range.to",
        ),
        (
            {"metrics": ["views"], "filters": [{"dimension": "os", "op": "eq", "value": "a\x00"}]},
            "validation_failed",
            "filters[0].value",
        ),
        # A lone surrogate (JSON's "\ud800") is no text: it can be neither
        # hashed for the cache key nor stored (it was a 500).
        (
            {
                "metrics": ["views"],
                "filters": [{"dimension": "browser", "op": "eq", "value": "\ud800"}],
            },
            "validation_failed",
            "filters[0].value",
        ),
        (
            {
                "metrics": ["views"],
                "filters": [{"dimension": "os", "op": "in", "value": ["Linux", "a\udfff"]}],
            },
            "validation_failed",
            "filters[0].value[1]",
        ),
        ({"metrics": ["views"], "limit": True}, "validation_failed", "limit"),
        ({"metrics": ["views"], "limit": "10"}, "validation_failed", "limit"),
        (
            {"metrics": ["views"], "date_range": {"from": "2099-01-01"}},
            "invalid_query",
            "date_range.from",
        ),
    ],
)
async def test_errors_name_the_offending_field(
    app: Any, world: World, payload: Any, code: str, path: str
) -> None:
    with pytest.raises(DomainError) as caught:
        await run(app, world.ada, payload)
    error = caught.value
    assert (error.status, error.code) == (422, code)
    assert error.message
    assert path in [detail["path"] for detail in error.details], error.details


# Rollups, raw events and a Python reference agree


def _time_label(dimension: str, hour: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=hour)
    if dimension == "hour":
        return moment.strftime("%Y-%m-%dT%H:00:00Z")
    if dimension == "day":
        return moment.date().isoformat()
    if dimension == "week":
        return (moment.date() - timedelta(days=moment.weekday())).isoformat()
    return moment.strftime("%Y-%m")


def _value(row: AnalyticsEvent, dimension: str) -> str:
    if dimension == "page":
        return str(row.page_id)
    if dimension in ("hour", "day", "week", "month"):
        return _time_label(dimension, row.hour)
    return str(getattr(row, dimension))


def _matches(row: AnalyticsEvent, item: dict[str, Any]) -> bool:
    value, wanted = _value(row, item["dimension"]), item["value"]
    return {
        "eq": lambda: value == wanted,
        "neq": lambda: value != wanted,
        "in": lambda: value in wanted,
        "contains": lambda: wanted.lower() in value.lower(),
        "starts_with": lambda: value.lower().startswith(wanted.lower()),
    }[item["op"]]()


def reference(
    rows: list[AnalyticsEvent], query: dict[str, Any], start: int, end: int
) -> dict[tuple[str, ...], list[Any]]:
    """The definitions of docs/custom-queries.md, counted the slow way."""
    dimensions = query.get("dimensions", [])
    hourly = "hour" in dimensions
    live = [
        r
        for r in rows
        if not r.is_bot and r.hour < end and all(_matches(r, f) for f in query.get("filters", []))
    ]
    first_seen: dict[Any, int] = {}
    first_conversion: dict[Any, int] = {}
    for r in live:
        day = (r.page_id, r.hour // 24, r.visitor)
        first_seen[day] = min(first_seen.get(day, r.hour), r.hour)
        if r.kind == "event":
            first_conversion[day] = min(first_conversion.get(day, r.hour), r.hour)
    groups: dict[tuple[str, ...], list[Any]] = {}
    for r in live:
        if r.hour < start:
            continue
        group = groups.setdefault(tuple(_value(r, d) for d in dimensions), [0, 0, set(), set()])
        group[0 if r.kind == "view" else 1] += 1
        day = (r.page_id, r.hour // 24, r.visitor)
        if hourly:
            group[2].add((r.page_id, r.hour, r.visitor))
            if r.kind == "event":
                group[3].add((r.page_id, r.hour, r.visitor))
        else:
            if first_seen[day] >= start:
                group[2].add(day)
            if first_conversion.get(day, end) >= start and day in first_conversion:
                group[3].add(day)
    metrics = {
        key: {
            "views": v,
            "conversions": c,
            "visitors": len(vs),
            # Whoever converted in the range was there: never above 100 %.
            "conversion_rate": round(len(cs) / max(len(vs), len(cs)), 4) if vs or cs else 0.0,
        }
        for key, (v, c, vs, cs) in groups.items()
    }
    return {key: [m[name] for name in query["metrics"]] for key, m in metrics.items()}


def random_traffic(w: World, seed: int) -> Iterator[Event]:
    rng = random.Random(seed)
    pages = [(w.a, w.ada), (w.b, w.ada), (w.c, w.bob)]
    for _ in range(600):
        page, owner = rng.choice(pages)
        yield event(
            page,
            owner,
            f"v{rng.randrange(25)}",
            at(rng.randrange(-1, 9), rng.randrange(24), rng.randrange(60)),
            rng.choice(["view", "view", "view", "event"]),
            agent=rng.choice([BROWSER, BROWSER, IPHONE, GOOGLEBOT]),
            referrer=rng.choice(["", "google.com", "news.ycombinator.com"]),
            source=rng.choice(["", "newsletter", "ads", "Ads_%"]),
            medium=rng.choice(["", "email", "cpc"]),
            campaign=rng.choice(["", "spring", "autumn"]),
            width=rng.choice([None, None, 400, 800, 1400]),
            country=rng.choice(["", "DE", "FR", "US"]),
        )


COMPARED: list[dict[str, Any]] = [
    {"metrics": ["views", "visitors", "conversions", "conversion_rate"]},
    {"metrics": ["visitors", "conversion_rate"], "dimensions": ["day", "utm_source"]},
    {"metrics": ["visitors", "conversion_rate"], "dimensions": ["hour"]},
    {"metrics": ["visitors", "views"], "dimensions": ["hour", "device", "page"]},
    {"metrics": ["visitors", "conversions"], "dimensions": ["week", "month", "browser"]},
    {"metrics": ["conversion_rate", "visitors"], "dimensions": ["os", "country"]},
    {"metrics": ["views"], "dimensions": ["referrer", "utm_medium", "utm_campaign", "page"]},
    {
        "metrics": ["visitors", "conversion_rate"],
        "dimensions": ["day"],
        "filters": [
            {"dimension": "utm_source", "op": "contains", "value": "_%"},
            {"dimension": "page", "op": "neq", "value": "A"},
        ],
    },
    {
        "metrics": ["views", "visitors"],
        "dimensions": ["country"],
        "filters": [{"dimension": "utm_source", "op": "starts_with", "value": "AD"}],
    },
    {
        "metrics": ["views", "conversion_rate"],
        "dimensions": ["page", "day"],
        "filters": [
            {"dimension": "device", "op": "in", "value": ["mobile", "tablet"]},
            {"dimension": "country", "op": "neq", "value": "FR"},
        ],
    },
]


@pytest.mark.parametrize(
    "date_range",
    [
        {"from": "2024-10-04", "to": "2024-10-12"},
        {"from": "2024-10-04T07:00:00Z", "to": "2024-10-10T15:00:00+00:00"},
        {"from": "2024-10-06T02:00:00+02:00", "to": "2024-10-07T00:00:00Z"},
    ],
)
async def test_rollups_events_and_a_reference_agree_on_random_traffic(
    app: Any, world: World, date_range: dict[str, str]
) -> None:
    # In time order, as ingestion sees it; two batches, so visitor-day state
    # is carried from one to the next.
    traffic = sorted(random_traffic(world, seed=4), key=lambda e: e.received_ms)
    await store(app, traffic[:300])
    await store(app, traffic[300:])
    async with app.components.db.read_primary() as session:
        rows = list((await session.scalars(select(AnalyticsEvent))).all())
    start = int(datetime.fromisoformat(date_range["from"]).timestamp()) // 3600
    end = int(datetime.fromisoformat(date_range["to"]).timestamp()) // 3600
    for template in COMPARED:
        query = {**copy.deepcopy(template), "date_range": date_range, "limit": 1000}
        for item in query.get("filters", []):
            if item["value"] == "A":
                item["value"] = world.a
        expected = reference([r for r in rows if r.owner_id == world.ada], query, start, end)
        assert expected or "filters" in query  # the traffic reaches every range
        raw = await run(app, world.ada, query, source="events")
        width = len(query.get("dimensions", []))
        got = {tuple(row[:width]): row[width:] for row in raw["rows"]}
        if not width and not expected:
            expected = {(): [0.0 if m == "conversion_rate" else 0 for m in query["metrics"]]}
        assert got == expected, query
        assert len(got) == len(raw["rows"])
        breakdowns = {
            d
            for d in query.get("dimensions", [])
            if d not in ("page", "hour", "day", "week", "month")
        }
        breakdowns |= {f["dimension"] for f in query.get("filters", []) if f["dimension"] != "page"}
        if len(breakdowns) <= 1:
            rolled = await run(app, world.ada, query, source="rollups")
            assert rolled["rows"] == raw["rows"], query
        # The same rows in the same order, and the same cut, whatever the limit.
        cut = await run(app, world.ada, {**query, "limit": 3}, source="events")
        assert cut["rows"] == raw["rows"][:3]


def test_the_fixed_dates_of_these_tests() -> None:
    # Sanity of the test's own dates: day 20000 is the Friday 2024-10-04.
    assert date(1970, 1, 1) + timedelta(days=DAY) == date(2024, 10, 4)
    assert _time_label("week", H) == "2024-09-30"


# HTTP


async def test_http_needs_a_user(client: httpx.AsyncClient) -> None:
    response = await client.post("/analytics/custom-query", json={"metrics": ["views"]})
    assert_error(response, 401)


async def test_http_errors_have_the_one_shape(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    response = await client.post(
        "/analytics/custom-query",
        json={"metrics": ["views"], "filters": [{"dimension": "os", "op": "like", "value": "x"}]},
        headers=ada,
    )
    error = assert_error(response, 422, "validation_failed")
    assert [d["path"] for d in error["details"]] == ["filters[0].op"]
    response = await client.post(
        "/analytics/custom-query",
        json={"metrics": ["views"], "order_by": [{"field": "day"}]},
        headers=ada,
    )
    error = assert_error(response, 422, "invalid_query")
    assert error["details"][0]["path"] == "order_by[0].field"


async def test_http_answers_a_query(
    client: httpx.AsyncClient, app: Any, known: World, ada: dict[str, str]
) -> None:
    response = await client.post(
        "/analytics/custom-query",
        json={"metrics": ["views", "visitors"], "dimensions": ["day"], "date_range": WHOLE},
        headers=ada,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "rollups"
    assert body["columns"] == ["day", "views", "visitors"]
    assert body["rows"][0] == ["2024-10-04", 3, 2]


async def test_http_results_are_cached_until_new_data_or_a_page_change(
    client: httpx.AsyncClient, app: Any, known: World, ada: dict[str, str]
) -> None:
    """Kept like the reports (the tests' reports may lag 0 seconds): the
    same question again reads only the two stamps; new data, or a change
    to the caller's pages, is in the very next answer."""
    query = {"metrics": ["views"], "dimensions": ["page"], "date_range": WHOLE}

    async def views_by_page() -> dict[str, int]:
        response = await client.post("/analytics/custom-query", json=query, headers=ada)
        assert response.status_code == 200, response.text
        return {page: views for page, views in response.json()["rows"]}

    first = await views_by_page()
    with counted_statements(app) as statements:
        assert await views_by_page() == first
    assert only_stamps_read(statements), statements

    async with app.components.db.write() as session:
        later = NOW_MS + 1  # the stamp of a later batch
        await writes.write_batch(session, [event(known.a, known.ada, "v9", at(0, 10))], later)
    assert (await views_by_page())[known.a] == first[known.a] + 1

    deleted = await client.delete(f"/landing-pages/{known.b}", headers=ada)
    assert deleted.status_code == 204, deleted.text
    assert known.b not in await views_by_page()


async def test_a_range_is_widened_to_whole_hours_as_the_reports_widen_it(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """The same from and to give the same range here and in a page report."""
    query = {
        "metrics": ["views"],
        "date_range": {"from": "2024-10-04T10:10:00Z", "to": "2024-10-04T10:50:00Z"},
    }
    answer = await client.post("/analytics/custom-query", json=query, headers=ada)
    assert answer.status_code == 200, answer.text
    resolved = answer.json()["date_range"]
    assert (resolved["from"], resolved["to"]) == ("2024-10-04T10:00:00Z", "2024-10-04T11:00:00Z")
