"""The tracking endpoints: what they accept, what they refuse, and that
what they accept is counted once."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from landform.analytics.classify import classify_agent, country_code
from landform.analytics.models import AnalyticsEvent, AnalyticsRollup
from landform.analytics.tracker import PageDirectory, TrackedPage
from landform.core.db_failures import DatabaseUnavailable
from tests.analytics.conftest import BROWSER, GOOGLEBOT, IPHONE, track, track_event, track_view
from tests.conftest import assert_error, signed_in, two_replicas


async def stored_events(app: Any) -> list[AnalyticsEvent]:
    await app.components.ingestion.flush()
    async with app.components.db.read_primary() as session:
        return list((await session.scalars(select(AnalyticsEvent))).all())


async def totals(app: Any, page_id: str) -> dict[str, int]:
    async with app.components.db.read_primary() as session:
        rows = (
            await session.scalars(select(AnalyticsRollup).where(AnalyticsRollup.dimension == ""))
        ).all()
    sums = {"views": 0, "visitors_d": 0, "conversions": 0, "bot_views": 0}
    for row in rows:
        if str(row.page_id) == page_id:
            for name in sums:
                sums[name] += getattr(row, name)
    return sums


async def test_a_view_is_accepted_and_counted(
    client: httpx.AsyncClient, app: Any, page: dict[str, Any]
) -> None:
    response = await track_view(
        client,
        page["id"],
        path="/spring-sale",
        referrer="https://www.Google.com/search?q=x",
        utm_source="newsletter",
        utm_campaign="spring",
        screen_width=390,
        user_agent=IPHONE,
    )
    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.content == b""
    (event,) = await stored_events(app)
    assert str(event.page_id) == page["id"]
    assert event.kind == "view"
    assert event.referrer == "google.com"
    assert event.utm_source == "newsletter"
    assert event.utm_campaign == "spring"
    assert event.device == "mobile"
    assert event.browser == "Mobile Safari"
    assert event.os == "iOS"
    assert not event.is_bot
    assert len(event.visitor) == 16
    assert await totals(app, page["id"]) == {
        "views": 1,
        "visitors_d": 1,
        "conversions": 0,
        "bot_views": 0,
    }


async def test_the_beacon_text_plain_body_and_slug_are_accepted(
    client: httpx.AsyncClient, app: Any, page: dict[str, Any]
) -> None:
    response = await client.post(
        "/analytics/track-view",
        content=b'{"slug": "spring-sale", "path": "/spring-sale"}',
        headers={"Content-Type": "text/plain;charset=UTF-8", "User-Agent": BROWSER},
    )
    assert response.status_code == 202, response.text
    (event,) = await stored_events(app)
    assert str(event.page_id) == page["id"]


async def test_cors_preflight_is_open(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/analytics/track-event",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]


async def test_conversions_are_counted_per_visitor(
    client: httpx.AsyncClient, app: Any, page: dict[str, Any]
) -> None:
    assert (await track_view(client, page["id"])).status_code == 202
    assert (await track_event(client, page["id"], label="Buy now")).status_code == 202
    assert (await track_event(client, page["id"], "form_submit", value=49.5)).status_code == 202
    events = await stored_events(app)
    assert sorted(e.kind for e in events) == ["event", "event", "view"]
    assert {e.visitor for e in events} == {events[0].visitor}
    assert {e.name for e in events if e.kind == "event"} == {"cta_click", "form_submit"}
    assert await totals(app, page["id"]) == {
        "views": 1,
        "visitors_d": 1,
        "conversions": 2,
        "bot_views": 0,
    }


async def test_bots_are_counted_apart_from_visitors(
    client: httpx.AsyncClient, app: Any, page: dict[str, Any]
) -> None:
    for agent in (GOOGLEBOT, "curl/8.5.0", "python-requests/2.32", ""):
        assert (await track_view(client, page["id"], user_agent=agent)).status_code == 202
    await track_view(client, page["id"])
    events = await stored_events(app)
    assert sum(e.is_bot for e in events) == 4
    assert await totals(app, page["id"]) == {
        "views": 1,
        "visitors_d": 1,
        "conversions": 0,
        "bot_views": 4,
    }


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"", "application/json", 422, "validation_failed"),
        (b"not json", "text/plain", 422, "malformed_json"),
        (b'{"slug": "a\xff"}', "application/json", 422, "malformed_json"),
        (b'{"slug": "a"}\x00', "application/json", 422, "malformed_json"),
        (b'{"slug": "a\x00"}', "text/plain", 422, "malformed_json"),
        (b'{"slug": "\\ud800"}', "application/json", 422, "malformed_json"),
        (b"[1, 2]", "application/json", 422, "validation_failed"),
        (b'{"path": "/"}', "application/json", 422, "validation_failed"),
        (b'{"page_id": "nope"}', "application/json", 422, "validation_failed"),
        (b'{"slug": "x", "screen_width": -3}', "application/json", 422, "validation_failed"),
        (b'{"slug": "x", "screen_width": true}', "application/json", 422, "validation_failed"),
        (b'{"slug": "x", "screen_width": "400"}', "text/plain", 422, "validation_failed"),
        (b'{"slug": "x", "extra": 1}', "application/json", 422, "validation_failed"),
        (b'{"slug": "x", "path": "a\\u0000b"}', "application/json", 422, "validation_failed"),
        (b'{"slug": "x"}', "multipart/form-data", 415, "unsupported_media_type"),
        (b'{"slug": "x", "referrer": "' + b"a" * 5000 + b'"}', "text/plain", 413, None),
    ],
)
async def test_malformed_views_are_refused_and_not_stored(
    client: httpx.AsyncClient,
    app: Any,
    page: dict[str, Any],
    body: bytes,
    content_type: str,
    status: int,
    code: str | None,
) -> None:
    response = await client.post(
        "/analytics/track-view", content=body, headers={"Content-Type": content_type}
    )
    error = assert_error(response, status, code)
    if status == 422:  # the one error shape's details, on every refusal
        assert isinstance(error["details"], list) and error["details"], error
    assert response.headers["access-control-allow-origin"] == "*"
    assert await stored_events(app) == []


@pytest.mark.parametrize(
    "payload",
    [
        {"name": ""},
        {"name": "has spaces"},
        {"name": "x" * 65},
        {"name": "buy", "value": "a lot"},
        {"name": "buy", "value": 1e300},
        {"name": "buy", "value": True},
        {"name": "buy", "label": "x" * 500},
    ],
)
async def test_malformed_events_are_refused(
    client: httpx.AsyncClient, app: Any, page: dict[str, Any], payload: dict[str, Any]
) -> None:
    response = await client.post("/analytics/track-event", json={"page_id": page["id"], **payload})
    error = assert_error(response, 422, "validation_failed")
    assert error["details"]
    assert await stored_events(app) == []


async def test_unknown_and_unpublished_pages_are_404(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    assert_error(
        await track_view(client, "0190a5e4-0000-7000-8000-000000000000"), 404, "page_not_found"
    )
    draft = await client.post(
        "/landing-pages", json={"title": "Draft", "slug": "draft-only"}, headers=ada
    )
    assert_error(await track_view(client, draft.json()["id"]), 404, "page_not_found")
    assert_error(
        await client.post("/analytics/track-view", json={"slug": "no-such-page"}),
        404,
        "page_not_found",
    )
    assert await stored_events(app) == []


async def test_a_page_takes_its_views_as_soon_as_it_is_published_and_none_after(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    """Beacons for a page not yet published were remembered as "unknown"
    for ten seconds: the views of its first visitors, after publishing, were
    refused (404) and lost. And a page unpublished took views for a minute."""
    draft = (
        await client.post("/landing-pages", json={"title": "Soon", "slug": "soon"}, headers=ada)
    ).json()
    assert_error(await track_view(client, draft["id"]), 404, "page_not_found")
    by_slug = {"slug": "soon", "path": "/soon"}
    assert_error(await client.post("/analytics/track-view", json=by_slug), 404)
    assert (await client.post(f"/landing-pages/{draft['id']}/publish", headers=ada)).is_success
    assert (await track_view(client, draft["id"])).status_code == 202
    assert (await client.post("/analytics/track-view", json=by_slug)).status_code == 202
    assert (await client.post(f"/landing-pages/{draft['id']}/unpublish", headers=ada)).is_success
    assert_error(await track_view(client, draft["id"]), 404, "page_not_found")
    assert_error(await client.post("/analytics/track-view", json=by_slug), 404)
    assert len(await stored_events(app)) == 2


async def test_a_page_published_by_another_replica_takes_views_here_at_once(
    settings: Any, tmp_path: Any
) -> None:
    """The change reaches this replica's page directory as it reaches its
    page store: within the change log's poll, not the ten seconds of an
    "unknown"."""
    async with two_replicas(settings, tmp_path) as (first, _second, a, b):
        ada = await signed_in(b, first, "ada@example.com")
        draft = (await b.post("/landing-pages", json={"title": "Elsewhere"}, headers=ada)).json()
        assert_error(await track_view(a, draft["id"]), 404, "page_not_found")
        assert (await b.post(f"/landing-pages/{draft['id']}/publish", headers=ada)).is_success
        started = time.monotonic()
        while (await track_view(a, draft["id"])).status_code != 202:
            assert time.monotonic() - started < 3, "still refused: the unknown was kept"
            await asyncio.sleep(0.05)


async def test_other_methods_are_refused(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/analytics/track-view"), 405, "method_not_allowed")


@pytest.mark.parametrize("settings_update", [{"analytics_rate_per_second": 0.1}], indirect=True)
async def test_a_flood_from_one_address_is_rate_limited(
    client: httpx.AsyncClient, app: Any, page: dict[str, Any]
) -> None:
    burst = app.components.settings.analytics_rate_burst
    statuses = [(await track_view(client, page["id"])).status_code for _ in range(burst + 5)]
    # The burst, then a refusal (a token comes back only every 10 s).
    assert statuses[:burst] == [202] * burst
    limited = await track_view(client, page["id"])
    error = assert_error(limited, 429, "rate_limited")
    assert error["details"]["group"] == "tracking"
    assert 1 <= int(limited.headers["retry-after"]) <= 10
    # Readable by the page's script, like every other answer to a beacon.
    assert limited.headers["access-control-allow-origin"] == "*"
    assert "retry-after" in limited.headers["access-control-expose-headers"].lower()
    # Another visitor is not affected; what was refused is never stored.
    assert (await track_view(client, page["id"], address="198.51.100.77")).status_code == 202
    assert len(await stored_events(app)) == statuses.count(202) + 1


async def test_forwarded_addresses_are_believed_only_from_trusted_proxies(
    client: httpx.AsyncClient, app: Any, page: dict[str, Any]
) -> None:
    await track_view(client, page["id"], address="198.51.100.7")
    await track_view(client, page["id"], address="198.51.100.8")
    app.components.client_address.networks = []  # the peer is no longer trusted
    await track_view(client, page["id"], address="198.51.100.9")
    await track_view(client, page["id"], address="198.51.100.10")
    events = await stored_events(app)
    # Two addresses from the proxy; then the peer's own address, twice.
    assert len({e.visitor for e in events}) == 3


async def test_the_api_app_alone_tracks_the_same_way(app: Any, page: dict[str, Any]) -> None:
    """The documented routes behind the tracking layer behave like it."""
    transport = httpx.ASGITransport(app=app.api)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        accepted = await api.post(
            "/analytics/track-view",
            content=b'{"slug": "spring-sale"}',
            headers={"Content-Type": "text/plain", "User-Agent": BROWSER},
        )
        assert accepted.status_code == 202
        assert_error(
            await api.post("/analytics/track-event", json={"slug": "spring-sale"}),
            422,
            "validation_failed",
        )
        schema = (await api.get("/openapi.json")).json()
    assert "/analytics/track-view" in schema["paths"]
    assert len(await stored_events(app)) == 1


async def test_a_conversion_counted_before_its_view_still_knows_the_source(
    client: httpx.AsyncClient, app: Any, page: dict[str, Any]
) -> None:
    """Both beacons carry the page load's referrer and UTM parameters, so the
    visitor's entry attributes are the same whichever batch lands first."""
    source = {"referrer": "https://news.ycombinator.com/item?id=1", "utm_campaign": "launch"}
    assert (await track_event(client, page["id"], **source)).status_code == 202
    await app.components.ingestion.flush()
    assert (await track_view(client, page["id"], **source)).status_code == 202
    events = await stored_events(app)
    assert {(e.kind, e.referrer, e.utm_campaign) for e in events} == {
        ("event", "news.ycombinator.com", "launch"),
        ("view", "news.ycombinator.com", "launch"),
    }


