"""Ingestion internals: batch bounds, redelivery, salts, and rollups that
agree exactly with the raw events they were counted from."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from landform.analytics import repository, writes
from landform.analytics.aggregate import VisitorDay, VisitorKey, aggregate
from landform.analytics.events import EVENT, VIEW, Event
from landform.analytics.models import AnalyticsEvent, AnalyticsRollup, AnalyticsSalt
from landform.analytics.postgres_batches import PostgresBatchWriter
from landform.analytics.spool import LocalSpool
from landform.analytics.visitors import VisitorHasher
from landform.core.clock import FrozenClock
from landform.core.db import Database
from tests.analytics.conftest import BROWSER, GOOGLEBOT, IPHONE, publish_page, track_view
from tests.conftest import ON_POSTGRES

DAY_MS = 86_400_000
START_MS = 1_790_000_000_000  # a fixed moment, so days and hours are stable


def event(index: int, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "id": uuid.UUID(int=index + 1).hex,
        "received_ms": START_MS + index,
        "kind": VIEW,
        "page_id": str(uuid.UUID(int=1)),
        "owner_id": str(uuid.UUID(int=2)),
        "visitor": f"{index:016x}",
        "user_agent": BROWSER,
        "path": "/",
        "referrer": "",
        "utm_source": "",
        "utm_medium": "",
        "utm_campaign": "",
        "screen_width": None,
        "country": "",
        "name": None,
        "value": None,
    }
    values.update(fields)
    return Event(**values)


def test_only_changed_visitor_days_are_written_back() -> None:
    visitors: dict[VisitorKey, VisitorDay] = {}

    def changed_after(*events: Event) -> bool:
        for state in visitors.values():
            state.changed = False  # as if stored
        aggregate(events, visitors, START_MS)
        return any(state.changed for state in visitors.values())

    assert changed_after(event(0, visitor="v"))  # a new day
    assert not changed_after(event(1, visitor="v"))  # another view, same hour
    assert changed_after(event(2, visitor="v", kind=EVENT, name="signup"))  # converted
    assert not changed_after(event(3, visitor="v", kind=EVENT, name="signup"))
    assert changed_after(event(4, visitor="v", received_ms=START_MS + 3_600_000))  # new hour


def spool_files(folder: Path) -> list[Path]:
    return list(folder.glob("*.spool"))


async def test_the_spool_flushes_on_size_and_on_time(tmp_path: Path) -> None:
    batches: list[int] = []

    async def write(events: Any) -> int:
        batches.append(len(events))
        return len(events)

    spool = LocalSpool(tmp_path, write, batch_size=10, interval=0.3, max_pending=1000)
    await spool.start()
    try:
        for index in range(25):
            spool.put(event(index))
        await asyncio.sleep(0.1)  # the size bound wakes the flusher at once
        assert sum(batches) >= 10
        assert all(size <= 10 for size in batches)
        await asyncio.sleep(0.5)  # the rest goes on the time bound
        assert sum(batches) == 25
        assert spool.pending == 0
        assert len(spool_files(tmp_path)) == 1  # only the open, empty one
    finally:
        await spool.stop()
    assert not spool_files(tmp_path)


async def test_a_full_backlog_refuses_instead_of_growing(tmp_path: Path) -> None:
    async def failing(_events: Any) -> int:
        raise ConnectionError("database away")

    spool = LocalSpool(tmp_path, failing, batch_size=5, interval=60, max_pending=3)
    await spool.start()
    for index in range(3):
        spool.put(event(index))
    assert not spool.accepts()
    # Shutdown cannot flush: the events stay in the spool for the next start.
    await spool.stop()
    assert spool_files(tmp_path)


async def test_a_worker_starts_while_the_database_cannot_take_a_dead_workers_spool(
    tmp_path: Path,
) -> None:
    """A dead worker's events waiting at start (a full disk, a database
    still away) must not keep the worker from starting: it replays them
    once the database takes them, and nothing is lost meanwhile."""
    left = LocalSpool(tmp_path, lambda _events: asyncio.sleep(0, 0), 5, 60, 1000)
    left._names = itertools.count(100)  # this process plays both workers
    left._current = left._open_segment()
    for index in range(3):
        left.put(event(index))
    os.close(left._current.fd)  # the worker died: its lock is gone
    written: list[Event] = []
    away = True

    async def write(events: Any) -> int:
        if away:
            raise OSError(28, "No space left on device")
        written.extend(events)
        return len(events)

    spool = LocalSpool(tmp_path, write, batch_size=5, interval=60, max_pending=1000)
    spool.RECOVER_EVERY = 0.05
    await spool.start()  # before: raised, and the worker never started
    try:
        away = False
        for _ in range(100):
            if len(written) == 3:
                break
            await asyncio.sleep(0.02)
        assert sorted(e.id for e in written) == sorted(event(i).id for i in range(3))
    finally:
        await spool.stop()
    assert not spool_files(tmp_path)


async def test_a_line_a_full_disk_cut_short_is_taken_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write to a full disk may store part of an event's line and say so
    (a short count, not an error). That event must not be acknowledged,
    and the part must not stay: the next event's line would be glued to
    it, and on replay after a crash both would be unreadable, an event
    answered 202 lost."""
    spool = LocalSpool(tmp_path, lambda _events: asyncio.sleep(0, 0), 5, 60, 1000)
    spool._names = itertools.count(100)
    spool._current = spool._open_segment()
    spool.put(event(0))
    real_write = os.write
    monkeypatch.setattr(
        "landform.analytics.spool.os.write", lambda fd, data: real_write(fd, data[:10])
    )
    with pytest.raises(OSError):
        spool.put(event(1))  # before: accepted, half of it on disk
    monkeypatch.undo()
    spool.put(event(2))  # room again
    assert spool.pending == 2
    os.close(spool._current.fd)  # the worker dies
    replayed: list[Event] = []

    async def write(events: Any) -> int:
        replayed.extend(events)
        return len(events)

    await LocalSpool(tmp_path, write, 5, 60, 1000).recover()
    assert [e.id for e in replayed] == [event(0).id, event(2).id]


