"""The asset hot path: ``GET``/``HEAD /assets/{key}`` in front of the API.

Keys are content-addressed (``<sha256>.<ext>``), so the URL alone gives the
type, a strong ETag and immutability: no database query, ever. Small files
are held in a byte-bounded in-memory LRU; large ones are sent by the server
straight from disk (the ASGI ``pathsend`` extension, zero-copy in granian)
or streamed in chunks. Single byte ranges get 206, unsatisfiable ones 416.
SVG and PDF are sent with a CSP that blocks script; everything with nosniff."""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from landform.core.conditional import etag_matches, etag_matches_strongly
from landform.core.errors import error_body
from landform.files.kinds import BY_EXTENSION
from landform.files.storage import KEY_PATTERN, Storage

log = logging.getLogger(__name__)

PREFIX = "/assets/"
IMMUTABLE = b"public, max-age=31536000, immutable"
# Active content inside an asset cannot run: no script, no plugins, no forms,
# and the document is sandboxed (its own opaque origin).
ACTIVE_CONTENT_CSP = b"default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(slots=True)
class AssetMeta:
    size: int
    headers: list[tuple[bytes, bytes]]  # everything but Content-Length/Range
    etag: bytes
    # When this worker stops trusting what it holds (monotonic seconds).
    expires: float = 0.0


