"""An accepted tracking event, as it travels from the request to the batch
writer: through the local spool or the Redis stream, as one compact JSON
array. The visitor is already a hash here; client addresses go no further
than the request."""

from __future__ import annotations

from typing import NamedTuple

import orjson

VIEW = "view"
EVENT = "event"

MS_PER_HOUR = 3_600_000


class Event(NamedTuple):
    id: str  # uuid7 hex, the dedup key
    received_ms: int
    kind: str  # VIEW or EVENT
    page_id: str
    owner_id: str
    visitor: str
    user_agent: str
    path: str
    referrer: str  # host only
    utm_source: str
    utm_medium: str
    utm_campaign: str
    screen_width: int | None
    country: str
    name: str | None
    value: float | None

    @property
    def hour(self) -> int:
        return self.received_ms // MS_PER_HOUR

    def encode(self) -> bytes:
        return orjson.dumps(tuple(self))

    @classmethod
    def decode(cls, data: bytes | str) -> Event:
        return cls(*orjson.loads(data))
