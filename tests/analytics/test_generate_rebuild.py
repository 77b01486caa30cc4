"""Synthetic traffic and rollup rebuilds: the generator's rollups agree with
its raw events, and rebuilding from raw events gives the same rollups back."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update
from typer.testing import CliRunner

from landform.analytics import generate as generate_module
from landform.analytics.aggregate import COUNTERS, DAILY_COUNTERS, DIMENSIONS, daily
from landform.analytics.generate import Demo, Generated, ensure_demo, generate_traffic
from landform.analytics.models import (
    AnalyticsDailyRollup,
    AnalyticsEvent,
    AnalyticsRollup,
    AnalyticsStamp,
    AnalyticsVisitor,
)
from landform.analytics.rebuild import rebuild
from landform.analytics.repository import ANALYTICS_TABLES
from landform.cli.main import app as cli
from landform.core.clock import FrozenClock
from landform.core.db import Database
from landform.core.errors import Conflict, ValidationFailed
from landform.settings import Settings
from tests.conftest import ON_POSTGRES, PASSWORD

NOW = datetime(2026, 3, 11, 15, 27, 41, tzinfo=UTC)

Snapshot = dict[tuple[str, str, int, str], tuple[int, ...]]


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    yield database
    await database.dispose()


@pytest.fixture
def frozen() -> FrozenClock:
    return FrozenClock(NOW)


async def make_demo(db: Database, settings: Settings, clock: FrozenClock) -> Demo:
    return await ensure_demo(db, settings, clock, "demo@example.com", PASSWORD, 3)


async def generate(
    db: Database, settings: Settings, clock: FrozenClock, events: int = 3000
) -> tuple[Demo, Generated]:
    demo = await make_demo(db, settings, clock)
    return demo, await generate_traffic(db, clock, demo.owner_id, demo.pages, events, 3, seed=7)


async def raw_events(db: Database) -> list[AnalyticsEvent]:
    async with db.read_primary() as session:
        return list((await session.scalars(select(AnalyticsEvent))).all())


async def rollups(db: Database, *, check_daily: bool = True) -> Snapshot:
    """The hourly rollups, after checking (unless told not to) that the
    daily ones are exactly their sums per day."""
    async with db.read_primary() as session:
        rows = (await session.scalars(select(AnalyticsRollup))).all()
        days = (await session.scalars(select(AnalyticsDailyRollup))).all()
    hourly = {
        (str(r.page_id), r.dimension, r.hour, r.value): tuple(getattr(r, c) for c in COUNTERS)
        for r in rows
    }
    folded = {
        key: tuple(counts)
        for key, counts in daily({key: list(counts) for key, counts in hourly.items()}).items()
        if any(counts)
    }
    stored = {
        (str(r.page_id), r.dimension, r.day, r.value): tuple(getattr(r, c) for c in DAILY_COUNTERS)
        for r in days
    }
    if check_daily:
        assert {k: v for k, v in stored.items() if any(v)} == folded
    return hourly


def totals(snapshot: Snapshot, dimension: str = "") -> Counter[str]:
    sums: Counter[str] = Counter()
    for (_page, dim, _hour, _value), counts in snapshot.items():
        if dim == dimension:
            sums.update(dict(zip(COUNTERS, counts, strict=True)))
    return sums


async def test_the_demo_owner_is_verified_with_published_pages_and_reused(
    db: Database, settings: Settings, frozen: FrozenClock
) -> None:
    demo = await make_demo(db, settings, frozen)
    assert demo.password == PASSWORD
    assert len(demo.pages) == 3
    again = await ensure_demo(db, settings, frozen, "demo@example.com", None, 4, existing=True)
    assert again.owner_id == demo.owner_id
    assert again.password is None  # existing account: nothing to show
    assert again.pages[:3] == demo.pages
    assert len(again.pages) == 4


async def test_a_demo_owner_registered_meanwhile_is_refused_not_faked(
    db: Database, settings: Settings, frozen: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registering a taken address answers a stand-in (it must not tell the
    one registering); the generator is told apart, and says so rather
    than make pages for an account that is not there."""
    await make_demo(db, settings, frozen)

    async def not_yet(session: object, email: str) -> None:
        return None  # as if another run registered it right after this look

    monkeypatch.setattr(generate_module.auth_repo, "user_by_email", not_yet)
    with pytest.raises(Conflict, match="registered meanwhile"):
        await ensure_demo(db, settings, frozen, "demo@example.com", None, 3, existing=True)


