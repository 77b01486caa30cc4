"""Analytics tables. None of them has a foreign key: they take thousands of
rows a second, and a batch must never fail because a page was deleted while
it was in flight. Reports reach rows only through the caller's own pages;
housekeeping deletes the rollups of deleted pages, and their raw events
expire with the rest."""

from __future__ import annotations

import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from landform.core.db import Base

# Time is kept as whole hours (and days) since the Unix epoch, UTC: the same
# integer arithmetic buckets hours, days and weeks on SQLite and PostgreSQL.


class AnalyticsSalt(Base):
    """The random key of one UTC day's visitor hashes; deleted after 48 h."""

    __tablename__ = "analytics_salts"

    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    salt: Mapped[bytes] = mapped_column(LargeBinary)


class EntryAttributes:
    """A visitor's entry attributes for the day: the breakdown dimensions
    (``aggregate.DIMENSIONS``)."""

    referrer: Mapped[str] = mapped_column(String(255))
    utm_source: Mapped[str] = mapped_column(String(200))
    utm_medium: Mapped[str] = mapped_column(String(200))
    utm_campaign: Mapped[str] = mapped_column(String(200))
    device: Mapped[str] = mapped_column(String(16))
    browser: Mapped[str] = mapped_column(String(64))
    os: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2))


class AnalyticsEvent(EntryAttributes, Base):
    """One raw event, kept for the retention period. Its id is the ingestion
    dedup key. Referrer, UTM and device fields are the visitor's entry
    attributes for the day (see ``aggregate``)."""

    __tablename__ = "analytics_events"
    __table_args__ = (
        Index("ix_analytics_events_owner_hour", "owner_id", "hour"),
        # Retention deletes and rebuild scan by hour alone.
        Index("ix_analytics_events_hour", "hour"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    page_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(8))  # "view" or "event"
    name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    hour: Mapped[int] = mapped_column(Integer)
    received_ms: Mapped[int] = mapped_column(BigInteger)
    ingested_ms: Mapped[int] = mapped_column(BigInteger)
    visitor: Mapped[str] = mapped_column(String(16))
    is_bot: Mapped[bool] = mapped_column(Boolean)
    path: Mapped[str] = mapped_column(String(512))
    screen_width: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AnalyticsVisitor(EntryAttributes, Base):
    """A visitor's day on one page: the hours they were seen and converted in
    (24-bit masks), and their entry attributes. Needed only while that day's
    events can arrive, so it is deleted with the day's salt."""

    __tablename__ = "analytics_visitors"
    # Day first, and the only index: ingestion looks rows up by the whole
    # key, and the retention sweep deletes them by day (migration 0008).
    __table_args__ = (PrimaryKeyConstraint("day", "visitor", "page_id"),)

    visitor: Mapped[str] = mapped_column(String(16))
    day: Mapped[int] = mapped_column(Integer, autoincrement=False)
    page_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    hours: Mapped[int] = mapped_column(Integer)
    conversion_hours: Mapped[int] = mapped_column(Integer)


class AnalyticsRollup(Base):
    """Hourly counts per page: the page's totals (``dimension`` = "") and one
    row per value of each breakdown dimension. Our materialized view, kept
    current by ingestion.

    ``visitors_h``/``converters_h`` count distinct visitors within the hour;
    ``visitors_d``/``converters_d`` count each visitor once per day, in the
    hour they were first seen (or first converted), so summing them over
    days gives the sum of daily uniques."""

    __tablename__ = "analytics_rollups"
    __table_args__ = (
        Index("ix_analytics_rollups_owner", "owner_id", "dimension", "hour"),
        # A page's hours across all dimensions (the primary key puts the
        # dimension before the hour).
        Index("ix_analytics_rollups_page_hour", "page_id", "hour"),
    )

    page_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    views: Mapped[int] = mapped_column(Integer, default=0)
    visitors_h: Mapped[int] = mapped_column(Integer, default=0)
    visitors_d: Mapped[int] = mapped_column(Integer, default=0)
    conversions: Mapped[int] = mapped_column(Integer, default=0)
    converters_h: Mapped[int] = mapped_column(Integer, default=0)
    converters_d: Mapped[int] = mapped_column(Integer, default=0)
    bot_views: Mapped[int] = mapped_column(Integer, default=0)


class AnalyticsStamp(Base):
    """When an owner's analytics last changed: cached reports older than it
    are stale, on every worker and replica."""

    __tablename__ = "analytics_stamps"

    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    stamp: Mapped[int] = mapped_column(BigInteger)


_DAILY_COUNTS = ["views", "visitors", "conversions", "converters", "bot_views"]


class AnalyticsDailyRollup(Base):
    """The hourly rollups summed per UTC day, kept by the same batches: long
    ranges read 24 times fewer rows. Visitor counts are daily uniques (the
    hourly ``visitors_d``/``converters_d`` summed)."""

    __tablename__ = "analytics_daily_rollups"
    # Reports read these rows by page or by owner over a range of days; the
    # indexes carry the counts (PostgreSQL), so those reads never visit the
    # table, whose rows for one page are scattered in time order.
    __table_args__ = (
        Index(
            "ix_analytics_daily_rollups_owner",
            "owner_id",
            "dimension",
            "day",
            postgresql_include=["page_id", "value", *_DAILY_COUNTS],
        ),
        Index(
            "ix_analytics_daily_rollups_page_day",
            "page_id",
            "day",
            postgresql_include=["dimension", "value", *_DAILY_COUNTS],
        ),
    )

    page_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    views: Mapped[int] = mapped_column(Integer, default=0)
    visitors: Mapped[int] = mapped_column(Integer, default=0)
    conversions: Mapped[int] = mapped_column(Integer, default=0)
    converters: Mapped[int] = mapped_column(Integer, default=0)
    bot_views: Mapped[int] = mapped_column(Integer, default=0)
