"""The beacon's native RSGI handler (``Tracking.rsgi``), in process: which
requests it answers itself and which it hands back to the ASGI layers.
(Against a real granian server: tests/core/test_rsgi.py.)"""

from __future__ import annotations

import errno
import json
import time
from typing import Any

import pytest

from tests.analytics.conftest import BROWSER
from tests.analytics.test_tracking import stored_events


class Headers:
    """Granian's RSGI headers: lower-case names, ``get`` and ``get_all``."""

    def __init__(self, pairs: dict[str, str]) -> None:
        self.pairs = {name.lower(): value for name, value in pairs.items()}

    def get(self, name: str, default: Any = None) -> Any:
        return self.pairs.get(name, default)

    def get_all(self, name: str) -> list[str]:
        return [self.pairs[name]] if name in self.pairs else []

    def __contains__(self, name: str) -> bool:
        return name in self.pairs


class Scope:
    def __init__(self, method: str, headers: dict[str, str], address: str) -> None:
        self.proto = "http"
        self.method = method
        self.path = "/analytics/track-view"
        self.client = "127.0.0.1:40000"
        self.headers = Headers({"X-Forwarded-For": address, "User-Agent": BROWSER, **headers})


class Protocol:
    """An RSGI HTTP protocol that records the answer."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.answers: list[tuple[int, list[tuple[str, str]], bytes]] = []

    async def __call__(self) -> bytes:
        return self.body

    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.answers.append((status, headers, b""))

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answers.append((status, headers, body))


class Fallback:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, protocol: Any, **kwargs: Any) -> None:
        self.calls.append(kwargs)


async def beacon(
    app: Any, body: bytes, *, address: str = "198.51.100.7", method: str = "POST", **headers: str
) -> tuple[Protocol, Fallback]:
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers}
    protocol, fallback = Protocol(body), Fallback()
    await app.tracking.rsgi(Scope(method, headers, address), protocol, fallback)
    return protocol, fallback


async def test_an_accepted_beacon_is_answered_here_and_stored(
    app: Any, page: dict[str, Any]
) -> None:
    protocol, fallback = await beacon(app, json.dumps({"page_id": page["id"]}).encode())
    assert fallback.calls == []
    ((status, headers, body),) = protocol.answers
    assert (status, body) == (202, b"")
    assert ("access-control-allow-origin", "*") in headers
    await app.components.ingestion.flush()
    (event,) = await stored_events(app)
    assert str(event.page_id) == page["id"]


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("GET", {}),
        ("OPTIONS", {}),
        ("POST", {"Content-Type": "application/xml"}),
        ("POST", {"Content-Length": "999999"}),
        ("POST", {"Content-Length": ""}),  # chunked: no length declared
    ],
)
async def test_what_it_would_not_judge_goes_to_the_asgi_layers_unread(
    app: Any, page: dict[str, Any], method: str, headers: dict[str, str]
) -> None:
    protocol, fallback = await beacon(
        app, json.dumps({"page_id": page["id"]}).encode(), method=method, **headers
    )
    assert protocol.answers == []
    assert fallback.calls == [{}]  # no body read, no token taken
    await app.components.ingestion.flush()
    assert await stored_events(app) == []


@pytest.mark.parametrize(
    "body", [b"", b"{not json", b'{"slug": "no-such-page"}', b'{"page_id": "x"}']
)
async def test_a_refusal_is_explained_by_the_asgi_layers_with_the_body_read(
    app: Any, page: dict[str, Any], body: bytes
) -> None:
    protocol, fallback = await beacon(app, body)
    assert protocol.answers == []
    assert fallback.calls == [{"body": body, "admitted": True}]
    await app.components.ingestion.flush()
    assert await stored_events(app) == []


async def test_an_address_out_of_tokens_is_left_to_the_rate_limiter(
    app: Any, page: dict[str, Any]
) -> None:
    body = json.dumps({"page_id": page["id"]}).encode()
    settings = app.components.settings
    burst, rate = settings.analytics_rate_burst, settings.analytics_rate_per_second
    # The bucket refills as the beacons go (slowly, on a loaded machine):
    # tokens run out after the burst and what came back meanwhile.
    started = time.monotonic()
    accepted = 0
    while True:
        protocol, fallback = await beacon(app, body, address="203.0.113.9")
        if not protocol.answers:
            break
        assert protocol.answers[0][0] == 202
        accepted += 1
        assert accepted <= burst + rate * (time.monotonic() - started) + 1
    assert accepted >= burst
    assert fallback.calls == [{}]  # RateLimits answers 429 (and takes no second token)


async def test_a_failure_to_accept_is_a_503_in_the_one_error_shape(
    app: Any, page: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any) -> None:
        raise ConnectionError("the spool's disk is gone")

    monkeypatch.setattr(app.components.tracker, "track", broken)
    protocol, fallback = await beacon(app, json.dumps({"page_id": page["id"]}).encode())
    assert fallback.calls == []  # not tried again through the ASGI path
    ((status, headers, body),) = protocol.answers
    assert status == 503
    assert ("access-control-allow-origin", "*") in headers
    error = json.loads(body)["error"]
    assert error["code"] == "service_unavailable" and error["message"]


async def test_a_full_disk_is_a_507_here_too(
    app: Any, page: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(_fd: int, _data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("landform.analytics.spool.os.write", full)
    protocol, fallback = await beacon(app, json.dumps({"page_id": page["id"]}).encode())
    assert fallback.calls == []
    ((status, headers, body),) = protocol.answers
    assert status == 507
    assert ("access-control-allow-origin", "*") in headers
    assert json.loads(body)["error"]["code"] == "insufficient_storage"
    monkeypatch.undo()
    await app.components.ingestion.flush()
    assert await stored_events(app) == []