async def test_rollups_count_exactly_the_generated_raw_events(
    db: Database, settings: Settings, frozen: FrozenClock
) -> None:
    demo, result = await generate(db, settings, frozen)
    events = await raw_events(db)
    assert len(events) == result.events == 3000
    assert len({e.id for e in events}) == 3000
    start_ms = int((NOW - timedelta(days=3)).timestamp() * 1000)
    assert all(start_ms <= e.received_ms < frozen.now_ms() for e in events)
    assert {e.page_id for e in events} <= {page_id for page_id, _ in demo.pages}

    people = [e for e in events if not e.is_bot]
    views = [e for e in people if e.kind == "view"]
    conversions = [e for e in people if e.kind == "event"]
    bot_views = [e for e in events if e.is_bot and e.kind == "view"]
    expected = {
        "views": len(views),
        "conversions": len(conversions),
        "bot_views": len(bot_views),
        "visitors_d": len({(e.visitor, e.hour // 24, e.page_id) for e in people}),
        "visitors_h": len({(e.visitor, e.hour, e.page_id) for e in people}),
        "converters_d": len({(e.visitor, e.hour // 24, e.page_id) for e in conversions}),
        "converters_h": len({(e.visitor, e.hour, e.page_id) for e in conversions}),
    }
    snapshot = await rollups(db)
    assert dict(totals(snapshot)) == expected
    assert (result.views, result.conversions, result.bot_views) == (
        len(views),
        len(conversions),
        len(bot_views),
    )
    # Each person's event is counted once under every breakdown.
    for dimension in DIMENSIONS:
        by_dimension = totals(snapshot, dimension)
        assert by_dimension["views"] == len(views)
        assert by_dimension["visitors_d"] == expected["visitors_d"]

    # Plausible traffic, not noise.
    assert 0.02 <= len(bot_views) / len(events) <= 0.07
    assert 0.01 <= len(conversions) / len(events) <= 0.1
    assert {"cta_click", "form_submit"} == {e.name for e in conversions}
    assert {e.device for e in people} == {"desktop", "mobile", "tablet"}
    assert len({e.referrer for e in people}) > 5
    assert any(e.utm_campaign for e in people)
    assert len({e.country for e in people}) > 5
    per_visitor = Counter((e.visitor, e.page_id) for e in views)
    assert max(per_visitor.values()) > 2  # visitors come back within the day
    per_page = Counter(e.page_id for e in events)
    popular = demo.pages[0][0]
    assert per_page[popular] == max(per_page.values())  # a Zipf-like skew
    daytime = sum(1 for e in events if 12 <= e.hour % 24 < 18)
    night = sum(1 for e in events if 0 <= e.hour % 24 < 6)
    assert daytime > 2 * night

    async with db.read_primary() as session:
        kept_days = set((await session.scalars(select(AnalyticsVisitor.day))).all())
        stamp = await session.scalar(
            select(AnalyticsStamp.stamp).where(AnalyticsStamp.owner_id == demo.owner_id)
        )
    today = frozen.now_ms() // 86_400_000
    assert kept_days == {today - 1, today}
    assert stamp == frozen.now_ms()


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's planner statistics")
async def test_generated_tables_have_planner_statistics(
    db: Database, settings: Settings, frozen: FrozenClock
) -> None:
    await generate(db, settings, frozen, events=500)
    async with db.read_primary() as session:
        analyzed = await session.scalars(
            text("SELECT DISTINCT tablename FROM pg_stats WHERE tablename LIKE 'analytics_%'")
        )
        assert set(analyzed) == set(ANALYTICS_TABLES)


async def test_the_same_seed_and_clock_give_the_same_traffic(
    db: Database, settings: Settings, frozen: FrozenClock
) -> None:
    demo, _ = await generate(db, settings, frozen, events=500)
    first = sorted((e.id, e.visitor, e.referrer) for e in await raw_events(db))
    async with db.write() as session:
        await session.execute(delete(AnalyticsEvent))
        await session.execute(delete(AnalyticsRollup))
        await session.execute(delete(AnalyticsDailyRollup))
        await session.execute(delete(AnalyticsVisitor))
    await generate_traffic(db, frozen, demo.owner_id, demo.pages, 500, 3, seed=7)
    assert sorted((e.id, e.visitor, e.referrer) for e in await raw_events(db)) == first


async def test_rebuild_restores_the_rollups_and_is_idempotent(
    db: Database, settings: Settings, frozen: FrozenClock
) -> None:
    demo, _ = await generate(db, settings, frozen)
    # A second run a minute later on the same pages adds to existing rollups.
    frozen.advance(60)
    await generate_traffic(db, frozen, demo.owner_id, demo.pages, 1000, 2, seed=7)
    expected = await rollups(db)
    page_id = demo.pages[0][0]
    async with db.write() as session:
        await session.execute(delete(AnalyticsRollup).where(AnalyticsRollup.dimension == "country"))
        await session.execute(
            update(AnalyticsRollup)
            .where(AnalyticsRollup.dimension == "")
            .values(views=AnalyticsRollup.views + 5)
        )
        session.add(
            AnalyticsRollup(
                page_id=page_id,
                dimension="referrer",
                hour=frozen.now_ms() // 3_600_000 - 1,
                value="bogus.example",
                owner_id=demo.owner_id,
                views=99,
                visitors_h=0,
                visitors_d=0,
                conversions=0,
                converters_h=0,
                converters_d=0,
                bot_views=0,
            )
        )
    assert await rollups(db, check_daily=False) != expected

    result = await rebuild(db, frozen, settings.analytics_retention_days)
    assert result.events == 4000
    assert len(result.days) == 4  # three days back from mid-afternoon touch four dates
    assert await rollups(db) == expected

    again = await rebuild(db, frozen, settings.analytics_retention_days)
    assert again.rollup_rows == result.rollup_rows
    assert await rollups(db) == expected


async def test_rebuild_of_some_days_leaves_the_others(
    db: Database, settings: Settings, frozen: FrozenClock
) -> None:
    await generate(db, settings, frozen)
    expected = await rollups(db)
    yesterday = NOW.date() - timedelta(days=1)
    first_hour = (yesterday - date(1970, 1, 1)).days * 24
    async with db.write() as session:
        await session.execute(delete(AnalyticsRollup).where(AnalyticsRollup.hour < first_hour))
        await session.execute(
            delete(AnalyticsDailyRollup).where(AnalyticsDailyRollup.day < first_hour // 24)
        )
    result = await rebuild(db, frozen, settings.analytics_retention_days, yesterday, NOW.date())
    assert result.days == [yesterday, NOW.date()]
    assert await rollups(db) == {k: v for k, v in expected.items() if k[2] >= first_hour}


async def test_rebuild_refuses_days_past_retention(
    db: Database, settings: Settings, frozen: FrozenClock
) -> None:
    too_old = NOW.date() - timedelta(days=settings.analytics_retention_days + 1)
    with pytest.raises(ValidationFailed):
        await rebuild(db, frozen, settings.analytics_retention_days, too_old, NOW.date())


async def test_rebuild_refuses_a_reversed_range_and_stops_at_today(
    db: Database, settings: Settings, frozen: FrozenClock
) -> None:
    await generate(db, settings, frozen)
    yesterday = NOW.date() - timedelta(days=1)
    with pytest.raises(ValidationFailed, match="is after the last"):
        await rebuild(db, frozen, settings.analytics_retention_days, NOW.date(), yesterday)
    # A last day far ahead is today: no empty days walked to get there.
    far = await rebuild(
        db, frozen, settings.analytics_retention_days, yesterday, date(9999, 12, 31)
    )
    assert far.days == [yesterday, NOW.date()]


def test_the_cli_generates_and_rebuilds(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANDFORM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LANDFORM_SECRET_KEY", settings.secret_key)
    if not settings.is_sqlite:
        monkeypatch.setenv("LANDFORM_DATABASE_URL", settings.primary_database_url)
    runner = CliRunner()
    generated = runner.invoke(
        cli, ["analytics", "generate", "--pages", "2", "--events", "800", "--days", "2"]
    )
    assert generated.exit_code == 0, generated.output
    assert "created demo@landform.local, verified, password: " in generated.output
    assert "800 events" in generated.output
    assert "events/s" in generated.output
    rebuilt = runner.invoke(cli, ["analytics", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "800 events" in rebuilt.output
    refused = runner.invoke(cli, ["analytics", "rebuild", "--from", "2001-01-01"])
    assert refused.exit_code == 2
    assert "past retention" in refused.output
    bad = runner.invoke(cli, ["analytics", "rebuild", "--to", "yesterday"])
    assert bad.exit_code != 0
    too_long = runner.invoke(cli, ["analytics", "generate", "--days", "100000"])
    assert too_long.exit_code == 2
    assert "longer than the retention period" in too_long.output
    no_address = runner.invoke(cli, ["analytics", "generate", "--email", "not an email"])
    assert no_address.exit_code == 2
    assert "is not an email address" in no_address.output
    # The default demo account is generate's own: a rerun adds to it.
    again = runner.invoke(cli, ["analytics", "generate", "--pages", "2", "--events", "10"])
    assert again.exit_code == 0, again.output
    assert "using the existing account demo@landform.local" in again.output


def test_the_cli_leaves_an_existing_account_alone_unless_told(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real account's analytics would hold synthetic traffic for good:
    generate uses an account it did not make only with --existing."""
    monkeypatch.setenv("LANDFORM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LANDFORM_SECRET_KEY", settings.secret_key)
    if not settings.is_sqlite:
        monkeypatch.setenv("LANDFORM_DATABASE_URL", settings.primary_database_url)
    runner = CliRunner()
    command = ["analytics", "generate", "--pages", "1", "--events", "5", "--days", "1"]
    made = runner.invoke(cli, [*command, "--email", "ada@example.com"])
    assert made.exit_code == 0, made.output
    assert "created ada@example.com" in made.output
    refused = runner.invoke(cli, [*command, "--email", "ada@example.com"])
    assert refused.exit_code == 2
    assert "ada@example.com is an existing account" in refused.output
    assert "--existing" in refused.output
    allowed = runner.invoke(cli, [*command, "--email", "ada@example.com", "--existing"])
    assert allowed.exit_code == 0, allowed.output
    assert "using the existing account ada@example.com" in allowed.output
