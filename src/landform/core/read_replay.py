"""A read whose database connection died under it is served once more.

When PostgreSQL restarts or fails over, every session ends, and the
requests using one at that moment fail with ``DatabaseUnavailable``. For
``GET`` and ``HEAD`` the API serves the request a second time instead of
answering 503: by HTTP's rules they change nothing, so doing one twice is
the same as doing it once, and the second try finds a fresh connection (or
waits for the database to come back: ``Database``'s connect wait). Only a
*lost connection* is retried, and only once: a database that cannot be
reached at all was already waited for, and a second wait would only make
the 503 later. Writes are not retried here: a connection lost during a
COMMIT leaves its outcome unknown, so they answer 503 and the client
decides (with an ``Idempotency-Key`` a retry creates nothing twice).

The handler never learns of it: the error still becomes a response in the
one place errors do, and this layer drops that response before anything of
it was sent."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from landform.core.db_failures import ReadAttempt, current_read_attempt

SAFE_METHODS = frozenset({"GET", "HEAD"})


class ReadReplay:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        attempt = ReadAttempt()
        dropped = False

        async def first_send(message: Message) -> None:
            nonlocal dropped
            if (
                message["type"] == "http.response.start"
                and message["status"] == 503
                and attempt.lost_connection
            ):
                dropped = True
            if not dropped:
                await send(message)

        token = current_read_attempt.set(attempt)
        try:
            await self.app(scope, receive, first_send)
        finally:
            current_read_attempt.reset(token)
        if dropped:
            await self.app(scope, _empty_body_then(receive), send)


def _empty_body_then(receive: Receive) -> Receive:
    """The request body again (a GET's is empty), then the client's own
    messages (a disconnect)."""
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return await receive()

    return again
