"""Sign-ins that a password change or reset ended, known to every worker
with no database read per request.

An access token is checked by its signature alone, so one issued before a
reset would otherwise go on working until it expires (``access_token_ttl``):
for up to that long, whoever took the account would keep it after its
owner took it back. Each worker keeps the accounts whose sign-ins ended
within that lifetime (older ends concern only expired tokens): read from
the database at start, and told of each new end by the public change log
(``core/change_log``), which every worker follows, within its poll
interval. The change's entry carries the account and the instant, so
hearing of it takes no read either."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from landform.auth.models import User
from landform.core.clock import Clock
from landform.core.db import Database
from landform.core.failure_log import FailureLog
from landform.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# The change log's key for an ended sign-in: PREFIX + "<account>@<ms>".
PREFIX = "/sessions/"
# Kept past a token's lifetime by this much: clocks of replicas differ.
CLOCK_SLACK = timedelta(minutes=1)


def change_key(user_id: uuid.UUID, ended_at: datetime) -> str:
    return f"{PREFIX}{user_id}@{_ms(ended_at)}"


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


class EndedSessions:
    # Entries older than a token's lifetime are swept once there are this many.
    SWEEP_AT = 1024
    RETRY_EVERY = 2.0

    def __init__(self, db: Database, clock: Clock, token_lifetime: timedelta) -> None:
        self.db = db
        self.clock = clock
        self.kept_for = token_lifetime + CLOCK_SLACK
        self._ended_ms: dict[uuid.UUID, int] = {}
        self._sweep_at = self.SWEEP_AT
        self._reload: asyncio.Task[None] | None = None

    def ended_ms(self, user_id: uuid.UUID) -> int | None:
        """When the account's sign-ins last ended (ms since the epoch), if
        within a token's lifetime."""
        return self._ended_ms.get(user_id)

    def note(self, user_id: uuid.UUID, ended_at: datetime) -> None:
        self._keep(user_id, _ms(ended_at))

    def heard(self, key: str) -> None:
        """A change-log key (``change_key``) from the follower."""
        account, _, ended = key[len(PREFIX) :].partition("@")
        try:
            user_id, ended_ms = uuid.UUID(account), int(ended)
        except ValueError:
            log.warning("ignoring a malformed ended-sign-in entry %r in the change log", key)
            return
        self._keep(user_id, ended_ms)

    async def load(self) -> None:
        """Read the ends within a token's lifetime from the database."""
        since = self.clock.now() - self.kept_for
        async with self.db.primary.connect() as connection:
            rows = (
                await connection.execute(
                    select(User.id, User.sessions_ended_at).where(User.sessions_ended_at > since)
                )
            ).all()
        for user_id, ended_at in rows:
            if ended_at is not None:  # the query says so; the type does not
                self.note(user_id, ended_at)

    def reload_soon(self) -> None:
        """Read the ends again, until the database answers: the change log
        may have lost entries (an outage longer than it keeps them), or the
        database did not answer at start. The ends known meanwhile stay."""
        if self._reload is None or self._reload.done():
            self._reload = asyncio.create_task(self._load_until_read(), name="ended-sessions")

    async def _load_until_read(self) -> None:
        failures = FailureLog(log, "reading ended sign-ins")
        while True:
            try:
                await self.load()
            except Exception as exc:
                failures.failed(exc)
                await asyncio.sleep(self.RETRY_EVERY)
            else:
                failures.succeeded()
                return

    async def stop(self) -> None:
        await cancel_and_wait(self._reload)

    def _keep(self, user_id: uuid.UUID, ended_ms: int) -> None:
        if ended_ms > self._ended_ms.get(user_id, -1):
            self._ended_ms[user_id] = ended_ms
        if len(self._ended_ms) >= self._sweep_at:
            oldest = _ms(self.clock.now() - self.kept_for)
            self._ended_ms = {user: ms for user, ms in self._ended_ms.items() if ms >= oldest}
            # Swept again when it has doubled: a sweep per entry would not do
            # when many ends are recent.
            self._sweep_at = max(self.SWEEP_AT, 2 * len(self._ended_ms))
