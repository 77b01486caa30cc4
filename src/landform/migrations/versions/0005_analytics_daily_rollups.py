"""analytics read paths: daily rollups and indexes

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_daily_rollups",
        sa.Column("page_id", sa.Uuid(), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("visitors", sa.Integer(), nullable=False),
        sa.Column("conversions", sa.Integer(), nullable=False),
        sa.Column("converters", sa.Integer(), nullable=False),
        sa.Column("bot_views", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("page_id", "dimension", "day", "value"),
    )
    counts = ["views", "visitors", "conversions", "converters", "bot_views"]
    op.create_index(
        "ix_analytics_daily_rollups_owner",
        "analytics_daily_rollups",
        ["owner_id", "dimension", "day"],
        unique=False,
        postgresql_include=["page_id", "value", *counts],
    )
    op.create_index(
        "ix_analytics_daily_rollups_page_day",
        "analytics_daily_rollups",
        ["page_id", "day"],
        unique=False,
        postgresql_include=["dimension", "value", *counts],
    )
    op.create_index(
        "ix_analytics_rollups_page_hour", "analytics_rollups", ["page_id", "hour"], unique=False
    )
    # Retention and rebuild read raw events by hour alone; nothing reads them
    # by page and hour.
    op.drop_index("ix_analytics_events_page_hour", table_name="analytics_events")
    op.create_index("ix_analytics_events_hour", "analytics_events", ["hour"], unique=False)
    op.create_index("ix_analytics_visitors_day", "analytics_visitors", ["day"], unique=False)
    # Daily rows for what the hourly rollups already hold.
    op.execute(
        "INSERT INTO analytics_daily_rollups "
        "(page_id, dimension, day, value, owner_id, views, visitors, conversions, "
        "converters, bot_views) "
        "SELECT page_id, dimension, hour / 24, value, owner_id, SUM(views), "
        "SUM(visitors_d), SUM(conversions), SUM(converters_d), SUM(bot_views) "
        "FROM analytics_rollups GROUP BY page_id, dimension, hour / 24, value, owner_id"
    )


def downgrade() -> None:
    op.drop_index("ix_analytics_visitors_day", table_name="analytics_visitors")
    op.drop_index("ix_analytics_events_hour", table_name="analytics_events")
    op.create_index(
        "ix_analytics_events_page_hour", "analytics_events", ["page_id", "hour"], unique=False
    )
    op.drop_index("ix_analytics_rollups_page_hour", table_name="analytics_rollups")
    op.drop_index("ix_analytics_daily_rollups_page_day", table_name="analytics_daily_rollups")
    op.drop_index("ix_analytics_daily_rollups_owner", table_name="analytics_daily_rollups")
    op.drop_table("analytics_daily_rollups")
