"""The hot path: ``GET``/``HEAD /{slug}`` answered from published bytes held
in memory, in front of the API framework.

A hit is a dictionary lookup and one write: no routing, no validation, no
ORM, no template rendering, no database. Headers for every variant
(identity, gzip, brotli) are built once when a page is loaded. A miss loads
the published version's bytes with one query (single-flight per slug), and
slugs that have no published page are remembered too, so unknown slugs do
not reach the database on every request. Both memories are dropped per slug
when the change log (``core.change_log``) says the slug changed."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from landform.core.conditional import etag_matches
from landform.core.db_failures import DatabaseUnavailable
from landform.core.http import error_response, method_label, send_error
from landform.core.proxies import ClientAddress
from landform.core.rate_limits import Observe
from landform.core.rsgi import Fallback, text_headers
from landform.pages.render import NOT_FOUND_CSP
from landform.pages.slugs import RESERVED, SLUG_PATTERN

log = logging.getLogger(__name__)

Loader = Callable[[str], Awaitable[Any]]
# How this path is named in the latency measurements.
ROUTE = "route:GET /{slug}"

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"SAMEORIGIN"),
]


Headers = list[tuple[bytes, bytes]]
Variant = tuple[Headers, bytes]

# Which of a page's answers a request gets (``PublicPages._choose``).
IDENTITY, GZIP, BR, NOT_MODIFIED = 0, 1, 2, 3


@dataclass(slots=True)
class PublicPage:
    etag: bytes
    identity: Variant
    gzip: Variant
    br: Variant
    not_modified: Headers
    size: int
    # IDENTITY, GZIP and BR by index (``PublicPages._choose``); and their
    # headers and NOT_MODIFIED's as text, for the RSGI interface (``rsgi``).
    variants: tuple[Variant, ...] = ()
    text_headers: tuple[list[tuple[str, str]], ...] = ()
    # When this worker stops trusting its copy (monotonic seconds; set by
    # the store), so a missed invalidation heals by itself.
    expires: float = 0.0
    # A page's former address holds where it lives now (its slug), and
    # nothing else: visitors are sent there.
    moved_to: str | None = None


@dataclass(frozen=True, slots=True)
class Moved:
    """What the loader finds at a live page's former address."""

    slug: str


def moved_page(moved: Moved) -> PublicPage:
    return PublicPage(
        etag=b"", identity=([], b""), gzip=([], b""), br=([], b""), not_modified=[],
        size=256, moved_to=moved.slug,
    )  # fmt: skip


class CachePolicy:
    def __init__(self, max_age: int, s_maxage: int, stale_while_revalidate: int) -> None:
        self.value = (
            f"public, max-age={max_age}, s-maxage={s_maxage}, "
            f"stale-while-revalidate={stale_while_revalidate}, stale-if-error=86400"
        ).encode()
        # A moved page's former address: kept no longer than the page it
        # leads to. Kept longer, a move undone (the page back at the former
        # address, the newer one now leading there) sent a browser that
        # held the old redirect round in a loop once its copy of the page
        # had expired.
        self.moved = f"public, max-age={max_age}, s-maxage={s_maxage}".encode()


def surrogate_keys(page_id: Any, owner_id: Any) -> list[str]:
    """The tags a CDN can purge this page by: the page, and all of its
    owner's pages (``page-…``, ``owner-…``)."""
    return [f"page-{_uuid(page_id)}", f"owner-{_uuid(owner_id)}"]


def _uuid(value: Any) -> str:
    # SQLite gives the hex string, PostgreSQL a UUID.
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def build_public_page(row: Any, cache: CachePolicy) -> PublicPage:
    html, html_gzip, html_br, etag, csp, page_id, owner_id = row
    etag_b = etag.encode()
    # Weak: the identity, gzip and br bodies share it, and a strong one must
    # name one exact body (RFC 9110 8.8.3); If-None-Match compares weakly.
    sent_etag = b"W/" + etag_b
    keys = surrogate_keys(page_id, owner_id)
    common = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"etag", sent_etag),
        (b"cache-control", cache.value),
        # Fastly and others read Surrogate-Key (spaces); Cloudflare Cache-Tag (commas).
        (b"surrogate-key", " ".join(keys).encode()),
        (b"cache-tag", ",".join(keys).encode()),
        (b"vary", b"Accept-Encoding"),
        (b"content-security-policy", csp.encode()),
        *_SECURITY_HEADERS,
    ]

    def variant(body: bytes, encoding: bytes | None) -> tuple[list[tuple[bytes, bytes]], bytes]:
        headers = [*common, (b"content-length", str(len(body)).encode())]
        if encoding:
            headers.append((b"content-encoding", encoding))
        return headers, bytes(body)

    page = PublicPage(
        etag=etag_b,
        identity=variant(html, None),
        gzip=variant(html_gzip, b"gzip"),
        br=variant(html_br, b"br"),
        not_modified=[
            (b"etag", sent_etag),
            (b"cache-control", cache.value),
            (b"vary", b"Accept-Encoding"),
        ],
        size=len(html) + len(html_gzip) + len(html_br) + 2048,
    )
    page.variants = (page.identity, page.gzip, page.br)
    page.text_headers = tuple(
        text_headers(headers)
        for headers in (page.identity[0], page.gzip[0], page.br[0], page.not_modified)
    )
    return page


