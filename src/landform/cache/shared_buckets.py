"""Token buckets shared by every replica, in Redis: one Lua script refills
and takes atomically, on Redis's clock (replicas' clocks may disagree).

A replica takes tokens in small leases (a twentieth of the burst, at least
one) and spends them locally, so a busy client costs one Redis call per
lease rather than per request; the shared bucket still caps the total,
and a client sending to several replicas gets one allowance, not one per
replica. A key this process has not seen gets its first token without
asking (a new key's bucket is full, as far as anyone here knows) and pays
it back with its next lease: most clients of the public routes — a visitor
and their page's beacon — send a request or two, and asking Redis for each
of them was a round trip per beacon and a fifth of a core in Redis at
10,000 beacons/s. So does a key idle here for as long as an empty bucket
takes to fill (burst / rate): a visitor reading a page for a while before
the next one, whose lease would otherwise cost a round trip per beacon.
A client that has just spent the burst at another replica gets one more
request here, once per such pause. When Redis cannot be asked
(timeout, open circuit), this replica limits on its own buckets until it is
back: degraded, never failing."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

from landform.cache.remote import FAILED, RemoteCache
from landform.core.token_buckets import LocalBuckets, Rule, Take

PREFIX = "landform:ratelimit:"

# What asking Redis for a lease came to: (tokens granted, shared tokens
# left); None when Redis could not be asked; _ASK_AGAIN when the request
# asking was cancelled and another must ask.
_ASK_AGAIN: tuple[int, float] = (-1, -1.0)
_Outcome = tuple[int, float] | None

# KEYS[1]: the bucket. ARGV: rate (tokens/s), burst, tokens wanted.
# Returns {tokens granted, tokens left (as a string: Lua numbers become
# integers in replies)}. The key expires once the bucket would be full.
TAKE = """
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(b[1]), tonumber(b[2])
if tokens == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
end
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {granted, tostring(tokens)}
"""


class SharedBuckets:
    MAX_LEASES = 100_000

    def __init__(self, remote: RemoteCache, clock: Callable[[], float] = time.monotonic) -> None:
        self.remote = remote
        self.clock = clock
        self.fallback = LocalBuckets()
        self._take = remote.redis.register_script(TAKE)
        # key -> [tokens leased and not yet spent, shared tokens left then,
        # tokens spent without asking and not yet paid for, last used]
        self._leases: OrderedDict[str, list[float]] = OrderedDict()
        # key -> the lease one request is asking Redis for, that others wait on
        self._asking: dict[str, asyncio.Future[_Outcome]] = {}

    @staticmethod
    def lease_size(rule: Rule) -> int:
        return max(1, rule.burst // 20)

    def take_held(self, key: str, rule: Rule) -> Take | None:
        lease = self._leases.get(key)
        now = self.clock()
        if lease is None or now - lease[3] >= rule.burst / rule.rate:
            # First seen, or idle until full again as far as this replica
            # knows: its first token, paid for later (a token owed from
            # before the pause is forgiven: at most one per pause).
            self._remember(key, [0, rule.burst - 1, 1, now])
            return True, rule.burst - 1
        lease[3] = now
        if lease[0] >= 1:
            lease[0] -= 1
            return True, lease[0] + lease[1]
        return None

    async def take(self, key: str, rule: Rule) -> Take:
        """A token for ``key``: from this replica's lease, else from a new
        one. Requests of one key that find the lease spent at once wait for
        a single new lease and share it (each asking Redis for its own, and
        keeping only the last, threw the others' tokens away: a client with
        32 requests in flight got half its burst)."""
        while True:
            held = self.take_held(key, rule)
            if held is not None:
                return held
            asking = self._asking.get(key)
            if asking is None:
                asking = self._asking[key] = asyncio.get_running_loop().create_future()
                outcome: _Outcome = _ASK_AGAIN  # if this request is cancelled meanwhile
                try:
                    outcome = await self._lease(key, rule)
                finally:
                    del self._asking[key]
                    asking.set_result(outcome)
            else:
                outcome = await asyncio.shield(asking)
            if outcome is None:  # Redis cannot be asked: this replica's own buckets
                return self.fallback.take_now(key, rule)
            if outcome is _ASK_AGAIN:
                continue
            granted, left = outcome
            if not granted:
                return False, left
            # A new lease: take from it (with the others that waited for it).

    async def _lease(self, key: str, rule: Rule) -> _Outcome:
        """Ask the shared bucket for a lease, paying what was spent without
        asking; keep what is granted. None when Redis cannot be asked."""
        owed = int(self._leases[key][2])
        reply = await self.remote.call(
            "rate limit",
            self._take(
                keys=[PREFIX + key], args=[rule.rate, rule.burst, self.lease_size(rule) + owed]
            ),
        )
        if reply is FAILED:
            for _ in range(owed):
                self.fallback.take_now(key, rule)
            lease = self._leases.get(key)  # others ran meanwhile: it may be gone
            if lease is not None:
                lease[2] = 0
            return None
        granted, left = int(reply[0]), float(reply[1])
        paid = min(owed, granted)
        granted -= paid
        self._remember(key, [granted, left, owed - paid, self.clock()])
        return granted, left

    def _remember(self, key: str, lease: list[float]) -> None:
        self._leases[key] = lease
        self._leases.move_to_end(key)
        if len(self._leases) > self.MAX_LEASES:
            self._leases.popitem(last=False)

    async def close(self) -> None:
        self._leases.clear()
