"""``landform serve --interface rsgi`` (core/rsgi.py): the beacon answered
natively, everything else through the bridge to the ASGI app — and every
answer the same as under ASGI. Other live-server tests run over RSGI too:
no loss across worker kills (analytics/test_no_loss.py), draining
(core/test_graceful_shutdown.py), a 300 MB upload in bounded memory
(files/test_upload_memory.py) and the live view (analytics/test_live.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.analytics.conftest import BROWSER
from tests.conftest import assert_error
from tests.files import samples
from tests.live_server import live_server, verified_login

MAX_BODY = 4096  # LANDFORM_ANALYTICS_MAX_BODY_BYTES below
BURST = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("rsgi")
    env = {
        "LANDFORM_TRUSTED_PROXIES": "127.0.0.1",
        "LANDFORM_ANALYTICS_MAX_BODY_BYTES": str(MAX_BODY),
        "LANDFORM_ANALYTICS_RATE_PER_SECOND": "0.1",
        "LANDFORM_ANALYTICS_RATE_BURST": str(BURST),
        "LANDFORM_ANALYTICS_BATCH_INTERVAL": "0.2",
    }
    with live_server(data, workers=1, interface="rsgi", **env) as base:
        token = verified_login(base, data, "rsgi@example.com")
        yield {"base": base, "token": token, "data": data}


def publish(server: dict[str, Any], slug: str) -> str:
    with httpx.Client(base_url=server["base"], headers=auth(server)) as api:
        page = api.post("/landing-pages", json={"title": slug, "slug": slug}).json()
        assert api.post(f"/landing-pages/{page['id']}/publish").status_code == 200
    return str(page["id"])


def auth(server: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {server['token']}"}


def beacon(client: httpx.Client, address: str, **kwargs: Any) -> httpx.Response:
    headers = {"User-Agent": BROWSER, "X-Forwarded-For": address, **kwargs.pop("headers", {})}
    return client.request(
        kwargs.pop("method", "POST"), "/analytics/track-view", headers=headers, **kwargs
    )


def views(server: dict[str, Any], page_id: str, expected: int) -> int:
    """The page's views once ``expected`` are counted (or 10 s have passed)."""
    deadline = time.monotonic() + 10
    with httpx.Client(base_url=server["base"], headers=auth(server)) as api:
        while True:
            report = api.get(f"/analytics/pages/{page_id}").json()
            counted = int(report["totals"]["views"])
            if counted >= expected or time.monotonic() > deadline:
                return counted
            time.sleep(0.3)


def test_beacons_are_accepted_and_counted(server: dict[str, Any]) -> None:
    page_id = publish(server, "rsgi-counted")
    with httpx.Client(base_url=server["base"]) as client:
        for n in range(20):
            json_beacon = beacon(client, f"198.51.100.{n}", json={"page_id": page_id})
            plain_beacon = beacon(
                client,
                f"198.51.101.{n}",
                content=f'{{"slug": "rsgi-counted", "path": "/?n={n}"}}',
                headers={"Content-Type": "text/plain;charset=UTF-8"},
            )
            for response in (json_beacon, plain_beacon):
                assert response.status_code == 202, response.text
                assert response.content == b""
                assert response.headers["access-control-allow-origin"] == "*"
                assert response.headers["cache-control"] == "no-store"
    assert views(server, page_id, 40) == 40


@pytest.mark.parametrize(
    ("request_args", "status", "code"),
    [
        ({"method": "GET"}, 405, "method_not_allowed"),
        ({"content": "x", "headers": {"Content-Type": "application/xml"}}, 415, None),
        ({"content": b'{"slug": "' + b"a" * MAX_BODY + b'"}'}, 413, "payload_too_large"),
        ({"content": b""}, 422, "validation_failed"),
        ({"content": b"{not json"}, 422, "malformed_json"),
        ({"json": {"slug": "rsgi-counted", "screen_width": "wide"}}, 422, "validation_failed"),
        ({"json": {"slug": "no-such-page"}}, 404, "page_not_found"),
    ],
)
def test_refusals_are_the_asgi_layers_own(
    server: dict[str, Any], request_args: dict[str, Any], status: int, code: str | None
) -> None:
    address = f"203.0.113.{status % 250}"
    with httpx.Client(base_url=server["base"]) as client:
        response = beacon(client, address, **request_args)
    error = assert_error(response, status, code)
    assert response.headers["access-control-allow-origin"] == "*"
    if status == 405:
        assert response.headers["allow"] == "POST, OPTIONS"
    if status == 422:
        assert error["message"]


