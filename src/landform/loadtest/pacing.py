"""Open-model pacing with coordinated-omission correction.

A simulated user does not wait for an answer before its next request is
*due*: each has a schedule of intended send times, one interval apart
(concurrent users / target rate). It sleeps until the next one, or sends at
once when it is late. Latency is measured from the intended time, not from
when the request finally left: a server that stalls for two seconds shows
two seconds in the percentiles of every request that was due meanwhile,
instead of one slow request among quick ones (what a closed loop, which
politely waits, would report: Gil Tene's "coordinated omission")."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Schedule:
    """Intended send times for one user, ``interval`` seconds apart."""

    interval: float
    next_due: float

    @classmethod
    def starting(cls, now: float, interval: float, rng: random.Random) -> Schedule:
        # A random phase spreads users over the interval instead of having
        # every user that started in the same second fire together.
        return cls(interval, now + rng.uniform(0.0, interval))

    def take(self) -> float:
        """The next intended send time (possibly already past)."""
        due = self.next_due
        self.next_due += self.interval
        return due


def per_user_interval(users: int, rate: float) -> float:
    """Seconds between one user's requests so that ``users`` of them send
    ``rate`` requests per second together."""
    return users / rate
