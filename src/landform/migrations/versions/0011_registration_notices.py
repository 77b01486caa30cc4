"""users.registration_notice_at: when an account's owner was last mailed
that someone registered with its address (registration answers the same
for a taken address as for a new one; the owner hears of it by mail)

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import landform.core.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE on both databases (SQLite has had DROP COLUMN since
# 3.35), not a batch: on SQLite a batch copies the table, and that would
# drop the triggers on users (migration 0007).
def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column(
            "registration_notice_at",
            landform.core.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
    )


def downgrade() -> None:
    op.drop_column("users", "registration_notice_at")