async def write_either_way(app: Any, number: int, batch: list[Event]) -> int:
    """Write a batch as live ingestion does (on SQLite: in one call on the
    writer's own connection and thread) when ``number`` is odd, else through
    a session (restores, the PostgreSQL path): the two must agree."""
    if number % 2:
        written: int = await app.components.ingestion.write_batch(batch)
        return written
    async with app.components.db.write() as session:
        return await writes.write_batch(session, batch, START_MS)


@pytest.mark.parametrize("first", [0, 1])
async def test_redelivered_events_are_not_counted_twice(app: Any, first: int) -> None:
    db: Database = app.components.db
    events = [event(index) for index in range(5)]
    assert await write_either_way(app, first, events) == 5
    assert await write_either_way(app, first + 1, [*events, event(5)]) == 1
    async with db.read_primary() as session:
        assert await session.scalar(select(func.count()).select_from(AnalyticsEvent)) == 6
        views = await session.scalar(
            select(func.sum(AnalyticsRollup.views)).where(AnalyticsRollup.dimension == "")
        )
    assert views == 6


@pytest.mark.parametrize("first", [0, 1])
async def test_an_id_sent_again_in_the_same_batch_keeps_the_first_event(
    app: Any, first: int
) -> None:
    """As across batches: a view resent with the same id, even as a
    conversion or with other UTM fields, does not replace the view."""
    view = event(0, utm_source="newsletter")
    again = event(0, kind=EVENT, name="cta_click", utm_source="ads", received_ms=START_MS + 5)
    assert await write_either_way(app, first, [view, again]) == 1
    async with app.components.db.read_primary() as session:
        stored = (await session.execute(select(AnalyticsEvent))).scalars().all()
        conversions = await session.scalar(select(func.sum(AnalyticsRollup.conversions)))
    assert [(e.kind, e.utm_source) for e in stored] == [(VIEW, "newsletter")]
    assert conversions == 0


