"""Token buckets: ``rate`` tokens a second up to ``burst`` per key. A full
bucket lets a client send ``burst`` requests at once (the burst allowance),
then ``rate`` a second.

``Buckets`` is the interface; ``LocalBuckets`` keeps them in this process
(the embedded default, and the fallback while Redis is away). The shared
implementation for several replicas is ``cache.shared_buckets``."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
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


class Buckets(Protocol):
    async def take(self, key: str, rule: Rule) -> Decision:
        """Take one token from ``key``'s bucket, if it has one."""
        ...

    async def close(self) -> None: ...


class LocalBuckets:
    """Buckets in this process's memory. Bounded: the least recently seen
    keys are forgotten first (a forgotten key starts again full)."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.max_keys = max_keys
        self.clock = clock
        # key -> [tokens, updated at]
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    async def take(self, key: str, rule: Rule) -> Decision:
        return self.take_now(key, rule)

    def take_now(self, key: str, rule: Rule) -> Decision:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [float(rule.burst), now]
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        tokens = min(float(rule.burst), bucket[0] + (now - bucket[1]) * rule.rate)
        bucket[1] = now
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        bucket[0] = tokens
        return Decision.of(allowed, tokens, rule)

    async def close(self) -> None:
        self._buckets.clear()