async def test_a_known_page_takes_its_views_through_a_long_database_outage() -> None:
    """Past the reconnect wait, a page the tracker knew a minute ago is
    still the page (its views go to the ingestion backlog until the
    database is back); a page it never knew is still refused with the
    outage's 503."""

    class Away:
        @contextlib.asynccontextmanager
        async def primary_connection(self) -> AsyncIterator[Any]:
            raise DatabaseUnavailable("the database cannot be reached", lost_connection=False)
            yield

    directory = PageDirectory(Away())  # type: ignore[arg-type]
    known, stranger = uuid.uuid4(), uuid.uuid4()
    page = TrackedPage(str(known), str(uuid.uuid4()))
    directory._known[known] = (page, time.monotonic() - 1, 0)  # expired
    assert await directory.resolve(known, None) == page
    assert directory.remembered(known, None) == page  # not asked again at once
    with pytest.raises(DatabaseUnavailable):
        await directory.resolve(stranger, None)


async def test_a_page_served_to_visitors_takes_their_views_through_an_outage(
    client: httpx.AsyncClient, app: Any, page: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that read a page for its visitors (GET /{slug}, or warming
    after a start) has what the beacon needs: a database outage that
    leaves the page served must not refuse its views."""
    assert (await client.get("/spring-sale")).status_code == 200

    class Away:
        @contextlib.asynccontextmanager
        async def primary_connection(self) -> AsyncIterator[Any]:
            raise DatabaseUnavailable("the database cannot be reached", lost_connection=False)
            yield

    directory = app.components.page_directory
    monkeypatch.setattr(directory, "db", Away())
    assert (await track_view(client, page["id"])).status_code == 202
    by_slug = await track(client, "/analytics/track-view", {"slug": "spring-sale"}, BROWSER, None)
    assert by_slug.status_code == 202, by_slug.text
    # What a change made stale while it was read is not kept.
    changes = directory.changes
    directory.forget("other-page")
    directory.learn("other-page", uuid.uuid4(), uuid.uuid4(), changes)
    assert directory.remembered(None, "other-page") is None


async def test_a_full_disk_refuses_the_beacon_with_507_and_keeps_nothing(
    client: httpx.AsyncClient, app: Any, page: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spool cannot take the event (ENOSPC): the beacon is told why in
    the one error shape, as the API tells it (507), not a bare 503; the
    views acknowledged before it are kept."""
    assert (await track_view(client, page["id"])).status_code == 202

    def full(_fd: int, _data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("landform.analytics.spool.os.write", full)
    refused = await track_view(client, page["id"])
    assert_error(refused, 507, "insufficient_storage")
    assert "storage space" in refused.json()["error"]["message"]
    assert refused.headers["access-control-allow-origin"] == "*"
    monkeypatch.undo()
    await app.components.ingestion.flush()
    assert len(await stored_events(app)) == 1


def test_geo_headers_unknown_country_is_no_country() -> None:
    """Cloudflare says XX when it does not know; GeoIP services ZZ. Neither
    is a country to list in a report's breakdown."""
    assert [country_code(v) for v in ("de", " FR ", "XK", "XX", "zz", "T1", "")] == [
        "DE", "FR", "XK", "", "", "", "",
    ]  # fmt: skip


async def test_a_resent_event_is_counted_once_live_as_in_the_reports(
    client: httpx.AsyncClient, app: Any, page: dict[str, Any]
) -> None:
    """A client that resends an event after a failed request gives it the
    same id: stored once, and counted once by the live view too."""
    accepted: list[str] = []
    tracker = app.components.tracker
    tracker.on_accepted = lambda event, _bot: accepted.append(event.id)
    given = uuid.uuid4()
    for _ in range(5):
        assert (await track_view(client, page["id"], id=str(given))).status_code == 202
    assert (await track_view(client, page["id"])).status_code == 202
    assert (await track_view(client, page["id"])).status_code == 202
    assert len(accepted) == 3 and accepted[0] == given.hex
    assert len(await stored_events(app)) == 3  # written, once each
    assert (await totals(app, page["id"]))["views"] == 3


def test_long_agents_are_told_apart_by_how_they_begin() -> None:
    """The crawler patterns read an agent's first CRAWLER_CHECKED_CHARS
    (their cost grows with length: a flood of long made-up agents must not
    buy seconds of CPU); bots say who they are there, and an in-app
    browser's long tail of app details does not make it a bot."""
    padding = " " + "x" * 2000
    assert classify_agent(GOOGLEBOT + padding).is_bot
    in_app = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBDV/iPhone14,2;FBMD/iPhone;"
        "FBSN/iOS;FBSV/17.0;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/0]" + padding
    )
    agent = classify_agent(in_app)
    assert not agent.is_bot and agent.os == "iOS" and agent.device == "mobile"