async def test_salts_rotate_daily_and_are_deleted_after_two_days(app: Any) -> None:
    clock = FrozenClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    hasher = VisitorHasher(app.components.db, clock)
    day = clock.now_ms() // DAY_MS
    first = await hasher.salt(day)
    assert first == await hasher.salt(day)
    # Another worker sees the same salt.
    assert await VisitorHasher(app.components.db, clock).salt(day) == first
    same = VisitorHasher.visitor_id(first, "owner", "203.0.113.9", BROWSER)
    assert same == VisitorHasher.visitor_id(first, "owner", "203.0.113.9", BROWSER)
    assert same != VisitorHasher.visitor_id(first, "other-owner", "203.0.113.9", BROWSER)
    second = await hasher.salt(day + 1)
    assert second != first
    assert VisitorHasher.visitor_id(second, "owner", "203.0.113.9", BROWSER) != same
    clock.advance(86_400)  # day + 1: today's and yesterday's salts are kept
    await hasher.rotate()
    async with app.components.db.read_primary() as session:
        assert set(await repository.salt_days(session)) == {day, day + 1}
    clock.advance(86_400)  # day + 2: the first salt is 48 h old and goes
    await hasher.rotate()
    async with app.components.db.read_primary() as session:
        days = set(await repository.salt_days(session))
        kept = await session.scalar(select(AnalyticsSalt.salt).where(AnalyticsSalt.day == day))
    assert day not in days and kept is None


# Random traffic: rollups must agree exactly with a count made straight
# from the events, however the events were split into batches.

