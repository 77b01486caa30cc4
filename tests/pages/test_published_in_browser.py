"""A published page in a real browser (Chromium), as a visitor meets it:
one view per page view, back and forward included; a call-to-action click
is a conversion; nothing is stored in the browser; and the owner's report
says exactly that."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import chromium
from tests.live_server import live_server, verified_login

pytestmark = pytest.mark.server

# Headless Chromium says "HeadlessChrome", counted as a bot (docs/analytics.md).
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def published(api: httpx.Client, slug: str, cta_url: str) -> str:
    made = api.post("/landing-pages", json={"title": slug.title(), "slug": slug})
    assert made.status_code == 201, made.text
    page_id = str(made.json()["id"])
    content = {
        "blocks": [
            {"type": "hero", "headline": slug.title(), "cta_label": "Go", "cta_url": cta_url},
        ]
    }
    assert api.put(f"/landing-pages/{page_id}/content", json=content).status_code == 200
    assert api.post(f"/landing-pages/{page_id}/publish").status_code == 200
    return page_id


def report_once(
    api: httpx.Client, page_id: str, counted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The page's report once its totals show what was sent (ingestion is
    batched), or as it stands after 10 s."""
    deadline = time.monotonic() + 10
    report: dict[str, Any] = api.get(f"/analytics/pages/{page_id}").json()
    while not counted(report["totals"]) and time.monotonic() < deadline:
        time.sleep(0.2)
        report = api.get(f"/analytics/pages/{page_id}").json()
    return report


def test_a_visit_is_counted_once_per_view_and_leaves_nothing_behind(tmp_path: Path) -> None:
    with live_server(tmp_path, workers=1) as base:
        token = verified_login(base, tmp_path, "ada@example.com")
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        first = published(api, "first", "/second")
        published(api, "second", "/first")
        beacons: list[tuple[str, str]] = []

        with chromium(back_forward_cache=True) as browser:
            context = browser.new_context(user_agent=CHROME)
            tab = context.new_page()
            tab.on(
                "request",
                lambda request: (
                    beacons.append((request.url.removeprefix(base), request.post_data or ""))
                    if "/analytics/track-" in request.url
                    else None
                ),
            )
            tab.goto(f"{base}/first", wait_until="load")
            tab.evaluate("window.stillHere = true")
            with tab.expect_navigation():
                tab.click("[data-lf-cta]")  # to /second: a conversion on /first
            tab.go_back(wait_until="commit")
            # Kept whole by the back/forward cache: no load event fired.
            assert tab.evaluate("window.stillHere === true")
            tab.wait_for_timeout(500)
            assert context.cookies() == []
            stored = tab.evaluate("[localStorage.length, sessionStorage.length]")
            assert stored == [0, 0]

        sent = [(path, first in body) for path, body in beacons]
        assert sent == [
            ("/analytics/track-view", True),
            ("/analytics/track-event", True),
            ("/analytics/track-view", False),  # /second's
            ("/analytics/track-view", True),  # back to /first
        ], beacons
        report = report_once(api, first, lambda totals: totals["views"] == 2)
        totals = report["totals"]
        assert (totals["views"], totals["visitors"], totals["conversions"]) == (2, 1, 1), totals
        assert [item["value"] for item in report["browsers"]] == ["Chrome"]