class PublicPageStore:
    """Published pages by slug, least recently used first out, within a byte
    budget and for ``ttl`` seconds each; plus a bounded memory of slugs known
    to have no published page."""

    MAX_MISSING = 50_000

    def __init__(
        self, budget_bytes: int, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.budget = budget_bytes
        self.ttl = ttl
        self.clock = clock
        self.used = 0
        self.hits = 0
        self.misses = 0
        self.sets = 0
        self._pages: OrderedDict[str, PublicPage] = OrderedDict()
        self._missing: OrderedDict[str, None] = OrderedDict()
        self.evictions = 0
        # Slugs being loaded, and whether what the load reads may still be
        # kept: a change that arrives meanwhile means it may be the old version.
        self._loading: dict[str, bool] = {}

    def __len__(self) -> int:
        return len(self._pages)

    def slugs(self) -> list[str]:
        """The slugs held, least recently used first."""
        return list(self._pages)

    def get(self, slug: str, *, count_miss: bool = True) -> PublicPage | None:
        """The page if held and fresh (``count_miss``: False when the caller
        hands a miss on to a path that looks again and counts it)."""
        page = self._pages.get(slug)
        if page is None:
            self.misses += count_miss
            return None
        if page.expires <= self.clock():
            self._forget(slug)
            self.misses += count_miss
            return None
        self._pages.move_to_end(slug)
        self.hits += 1
        return page

    def holds(self, slug: str) -> bool:
        """Whether the page is held and fresh, asked for no visitor: not a
        lookup (no hit or miss counted), nor a use (its place is kept)."""
        page = self._pages.get(slug)
        return page is not None and page.expires > self.clock()

    def is_missing(self, slug: str) -> bool:
        return slug in self._missing

    def begin_load(self, slug: str) -> None:
        self._loading[slug] = True

    def end_load(self, slug: str, page: PublicPage | None) -> None:
        """Keep what a load found, unless the slug changed while it ran."""
        if not self._loading.pop(slug, False):
            return
        if page is None:
            self.mark_missing(slug)
        else:
            self.put(slug, page)

    def abandon_load(self, slug: str) -> None:
        self._loading.pop(slug, None)

    def put(self, slug: str, page: PublicPage) -> None:
        self._forget(slug)
        if page.size > self.budget:
            return
        page.expires = self.clock() + self.ttl
        self._pages[slug] = page
        self.sets += 1
        self.used += page.size
        while self.used > self.budget:
            _, old = self._pages.popitem(last=False)
            self.used -= old.size
            self.evictions += 1

    def mark_missing(self, slug: str) -> None:
        self._missing[slug] = None
        if len(self._missing) > self.MAX_MISSING:
            self._missing.popitem(last=False)

    def discard(self, slug: str) -> None:
        """The slug changed: forget it, and what any load of it now reads."""
        if slug in self._loading:
            self._loading[slug] = False
        self._forget(slug)

    def _forget(self, slug: str) -> None:
        old = self._pages.pop(slug, None)
        if old is not None:
            self.used -= old.size
        self._missing.pop(slug, None)

    def clear(self) -> None:
        for slug in self._loading:
            self._loading[slug] = False
        self._pages.clear()
        self._missing.clear()
        self.used = 0


def _accepted(accept_encoding: bytes) -> tuple[bool, bool]:
    """(brotli acceptable, gzip acceptable), honouring ``;q=0``; ``*``
    stands for the codings the header does not name (RFC 9110), so
    ``br;q=0, *`` still refuses brotli."""
    named: dict[bytes, bool] = {}
    others = False
    for item in accept_encoding.lower().split(b","):
        name, _, params = item.strip().partition(b";")
        refused = params.replace(b" ", b"") in (b"q=0", b"q=0.0", b"q=0.00", b"q=0.000")
        if name == b"*":
            others = not refused
        else:
            named[name] = not refused
    return named.get(b"br", others), named.get(b"gzip", others)


_PAGE_METHODS = error_response(
    405, "method_not_allowed", "a page is read with GET or HEAD", headers={"Allow": "GET, HEAD"}
)


def _slug(path: str) -> str | None:
    """The slug ``path`` names, or None when it is no public page's path."""
    slug = path[1:]
    if not slug or "/" in slug or slug in RESERVED or not SLUG_PATTERN.match(slug):
        return None
    return slug


def _loose_slug_path(path: str) -> str | None:
    """The canonical path of a page's URL written loosely (capitals, a
    trailing slash), as links in mail and print often are; None for a path
    that is canonical already or names no page."""
    if "/" in path[1:-1]:  # any API path: left at once, it is on the beacon's way
        return None
    candidate = path[1:].removesuffix("/").lower()
    if candidate == path[1:] or _slug("/" + candidate) is None:
        return None
    return "/" + candidate


class PublicPages:
    """ASGI layer: serves ``/{slug}`` itself and passes everything else on."""

    def __init__(
        self,
        app: ASGIApp,
        store: PublicPageStore,
        loader: Loader,
        cache: CachePolicy,
        not_found_html: bytes,
        observe: Observe | None = None,
        client_address: ClientAddress | None = None,
    ) -> None:
        self.app = app
        # For the native handler (``rsgi``): the client's address, and (set
        # by the app) a rate-limit token taken for it without I/O (True), or
        # not (the ASGI layers then decide). Unset, all goes through them.
        self.client_address = client_address or ClientAddress([])
        self.admit: Callable[[str], bool | None] | None = None
        # Told each request's route, time (µs) and whether it failed (ops/).
        self.observe = observe or (lambda _route, _micros, _failed: None)
        self.store = store
        self.loader = loader
        self.cache = cache
        self._inflight: dict[str, asyncio.Future[PublicPage | None]] = {}
        self._encodings: dict[bytes, tuple[bool, bool]] = {}
        self._not_found = (
            [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(not_found_html)).encode()),
                (b"cache-control", b"public, max-age=10, s-maxage=10"),
                (b"content-security-policy", NOT_FOUND_CSP.encode()),
                *_SECURITY_HEADERS,
            ],
            not_found_html,
        )

        unavailable = b"Service temporarily unavailable; please retry shortly.\n"
        self._unavailable = (
            [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(unavailable)).encode()),
                (b"retry-after", b"5"),
                (b"cache-control", b"no-store"),
            ],
            unavailable,
        )
        self._quiet_until = 0.0  # the next outage warning, on the monotonic clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            if scope["type"] == "http" and _slug(scope["path"]) is not None:
                # A page's URL is only read (a form posted to it, say).
                started = time.perf_counter_ns()
                await send_error(send, _PAGE_METHODS)
                micros = (time.perf_counter_ns() - started) // 1000
                self.observe(f"route:{method_label(scope['method'])} /{{slug}}", micros, False)
                return
            await self.app(scope, receive, send)
            return
        slug = _slug(scope["path"])
        if slug is None:
            canonical = _loose_slug_path(scope["path"])
            if canonical is None:
                await self.app(scope, receive, send)
            else:
                await self._redirect(send, canonical, scope["query_string"])
            return

        started = time.perf_counter_ns()
        status = await self._serve(slug, scope, send)
        # Timed here rather than by a wrapping layer: this is the hottest
        # path, and a wrapper around its send() costs more than the timing.
        self.observe(ROUTE, (time.perf_counter_ns() - started) // 1000, status >= 500)

    async def _serve(self, slug: str, scope: Scope, send: Send) -> int:
        page = self.store.get(slug)
        if page is None:
            try:
                page = await self._load(slug)
            except DatabaseUnavailable as exc:
                # An outage: said once a minute, not once per visitor.
                now = time.monotonic()
                if now >= self._quiet_until:
                    self._quiet_until = now + 60
                    log.warning("published pages not held here cannot be loaded: %s", exc)
                await self._send(send, scope, 503, self._unavailable)
                return 503
            except Exception:
                log.exception("could not load the published page %r", slug)
                await self._send(send, scope, 503, self._unavailable)
                return 503
            if page is None:
                await self._send(send, scope, 404, self._not_found)
                return 404
        if page.moved_to is not None:
            # Kept five minutes, not a day: another page may take the address.
            await self._redirect(send, f"/{page.moved_to}", scope["query_string"], self.cache.moved)
            return 301

        accept = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                accept = value
            elif name == b"if-none-match":
                if_none_match = value
        answer = self._choose(page, accept, if_none_match)
        if answer == NOT_MODIFIED:
            await send({"type": "http.response.start", "status": 304, "headers": page.not_modified})
            await send({"type": "http.response.body", "body": b""})
            return 304
        await self._send(send, scope, 200, page.variants[answer])
        return 200

    def _choose(self, page: PublicPage, accept: bytes | None, if_none_match: bytes | None) -> int:
        """IDENTITY, GZIP, BR or NOT_MODIFIED, by the request's headers."""
        if if_none_match is not None and etag_matches(if_none_match, page.etag):
            return NOT_MODIFIED
        if not accept:
            return IDENTITY
        encodings = self._encodings.get(accept)
        if encodings is None:
            encodings = _accepted(accept)
            if len(self._encodings) < 1000:
                self._encodings[accept] = encodings
        return BR if encodings[0] else GZIP if encodings[1] else IDENTITY

    async def rsgi(self, scope: Any, protocol: Any, fallback: Fallback) -> None:
        """``GET``/``HEAD /{slug}`` over granian's RSGI interface
        (``core/rsgi.py``): a page held in memory is answered here; anything
        else (another path, a page to load, a 404, a client out of tokens)
        goes to ``fallback``, the ASGI layers, this class's ``__call__``
        among them."""
        started = time.perf_counter_ns()
        method = scope.method
        slug = _slug(scope.path) if method in ("GET", "HEAD") else None
        if slug is None or self.admit is None:
            await fallback(scope, protocol)
            return
        allowed = self.admit(self.client_address.of_rsgi(scope))
        page = self.store.get(slug, count_miss=False) if allowed else None
        if page is None or page.moved_to is not None:
            await fallback(scope, protocol, admitted=bool(allowed))
            return
        headers = scope.headers
        accept = headers.get("accept-encoding")
        if_none_match = headers.get("if-none-match")
        answer = self._choose(
            page,
            accept.encode("latin-1") if accept else None,
            if_none_match.encode("latin-1") if if_none_match is not None else None,
        )
        if answer == NOT_MODIFIED:
            protocol.response_empty(304, page.text_headers[NOT_MODIFIED])
        elif method == "HEAD":
            protocol.response_empty(200, page.text_headers[answer])
        else:
            protocol.response_bytes(200, page.text_headers[answer], page.variants[answer][1])
        self.observe(ROUTE, (time.perf_counter_ns() - started) // 1000, False)

    @staticmethod
    async def _redirect(
        send: Send, path: str, query: bytes, cache: bytes = b"public, max-age=86400"
    ) -> None:
        location = path.encode() + (b"?" + query if query else b"")
        headers = [
            (b"location", location),
            (b"content-length", b"0"),
            (b"cache-control", cache),
        ]
        await send({"type": "http.response.start", "status": 301, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _send(
        send: Send, scope: Scope, status: int, variant: tuple[list[tuple[bytes, bytes]], bytes]
    ) -> None:
        headers, body = variant
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    async def warm(self, slugs: list[str], fill: float = 0.8) -> int:
        """Load ``slugs`` (most wanted first) that are not held yet, until
        the store is ``fill`` full: warming never evicts what visitors
        asked for. Returns how many were loaded."""
        loaded = 0
        for slug in slugs:
            if self.store.used >= self.store.budget * fill:
                break
            # Not a visitor's lookup: a new replica warming its store is not
            # a cache missing (the SLA's hit ratio counts visitors' lookups).
            if self.store.holds(slug) or self.store.is_missing(slug):
                continue
            try:
                if await self._load(slug) is not None:
                    loaded += 1
            except Exception:
                log.warning("warming: could not load %r", slug, exc_info=True)
                break
        return loaded

    async def _load(self, slug: str) -> PublicPage | None:
        if self.store.is_missing(slug):
            return None
        pending = self._inflight.get(slug)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[PublicPage | None] = asyncio.get_running_loop().create_future()
        self._inflight[slug] = future
        self.store.begin_load(slug)
        try:
            row = await self.loader(slug)
            if isinstance(row, Moved):
                page: PublicPage | None = moved_page(row)
            else:
                page = build_public_page(row, self.cache) if row is not None else None
            self.store.end_load(slug, page)
            future.set_result(page)
            return page
        except BaseException as exc:
            self.store.abandon_load(slug)
            future.set_exception(exc)
            future.exception()  # retrieved here, so no "never retrieved" warning
            raise
        finally:
            del self._inflight[slug]
