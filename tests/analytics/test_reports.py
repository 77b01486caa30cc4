"""Page and dashboard reports: numbers, ranges, caching, owner scoping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.analytics.conftest import IPHONE, publish_page, track_event, track_view
from tests.conftest import assert_error


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
        ({"from": now.isoformat(), "to": (now - timedelta(days=1)).isoformat()}, "from"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),
        ({"interval": "minute"}, "interval"),
        ({"from": (now - timedelta(days=60)).isoformat(), "interval": "hour"}, "interval"),
    ]
    for params, field in cases:
        error = assert_error(await client.get(url, params=params, headers=ada), 422)
        assert any(field in detail["path"] for detail in error["details"]), (params, error)
    assert_error(await client.get("/analytics/pages/not-a-uuid", headers=ada), 422)
