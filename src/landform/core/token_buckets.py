"""Token buckets: ``rate`` tokens a second up to ``burst`` per key. A full
bucket lets a client send ``burst`` requests at once (the burst allowance),
then ``rate`` a second.

``Buckets`` is the interface; ``LocalBuckets`` keeps them in this process
(the embedded default, and the fallback while Redis is away). The shared
implementation for several replicas is ``cache.shared_buckets``."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Rule:
    rate: float
    burst: int

    def seconds_until(self, tokens: float, wanted: float) -> float:
        """How long a bucket holding ``tokens`` takes to hold ``wanted``."""
        return max(0.0, (wanted - tokens) / self.rate)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until the bucket is full again.
    reset: int
    # Seconds until the next request would be allowed (0 when allowed).
    retry_after: int

    @classmethod
    def of(cls, allowed: bool, tokens: float, rule: Rule) -> Decision:
        return cls(
            allowed=allowed,
            limit=rule.burst,
            remaining=max(0, math.floor(tokens)),
            reset=math.ceil(rule.seconds_until(tokens, rule.burst)),
            retry_after=0 if allowed else max(1, math.ceil(rule.seconds_until(tokens, 1))),
        )


# (allowed, tokens left): what a bucket says to one request.
Take = tuple[bool, float]


class Buckets(Protocol):
    def take_held(self, key: str, rule: Rule) -> Take | None:
        """Decide from what this process holds, if it can (no I/O: the hot
        path asks this first)."""
        ...

    async def take(self, key: str, rule: Rule) -> Take:
        """Take one token from ``key``'s bucket, if it has one."""
        ...

    async def close(self) -> None: ...


class LocalBuckets:
    """Buckets in this process's memory. Bounded: past ``max_keys``, the
    oldest quarter of the keys is forgotten (a forgotten key starts again
    full; under that much pressure, a little generosity beats the memory).
    Asked on every public request, so kept to a dictionary lookup and a
    little arithmetic."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.max_keys = max_keys
        self.clock = clock
        # key -> [tokens, updated at]
        self._buckets: dict[str, list[float]] = {}

    def take_held(self, key: str, rule: Rule) -> Take:
        return self.take_now(key, rule)

    async def take(self, key: str, rule: Rule) -> Take:
        return self.take_now(key, rule)

    def take_now(self, key: str, rule: Rule) -> Take:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                for old in list(itertools.islice(self._buckets, self.max_keys // 4 + 1)):
                    del self._buckets[old]
            bucket = self._buckets[key] = [rule.burst, now]
            tokens: float = rule.burst
        else:
            tokens = bucket[0] + (now - bucket[1]) * rule.rate
            if tokens > rule.burst:
                tokens = rule.burst
            bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return False, tokens
        bucket[0] = tokens - 1
        return True, tokens - 1

    async def close(self) -> None:
        self._buckets.clear()
