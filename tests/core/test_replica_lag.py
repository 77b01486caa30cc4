"""How far behind a replica is, from the primary's WAL positions over time
(core/replica_health.py): what the real replicas in test_db_failover.py
show, here with every case spelled out."""

from __future__ import annotations

from sqlalchemy import make_url

from landform.core.replica_health import WalHistory, replica_name


def test_a_replica_at_the_primarys_position_is_not_behind_however_idle_the_primary() -> None:
    history = WalHistory(keep_seconds=60)
    for second in range(0, 50, 2):  # an hour of nothing would look the same
        history.note(float(second), 1000)
    assert history.lag(1000, now=50.0) == 0.0


def test_lag_is_the_time_since_the_primary_was_where_the_replica_is() -> None:
    history = WalHistory(keep_seconds=60)
    history.note(0.0, 1000)
    history.note(2.0, 3000)
    history.note(4.0, 3000)
    # The primary was at 2000 halfway between the first two notes.
    assert history.lag(2000, now=10.0) == 9.0
    # Stuck where the primary was before it wrote: behind since the note.
    assert history.lag(1000, now=10.0) == 10.0
    # Caught up with the last note: not behind.
    assert history.lag(3000, now=10.0) == 0.0


def test_a_replica_behind_every_note_is_at_least_that_far_behind() -> None:
    history = WalHistory(keep_seconds=10)
    for second in range(0, 30, 2):
        history.note(float(second), 1000 + second)
    # Notes older than 10 s were dropped; position 0 is older than all kept.
    assert history.lag(0, now=30.0) == 30.0 - 18.0


def test_a_new_primary_behind_the_old_ones_position_starts_a_new_history() -> None:
    history = WalHistory(keep_seconds=60)
    history.note(0.0, 5000)
    history.note(2.0, 4000)  # promoted replica: its WAL ends before the old primary's
    assert history.lag(4000, now=3.0) == 0.0
    assert history.lag(3000, now=3.0) == 3.0 - 2.0


def test_a_replica_has_every_write_made_before_the_last_note_it_has_reached() -> None:
    history = WalHistory(keep_seconds=60)
    history.note(0.0, 1000)
    history.note(2.0, 3000)
    history.note(4.0, 3000)
    # Between notes, the note before: a write between 0 and 2 may lie past 2000.
    assert history.reached(2000) == 0.0
    assert history.reached(3000) == 4.0
    assert history.reached(9000) == 4.0
    assert history.reached(500) is None


def test_a_replica_is_named_without_any_password() -> None:
    """Admins read replicas' names in /ops/performance: a password in the
    URL's query is a password as one in its user info is."""
    for url in (
        "postgresql+asyncpg://app:secret1@db-2:5433/landform",
        "postgresql+asyncpg://app@db-2:5433/landform?password=secret1&ssl=require",
    ):
        name = replica_name(make_url(url))
        assert name == "postgresql://app@db-2:5433/landform" and "secret1" not in name
