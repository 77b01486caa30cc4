"""Identifiers: time-ordered UUIDs (the version 7 layout), so primary keys sort
by creation time and double as pagination cursors; and the random bytes they
and request ids are made of."""

import os
import threading
import time
import uuid

POOL_BYTES = 4096


class RandomPool:
    """Bytes from the operating system's CSPRNG, read a page at a time.

    ``os.urandom`` is a system call that lets go of the GIL; the tracker
    makes an event id per beacon on the event loop, and with the batch
    writer's thread running, each call waited for the GIL to come back:
    6.9 µs per id in the server, of a beacon's ~30 µs on the loop (0.8 µs
    with the writer idle). From a pool, one call serves 400 ids.

    Thread-safe (ids are made in worker threads too). A forked child starts
    with an empty pool: sharing the parent's unread bytes would give both
    processes the same ids."""

    def __init__(self, size: int = POOL_BYTES) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._bytes = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def take(self, count: int) -> bytes:
        with self._lock:
            at = self._at
            if at + count > len(self._bytes):
                self._bytes = os.urandom(max(self.size, count))
                at = 0
            self._at = at + count
            return self._bytes[at : at + count]

    def _forget(self) -> None:
        # The lock may have been held by another thread at the fork.
        self._lock = threading.Lock()
        self._bytes = b""
        self._at = 0


_pool = RandomPool()
random_bytes = _pool.take


def _uuid7_int() -> int:
    millis = time.time_ns() // 1_000_000
    random = int.from_bytes(random_bytes(10), "big")
    rand_a = random >> 68  # 12 bits
    rand_b = random & ((1 << 62) - 1)
    return (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b


def new_id() -> uuid.UUID:
    return uuid.UUID(int=_uuid7_int())


def new_id_hex() -> str:
    """``new_id().hex`` without the UUID object: the tracker makes one per
    beacon, where building it was a tenth of the handler's own time."""
    return f"{_uuid7_int():032x}"
