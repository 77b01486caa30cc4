"""A byte limit on what a WebSocket client may send in one message.

Every WebSocket here (the live view, GraphQL's ``graphql-transport-ws``)
takes only small client messages: heartbeat answers, ``connection_init``,
``subscribe``, ``complete``. The servers' own limits are far larger:
uvicorn's is 16 MiB unless told (``landform serve`` passes this limit as
its ``ws_max_size``, so it refuses before buffering), and granian has no
setting at all — it assembles messages of up to 64 MiB (frames of up to
16 MiB) before the app sees them, measured at ~2x that in a worker's RSS.
Under granian this layer is what closes such a connection (1009, message
too big), so a client cannot keep sending them on one socket; it cannot
stop granian from reading the first one.

Over RSGI (``core/rsgi.py``) the close goes out without its code."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MESSAGE_TOO_BIG = 1009


class WebSocketMessageLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.reason = f"message too big: at most {max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        closed = False

        async def limited_receive() -> Message:
            nonlocal closed
            if closed:
                return _disconnect(self.reason)
            message = await receive()
            if message["type"] == "websocket.receive" and self._too_big(message):
                closed = True
                await send(
                    {"type": "websocket.close", "code": MESSAGE_TOO_BIG, "reason": self.reason}
                )
                # The app sees the client gone, and ends as it would then.
                return _disconnect(self.reason)
            return message

        async def guarded_send(message: Message) -> None:
            # Once closed here, what the app still sends (a ping, its own
            # close) has nowhere to go; the server would refuse it.
            if not closed:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    def _too_big(self, message: Message) -> bool:
        text = message.get("text")
        if text is None:
            return len(message.get("bytes") or b"") > self.max_bytes
        length = len(text)
        # A character is 1-4 bytes in UTF-8: encode only when it could matter.
        if length > self.max_bytes:
            return True
        return length * 4 > self.max_bytes and len(text.encode()) > self.max_bytes


def _disconnect(reason: str) -> Message:
    return {"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG, "reason": reason}
