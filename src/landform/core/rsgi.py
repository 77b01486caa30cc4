"""Serving over granian's RSGI interface: the hottest paths answered natively,
everything else handed to the ASGI app.

Under granian's ASGI interface, every request builds a scope dict with a
list of header tuples and goes through ``receive()`` and two ``send()``
calls, each a round between Python and granian's Rust side. For the
tracking beacon that protocol cost more than Landform's own handling:
measured here (wrk -c64, 2 workers, SQLite), the beacon answered natively
over RSGI reached 18,700 accepted/s against 13,700 through ASGI.

``RSGIApp`` serves the ASGI app (lifespan, HTTP and WebSocket) through a
bridge in Python, which measured no slower than granian's own ASGI for the
API, and hands the paths in ``fast_paths`` (the beacon) and every other
path to ``fast_otherwise`` (published pages) to native handlers. A native
handler answers the common case itself and gives anything else (an error to
explain, a request it would rather not judge) back through ``fallback``,
with the body if it has read it, so the ASGI layers answer it exactly as
they always do.

What the bridge cannot carry: granian's RSGI ``accept()`` takes no
subprotocol and its ``close()`` sends no close code, so a WebSocket
handshake never names a subprotocol and clients see every close as 1005
(docs/operations.md: clients that depend on either connect to an ASGI
worker, ``landform serve --interface asgi``, the default)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.types import ASGIApp, Message

from landform.core.body_deadlines import BodyDeadlines, BodyReadTimeout
from landform.core.http import ErrorResponse, body_timed_out, incomplete_body
from landform.core.proxies import host_port
from landform.core.rate_limits import ADMITTED

log = logging.getLogger(__name__)

# A native handler: (RSGI scope, RSGI HTTP protocol, fallback) -> None.
Fallback = Callable[..., Awaitable[None]]
FastPath = Callable[[Any, Any, Fallback], Awaitable[None]]

_TEXT_PLAIN = [("content-type", "text/plain; charset=utf-8")]

# Bodies declared at most this long are read at once; others chunk by chunk.
SMALL_BODY = 64 * 1024


async def read_body(protocol: Any, deadlines: BodyDeadlines) -> bytes | None:
    """The whole request body, or None when the client went away first;
    BodyReadTimeout when it does not arrive in time."""
    try:
        body: bytes = await deadlines.within(protocol(), deadlines.deadline())
    except BodyReadTimeout:
        raise
    except Exception:  # granian's RSGIProtocolClosed / RSGIProtocolError
        return None
    return body


def send_error(protocol: Any, response: ErrorResponse) -> None:
    """Answer with an error response (``core/http.error_response``)."""
    protocol.response_bytes(
        response.status_code, text_headers(response.raw_headers), bytes(response.body)
    )


def text_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """ASGI's header pairs (bytes) as RSGI's (text)."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


