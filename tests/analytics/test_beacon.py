"""The beacon as published, executed: the script from a rendered page runs
in Node with stand-ins for the few browser objects it touches (location,
document, screen, navigator.sendBeacon), and what it sends is posted to the
real tracking endpoints. (No browser on this machine; this checks the
script's behaviour, not a browser's.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import httpx
import pytest

from landform.pages.render import render_page
from tests.analytics.conftest import BROWSER
from tests.pages.test_render import inline, make_input

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")

HARNESS = r"""
const script = require("fs").readFileSync(0, "utf8");
const sent = [];
const listeners = {};
global.location = {pathname: "/spring-sale", search: "?utm_source=mail&utm_campaign=spring&x=1"};
global.screen = {width: 390};
global.navigator = {
  sendBeacon: (url, body) => { sent.push([url, JSON.parse(body)]); return true; },
};
global.addEventListener = (name, fn) => { listeners["window:" + name] = fn; };
global.document = {
  readyState: "loading",
  referrer: "https://www.google.com/search?q=landform",
  addEventListener: (name, fn) => { listeners[name] = fn; },
};
eval(script);
listeners["window:load"]();
const cta = {getAttribute: () => "Buy now"};
listeners.click({target: {closest: (sel) => sel === "[data-lf-cta]" ? cta : null}});
listeners.click({target: {closest: () => null}});
listeners.submit({target: {tagName: "FORM", id: "signup", getAttribute: () => null}});
process.stdout.write(JSON.stringify(sent));
"""


def run_beacon(page_id: str) -> list[tuple[str, dict[str, Any]]]:
    script = inline(render_page(make_input(page_id=page_id)).html, "script")[0]
    result = subprocess.run(
        ["node", "-e", HARNESS], input=script, capture_output=True, text=True, check=True
    )
    return [(url, body) for url, body in json.loads(result.stdout)]


def test_the_beacon_sends_a_view_and_its_conversions() -> None:
    sent = run_beacon("page-1")
    assert [url for url, _ in sent] == [
        "/analytics/track-view",
        "/analytics/track-event",
        "/analytics/track-event",
    ]
    view, click, form = (body for _, body in sent)
    visit = {
        "page_id": "page-1",
        "path": "/spring-sale",
        "referrer": "https://www.google.com/search?q=landform",
        "screen_width": 390,
        "utm_source": "mail",
        "utm_campaign": "spring",
    }
    assert view == visit
    assert click == {**visit, "name": "cta_click", "label": "Buy now"}
    assert form == {**visit, "name": "form_submit", "label": "signup"}


async def test_what_the_beacon_sends_is_accepted_and_counted(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], page: dict[str, Any]
) -> None:
    for url, body in run_beacon(page["id"]):
        response = await client.post(
            url,
            content=json.dumps(body),
            headers={"Content-Type": "text/plain;charset=UTF-8", "User-Agent": BROWSER},
        )
        assert response.status_code == 202, response.text
    await app.components.ingestion.flush()
    report = (await client.get(f"/analytics/pages/{page['id']}", headers=ada)).json()
    assert report["totals"]["views"] == 1
    assert report["totals"]["conversions"] == 2
    assert [item["value"] for item in report["top_referrers"]] == ["google.com"]
    assert [item["value"] for item in report["utm_campaigns"]] == ["spring"]
    assert [item["value"] for item in report["devices"]] == ["mobile"]
