"""Identifiers: time-ordered UUIDs (the version 7 layout), so primary keys sort
by creation time and double as pagination cursors."""

import os
import time
import uuid


def _uuid7_int() -> int:
    millis = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")
    rand_a = random >> 68  # 12 bits
    rand_b = random & ((1 << 62) - 1)
    return (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b


def new_id() -> uuid.UUID:
    return uuid.UUID(int=_uuid7_int())


def new_id_hex() -> str:
    """``new_id().hex`` without the UUID object: the tracker makes one per
    beacon, where building it was a tenth of the handler's own time."""
    return f"{_uuid7_int():032x}"
