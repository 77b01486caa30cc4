"""HEAD wherever GET is answered (RFC 9110 9.3.2: the same headers, no
body). FastAPI routes answer only the methods they list; rather than list
HEAD beside every GET, a HEAD the routes refuse (405) is answered as the
GET would be, without its body. Routes that answer HEAD themselves (assets,
published pages) are left to do so."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        refused = False

        async def unless_refused(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] == 405:
                refused = True
            if not refused:
                await send(message)

        await self.app(scope, receive, unless_refused)
        if not refused:
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        as_get = {**scope, "method": "GET"}
        await self.app(as_get, receive, headers_only)
        if "route" in as_get:  # for the layers that time requests by route
            scope["route"] = as_get["route"]
