"""The beacon as published, executed: the script from a rendered page runs
in Node with stand-ins for the few browser objects it touches (location,
document, screen, navigator.sendBeacon), and what it sends is posted to the
real tracking endpoints. This checks the script's behaviour, event by
event; tests/pages/test_published_in_browser.py runs it in Chromium.)"""

from __future__ import annotations

import json
import os
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
// As a browser has them: listeners and the referrer come from the
// prototypes (the beacon asks them there; page markup shadows the rest).
global.window = global;
global.EventTarget = {prototype: {addEventListener: function (name, fn) {
  listeners[(this === global ? "window:" : "") + name] = fn;
}}};
global.Document = function () {};
Object.defineProperty(Document.prototype, "referrer", {get: () => process.env.REFERRER});
// Own properties shadow the prototype's, as a form named "referrer" or
// "addEventListener" would.
global.document = Object.defineProperties(new Document(), {
  readyState: {value: "loading"},
  referrer: {value: {slice: () => { throw new Error("shadowed"); }}},
  addEventListener: {value: "shadowed"},
});
eval(script);
listeners["window:load"]();
const cta = {getAttribute: () => "Buy now"};
listeners.click({target: {closest: (sel) => sel === "[data-lf-cta]" ? cta : null}});
listeners.click({target: {closest: () => null}});
// A form whose fields shadow its properties (inputs named tagName, getAttribute).
global.Element = {prototype: {getAttribute: function (n) { return this.attrs[n] || null; }}};
listeners.submit({target: {[Symbol.toStringTag]: "HTMLFormElement", attrs: {id: "signup"},
  tagName: {}, getAttribute: "shadowed"}});
listeners.submit({target: {[Symbol.toStringTag]: "HTMLDivElement", attrs: {id: "not-a-form"}}});
listeners["window:pageshow"]({persisted: false});  // the load's own: no second view
listeners["window:pageshow"]({persisted: true});  // back, from the back/forward cache
listeners.auxclick({button: 1, target: {closest: () => cta}});  // middle: a new tab
listeners.auxclick({button: 2, target: {closest: () => cta}});  // right: a menu
process.stdout.write(JSON.stringify(sent));
"""


GOOGLE = "https://www.google.com/search?q=landform"


def run_beacon(page_id: str, referrer: str = GOOGLE) -> list[tuple[str, dict[str, Any]]]:
    script = inline(render_page(make_input(page_id=page_id)).html, "script")[0]
    result = subprocess.run(
        ["node", "-e", HARNESS],
        input=script,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "REFERRER": referrer},
    )
    return [(url, body) for url, body in json.loads(result.stdout)]


def test_the_beacon_sends_a_view_and_its_conversions() -> None:
    sent = run_beacon("page-1")
    assert [url for url, _ in sent] == [
        "/analytics/track-view",
        "/analytics/track-event",
        "/analytics/track-event",
        "/analytics/track-view",
        "/analytics/track-event",
    ]
    view, click, form, back, middle_click = (body for _, body in sent)
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
    assert back == view and middle_click == click


def test_a_long_referrer_is_cut_to_what_the_server_takes() -> None:
    """A same-site referrer carries its whole URL (a click id can make it
    kilobytes): sent whole, the view was refused (422) and lost."""
    long = "https://example.com/spring?gclid=" + "x" * 3000
    view = run_beacon("page-1", referrer=long)[0][1]
    assert view["referrer"] == long[:2048]


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
    assert report["totals"]["views"] == 2  # the load, and back from the cache
    assert report["totals"]["conversions"] == 3
    assert [item["value"] for item in report["top_referrers"]] == ["google.com"]
    assert [item["value"] for item in report["utm_campaigns"]] == ["spring"]
    assert [item["value"] for item in report["devices"]] == ["mobile"]
