"""A per-key token bucket, in process memory: ``rate`` tokens a second up
to ``burst``. Bounded: the least recently seen keys are forgotten first."""

from __future__ import annotations

import time
from collections import OrderedDict


class TokenBuckets:
    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = [self.burst - 1, now]
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return True
        self._buckets.move_to_end(key)
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1
        return True

    def retry_after(self, key: str) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        return max(0.0, (1 - bucket[0]) / self.rate)
