"""files

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import landform.core.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=80), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("created_at", landform.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "sha256", name="uq_files_owner_sha256"),
    )
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index("ix_files_owner_id_id", ["owner_id", "id"], unique=False)
        batch_op.create_index("ix_files_storage_key", ["storage_key"], unique=False)

    op.create_table(
        "page_version_assets",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("storage_key", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["page_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", "storage_key"),
    )
    with op.batch_alter_table("page_version_assets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_page_version_assets_storage_key"), ["storage_key"], unique=False
        )

    with op.batch_alter_table("page_changes", schema=None) as batch_op:
        batch_op.alter_column(
            "slug",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.String(length=100),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("page_changes", schema=None) as batch_op:
        batch_op.alter_column(
            "slug",
            existing_type=sa.String(length=100),
            type_=sa.VARCHAR(length=64),
            existing_nullable=False,
        )

    with op.batch_alter_table("page_version_assets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_page_version_assets_storage_key"))

    op.drop_table("page_version_assets")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index("ix_files_storage_key")
        batch_op.drop_index("ix_files_owner_id_id")

    op.drop_table("files")
