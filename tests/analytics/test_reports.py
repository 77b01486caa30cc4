"""Page and dashboard reports: numbers, ranges, caching, owner scoping."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from landform.analytics import writes
from landform.analytics.events import EVENT, VIEW, Event
from tests.analytics.conftest import IPHONE, publish_page, track_event, track_view
from tests.conftest import assert_error
from tests.files import samples


async def traffic(client: httpx.AsyncClient, app: Any, page_id: str) -> None:
    """Three visitors: two views and a conversion from one, one view each
    from the others (one via a newsletter campaign on an iPhone)."""
    await track_view(client, page_id, address="203.0.113.1", referrer="https://google.com/")
    await track_view(client, page_id, address="203.0.113.1")
    await track_event(client, page_id, address="203.0.113.1")
    await track_view(
        client,
        page_id,
        address="203.0.113.2",
        user_agent=IPHONE,
        utm_source="newsletter",
        utm_campaign="spring",
        screen_width=390,
    )
    await track_view(
        client, page_id, address="203.0.113.3", referrer="https://news.ycombinator.com/"
    )
    await app.components.ingestion.flush()


async def test_page_report_counts_views_visitors_and_conversions(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], page: dict[str, Any]
) -> None:
    await traffic(client, app, page["id"])
    response = await client.get(f"/analytics/pages/{page['id']}", headers=ada)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["page"]["slug"] == "spring-sale"
    assert report["totals"] == {
        "views": 4,
        "visitors": 3,
        "conversions": 1,
        "conversion_rate": round(1 / 3, 4),
        "bot_views": 0,
    }
    assert report["interval"] == "day"
    assert sum(point["views"] for point in report["series"]) == 4
    assert len(report["series"]) in (7, 8)
    referrers = {item["value"]: item["visitors"] for item in report["top_referrers"]}
    assert referrers == {"google.com": 1, "news.ycombinator.com": 1, "": 1}
    assert [item["value"] for item in report["utm_campaigns"] if item["value"]] == ["spring"]
    devices = {item["value"]: item["views"] for item in report["devices"]}
    assert devices == {"desktop": 3, "mobile": 1}
    hourly = await client.get(
        f"/analytics/pages/{page['id']}", params={"interval": "hour"}, headers=ada
    )
    assert hourly.json()["interval"] == "hour"
    assert sum(point["views"] for point in hourly.json()["series"]) == 4


async def test_reports_see_new_data_at_once_despite_the_cache(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], page: dict[str, Any]
) -> None:
    await track_view(client, page["id"])
    await app.components.ingestion.flush()
    first = await client.get(f"/analytics/pages/{page['id']}", headers=ada)
    assert first.json()["totals"]["views"] == 1
    await track_view(client, page["id"])
    await app.components.ingestion.flush()
    second = await client.get(f"/analytics/pages/{page['id']}", headers=ada)
    assert second.json()["totals"]["views"] == 2


async def test_reports_see_a_rename_or_a_delete_at_once_despite_the_cache(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], page: dict[str, Any]
) -> None:
    """A report names pages: kept reports follow the owner's content too,
    not only new traffic."""
    other = await publish_page(client, ada, "autumn-sale", "Autumn")
    await track_view(client, page["id"])
    await track_view(client, other["id"])
    await app.components.ingestion.flush()
    report_url = f"/analytics/pages/{page['id']}"
    assert (await client.get(report_url, headers=ada)).json()["page"]["slug"] == "spring-sale"
    board = (await client.get("/analytics/dashboard", headers=ada)).json()
    assert board["pages"] == 2 and board["totals"]["views"] == 2
    renamed = await client.put(
        f"/landing-pages/{page['id']}", json={"slug": "summer-sale"}, headers=ada
    )
    assert renamed.status_code == 200
    assert (await client.get(report_url, headers=ada)).json()["page"]["slug"] == "summer-sale"
    assert (await client.delete(f"/landing-pages/{other['id']}", headers=ada)).status_code == 204
    board = (await client.get("/analytics/dashboard", headers=ada)).json()
    assert board["pages"] == 1 and board["totals"]["views"] == 1
    assert [top["slug"] for top in board["top_pages"]] == ["summer-sale"]


async def test_edits_uploads_new_pages_and_renames_leave_kept_reports_be(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], page: dict[str, Any]
) -> None:
    """A page's blocks, SEO, publishing, an upload, a new page and a rename
    change no number a report shows: the kept answers are served, not
    computed again, and what they show of pages (titles, slugs, the count)
    is as it is now. (Each such write made every report be computed again:
    under the load test's mix, where accounts create and edit pages while
    they read their reports, one analytics lookup in five was a hit.)"""
    await track_view(client, page["id"])
    await app.components.ingestion.flush()
    query = {"metrics": ["views"], "dimensions": ["page"]}

    async def answers() -> list[Any]:
        report = await client.get(f"/analytics/pages/{page['id']}", headers=ada)
        board = await client.get("/analytics/dashboard", headers=ada)
        custom = await client.post("/analytics/custom-query", json=query, headers=ada)
        assert [r.status_code for r in (report, board, custom)] == [200, 200, 200]
        return [report.json(), board.json(), custom.json()["rows"]]

    first = await answers()
    url = f"/landing-pages/{page['id']}"
    hero = {"type": "hero", "headline": "Edited"}
    made = [
        await client.put(f"{url}/content", json={"blocks": [hero]}, headers=ada),
        await client.put(url, json={"seo": {"meta_description": "New"}}, headers=ada),
        await client.post(f"{url}/publish", headers=ada),
        await client.post(
            "/files/upload", files={"file": ("a.png", samples.png(), "image/png")}, headers=ada
        ),
        await client.post("/landing-pages", json={"title": "Autumn"}, headers=ada),
        await client.put(url, json={"title": "Spring, again", "slug": "spring-again"}, headers=ada),
    ]
    assert [w.status_code for w in made] == [200, 200, 200, 201, 201, 200]
    computed = app.components.cache.stats.of("l1", "analytics")
    misses = computed.misses
    report, board, rows = await answers()
    assert computed.misses == misses

    assert rows == first[2]
    renamed = {"id": page["id"], "title": "Spring, again", "slug": "spring-again"}
    assert report == {**first[0], "page": renamed}
    assert board["totals"] == first[1]["totals"] and board["pages"] == 2
    assert board["top_pages"] == [{**first[1]["top_pages"][0], **renamed}]


async def test_dashboard_totals_change_top_pages_and_live_visitors(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], page: dict[str, Any]
) -> None:
    other = await publish_page(client, ada, "autumn-sale", "Autumn")
    for _ in range(3):
        await track_view(client, other["id"])
    await track_view(client, page["id"])
    await app.components.ingestion.flush()
    response = await client.get("/analytics/dashboard", headers=ada)
    assert response.status_code == 200, response.text
    board = response.json()
    assert board["totals"]["views"] == 4
    assert board["totals"]["visitors"] == 2  # one visitor, on two pages
    assert board["previous_totals"]["views"] == 0
    assert board["change"]["views"] is None
    assert [p["slug"] for p in board["top_pages"]] == ["autumn-sale", "spring-sale"]
    assert board["top_pages"][0]["views"] == 3
    assert board["visitors_last_5_minutes"] == 2
    assert board["pages"] == 2


async def test_another_users_page_is_not_found(
    client: httpx.AsyncClient, app: Any, bob: dict[str, str], page: dict[str, Any]
) -> None:
    await track_view(client, page["id"])
    await app.components.ingestion.flush()
    assert_error(
        await client.get(f"/analytics/pages/{page['id']}", headers=bob), 404, "page_not_found"
    )
    board = (await client.get("/analytics/dashboard", headers=bob)).json()
    assert board["totals"]["views"] == 0
    assert board["top_pages"] == []
    assert board["visitors_last_5_minutes"] == 0


async def test_reports_need_a_user(client: httpx.AsyncClient, page: dict[str, Any]) -> None:
    assert_error(await client.get(f"/analytics/pages/{page['id']}"), 401)
    assert_error(await client.get("/analytics/dashboard"), 401)
    assert_error(await client.post("/analytics/custom-query", json={}), 401)


async def test_bad_ranges_are_refused(
    client: httpx.AsyncClient, ada: dict[str, str], page: dict[str, Any]
) -> None:
    url = f"/analytics/pages/{page['id']}"
    now = datetime.now(UTC)
    cases = [
        ({"from": "yesterday"}, "from"),
        # A date with an offset but no time is no datetime (Python alone
        # would take the "+" for the separator and 02:00 for the time).
        ({"from": "2026-12-01+02:00"}, "from"),
        ({"from": "2026-12-01x10:00"}, "from"),
        ({"from": now.isoformat(), "to": (now - timedelta(days=1)).isoformat()}, "from"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),
        ({"interval": "minute"}, "interval"),
        ({"from": (now - timedelta(days=60)).isoformat(), "interval": "hour"}, "interval"),
    ]
    for params, field in cases:
        error = assert_error(await client.get(url, params=params, headers=ada), 422)
        # Named as query parameters, as every query error names them.
        paths = [detail["path"] for detail in error["details"]]
        assert f"query.{field}" in paths, (params, error)
    assert_error(await client.get("/analytics/pages/not-a-uuid", headers=ada), 422)


async def test_an_offset_typed_into_the_url_unencoded_is_read_as_one(
    client: httpx.AsyncClient, ada: dict[str, str], page: dict[str, Any]
) -> None:
    """``?from=…T08:00:00+02:00`` typed by hand: the query string's ``+`` is
    a space, and the range is the one meant, not a 422."""
    url = f"/analytics/pages/{page['id']}"
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    typed = await client.get(
        f"{url}?from={day}T08:00:00+02:00&to={day}T20:00:00+0530&interval=hour", headers=ada
    )
    encoded = await client.get(
        url,
        params={"from": f"{day}T08:00:00+02:00", "to": f"{day}T20:00:00+05:30", "interval": "hour"},
        headers=ada,
    )
    assert typed.status_code == 200, typed.text
    assert typed.json()["from"] == encoded.json()["from"] == f"{day}T06:00:00Z"
    assert typed.json()["to"] == encoded.json()["to"]


async def test_reports_over_days_agree_with_the_events_they_count(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], page: dict[str, Any]
) -> None:
    """Whole days come from the daily rollups and the hours at either end
    of the range from hourly ones; together they count what the events say."""
    me = (await client.get("/auth/me", headers=ada)).json()
    rng = random.Random(4)
    now_hour = int(datetime.now(UTC).timestamp()) // 3600
    events = []
    for _ in range(600):
        hour = now_hour - rng.randrange(0, 24 * 6)
        kind = VIEW if rng.random() < 0.8 else EVENT
        events.append(
            Event(
                uuid.uuid4().hex,
                hour * 3_600_000 + rng.randrange(3_600_000),
                kind,
                page["id"],
                me["id"],
                f"{rng.randrange(40):016x}",
                IPHONE,
                "/",
                rng.choice(["", "google.com", "t.co"]),
                "",
                "",
                "",
                None,
                "",
                "cta_click" if kind == EVENT else None,
                None,
            )
        )
    async with app.components.db.write() as session:
        await writes.write_batch(session, events, 0)
    start_hour = now_hour - 24 * 5 + 7  # mid-day: hourly rollups for the first hours
    start = datetime.fromtimestamp(start_hour * 3600, UTC)
    report = (
        await client.get(
            f"/analytics/pages/{page['id']}",
            params={"from": start.isoformat(), "interval": "day"},
            headers=ada,
        )
    ).json()
    # The reference, by aggregate's definitions: a visitor-day counts in
    # the hour it was first seen (so only if that hour is in the range).
    first_seen: dict[tuple[str, int], int] = {}
    for event in sorted(events, key=lambda e: e.received_ms):
        first_seen.setdefault((event.visitor, event.hour // 24), event.hour)
    in_range = [e for e in events if e.hour >= start_hour]
    assert report["totals"]["views"] == sum(e.kind == VIEW for e in in_range)
    assert report["totals"]["conversions"] == sum(e.kind == EVENT for e in in_range)
    assert report["totals"]["visitors"] == sum(h >= start_hour for h in first_seen.values())
    by_day = {point["time"]: point["views"] for point in report["series"]}
    for event in in_range:
        label = datetime.fromtimestamp(event.hour * 3600, UTC).strftime("%Y-%m-%d")
        by_day[label] -= event.kind == VIEW
    assert set(by_day.values()) == {0}
    assert sum(item["views"] for item in report["top_referrers"]) == report["totals"]["views"]
    board = (
        await client.get("/analytics/dashboard", params={"from": start.isoformat()}, headers=ada)
    ).json()
    assert board["totals"]["views"] == report["totals"]["views"]
    assert board["totals"]["visitors"] == report["totals"]["visitors"]


async def test_dates_outside_the_calendar_we_keep_are_refused(
    client: httpx.AsyncClient, ada: dict[str, str], page: dict[str, Any]
) -> None:
    for url in (f"/analytics/pages/{page['id']}", "/analytics/dashboard"):
        for params, field in (
            ({"to": "0001-01-05"}, "query.to"),
            ({"from": "0001-01-01", "to": "0002-06-01"}, "query.from"),
            ({"from": "1969-12-30", "to": "1970-01-02"}, "query.from"),
            ({"from": "9998-01-01", "to": "9999-12-31T23:30:00"}, "query.from"),
            # Offsets that carry an instant past year 9999 or before year 1.
            ({"to": "9999-12-31T23:59:59-05:00"}, "query.to"),
            ({"from": "0001-01-01T00:00+01:00", "to": "1970-01-02"}, "query.from"),
            ({"from": "9999-12-31T23:59:59-14:00"}, "query.from"),
            ({"from": "1796000000"}, "query.from"),  # a number is not a date here
            # No `from`: the default range stops at the epoch, so only `to` can be wrong.
            ({"to": "1970-01-01"}, "query.to"),
            # Bounds that are dates, but not a range.
            ({"from": "2024-10-05", "to": "2024-10-04"}, "query.from"),
            ({"from": "2020-01-01", "to": "2024-01-01"}, "query.from"),
        ):
            error = assert_error(await client.get(url, params=params, headers=ada), 422)
            assert error["details"][0]["path"] == field, (url, params, error)


def _event(me: dict[str, Any], page: dict[str, Any], hour: int, kind: str, visitor: str,
           referrer: str = "") -> Event:  # fmt: skip
    return Event(
        uuid.uuid4().hex, hour * 3_600_000 + 60_000, kind, page["id"], me["id"], visitor,
        IPHONE, "/", referrer, "", "", "", None, "", "cta_click" if kind == EVENT else None, None,
    )  # fmt: skip


async def test_the_conversion_rate_never_passes_every_visitor_and_ties_sort_alike(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], page: dict[str, Any]
) -> None:
    """Three visitors seen in one hour convert in the next, where a fourth
    only looks: over the second hour alone the visitors counted (first seen
    there) are one, the converters three. Whoever converted was there: the
    rate is 100 %, not 300 %. And rows that tie keep one order."""
    me = (await client.get("/auth/me", headers=ada)).json()
    hour = int(datetime.now(UTC).timestamp()) // 3600 - 30
    hour -= hour % 24 - 5  # 05:00 of a day: both hours in it
    events = [_event(me, page, hour, VIEW, f"{n:016x}", f"ref-{n}.example") for n in range(3)]
    events += [_event(me, page, hour + 1, EVENT, f"{n:016x}") for n in range(3)]
    events.append(_event(me, page, hour + 1, VIEW, f"{9:016x}"))
    async with app.components.db.write() as session:
        await writes.write_batch(session, events, 0)
    second = {
        "from": datetime.fromtimestamp((hour + 1) * 3600, UTC).isoformat(),
        "to": datetime.fromtimestamp((hour + 2) * 3600, UTC).isoformat(),
    }
    report = (await client.get(f"/analytics/pages/{page['id']}", params=second, headers=ada)).json()
    assert report["totals"]["conversions"] == 3 and report["totals"]["visitors"] == 1
    assert report["totals"]["conversion_rate"] == 1.0
    assert all(0 <= item["conversion_rate"] <= 1 for item in report["top_referrers"])
    query = {
        "metrics": ["visitors", "conversion_rate"],
        "date_range": {"from": second["from"], "to": second["to"]},
        "order_by": [{"field": "conversion_rate", "direction": "desc"}],
    }
    custom = (await client.post("/analytics/custom-query", json=query, headers=ada)).json()
    assert custom["rows"] == [[1, 1.0]]
    # The first hour: three referrers that tie, listed by name.
    first = {"from": datetime.fromtimestamp(hour * 3600, UTC).isoformat(), "to": second["from"]}
    tied = (await client.get(f"/analytics/pages/{page['id']}", params=first, headers=ada)).json()
    names = [item["value"] for item in tied["top_referrers"]]
    assert names == ["ref-0.example", "ref-1.example", "ref-2.example"]


async def test_empty_range_fields_are_the_defaults(
    client: httpx.AsyncClient, ada: dict[str, str], page: dict[str, Any]
) -> None:
    """As an HTML form sends fields left blank."""
    url = f"/analytics/pages/{page['id']}"
    blank = await client.get(url, params={"from": "", "to": "", "interval": ""}, headers=ada)
    assert blank.status_code == 200, blank.text
    default = (await client.get(url, headers=ada)).json()
    assert (blank.json()["from"], blank.json()["interval"]) == (
        default["from"],
        default["interval"],
    )
    board = await client.get("/analytics/dashboard", params={"from": "", "to": ""}, headers=ada)
    assert board.status_code == 200, board.text


async def test_a_range_within_the_limits_stays_within_them_once_widened(
    client: httpx.AsyncClient, ada: dict[str, str], page: dict[str, Any]
) -> None:
    """Widened to whole hours, a range asked for within a limit gets up to
    an hour more, and is not refused for it."""
    url = f"/analytics/pages/{page['id']}"
    yearly = {"from": "2025-01-01T00:30:00Z", "to": "2027-01-02T00:10:00Z"}  # 730 d 23 h 40 min
    assert (await client.get(url, params=yearly, headers=ada)).status_code == 200
    hourly = {"from": "2026-11-01T00:30:00Z", "to": "2026-12-02T00:10:00Z", "interval": "hour"}
    assert (await client.get(url, params=hourly, headers=ada)).status_code == 200
    query = {"metrics": ["views"], "date_range": {"from": yearly["from"], "to": yearly["to"]}}
    custom = await client.post("/analytics/custom-query", json=query, headers=ada)
    assert custom.status_code == 200, custom.text
    too_long = {"from": "2025-01-01T00:00:00Z", "to": "2027-01-03T00:00:00Z"}
    assert_error(await client.get(url, params=too_long, headers=ada), 422)
