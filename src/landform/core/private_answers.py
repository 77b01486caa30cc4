"""What every API answer says to caches and browsers unless its route says
otherwise: keep nothing (``Cache-Control: no-store``: tokens, keys and
account data must not rest in a browser's or a proxy's cache; RFC 6749
5.1), and read the body as the type it is (``nosniff``: answers echo what
marketers wrote, HTML included, as JSON strings)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NO_STORE = (b"cache-control", b"no-store")
_NOSNIFF = (b"x-content-type-options", b"nosniff")
# The same, for an answer made outside the API (the rate limits' 429).
PRIVATE_HEADERS = {name.decode(): value.decode() for name, value in (_NO_STORE, _NOSNIFF)}


class PrivateAnswers:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_defaults(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                named = {name.lower() for name, _value in headers}
                if b"cache-control" not in named:
                    headers.append(_NO_STORE)
                if b"x-content-type-options" not in named:
                    headers.append(_NOSNIFF)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_defaults)