def test_a_sign_up_form_posts_to_its_service_and_counts_as_a_conversion(
    tmp_path: Path,
) -> None:
    """The form block in Chromium: its page's CSP lets it post to the
    service it names (and nowhere else), what the visitor typed and the
    hidden list ids go there, and the beacon counts the submission."""
    action = "https://lists.example.com/subscribe/post?u=abc&id=123"
    with live_server(tmp_path, workers=1) as base:
        token = verified_login(base, tmp_path, "ada@example.com")
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        made = api.post("/landing-pages", json={"title": "Waitlist", "slug": "waitlist"})
        page_id = str(made.json()["id"])
        form = {
            "type": "form", "id": "waitlist", "title": "Join the waitlist",
            "action": action, "submit_label": "Join",
            "fields": [
                {"name": "EMAIL", "label": "Email", "type": "email", "required": True},
                {"name": "FNAME", "label": "First name"},
            ],
            "hidden": {"b_abc_123": ""},
        }  # fmt: skip
        saved = api.put(f"/landing-pages/{page_id}/content", json={"blocks": [form]})
        assert saved.status_code == 200, saved.text
        assert api.post(f"/landing-pages/{page_id}/publish").status_code == 200
        beacons: list[str] = []
        posted: list[tuple[str, str]] = []

        def receive(route: Any) -> None:
            posted.append((route.request.url, route.request.post_data or ""))
            route.fulfill(status=200, content_type="text/html", body="<p>Thanks!</p>")

        with chromium() as browser:
            tab = browser.new_context(user_agent=CHROME).new_page()
            tab.on(
                "request",
                lambda r: beacons.append(r.post_data or "") if "/track-event" in r.url else None,
            )
            tab.route("https://lists.example.com/**", receive)
            tab.goto(f"{base}/waitlist", wait_until="load")
            tab.click("button[type=submit]")  # the email is required: nothing goes
            assert posted == [] and tab.url == f"{base}/waitlist"
            tab.fill("input[name=EMAIL]", "visitor@example.com")
            tab.fill("input[name=FNAME]", "Vi")
            with tab.expect_navigation():
                tab.click("button[type=submit]")
            assert tab.inner_text("p") == "Thanks!"
        assert posted == [(action, "EMAIL=visitor%40example.com&FNAME=Vi&b_abc_123=")]
        assert len(beacons) == 1 and '"name":"form_submit","label":"waitlist"' in beacons[0]
        totals = report_once(api, page_id, lambda totals: totals["conversions"] == 1)["totals"]
        assert totals["conversions"] == 1, totals


def test_markup_cannot_silence_the_beacon_and_long_values_are_cut_whole(
    tmp_path: Path,
) -> None:
    """Element names and ids shadow globals and document properties: a form
    labelled "referrer" and an HTML block's element with the id
    "addEventListener" once stopped every beacon. And a UTM value cut at
    the server's length keeps an emoji whole, or drops it: half of one is
    not text, and the server refused the whole view."""
    with live_server(tmp_path, workers=1) as base:
        token = verified_login(base, tmp_path, "ada@example.com")
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        made = api.post("/landing-pages", json={"title": "Shadows", "slug": "shadows"})
        page_id = str(made.json()["id"])
        blocks = [
            {"type": "html", "html": '<p id="addEventListener">Hello</p>'},
            {
                "type": "form", "id": "referrer", "action": "https://lists.example.com/s",
                "fields": [{"name": "EMAIL", "label": "Email", "type": "email"}],
                "submit_label": "Join",
            },
        ]  # fmt: skip
        saved = api.put(f"/landing-pages/{page_id}/content", json={"blocks": blocks})
        assert saved.status_code == 200, saved.text
        assert api.post(f"/landing-pages/{page_id}/publish").status_code == 200
        campaign = "a" * 199 + "\N{ROCKET}"  # the emoji straddles the 200th unit
        sent: list[str] = []

        with chromium() as browser:
            tab = browser.new_context(user_agent=CHROME).new_page()
            tab.on(
                "request",
                lambda r: sent.append(r.url.removeprefix(base)) if "/track-" in r.url else None,
            )
            tab.route(
                "https://lists.example.com/**",
                lambda route: route.fulfill(status=200, content_type="text/html", body="ok"),
            )
            tab.goto(f"{base}/shadows?utm_campaign={campaign}", wait_until="load")
            tab.fill("input[name=EMAIL]", "visitor@example.com")
            with tab.expect_navigation():
                tab.click("button[type=submit]")
        assert sent == ["/analytics/track-view", "/analytics/track-event"], sent
        report = report_once(api, page_id, lambda totals: totals["conversions"] == 1)
        assert (report["totals"]["views"], report["totals"]["conversions"]) == (1, 1), report
        assert [item["value"] for item in report["utm_campaigns"]] == ["a" * 199]
