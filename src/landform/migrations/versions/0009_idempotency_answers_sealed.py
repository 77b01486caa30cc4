"""idempotency keys: answers sealed, keys kept as HMACs

Rows written before this held the client's key and the answer in the clear
(a login's tokens, a new API key). They are a day's retries at most; they
go, and every row from here on is sealed (see core/idempotency.py). A retry
of a request answered before the upgrade runs afresh.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM idempotency_keys")


def downgrade() -> None:
    # Sealed rows mean nothing to the code before this revision.
    op.execute("DELETE FROM idempotency_keys")
