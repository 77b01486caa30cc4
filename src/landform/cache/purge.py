"""The CDN purge hook (L3): after a page is published, unpublished, moved
or deleted, a signed webhook names what to purge — surrogate keys (the
page's and its owner's tags, as the pages carry them in ``Surrogate-Key``
and ``Cache-Tag``) and URLs — so any CDN's purge API can be wired to it.

Sent in the background (a publish never waits on a CDN), retried with
backoff, oldest dropped beyond a bound. The body is JSON; the signature is
``X-Landform-Signature: sha256=<hex HMAC of "<timestamp>.<body>">`` with
the timestamp in ``X-Landform-Timestamp``, so a receiver can check both
origin and freshness."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections import deque
from dataclasses import dataclass

import httpx
import orjson

from landform.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000
ATTEMPTS = 6
FIRST_BACKOFF = 0.5


@dataclass(frozen=True, slots=True)
class Purge:
    event: str
    surrogate_keys: tuple[str, ...]
    urls: tuple[str, ...]


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class PurgeHook:
    def __init__(self, url: str, secret: bytes, timeout: float = 5.0) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.sent = 0
        self.failed = 0
        self._queue: deque[Purge] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def notify(self, purge: Purge) -> None:
        if len(self._queue) >= MAX_QUEUED:
            self._queue.popleft()
            self.failed += 1
            log.warning("cdn purge: queue full; dropped the oldest purge")
        self._queue.append(purge)
        self._idle.clear()
        self._wake.set()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout)
        self._task = asyncio.create_task(self._deliver(), name="cdn-purge")

    async def stop(self, grace: float = 5.0) -> None:
        """Deliver what is queued (for ``grace`` seconds at most), then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        await cancel_and_wait(self._task)
        self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _deliver(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            purge = self._queue[0]
            await self._send_with_retries(purge)
            if self._queue and self._queue[0] is purge:
                self._queue.popleft()

    async def _send_with_retries(self, purge: Purge) -> None:
        backoff = FIRST_BACKOFF
        for attempt in range(1, ATTEMPTS + 1):
            outcome = await self._send(purge)
            if outcome == "sent":
                self.sent += 1
                return
            if outcome == "refused":
                self.failed += 1
                return
            if attempt < ATTEMPTS:
                await asyncio.sleep(backoff)
                backoff *= 2
        self.failed += 1
        log.warning(
            "cdn purge: gave up on %s %s after %d attempts",
            purge.event,
            purge.surrogate_keys,
            ATTEMPTS,
        )

    async def _send(self, purge: Purge) -> str:
        """``sent``; ``retry`` (unreachable, 5xx, 429); or ``refused`` (any
        other 4xx: the receiver will not take it, however often sent)."""
        assert self._client is not None
        body = orjson.dumps(
            {
                "event": purge.event,
                "surrogate_keys": list(purge.surrogate_keys),
                "urls": list(purge.urls),
            }
        )
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Landform-Timestamp": timestamp,
            "X-Landform-Signature": signature(self.secret, timestamp, body),
        }
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.info("cdn purge: %s unreachable (%s); will retry", self.url, exc)
            return "retry"
        status = response.status_code
        if status < 300:
            return "sent"
        if 400 <= status < 500 and status != 429:
            log.warning("cdn purge: %s refused the purge (%d)", self.url, status)
            return "refused"
        log.info("cdn purge: %s answered %d; will retry", self.url, status)
        return "retry"
