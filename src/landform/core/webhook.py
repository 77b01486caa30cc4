"""Outgoing webhooks: a JSON body posted in the background (the caller
never waits on the receiver), retried with backoff on 5xx, 429 or an
unreachable receiver, not retried on other 4xx, oldest dropped beyond a
bound. Signed: ``X-Landform-Signature: sha256=<hex HMAC of
"<timestamp>.<body>">`` with the timestamp in ``X-Landform-Timestamp``, so a
receiver can check both origin and freshness. The CDN purge hook and the
SLA alerts use it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from landform.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000
ATTEMPTS = 6
FIRST_BACKOFF = 0.5


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class Webhook:
    def __init__(self, url: str, secret: bytes, name: str, timeout: float = 5.0) -> None:
        # What the log calls it ("cdn purge", "sla alert").
        self.name = name
        self.url = url
        # What the log shows of it: hook URLs often carry their secret in
        # the user info, the path's last part or the query.
        self.shown_url = redacted_url(url)
        self.secret = secret
        self.timeout = timeout
        self.sent = 0
        self.failed = 0
        self._queue: deque[Mapping[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def notify(self, payload: Mapping[str, Any]) -> None:
        if len(self._queue) >= MAX_QUEUED:
            self._queue.popleft()
            self.failed += 1
            log.warning("%s: queue full; dropped the oldest message", self.name)
        self._queue.append(payload)
        self._idle.clear()
        self._wake.set()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout)
        self._task = asyncio.create_task(self._deliver(), name=f"webhook {self.name}")

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
            payload = self._queue[0]
            await self._send_with_retries(payload)
            if self._queue and self._queue[0] is payload:
                self._queue.popleft()

    async def _send_with_retries(self, payload: Mapping[str, Any]) -> None:
        backoff = FIRST_BACKOFF
        for attempt in range(1, ATTEMPTS + 1):
            outcome, why = await self._send(payload)
            if outcome == "sent":
                self.sent += 1
                return
            if outcome == "refused":
                self.failed += 1
                log.warning("%s: %s refused it (%s)", self.name, self.shown_url, why)
                return
            if attempt < ATTEMPTS:
                log.info(
                    "%s: %s %s; trying again in %gs (attempt %d of %d)",
                    self.name, self.shown_url, why, backoff, attempt + 1, ATTEMPTS,
                )  # fmt: skip
                await asyncio.sleep(backoff)
                backoff *= 2
            else:
                self.failed += 1
                log.warning(
                    "%s: %s %s; gave up on %s after %d attempts",
                    self.name, self.shown_url, why, dict(payload), ATTEMPTS,
                )  # fmt: skip

    async def _send(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        """``sent``; ``retry`` (unreachable, 5xx, 429); or ``refused`` (any
        other 4xx: the receiver will not take it, however often sent); and
        what happened, for the log."""
        assert self._client is not None
        body = orjson.dumps(payload)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Landform-Timestamp": timestamp,
            "X-Landform-Signature": signature(self.secret, timestamp, body),
        }
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return "retry", f"unreachable ({type(exc).__name__}: {exc})"
        status = response.status_code
        if status < 300:
            return "sent", ""
        if 400 <= status < 500 and status != 429:
            return "refused", f"answered {status}"
        return "retry", f"answered {status}"


def redacted_url(url: str) -> str:
    """``url`` fit for a log: scheme, host and port only (no user info,
    path or query, where hooks keep their tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    hidden = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{hidden}"