class RSGIApp:
    def __init__(
        self,
        asgi: ASGIApp,
        deadlines: BodyDeadlines,
        fast_paths: dict[str, FastPath] | None = None,
        fast_now: Callable[[], bool] = lambda: True,
        fast_otherwise: FastPath | None = None,
    ) -> None:
        self.asgi = asgi
        # Bodies read here, before the ASGI layers see them, are timed here.
        self.deadlines = deadlines
        self.fast_paths = fast_paths or {}
        # Tried for every other HTTP path (the public pages: any /{slug}).
        self.fast_otherwise = fast_otherwise
        # False while every request must go through the ASGI layers (a
        # draining worker's responses all say Connection: close).
        self.fast_now = fast_now
        self._state: dict[str, Any] = {}
        self._lifespan: _Lifespan | None = None

    # Granian calls these around the worker's life, with its loop not yet
    # (or no longer) running.

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._lifespan = _Lifespan(self.asgi, self._state)
        loop.run_until_complete(self._lifespan.startup())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._lifespan is not None:
            loop.run_until_complete(self._lifespan.shutdown())

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto == "http":
            fast = self.fast_paths.get(scope.path, self.fast_otherwise)
            if fast is not None and self.fast_now():
                await fast(scope, protocol, self.http)
                return
            await self.http(scope, protocol)
        elif scope.proto == "ws":
            await self.websocket(scope, protocol)

    def _scope(self, scope: Any, kind: str, scheme: str) -> dict[str, Any]:
        return {
            "type": kind,
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": scope.http_version,
            "method": scope.method,
            "scheme": scheme,
            "path": scope.path,  # RSGI's is percent-decoded already
            "raw_path": quote(scope.path, safe="/:@!$&'()*+,;=~").encode("ascii"),
            "query_string": scope.query_string.encode("latin-1"),
            "root_path": "",
            "headers": [
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in scope.headers.items()
            ],
            "client": host_port(scope.client),
            "server": host_port(scope.server),
            "state": self._state.copy(),
        }

    async def http(
        self, scope: Any, protocol: Any, body: bytes | None = None, admitted: bool = False
    ) -> None:
        """Serve one request through the ASGI app (``body``: already read)."""
        asgi_scope = self._scope(scope, "http", scope.scheme)
        if admitted:
            asgi_scope[ADMITTED] = True
        if body is None:
            length = scope.headers.get("content-length")
            if length is None and "transfer-encoding" not in scope.headers:
                body = b""  # none comes (a GET)
            elif length is not None and length.isdigit() and int(length) <= SMALL_BODY:
                try:
                    # One call, not a chunk and an end.
                    body = await read_body(protocol, self.deadlines)
                except BodyReadTimeout:
                    send_error(protocol, body_timed_out(self.deadlines.timeout))
                    return
                if body is None:
                    send_error(protocol, incomplete_body())
                    return
        exchange = _HTTPExchange(protocol, body)
        try:
            await self.asgi(asgi_scope, exchange.receive, exchange.send)
        except Exception:
            log.exception("unhandled error serving %s %s", scope.method, scope.path)
            if not exchange.started:
                protocol.response_str(500, _TEXT_PLAIN, "Internal Server Error")
            return
        if not exchange.started:
            protocol.response_str(500, _TEXT_PLAIN, "Internal Server Error")
        # A streamed response ends when this returns.

    async def websocket(self, scope: Any, protocol: Any) -> None:
        scheme = "wss" if scope.scheme in ("https", "wss") else "ws"
        asgi_scope = self._scope(scope, "websocket", scheme)
        offered = next(
            (value for name, value in asgi_scope["headers"] if name == b"sec-websocket-protocol"),
            b"",
        )
        asgi_scope["subprotocols"] = [
            item.strip() for item in offered.decode("latin-1").split(",") if item.strip()
        ]
        del asgi_scope["method"]
        session = _WebSocketSession(protocol)
        app = asyncio.ensure_future(self._websocket_app(asgi_scope, session))
        # Granian sends the close frame when this returns: return as soon as
        # the app closes (it then finishes on its own), not when it ends.
        closing = asyncio.ensure_future(session.closing.wait())
        await asyncio.wait({app, closing}, return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
        session.end()

    async def _websocket_app(self, scope: dict[str, Any], session: _WebSocketSession) -> None:
        try:
            await self.asgi(scope, session.receive, session.send)
        except Exception:
            log.exception("unhandled error on WebSocket %s", scope["path"])


class _HTTPExchange:
    """One request's ``receive`` and ``send`` over an RSGI HTTP protocol."""

    __slots__ = (
        "protocol",
        "body",
        "delivered",
        "chunks",
        "started",
        "finished",
        "status",
        "headers",
        "stream",
    )

    def __init__(self, protocol: Any, body: bytes | None) -> None:
        self.protocol = protocol
        self.body = body  # None: read it chunk by chunk
        self.delivered = False
        self.chunks: Any = None
        self.started = False
        self.finished = False
        self.status = 200
        self.headers: list[tuple[str, str]] = []
        self.stream: Any = None

    async def receive(self) -> Message:
        if not self.delivered:
            if self.body is not None:
                self.delivered = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            # Streamed, so a size limit stops a large upload as it arrives.
            if self.chunks is None:
                self.chunks = self.protocol.__aiter__()
            try:
                chunk = await self.chunks.__anext__()
            except StopAsyncIteration:
                self.delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
            except Exception:  # the client went away mid-body
                self.delivered = True
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunk, "more_body": True}
        # The body was read: what comes next is the client going away.
        await self.protocol.client_disconnect()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
            self.status = message["status"]
            self.headers = text_headers(message.get("headers", []))
        elif kind == "http.response.body":
            if self.finished:
                return
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if self.stream is None and not more:
                self.finished = True
                self.protocol.response_bytes(self.status, self.headers, body)
                return
            if self.stream is None:
                self.stream = self.protocol.response_stream(self.status, self.headers)
            if body:
                await self.stream.send_bytes(body)
            if not more:
                self.finished = True


class _WebSocketSession:
    """One WebSocket's ``receive`` and ``send`` over an RSGI protocol."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport: Any = None
        self.connected = False
        self.closed = False
        self.closing = asyncio.Event()

    async def receive(self) -> Message:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        if self.transport is None or self.closed:
            return {"type": "websocket.disconnect", "code": 1006}
        message = await self.transport.receive()
        if message.kind == 0:  # the client closed: granian answers once we return
            self.closed = True
            self.closing.set()
            return {"type": "websocket.disconnect", "code": 1005}
        if message.kind == 1:
            return {"type": "websocket.receive", "bytes": message.data}
        return {"type": "websocket.receive", "text": message.data}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            self.transport = await self.protocol.accept()
        elif kind == "websocket.send":
            if self.transport is None or self.closed:
                raise RuntimeError("WebSocket is not open")
            text = message.get("text")
            if text is not None:
                await self.transport.send_str(text)
            else:
                await self.transport.send_bytes(message.get("bytes") or b"")
        elif kind == "websocket.close":
            self.end(message.get("code", 1000))

    def end(self, code: int = 1000) -> None:
        if not self.closed:
            self.closed = True
            # Before an accept, closing refuses the handshake (HTTP 403).
            # (Granian's RSGI sends no code with the close frame: clients
            # see 1005.)
            self.protocol.close(code if self.transport is not None else None)
        # Granian finishes the close handshake once it has these back (the
        # app may run on a little while, holding this session).
        self.transport = self.protocol = None
        self.closing.set()


class _Lifespan:
    """Drives the ASGI app's lifespan protocol (startup at the worker's
    start, shutdown at its end), as an ASGI server would."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Future[None] | None = None

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._task = asyncio.ensure_future(self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        reply = await self._reply()
        if reply["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"application start-up failed: {reply.get('message', '')}")

    async def shutdown(self) -> None:
        if self._task is None or self._task.done():
            return
        await self._to_app.put({"type": "lifespan.shutdown"})
        reply = await self._reply()
        if reply["type"] != "lifespan.shutdown.complete":
            log.error("application shutdown failed: %s", reply.get("message", ""))

    async def _reply(self) -> Message:
        assert self._task is not None
        getting: asyncio.Future[Message] = asyncio.ensure_future(self._from_app.get())
        running: asyncio.Future[Any] = self._task
        await asyncio.wait({getting, running}, return_when=asyncio.FIRST_COMPLETED)
        if getting.done():
            return getting.result()
        getting.cancel()
        error = self._task.exception()
        return {"type": "lifespan.startup.failed", "message": repr(error)}