class AssetCache:
    """Asset facts by key, and the bytes of small assets, within a byte
    budget; both for ``ttl`` seconds."""

    def __init__(
        self,
        budget_bytes: int,
        small_file_bytes: int,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget_bytes
        self.small = small_file_bytes
        self.ttl = ttl
        self.clock = clock
        self.used = 0
        self.hits = 0
        self.misses = 0
        self.sets = 0
        self.evictions = 0
        self.meta: OrderedDict[str, AssetMeta] = OrderedDict()
        self.bodies: OrderedDict[str, bytes] = OrderedDict()

    def put_body(self, key: str, body: bytes) -> None:
        if len(body) > self.small:
            return
        self.bodies[key] = body
        self.sets += 1
        self.used += len(body)
        while self.used > self.budget and self.bodies:
            _, old = self.bodies.popitem(last=False)
            self.used -= len(old)
            self.evictions += 1

    def get_body(self, key: str) -> bytes | None:
        body = self.bodies.get(key)
        if body is not None:
            self.bodies.move_to_end(key)
        return body

    def get_meta(self, key: str) -> AssetMeta | None:
        meta = self.meta.get(key)
        if meta is None:
            self.misses += 1
            return None
        if meta.expires <= self.clock():
            self.discard(key)
            self.misses += 1
            return None
        self.hits += 1
        return meta

    def put_meta(self, key: str, meta: AssetMeta) -> None:
        meta.expires = self.clock() + self.ttl
        self.meta[key] = meta
        self.sets += 1
        if len(self.meta) > 100_000:
            self.meta.popitem(last=False)
            self.evictions += 1

    def clear(self) -> None:
        self.meta.clear()
        self.bodies.clear()
        self.used = 0

    def discard(self, key: str) -> None:
        self.meta.pop(key, None)
        body = self.bodies.pop(key, None)
        if body is not None:
            self.used -= len(body)


def asset_headers(key: str) -> list[tuple[bytes, bytes]]:
    extension = key.rsplit(".", 1)[1]
    kind = BY_EXTENSION.get(extension)
    mime = kind.mime if kind else "application/octet-stream"
    headers = [
        (b"content-type", mime.encode()),
        (b"etag", b'"' + key.encode() + b'"'),
        (b"cache-control", IMMUTABLE),
        (b"accept-ranges", b"bytes"),
        (b"x-content-type-options", b"nosniff"),
        (b"cross-origin-resource-policy", b"cross-origin"),
    ]
    if mime in ("image/svg+xml", "application/pdf"):
        headers.append((b"content-security-policy", ACTIVE_CONTENT_CSP))
    return headers


def parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """(start, end exclusive) for one satisfiable range; None to ignore the
    header (serve everything); False when it cannot be satisfied."""
    match = _RANGE.match(header.strip())
    if not match:
        return None  # several ranges or another unit: the whole file is a valid answer
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = _offset(last)
        if length == 0 or size == 0:
            return False
        return max(0, size - length), size
    start = _offset(first)
    if last and _offset(last) < start:
        return None  # not a range at all (RFC 9110 14.1.1): ignored
    if start >= size:
        return False
    return start, min(_offset(last) + 1, size) if last else size


# Past any file's size. Python refuses to read a number of more than 4,300
# digits (CVE-2020-10735) and a header may hold one: a longer one reads as
# this, which means the same (beyond the end).
_BEYOND_ANY_FILE = 10**18


def _offset(digits: str) -> int:
    return int(digits) if len(digits) < 18 else _BEYOND_ANY_FILE


class Assets:
    """ASGI layer: serves ``/assets/…`` itself and passes everything else on."""

    def __init__(self, app: ASGIApp, storage: Storage, cache: AssetCache) -> None:
        self.app = app
        self.storage = storage
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not scope["path"].startswith(PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        key = scope["path"][len(PREFIX) :]
        if not KEY_PATTERN.match(key):
            await _error(send, 404, _NOT_FOUND)
            return
        meta = self.cache.get_meta(key)
        if meta is None:
            try:
                size = await self.storage.size(key)
            except Exception:
                log.exception("could not reach storage for %s", key)
                await _error(send, 503, _STORAGE_UNAVAILABLE)
                return
            if size is None:
                await _error(send, 404, _NOT_FOUND)
                return
            headers = asset_headers(key)
            meta = AssetMeta(size=size, headers=headers, etag=headers[1][1])
            self.cache.put_meta(key, meta)

        if_none_match = range_header = if_range = if_match = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value
            elif name == b"range":
                range_header = value
            elif name == b"if-range":
                if_range = value
            elif name == b"if-match":
                if_match = value
        if if_match is not None and not etag_matches_strongly(if_match, meta.etag):
            await _error(send, 412, _NOT_THIS_ASSET)
            return
        if if_none_match is not None and etag_matches(if_none_match, meta.etag):
            await send({"type": "http.response.start", "status": 304, "headers": meta.headers})
            await send({"type": "http.response.body", "body": b""})
            return

        redirect = self.storage.signed_url(key)
        if redirect is not None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 307,
                    "headers": [
                        (b"location", redirect.encode()),
                        (b"cache-control", b"private, max-age=300"),
                        (b"content-length", b"0"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        start, end, status = 0, meta.size, 200
        # A range of another version of the bytes than the client holds
        # would corrupt what it resumes: then the whole asset (RFC 9110 13.1.5).
        if if_range is not None and not etag_matches_strongly(if_range, meta.etag):
            range_header = None
        if range_header is not None:
            wanted = parse_range(range_header.decode("latin-1"), meta.size)
            if wanted is False:
                message = f"the asset is {meta.size} bytes; the range asks for none of them"
                await _error(
                    send,
                    416,
                    orjson.dumps(error_body("range_not_satisfiable", message)),
                    [(b"content-range", f"bytes */{meta.size}".encode())],
                )
                return
            if wanted is not None:
                assert isinstance(wanted, tuple)
                start, end = wanted
                status = 206
        headers = [*meta.headers, (b"content-length", str(end - start).encode())]
        if status == 206:
            headers.append((b"content-range", f"bytes {start}-{end - 1}/{meta.size}".encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        await self._send_body(scope, send, key, meta, start, end)

    async def _send_body(
        self, scope: Scope, send: Send, key: str, meta: AssetMeta, start: int, end: int
    ) -> None:
        if meta.size <= self.cache.small:
            body = self.cache.get_body(key)
            if body is None:
                body = b"".join([chunk async for chunk in self.storage.read(key)])
                self.cache.put_body(key, body)
            await send({"type": "http.response.body", "body": body[start:end]})
            return
        path = self.storage.local_path(key)
        whole = start == 0 and end == meta.size
        if whole and path is not None and "http.response.pathsend" in scope.get("extensions", {}):
            await send({"type": "http.response.pathsend", "path": str(path)})
            return
        async for chunk in self.storage.read(key, start, end):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


# Answers in the API's one error shape, made once.
_NOT_FOUND = orjson.dumps(error_body("asset_not_found", "no such asset"))
_NOT_THIS_ASSET = orjson.dumps(
    error_body("precondition_failed", "If-Match names none of this asset's entity tag")
)
_STORAGE_UNAVAILABLE = orjson.dumps(
    error_body("storage_unavailable", "file storage cannot be reached; retry shortly")
)


async def _error(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    # A missing asset may be cached a minute; a failure, or a refusal of one
    # request's Range or If-Match (the URL's other requests are fine), not at all.
    cacheable = status < 500 and status not in (412, 416)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"cache-control", b"public, max-age=60" if cacheable else b"no-store"),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
