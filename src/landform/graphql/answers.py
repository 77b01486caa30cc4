"""Whole answers to read-only operations, kept per worker and checked
against the caller's data before each use.

A query's answer depends on who asks, the document, the operation and the
variables (the key) and on the caller's data, which has two stamps in the
database: the content stamp (``core.owner_stamps``, moved by triggers with
every change to the account's rows) and the analytics stamp (moved by
ingestion). An answer is kept with the stamps read *before* it was
computed, and is used again while

- the content stamp is unchanged (a page, file or key edit shows at once),
- the analytics stamp is unchanged, or moved less than
  ``analytics_report_max_lag`` seconds after the answer was computed (the
  reports' own bound: under a steady beacon the stamp moves every second),
- and the answer is younger than ``graphql_answer_cache_seconds``, which
  also bounds what time alone changes (the last 5 minutes' visitors).

Only operations that executed as queries and answered without errors are
kept; mutations, batches, uploads and anonymous requests always run. A hit
costs the credential check and one read of the two stamps: no parsing,
validation or resolvers."""

from __future__ import annotations

import hashlib
import struct
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from starlette.requests import Request
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from landform.auth.service import Principal
from landform.cache.local import LocalCache


class Stamps(NamedTuple):
    content: int
    analytics: int


# The caller's (content, analytics) stamps, read together.
ReadStamps = Callable[[uuid.UUID], Awaitable[tuple[int, int]]]

# content stamp, analytics stamp, computed at (wall clock seconds)
_HEADER = struct.Struct("<qqd")


@dataclass(slots=True)
class Lookup:
    """A cacheable request: its key, the caller and the stamps read for it;
    ``answer`` is the kept answer when it is still current."""

    key: str
    principal: Principal
    stamps: Stamps
    answer: bytes | None


class AnswerCache:
    def __init__(
        self,
        read_stamps: ReadStamps,
        max_bytes: int,
        ttl: float,
        max_analytics_lag: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.read_stamps = read_stamps
        self.ttl = ttl
        self.max_analytics_lag = max_analytics_lag
        self.clock = clock
        self.local = LocalCache(max_bytes)
        self.hits = 0
        self.misses = 0
        self.sets = 0

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    async def lookup(self, request: Request, body: bytes, principal: Principal) -> Lookup | None:
        """None when the request is not one whose answer is kept."""
        operation = _operation(request, body)
        if operation is None:
            return None
        key = _key(principal, *operation)
        stamps = Stamps(*await self.read_stamps(principal.user_id))
        return Lookup(key, principal, stamps, self._current(key, stamps))

    def keep(self, lookup: Lookup, answer: bytes) -> None:
        header = _HEADER.pack(lookup.stamps.content, lookup.stamps.analytics, self.clock())
        self.local.set(lookup.key, header + answer, self.ttl)
        self.sets += 1

    def _current(self, key: str, stamps: Stamps) -> bytes | None:
        entry = self.local.get(key)
        if entry is None:
            self.misses += 1
            return None
        content, analytics, computed_at = _HEADER.unpack_from(entry)
        if content != stamps.content or (
            analytics != stamps.analytics and self.clock() - computed_at > self.max_analytics_lag
        ):
            self.misses += 1
            return None
        self.hits += 1
        return entry[_HEADER.size :]


def _operation(request: Request, body: bytes) -> tuple[str, str, bytes] | None:
    """(document digest, operation name, canonical variables) of a single
    operation sent as JSON (POST) or in the query string (GET)."""
    try:
        if request.method == "GET":
            params = request.query_params
            fields: dict[str, Any] = {
                "query": params.get("query"),
                "operationName": params.get("operationName"),
                "variables": orjson.loads(params["variables"]) if "variables" in params else None,
                "extensions": orjson.loads(params["extensions"])
                if "extensions" in params
                else None,
            }
        else:  # a JSON POST (the view sends no other)
            fields = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(fields, dict):  # a batch
        return None
    query, name = fields.get("query"), fields.get("operationName")
    variables = fields.get("variables")
    if name is not None and not isinstance(name, str):
        return None
    if variables is not None and not isinstance(variables, dict):
        return None
    digest = _document_digest(query, fields.get("extensions"))
    if digest is None:
        return None
    try:
        canonical = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: not kept
        return None
    return digest, name or "", canonical


def _document_digest(query: Any, extensions: Any) -> str | None:
    """The SHA-256 of the document: of the query text, or of a persisted
    query sent by its hash alone. None when the request carries both: it
    registers the hash (graphql.persisted), which must happen, and be
    checked, on this worker."""
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    if persisted is None:
        return hashlib.sha256(query.encode()).hexdigest() if isinstance(query, str) else None
    if query is not None or not isinstance(persisted, dict) or persisted.get("version") != 1:
        return None
    digest = persisted.get("sha256Hash")
    return digest.lower() if isinstance(digest, str) and len(digest) == 64 else None


def _key(principal: Principal, digest: str, name: str, variables: bytes) -> str:
    caller = f"{principal.user_id.hex}:{int(principal.via_api_key)}"
    parts = (caller.encode(), digest.encode(), name.encode(), variables)
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


class QueryMarker(SchemaExtension):
    """Tells the view which operations ran as queries (whose answers may be
    kept): the operation type is known only once the document is parsed."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.operation_type is OperationType.QUERY:
            context.context.ran_as_query = True
        yield