PAGES = [str(uuid.UUID(int=10 + n)) for n in range(2)]
traffic = st.lists(
    st.tuples(
        st.integers(0, 3 * DAY_MS // 1000),  # seconds after START_MS
        st.sampled_from(PAGES),
        st.integers(0, 6),  # visitor
        st.sampled_from([VIEW, VIEW, EVENT]),
        st.sampled_from([BROWSER, IPHONE, GOOGLEBOT]),
        st.sampled_from(["", "google.com", "t.co"]),
        st.sampled_from(["", "mail"]),
    ),
    min_size=1,
    max_size=60,
)


def reference(events: list[Event], bots: set[str]) -> dict[str, int]:
    """Counts straight from the events, by the definitions in aggregate."""
    people = [e for e in events if e.user_agent not in bots]
    hour = lambda e: e.received_ms // 3_600_000  # noqa: E731
    conversions = [e for e in people if e.kind == EVENT]
    return {
        "views": sum(e.kind == VIEW for e in people),
        "conversions": len(conversions),
        "visitors_h": len({(e.page_id, hour(e), e.visitor) for e in people}),
        "visitors_d": len({(e.page_id, hour(e) // 24, e.visitor) for e in people}),
        "converters_h": len({(e.page_id, hour(e), e.visitor) for e in conversions}),
        "converters_d": len({(e.page_id, hour(e) // 24, e.visitor) for e in conversions}),
        "bot_views": sum(e.kind == VIEW for e in events if e.user_agent in bots),
    }


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=traffic, cuts=st.lists(st.integers(0, 60), max_size=4))
async def test_rollups_match_the_raw_events_exactly(
    app: Any, rows: list[tuple[Any, ...]], cuts: list[int]
) -> None:
    db: Database = app.components.db
    base = uuid.uuid4().int >> 64  # fresh ids and visitors per example
    events = [
        event(
            index,
            id=uuid.UUID(int=(base << 32) + index).hex,
            received_ms=START_MS + seconds * 1000,
            page_id=page,
            visitor=f"{base % 10**6:06d}{visitor:010d}",
            kind=kind,
            name="cta_click" if kind == EVENT else None,
            user_agent=agent,
            referrer=referrer,
            utm_source=source,
        )
        for index, (seconds, page, visitor, kind, agent, referrer, source) in enumerate(rows)
    ]
    async with db.write() as session:
        await session.execute(AnalyticsRollup.__table__.delete())
    bounds = sorted({0, len(events), *[cut for cut in cuts if cut < len(events)]})
    # Batches arrive in any order, and one is delivered twice.
    batches = [events[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    for number, batch in enumerate([*reversed(batches), batches[0]]):
        await write_either_way(app, number, batch)
    async with db.read_primary() as session:
        rows_by_dimension = (
            await session.execute(
                select(
                    AnalyticsRollup.dimension,
                    *[
                        func.sum(getattr(AnalyticsRollup, name))
                        for name in (
                            "views",
                            "conversions",
                            "visitors_h",
                            "visitors_d",
                            "converters_h",
                            "converters_d",
                            "bot_views",
                        )
                    ],
                )
                .where(AnalyticsRollup.page_id.in_([uuid.UUID(p) for p in PAGES]))
                .group_by(AnalyticsRollup.dimension)
            )
        ).all()
        raw_referrers = Counter(
            row.referrer
            for row in (
                await session.execute(
                    select(AnalyticsEvent.referrer).where(
                        AnalyticsEvent.id.in_([uuid.UUID(e.id) for e in events]),
                        AnalyticsEvent.is_bot.is_(False),
                        AnalyticsEvent.kind == VIEW,
                    )
                )
            ).all()
        )
        referrer_views = dict(
            (
                await session.execute(
                    select(AnalyticsRollup.value, func.sum(AnalyticsRollup.views))
                    .where(
                        AnalyticsRollup.dimension == "referrer",
                        AnalyticsRollup.page_id.in_([uuid.UUID(p) for p in PAGES]),
                    )
                    .group_by(AnalyticsRollup.value)
                )
            ).all()
        )
    expected = reference(events, {GOOGLEBOT})
    names = list(expected)
    order = ["views", "conversions", "visitors_h", "visitors_d", "converters_h", "converters_d"]
    for dimension, *sums in rows_by_dimension:
        counted = dict(zip([*order, "bot_views"], (int(s or 0) for s in sums), strict=True))
        # Every breakdown partitions the page totals; bots stay out of them.
        expected_here = {**expected, "bot_views": 0} if dimension else expected
        assert counted == {name: expected_here[name] for name in names}, dimension
    assert {k: v for k, v in referrer_views.items() if v} == {
        k: v for k, v in raw_referrers.items() if v
    }


async def test_housekeeping_forgets_the_rollups_of_deleted_pages(
    client: Any, app: Any, ada: dict[str, str]
) -> None:
    kept = await publish_page(client, ada, "kept-page")
    gone = await publish_page(client, ada, "gone-page")
    for page in (kept, gone):
        assert (await track_view(client, page["id"])).status_code == 202
    await app.components.ingestion.flush()
    assert (await client.delete(f"/landing-pages/{gone['id']}", headers=ada)).status_code == 204
    await app.components.ingestion.housekeeping()
    async with app.components.db.read_primary() as session:
        pages = set((await session.scalars(select(AnalyticsRollup.page_id).distinct())).all())
    assert pages == {uuid.UUID(kept["id"])}


async def test_a_failed_batch_leaves_nothing_and_the_writer_goes_on(app: Any) -> None:
    """The SQLite writer's own transaction is rolled back as a whole (on
    PostgreSQL, the session's)."""
    db: Database = app.components.db
    broken = event(1, path=None)  # NOT NULL: fails after the visitor rows were read
    with pytest.raises(Exception, match="NOT NULL|null value"):
        await app.components.ingestion.write_batch([event(0), broken])
    async with db.read_primary() as session:
        assert await session.scalar(select(func.count()).select_from(AnalyticsEvent)) == 0
        assert await session.scalar(select(func.count()).select_from(AnalyticsRollup)) == 0
    assert await app.components.ingestion.write_batch([event(0), event(1)]) == 2


async def test_a_batch_reads_its_visitors_by_key_not_the_whole_day(app: Any) -> None:
    """Each batch looks up the stored state of its own visitors. The lookup
    must not go through the day index: asked as ``visitor = ANY(...) AND day
    = ANY(...)``, PostgreSQL's planner took it whenever its statistics were
    older than the day (as they are while a day fills up) and filtered all of
    the day's visitors, so every batch grew slower as the day went on."""
    db: Database = app.components.db
    ingestion = app.components.ingestion
    yesterday = [event(index, received_ms=START_MS - DAY_MS + index) for index in range(5000)]
    await ingestion.write_batch(yesterday)
    async with db.write() as session:
        if ON_POSTGRES:  # statistics from before today's traffic
            await (await session.connection()).exec_driver_sql("ANALYZE analytics_visitors")
    stored = 20_000
    for start in range(5000, 5000 + stored, 5000):
        await ingestion.write_batch([event(index) for index in range(start, start + 5000)])
    # A thousand of them come back within the hour: found, so not new visitors.
    returning = [
        event(5000 + stored + index, visitor=f"{5000 + index:016x}")
        for index in range(0, stored, 20)
    ]
    assert await ingestion.write_batch(returning) == len(returning)
    async with db.read_primary() as session:
        views, visitors = (
            await session.execute(
                select(func.sum(AnalyticsRollup.views), func.sum(AnalyticsRollup.visitors_h)).where(
                    AnalyticsRollup.dimension == "",
                    AnalyticsRollup.hour == START_MS // 3_600_000,
                )
            )
        ).one()
    assert (views, visitors) == (stored + len(returning), stored)

    keys = [(e.visitor, e.hour // 24, e.page_id) for e in returning]
    if ON_POSTGRES:
        for plan in await postgres_visitor_lookup_plans(db, keys):
            assert "analytics_visitors_pkey" in plan, plan
            assert "Seq Scan" not in plan and "Hash Join" not in plan, plan
        return
    async with db.write() as session:
        connection = await session.connection()
        statement = writes._sqlite_visitors_select(len(keys), 1)
        parameters = (*[key[0] for key in keys], keys[0][1])
        explained = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        assert "sqlite_autoindex_analytics_visitors_1" in str(explained.all())


async def postgres_visitor_lookup_plans(db: Database, keys: list[VisitorKey]) -> list[str]:
    """The plans of a batch's visitor lookup, in a batch's transaction: for
    these keys, and the generic plan a prepared statement may keep (made
    without the keys, from the statistics alone)."""
    columns = [list(column) for column in zip(*keys, strict=True)]
    async with db.write() as session:
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        await connection.exec_driver_sql("SELECT 1")  # the transaction, begun
        await driver.execute(writes.START_BATCH)
        custom = await driver.fetchval(
            f"EXPLAIN (FORMAT JSON) {writes._PG_VISITORS_BY_KEY}", *columns
        )
        await driver.execute(
            "SET LOCAL plan_cache_mode = force_generic_plan; "
            f"PREPARE lookup AS {writes._PG_VISITORS_BY_KEY}"
        )
        # EXECUTE takes no bind parameters: the keys as array literals
        # (hex digits, numbers and uuids).
        arrays = ", ".join("'{" + ",".join(map(str, column)) + "}'" for column in columns)
        generic = await driver.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE lookup({arrays})")
        await driver.execute("DEALLOCATE lookup")
    return [json.dumps(custom), json.dumps(generic)]


postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="the PostgreSQL batch writer")


async def hourly_views_and_visitors(db: Database) -> tuple[int, int]:
    async with db.read_primary() as session:
        views, visitors = (
            await session.execute(
                select(func.sum(AnalyticsRollup.views), func.sum(AnalyticsRollup.visitors_h)).where(
                    AnalyticsRollup.dimension == ""
                )
            )
        ).one()
    return int(views or 0), int(visitors or 0)


@postgres_only
async def test_two_workers_writers_count_each_visitor_and_event_once(app: Any) -> None:
    """Two workers' writers (each on its own thread and connection) write
    batches at once that share visitors and redelivered events: the
    ingestion lock keeps the first-visit counts and the skip of stored ids
    right."""
    db: Database = app.components.db
    settings = app.components.settings
    writers = [PostgresBatchWriter(settings), PostgresBatchWriter(settings)]
    try:
        for round_ in range(5):
            base = round_ * 1000
            # Both see visitors base..base+99; each has its own events, and
            # 50 events are delivered to both.
            batches = [
                [
                    event(base + side * 100 + index, visitor=f"{base + index % 100:016x}")
                    for index in range(100)
                ]
                + [event(base + 500 + index) for index in range(50)]
                for side in range(2)
            ]
            written = await asyncio.gather(
                *(
                    writer.write(batch, START_MS)
                    for writer, batch in zip(writers, batches, strict=True)
                )
            )
            assert sum(written) == 250
    finally:
        for writer in writers:
            await writer.close()
    # Per round: 200 own events and 50 shared; 100 shared visitors and 50
    # single-event ones.
    assert await hourly_views_and_visitors(db) == (5 * 250, 5 * 150)
    async with db.read_primary() as session:
        assert await session.scalar(select(func.count()).select_from(AnalyticsEvent)) == 5 * 250


@postgres_only
async def test_a_batch_cancelled_while_waiting_for_the_lock_leaves_nothing(app: Any) -> None:
    db: Database = app.components.db
    writer = PostgresBatchWriter(app.components.settings)
    try:
        async with db.write() as session:
            await repository.lock_ingestion(session)  # a rebuild, say
            waiting = asyncio.create_task(writer.write([event(0), event(1)], START_MS))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        assert await hourly_views_and_visitors(db) == (0, 0)
        # The writer and its connection go on.
        assert await writer.write([event(0), event(1)], START_MS) == 2
        assert await hourly_views_and_visitors(db) == (2, 2)
    finally:
        await writer.close()
    assert not [thread for thread in threading.enumerate() if thread.name == "analytics-writer"]
