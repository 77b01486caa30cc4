"""analytics visitors: one index, the primary key, day first

The visitor table had its primary key (visitor, day, page_id) and an index
on day for the retention sweep. A batch looks its visitors up by the whole
key; without fitting statistics (a new database, a new day) PostgreSQL
planned that lookup through the day index, filtering all of the day's
visitors, and kept the plan: on a new database under load a batch took up
to 2 s and ingestion fell behind for good. With the key in the order (day,
visitor, page_id) it is the only index: the sweep deletes by its leading
column, the lookup finds each row by the whole key, and there is no day
index to choose.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "visitor, day, page_id, hours, conversion_hours, referrer, utm_source, "
    "utm_medium, utm_campaign, device, browser, os, country"
)


def upgrade() -> None:
    op.drop_index("ix_analytics_visitors_day", table_name="analytics_visitors")
    _set_primary_key(("day", "visitor", "page_id"))


def downgrade() -> None:
    _set_primary_key(("visitor", "day", "page_id"))
    op.create_index("ix_analytics_visitors_day", "analytics_visitors", ["day"], unique=False)


def _set_primary_key(columns: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE analytics_visitors DROP CONSTRAINT analytics_visitors_pkey, "
            f"ADD CONSTRAINT analytics_visitors_pkey PRIMARY KEY ({', '.join(columns)})"
        )
        return
    # SQLite cannot change a primary key: a new table, the rows copied over.
    op.create_table(
        "analytics_visitors_new",
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
        sa.PrimaryKeyConstraint(*columns),
    )
    op.execute(
        f"INSERT INTO analytics_visitors_new ({COLUMNS}) "  # noqa: S608
        f"SELECT {COLUMNS} FROM analytics_visitors"
    )
    op.drop_table("analytics_visitors")
    op.rename_table("analytics_visitors_new", "analytics_visitors")
