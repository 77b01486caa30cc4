"""Accepting a tracking beacon: validate, find the page, hash the visitor,
hand the event to ingestion. No database write happens here; the page
lookup and the day's salt are cached."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from landform.analytics.classify import classify_agent, referrer_host
from landform.analytics.errors import TrackedPageNotFound
from landform.analytics.events import EVENT, VIEW, Event
from landform.analytics.ingest import Ingestion
from landform.analytics.schemas import EventIn, ViewIn
from landform.analytics.visitors import VisitorHasher, day_of
from landform.core.clock import Clock
from landform.core.db import Database
from landform.core.db_failures import DatabaseUnavailable
from landform.core.errors import ValidationFailed, validation_details
from landform.core.ids import new_id_hex
from landform.pages import repository as page_repo

# How many ids clients gave their events a worker keeps, to count a resend
# once in the live view (a resend comes within seconds; 20,000 ids are
# about 3 MB).
GIVEN_IDS_KEPT = 20_000


@dataclass(frozen=True, slots=True)
class TrackedPage:
    page_id: str
    owner_id: str


class PageDirectory:
    """Published pages by id and by slug, remembered for a minute (unknown
    ones for ten seconds), so beacons do not query the database.

    Told of every public change (``forget``, from the change log, as the
    page store is): a page just published takes its beacons at once rather
    than once its "unknown" has expired (its first views were refused, and
    lost: browsers do not send a beacon again), and one unpublished or moved
    takes none under its old standing."""

    FOUND_TTL = 60.0
    MISSING_TTL = 10.0
    MAX_ENTRIES = 100_000

    def __init__(self, db: Database) -> None:
        self.db = db
        # key -> (the page or None for unknown, expiry, the changes seen then)
        self._known: dict[uuid.UUID | str, tuple[TrackedPage | None, float, int]] = {}
        self._loading: dict[uuid.UUID | str, asyncio.Task[TrackedPage | None]] = {}
        # The id of each slug found, to forget both keys of a changed page.
        self._slug_ids: dict[str, uuid.UUID] = {}
        # Counts public changes: an "unknown" from before one may be stale
        # (the change can be a publish, of a page known only by its id).
        self._changes = 0

    def forget(self, slug: str) -> None:
        """``slug`` changed (published, unpublished, moved, deleted)."""
        self._changes += 1
        self._known.pop(slug, None)
        page_id = self._slug_ids.pop(slug, None)
        if page_id is not None:
            self._known.pop(page_id, None)

    def forget_all(self) -> None:
        self._changes += 1
        self._known.clear()
        self._slug_ids.clear()

    @property
    def changes(self) -> int:
        return self._changes

    def learn(self, slug: str, page_id: Any, owner_id: Any, changes_before: int) -> None:
        """A published page read for its visitors (``GET /{slug}``, warming):
        its beacons need not look it up again, and a database outage does
        not keep its views out (as it does not keep the page from being
        served). ``changes_before``: ``changes`` before it was read; a
        change since may have made what was read stale, so it is not kept."""
        if changes_before != self._changes:
            return
        page_uuid = page_id if isinstance(page_id, uuid.UUID) else uuid.UUID(str(page_id))
        owner = owner_id if isinstance(owner_id, uuid.UUID) else uuid.UUID(str(owner_id))
        self._make_room()
        entry = (
            TrackedPage(str(page_uuid), str(owner)),
            time.monotonic() + self.FOUND_TTL,
            changes_before,
        )
        self._known[page_uuid] = self._known[slug] = entry
        self._slug_ids[slug] = page_uuid

    def _make_room(self) -> None:
        if len(self._known) >= self.MAX_ENTRIES:
            self._known.clear()
            self._slug_ids.clear()

    def remembered(self, page_id: uuid.UUID | None, slug: str | None) -> TrackedPage | None:
        """The page if it is known and published now (no await: the common
        case of a beacon); None means ask ``resolve``."""
        known = self._known.get(page_id if page_id is not None else slug or "")
        return known[0] if known is not None and known[1] > time.monotonic() else None

    async def resolve(self, page_id: uuid.UUID | None, slug: str | None) -> TrackedPage | None:
        # Keyed by the UUID itself or the slug: they cannot collide.
        key = page_id if page_id is not None else slug or ""
        known = self._known.get(key)
        if (
            known is not None
            and known[1] > time.monotonic()
            and (known[0] is not None or known[2] == self._changes)
        ):
            return known[0]
        task = self._loading.get(key)
        if task is None:
            task = self._loading[key] = asyncio.create_task(self._load(key, page_id, slug))
            task.add_done_callback(lambda _t: self._loading.pop(key, None))
        return await asyncio.shield(task)

    async def _load(
        self, key: uuid.UUID | str, page_id: uuid.UUID | None, slug: str | None
    ) -> TrackedPage | None:
        changes = self._changes
        try:
            async with self.db.primary_connection() as connection:
                row = await page_repo.published_owner(connection, page_id=page_id, slug=slug)
        except DatabaseUnavailable:
            # An outage longer than the wait: a page known to be published
            # a minute ago still takes its views (the ingestion backlog holds
            # them until the database is back) rather than losing them.
            stale = self._known.get(key)
            if stale is None or stale[0] is None:
                raise
            self._known[key] = (stale[0], time.monotonic() + self.MISSING_TTL, stale[2])
            return stale[0]
        page = TrackedPage(str(row.id), str(row.owner_id)) if row is not None else None
        if changes != self._changes:
            return page  # what was read may predate the change: not kept
        self._make_room()
        ttl = self.FOUND_TTL if page is not None else self.MISSING_TTL
        self._known[key] = (page, time.monotonic() + ttl, changes)
        if row is not None:
            self._slug_ids[row.slug] = row.id
        return page


class Tracker:
    def __init__(
        self,
        directory: PageDirectory,
        hasher: VisitorHasher,
        ingestion: Ingestion,
        clock: Clock,
        public_url: str,
        on_accepted: Callable[[Event, bool], None] | None = None,
    ) -> None:
        self.directory = directory
        self.hasher = hasher
        self.ingestion = ingestion
        self.clock = clock
        self.own_host = (urlsplit(public_url).hostname or "").lower().removeprefix("www.")
        self.on_accepted = on_accepted or (lambda _event, _bot: None)
        # Ids clients gave their events, lately. A resend (after a request
        # that failed on the way back) is stored once, by the batch
        # writer's dedupe; it is counted once in the live view by this
        # (per worker: one resent to another worker is counted there too,
        # the reports once).
        self._given_ids: OrderedDict[str, None] = OrderedDict()

    async def track(
        self, kind: str, body: bytes, address: str, user_agent: str, country: str
    ) -> None:
        """Accept a view (``kind`` VIEW) or a conversion (EVENT) from its
        beacon body, or raise a domain error (nothing is then stored)."""
        payload: ViewIn | EventIn = parse_beacon(ViewIn if kind == VIEW else EventIn, body)
        page = self.directory.remembered(payload.page_id, payload.slug)
        if page is None:
            page = await self._page(payload.page_id, payload.slug)
        now_ms = self.clock.now_ms()
        day = day_of(now_ms)
        salt = self.hasher.remembered_salt(day) or await self.hasher.salt(day)
        is_event = isinstance(payload, EventIn)
        name, value = (
            (payload.name, payload.value) if isinstance(payload, EventIn) else (None, None)
        )
        event = Event(
            id=payload.id.hex if payload.id is not None else new_id_hex(),
            received_ms=now_ms,
            kind=EVENT if is_event else VIEW,
            page_id=page.page_id,
            owner_id=page.owner_id,
            visitor=VisitorHasher.visitor_id(salt, page.owner_id, address, user_agent),
            user_agent=user_agent[:512],
            path=payload.path,
            referrer=referrer_host(payload.referrer, self.own_host),
            utm_source=payload.utm_source,
            utm_medium=payload.utm_medium,
            utm_campaign=payload.utm_campaign,
            screen_width=payload.screen_width,
            country=country,
            name=name,
            value=value,
        )
        await self.ingestion.put(event)
        if payload.id is None or self._first_time(event.id):
            self.on_accepted(event, classify_agent(event.user_agent).is_bot)

    def _first_time(self, given_id: str) -> bool:
        if given_id in self._given_ids:
            self._given_ids.move_to_end(given_id)
            return False
        self._given_ids[given_id] = None
        if len(self._given_ids) > GIVEN_IDS_KEPT:
            self._given_ids.popitem(last=False)
        return True

    async def _page(self, page_id: uuid.UUID | None, slug: str | None) -> TrackedPage:
        page = await self.directory.resolve(page_id, slug)
        if page is None:
            raise TrackedPageNotFound("no published page has that id or slug")
        return page


def parse_beacon(model: Any, body: bytes) -> Any:
    """A tracking payload from its JSON body, or ``ValidationFailed``."""
    if not body.strip():
        raise ValidationFailed(
            "the request body is empty; send a JSON object",
            details=[{"path": "", "message": "a JSON object is required"}],
        )
    # JSON can carry NUL only as an escape (raw, it is no JSON: said below).
    # Checked on the bytes, as the models do not (schemas._Tracked). A
    # literal backslash-u0000 in some text is refused too: no beacon means that.
    if b"\\u0000" in body:
        raise ValidationFailed(
            "text must not contain NUL characters",
            details=[{"path": "", "message": "a NUL character (\\u0000) in the body"}],
        )
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        details = validation_details(errors)
        if any(error["type"] == "json_invalid" for error in errors):
            # As every JSON endpoint says it (core/http.py).
            raise ValidationFailed(
                "request body is not valid JSON", code="malformed_json", details=details
            ) from exc
        raise ValidationFailed("the tracking payload is invalid", details=details) from exc