def test_a_preflight_and_a_chunked_beacon_go_through_the_asgi_layers(
    server: dict[str, Any],
) -> None:
    page_id = publish(server, "rsgi-chunked")
    with httpx.Client(base_url=server["base"]) as client:
        preflight = beacon(client, "192.0.2.50", method="OPTIONS")
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-methods"] == "POST, OPTIONS"

        def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
            yield b'{"page_id": "'
            yield page_id.encode() + b'"}'

        assert beacon(client, "192.0.2.51", content=chunks()).status_code == 202
    assert views(server, page_id, 1) == 1


def test_a_flood_from_one_address_is_limited_and_not_counted(server: dict[str, Any]) -> None:
    page_id = publish(server, "rsgi-flood")
    with httpx.Client(base_url=server["base"]) as client:
        statuses = [
            beacon(client, "192.0.2.99", json={"page_id": page_id}).status_code
            for _ in range(BURST + 4)
        ]
        refused = beacon(client, "192.0.2.99", json={"page_id": page_id})
    assert statuses == [202] * BURST + [429] * 4
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1
    time.sleep(1.0)  # a batch interval and more: anything stored is counted
    assert views(server, page_id, BURST) == BURST


def test_the_api_goes_through_the_bridge(server: dict[str, Any]) -> None:
    base = server["base"]
    with httpx.Client(base_url=base, headers=auth(server), timeout=30) as api:
        created = api.post("/landing-pages", json={"title": "Bridge a b", "slug": "bridge"})
        assert created.status_code == 201
        assert created.headers["location"] == f"/landing-pages/{created.json()['id']}"
        # A query string with escapes arrives decoded.
        found = api.get("/landing-pages", params={"q": "Bridge a"}).json()["items"]
        assert [page["slug"] for page in found] == ["bridge"]
        assert_error(api.get("/landing-pages/00000000-0000-7000-8000-000000000000"), 404)
        assert_error(httpx.get(f"{base}/auth/me"), 401)
        # A body larger than is read at once arrives chunk by chunk, whole.
        payload = samples.mp4(b"\x00" * 256 * 1024)
        uploaded = api.post("/files/upload", files={"file": ("clip.mp4", payload, "video/mp4")})
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["size"] == len(payload)
        # A compressed response.
        assert (
            api.get("/templates", headers={"Accept-Encoding": "gzip"}).headers["content-encoding"]
            == "gzip"
        )


async def test_websockets_go_through_the_bridge(server: dict[str, Any]) -> None:
    ws_base = server["base"].replace("http://", "ws://")
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"{ws_base}/ws/analytics"):
            pass
    assert refused.value.response.status_code == 403
    started = time.monotonic()
    async with websockets.connect(f"{ws_base}/ws/analytics?access_token={server['token']}") as ws:
        assert '"hello"' in str(await ws.recv())
    # The client's close is answered at once (not after its close timeout).
    assert time.monotonic() - started < 3


def test_published_pages_are_served_natively_and_the_rest_through_the_bridge(
    server: dict[str, Any],
) -> None:
    publish(server, "rsgi-page")
    with httpx.Client(base_url=server["base"]) as client:
        first = client.get("/rsgi-page", headers={"Accept-Encoding": "gzip"})
        assert first.status_code == 200
        assert first.headers["content-encoding"] == "gzip"
        assert "<html" in first.text
        etag = first.headers["etag"]
        # Held now: answered natively, with the same headers.
        again = client.get("/rsgi-page", headers={"Accept-Encoding": "gzip"})
        assert (again.status_code, again.text) == (200, first.text)
        assert dict(again.headers) == {**dict(first.headers), "date": again.headers["date"]}
        unchanged = client.get("/rsgi-page", headers={"If-None-Match": etag})
        assert (unchanged.status_code, unchanged.content) == (304, b"")
        head = client.head("/rsgi-page")
        assert (head.status_code, head.content) == (200, b"")
        missing = client.get("/no-such-rsgi-page")
        assert missing.status_code == 404
        assert "text/html" in missing.headers["content-type"]
