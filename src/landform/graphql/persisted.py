"""Automatic persisted queries (Apollo's protocol): a client sends
``extensions.persistedQuery.sha256Hash`` alone; if the server knows the
hash, it runs that query, otherwise it answers ``PERSISTED_QUERY_NOT_FOUND``
and the client sends the hash with the query once, which is checked and
remembered. Remembered per worker (bounded, least recently used first out)
and, with Redis, across workers and replicas (through the cache's L2, so a
Redis outage costs a resend, not an error or a wait)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from strawberry.extensions import SchemaExtension

from graphql import GraphQLError

if TYPE_CHECKING:
    from landform.cache.remote import RemoteCache

REMOTE_PREFIX = "apq:"
REMOTE_TTL_SECONDS = 7 * 86400


class PersistedQueries:
    def __init__(self, capacity: int, remote: RemoteCache | None = None) -> None:
        self.capacity = capacity
        self.remote = remote
        self._local: OrderedDict[str, str] = OrderedDict()

    async def get(self, digest: str) -> str | None:
        query = self._local.get(digest)
        if query is not None:
            self._local.move_to_end(digest)
            return query
        if self.remote is not None:
            stored = await self.remote.get(REMOTE_PREFIX + digest)
            if stored is not None:
                query = stored.decode()
                self._remember(digest, query)
        return query

    async def put(self, digest: str, query: str) -> None:
        self._remember(digest, query)
        if self.remote is not None:
            await self.remote.set(REMOTE_PREFIX + digest, query.encode(), REMOTE_TTL_SECONDS)

    def _remember(self, digest: str, query: str) -> None:
        if self.capacity <= 0:
            return
        self._local[digest] = query
        self._local.move_to_end(digest)
        while len(self._local) > self.capacity:
            self._local.popitem(last=False)


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value)


def _error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def persisted_query_extension(store: PersistedQueries) -> type[SchemaExtension]:
    class PersistedQueryExtension(SchemaExtension):
        async def on_operation(self) -> AsyncIterator[None]:
            context = self.execution_context
            persisted: Any = (context.operation_extensions or {}).get("persistedQuery")
            if persisted is not None:
                await self._resolve(persisted)
            yield

        async def _resolve(self, persisted: Any) -> None:
            context = self.execution_context
            if not isinstance(persisted, dict) or persisted.get("version") != 1:
                raise _error("only persistedQuery version 1 is supported", "BAD_PERSISTED_QUERY")
            digest = persisted.get("sha256Hash")
            if not isinstance(digest, str) or not _is_sha256(digest):
                raise _error(
                    "persistedQuery.sha256Hash must be 64 hex digits", "BAD_PERSISTED_QUERY"
                )
            digest = digest.lower()
            if context.query:
                if hashlib.sha256(context.query.encode()).hexdigest() != digest:
                    raise _error("provided sha does not match query", "BAD_PERSISTED_QUERY")
                await store.put(digest, context.query)
                return
            query = await store.get(digest)
            if query is None:
                raise _error("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
            context.query = query

    return PersistedQueryExtension
