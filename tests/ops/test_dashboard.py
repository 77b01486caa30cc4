"""The live operations page in a real browser (Debian's Chromium driven by
Playwright): an operator types the ops token and sees the SLA table with
its statuses and charts that fill as it polls, and the page asks nothing of
any server but Landform's own."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.browser import chromium
from tests.live_server import live_server

pytestmark = pytest.mark.server

TOKEN = "ops-token-for-the-dashboard-test"


def test_the_dashboard_shows_the_sla_live(tmp_path: Path) -> None:
    with live_server(tmp_path, workers=1, LANDFORM_OPS_TOKEN=TOKEN) as base, chromium() as browser:
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(30):
                assert client.get("/templates").status_code == 200
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        asked: list[str] = []

        def only_landform(route: object) -> None:
            url = route.request.url  # type: ignore[attr-defined]
            asked.append(url)
            if url.startswith(base):
                route.continue_()  # type: ignore[attr-defined]
            else:
                route.abort()  # type: ignore[attr-defined]

        page.route("**/*", only_landform)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        # A resource that fails (a 404 for an icon the page never named) is
        # a console error too.
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.goto(f"{base}/ops/")
        assert page.text_content("#status") == "Enter a token to start."
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.locator("#components tbody tr").nth(6).wait_for(timeout=10_000)
        # Two polls at least, so the charts have lines (the page's CSP allows
        # no eval, so this waits from here rather than in the page).
        page.locator("#chart-latency polyline").first.wait_for(state="attached", timeout=10_000)
        for _ in range(100):
            points = page.get_attribute("#chart-latency polyline", "points") or ""
            if len(points.split()) >= 2:
                break
            page.wait_for_timeout(200)
        assert len(points.split()) >= 2
        rows = page.locator("#components tbody tr").all_inner_texts()
        assert rows[0].startswith("API Gateway")
        assert any("NO_DATA" in row for row in rows)  # nothing uploaded yet
        # No samples is no p99, not a p99 of 0 ms.
        no_data = next(row for row in rows if "NO_DATA" in row).split("\t")
        assert no_data[1] == "—", no_data
        assert page.text_content("#overall") in ("OK", "WARNING", "BREACH")
        assert "Updated" in (page.text_content("#status") or "")
        screenshot = page.screenshot(full_page=True)
        # On a phone, a wide table scrolls on its own; the page does not.
        page.set_viewport_size({"width": 360, "height": 800})
        box = page.locator("main").bounding_box()
        assert box is not None and box["width"] <= 360, box
        page.close()
    image = Image.open(io.BytesIO(screenshot)).convert("RGB")
    colours = image.getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 50, "the screenshot is blank"
    assert errors == []
    assert asked and all(url.startswith(base) for url in asked), asked
    assert any("/ops/sla" in url for url in asked)


def test_a_refused_token_stops_the_polling_and_a_one_replica_fleet_says_why(
    tmp_path: Path,
) -> None:
    with live_server(tmp_path, workers=1, LANDFORM_OPS_TOKEN=TOKEN) as base, chromium() as browser:
        page = browser.new_page()
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        page.goto(f"{base}/ops/")
        page.fill("#token", "not-the-ops-token")
        page.click("button[type=submit]")
        status = page.locator("#status")
        status.filter(has_text="refused").wait_for(timeout=10_000)
        polls = sum("/ops/sla" in url for url in asked)
        page.wait_for_timeout(4_500)  # two more polling periods
        assert sum("/ops/sla" in url for url in asked) == polls == 1
        assert "Enter another" in (status.text_content() or "")

        # The whole fleet without Redis is this replica alone, and the page
        # says so instead of passing one replica off as the fleet.
        page.select_option("#scope", "cluster")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        status.filter(has_text="Updated").wait_for(timeout=10_000)
        assert "no Redis is configured" in (status.text_content() or "")
        page.close()
