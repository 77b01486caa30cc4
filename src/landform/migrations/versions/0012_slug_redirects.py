"""a live page's former addresses, redirected to where it lives now (see
pages/models.py, SlugRedirect)

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from landform.core.types import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slug_redirects",
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("page_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["page_id"], ["landing_pages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("slug"),
    )
    op.create_index("ix_slug_redirects_page_id", "slug_redirects", ["page_id"])


def downgrade() -> None:
    op.drop_index("ix_slug_redirects_page_id", table_name="slug_redirects")
    op.drop_table("slug_redirects")
