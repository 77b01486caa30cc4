"""L1: an in-process cache of bytes, bounded by their total size (least
recently used out first) and by time (a TTL capped at five minutes, so a
missed invalidation heals by itself)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

MAX_TTL_SECONDS = 300.0
# Bookkeeping per entry (key, tuple, dict slot), counted against the budget.
ENTRY_OVERHEAD = 200


class _Entry(NamedTuple):
    value: bytes
    expires: float
    size: int


class LocalCache:
    def __init__(
        self,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
        on_evict: Callable[[str], None] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.on_evict = on_evict or (lambda _key: None)
        self.bytes = 0
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def ttl(self, key: str) -> float | None:
        """Seconds the entry has left, or None."""
        entry = self._entries.get(key)
        return None if entry is None else entry.expires - self.clock()

    def set(self, key: str, value: bytes, ttl: float) -> bool:
        """Keep ``value`` for ``ttl`` seconds (at most five minutes); False
        when it is larger than the whole budget."""
        size = len(value) + len(key) + ENTRY_OVERHEAD
        if size > self.max_bytes or ttl <= 0:
            self.delete(key)
            return False
        self.delete(key)
        expires = self.clock() + min(ttl, MAX_TTL_SECONDS)
        self._entries[key] = _Entry(value, expires, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self.on_evict(oldest)
        return True

    def bytes_by_kind(self) -> dict[str, int]:
        """Bytes held per key prefix (``kind:…``); walks every entry, so for
        metrics, not for requests."""
        held: dict[str, int] = {}
        for key, entry in self._entries.items():
            kind = key.partition(":")[0]
            held[kind] = held.get(kind, 0) + entry.size
        return held

    def delete(self, key: str) -> None:
        if key in self._entries:
            self._drop(key)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self.bytes -= entry.size
