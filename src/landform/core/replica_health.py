"""Which read replicas may serve reads: those that answer and are no more
than ``database_replica_max_lag_seconds`` behind the primary. Every worker
checks for itself, every ``database_replica_check_interval`` seconds, and
``Database.read()`` routes only to replicas in rotation (the primary when
none is).

How far behind, honestly: ``now() - pg_last_xact_replay_timestamp()`` on the
replica is the time since the last transaction it replayed, which on an idle
primary grows forever on a replica that is perfectly up to date (and a
replica whose receiver is stuck shows no pending WAL at all). So lag is
measured against the primary's WAL position instead: each round notes the
primary's ``pg_current_wal_lsn()`` and when it was read, and a replica's lag
is how long ago the primary was where the replica's replay is now
(interpolated between the notes, as PostgreSQL's own lag tracker does). A
replica that has replayed everything the primary had is 0 behind, however
idle the primary; one whose replay is paused falls behind at the speed of the
clock as soon as the primary writes anything.

Each check also notes how recent a replica is for read-your-writes: the
wall-clock time of the latest note of the primary that its replay has reached
(``replayed_through``). Every transaction committed before that note is on
the replica, so a reader who wrote before it may read there
(``core.db.Database.read_engine_for``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

from sqlalchemy import URL, TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine

from landform.core.housekeeping import mark_housekeeping
from landform.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# The primary's WAL position, and a replica's replayed (or, once promoted,
# written) position, as bytes since the start of WAL.
PRIMARY_POSITION = text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
REPLICA_POSITION = text(
    "SELECT pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
    "ELSE pg_current_wal_lsn() END, '0/0')::bigint"
)


@dataclass
class ReplicaState:
    name: str
    in_rotation: bool = True
    reachable: bool = True
    lag_seconds: float = 0.0
    reason: str = ""
    checked_at: float = 0.0
    # time.time() of the latest note of the primary this replica has
    # replayed to: 0 until a check finds one.
    replayed_through: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "inRotation": self.in_rotation,
            "reachable": self.reachable,
            # Unreachable, its lag is not known (not 0: not caught up).
            "lagSeconds": round(self.lag_seconds, 3) if self.reachable else None,
            "reason": self.reason,
            "checkedAt": self.checked_at,
        }


class WalHistory:
    """Where the primary's WAL was, and when: enough notes to say when it
    passed any position of the last ``keep_seconds``."""

    def __init__(self, keep_seconds: float) -> None:
        self.keep_seconds = keep_seconds
        self._notes: deque[tuple[float, int]] = deque()

    def note(self, at: float, position: int) -> None:
        if self._notes and position < self._notes[-1][1]:
            # A new primary (promoted) can be behind where the old one was
            # noted: history before it says nothing about it.
            self._notes.clear()
        self._notes.append((at, position))
        while self._notes and self._notes[0][0] < at - self.keep_seconds:
            self._notes.popleft()

    def lag(self, position: int, now: float) -> float:
        """Seconds since the primary's WAL was at ``position``; 0 when it has
        not moved beyond it since the last note."""
        if not self._notes or position >= self._notes[-1][1]:
            return 0.0
        later_at, later_position = self._notes[-1]
        for at, noted in reversed(self._notes):
            if noted <= position:
                # The primary passed ``position`` between these two notes.
                share = (position - noted) / (later_position - noted)
                return max(0.0, now - (at + share * (later_at - at)))
            later_at, later_position = at, noted
        # Behind everything still noted: at least that far.
        return max(0.0, now - self._notes[0][0])

    def reached(self, position: int) -> float | None:
        """When the primary was last noted at or before ``position``: every
        transaction it had committed then is within ``position``. None when
        ``position`` is behind every note."""
        for at, noted in reversed(self._notes):
            if noted <= position:
                return at
        return None


def replica_name(url: URL) -> str:
    """How a replica is named where admins read it (/ops/performance, logs):
    its host, port and database. Not its query, which may hold a password
    (``?password=``) as the user info would."""
    user = f"{url.username}@" if url.username else ""
    return (
        f"{url.get_backend_name()}://{user}{url.host or ''}:{url.port or 5432}/{url.database or ''}"
    )


class ReplicaHealth:
    def __init__(
        self,
        primary: AsyncEngine,
        replicas: list[AsyncEngine],
        max_lag: float,
        interval: float,
        timeout: float,
    ) -> None:
        self.primary = primary
        self.replicas = replicas
        self.max_lag = max_lag
        self.interval = interval
        self.timeout = timeout
        self.states = {engine: ReplicaState(replica_name(engine.url)) for engine in replicas}
        self.history = WalHistory(keep_seconds=max(60.0, 3 * max_lag))
        self._task: asyncio.Task[None] | None = None

    def in_rotation(self) -> list[AsyncEngine]:
        return [engine for engine in self.replicas if self.states[engine].in_rotation]

    def mark_unreachable(self, engine: AsyncEngine, reason: str) -> None:
        """A read could not connect to this replica: no more reads there
        until a check finds it answering again."""
        state = self.states[engine]
        if state.in_rotation:
            log.warning("read replica %s out of rotation: %s", state.name, reason)
        state.in_rotation = state.reachable = False
        state.reason = reason

    def replayed_past(self, engines: list[AsyncEngine], written_at: float) -> list[AsyncEngine]:
        """Those of ``engines`` whose last check found them past a write
        committed at ``written_at`` (``time.time()``)."""
        return [engine for engine in engines if self.states[engine].replayed_through > written_at]

    def worst_lag(self) -> float:
        return max((state.lag_seconds for state in self.states.values()), default=0.0)

    def report(self) -> list[dict[str, object]]:
        return [self.states[engine].as_dict() for engine in self.replicas]

    async def start(self) -> None:
        if self.replicas and self.primary.dialect.name == "postgresql":
            self._task = asyncio.create_task(self._run(), name="replica-health")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        mark_housekeeping()
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("replica health check failed")
            await asyncio.sleep(self.interval)

    async def check(self) -> None:
        """One round: the primary's position, then each replica's."""
        # Noted as of before the position is read: every transaction
        # committed by then is within it.
        at = time.monotonic()
        try:
            position = await self._position(self.primary, PRIMARY_POSITION)
        except Exception as exc:
            # Without the primary's position no lag can be judged: keep
            # what the last round decided.
            log.warning("replica check: the primary cannot be read: %s", exc)
            return
        self.history.note(at, position)
        for engine in self.replicas:
            await self._check_replica(engine)

    async def _check_replica(self, engine: AsyncEngine) -> None:
        state = self.states[engine]
        state.checked_at = round(time.time(), 3)
        try:
            position = await self._position(engine, REPLICA_POSITION)
        except Exception as exc:
            self.mark_unreachable(engine, f"unreachable: {_cause(exc)}")
            return
        state.reachable = True
        now = time.monotonic()
        state.lag_seconds = self.history.lag(position, now)
        reached = self.history.reached(position)
        if reached is not None:
            state.replayed_through = time.time() - (now - reached)
        fit = state.lag_seconds <= self.max_lag
        if fit != state.in_rotation:
            log.warning(
                "read replica %s %s rotation (%.1f s behind the primary)",
                state.name,
                "back in" if fit else "out of",
                state.lag_seconds,
            )
        state.in_rotation = fit
        state.reason = "" if fit else f"{state.lag_seconds:.1f} s behind the primary"

    async def _position(self, engine: AsyncEngine, query: TextClause) -> int:
        async with asyncio.timeout(self.timeout), engine.connect() as connection:
            value = await connection.scalar(query)
        return int(value)


def _cause(exc: BaseException) -> str:
    """What went wrong, in a line an operator can act on ("database "x"
    does not exist", a refused connection), not only the exception's type.
    The driver's own message when SQLAlchemy wrapped it; never a URL."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    name = type(cause).__name__
    return f"{name}: {text[:200]}" if text else name
