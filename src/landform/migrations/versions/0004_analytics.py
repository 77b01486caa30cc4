"""analytics

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("page_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("ingested_ms", sa.BigInteger(), nullable=False),
        sa.Column("visitor", sa.String(length=16), nullable=False),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("screen_width", sa.Integer(), nullable=True),
        sa.Column("referrer", sa.String(length=255), nullable=False),
        sa.Column("utm_source", sa.String(length=200), nullable=False),
        sa.Column("utm_medium", sa.String(length=200), nullable=False),
        sa.Column("utm_campaign", sa.String(length=200), nullable=False),
        sa.Column("device", sa.String(length=16), nullable=False),
        sa.Column("browser", sa.String(length=64), nullable=False),
        sa.Column("os", sa.String(length=64), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_analytics_events_owner_hour", "analytics_events", ["owner_id", "hour"], unique=False
    )
    op.create_index(
        "ix_analytics_events_page_hour", "analytics_events", ["page_id", "hour"], unique=False
    )
    op.create_table(
        "analytics_rollups",
        sa.Column("page_id", sa.Uuid(), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("hour", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("visitors_h", sa.Integer(), nullable=False),
        sa.Column("visitors_d", sa.Integer(), nullable=False),
        sa.Column("conversions", sa.Integer(), nullable=False),
        sa.Column("converters_h", sa.Integer(), nullable=False),
        sa.Column("converters_d", sa.Integer(), nullable=False),
        sa.Column("bot_views", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("page_id", "dimension", "hour", "value"),
    )
    op.create_index(
        "ix_analytics_rollups_owner",
        "analytics_rollups",
        ["owner_id", "dimension", "hour"],
        unique=False,
    )
    op.create_table(
        "analytics_salts",
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_table(
        "analytics_stamps",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id"),
    )
    op.create_table(
        "analytics_visitors",
        sa.Column("visitor", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("page_id", sa.Uuid(), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("conversion_hours", sa.Integer(), nullable=False),
        sa.Column("referrer", sa.String(length=255), nullable=False),
        sa.Column("utm_source", sa.String(length=200), nullable=False),
        sa.Column("utm_medium", sa.String(length=200), nullable=False),
        sa.Column("utm_campaign", sa.String(length=200), nullable=False),
        sa.Column("device", sa.String(length=16), nullable=False),
        sa.Column("browser", sa.String(length=64), nullable=False),
        sa.Column("os", sa.String(length=64), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.PrimaryKeyConstraint("visitor", "day", "page_id"),
    )


def downgrade() -> None:
    op.drop_table("analytics_visitors")
    op.drop_table("analytics_stamps")
    op.drop_table("analytics_salts")
    op.drop_index("ix_analytics_rollups_owner", table_name="analytics_rollups")
    op.drop_table("analytics_rollups")
    op.drop_index("ix_analytics_events_page_hour", table_name="analytics_events")
    op.drop_index("ix_analytics_events_owner_hour", table_name="analytics_events")
    op.drop_table("analytics_events")
