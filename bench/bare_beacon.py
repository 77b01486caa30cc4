"""The beacon's other floor: a bare Python ASGI handler for ``POST
/analytics/track-view`` that reads the body, parses it as JSON and answers
202, served by the same ASGI server as Landform (``bench/analytics.py``
runs it beside nginx and Landform). What is between it and Landform is
Landform's own work; what is between it and nginx is Python's and the
ASGI server's.

    granian --interface asgi --workers 2 --working-dir bench bare_beacon:app
    granian --interface rsgi --workers 2 --working-dir bench bare_beacon:rsgi_app
"""

from __future__ import annotations

import json
from typing import Any

_ACCEPTED = [(b"content-length", b"0")]
_OK = [(b"content-length", b"2")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": _OK})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await send({"type": "http.response.start", "status": _status(body), "headers": _ACCEPTED})
    await send({"type": "http.response.body", "body": b""})


def _status(body: bytes) -> int:
    """202 for a JSON body, 400 for anything else."""
    try:
        json.loads(body)
    except ValueError:
        return 400
    return 202


class _RSGIBeacon:
    """The same over granian's RSGI interface."""

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        body = await protocol()
        if scope.path == "/healthz":
            protocol.response_bytes(200, [("content-length", "2")], b"ok")
            return
        protocol.response_empty(_status(body), [("content-length", "0")])


rsgi_app = _RSGIBeacon()
