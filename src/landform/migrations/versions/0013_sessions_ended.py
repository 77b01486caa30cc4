"""users.sessions_ended_at: when a password change or reset last ended the
account's sign-ins. An access token issued before it can no longer make an
API key, keep a live stream open or have a stored answer replayed.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import landform.core.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE, not a batch: a batch copies the table on SQLite and
# would drop the triggers on users (migration 0007).
def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column(
            "sessions_ended_at",
            landform.core.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
    )


def downgrade() -> None:
    op.drop_column("users", "sessions_ended_at")
