"""page removal stamps per account, moved by a trigger when one of its
pages is deleted (cached analytics answers check them; see
pages/models.py, PageRemovalStamp)

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_FUNCTION = """
CREATE FUNCTION page_removal_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO page_removal_stamps (owner_id, stamp) VALUES (OLD.owner_id, 1)
        ON CONFLICT (owner_id) DO UPDATE SET stamp = page_removal_stamps.stamp + 1;
    RETURN NULL;
END
$$
"""

_SQLITE_BUMP = (
    "INSERT INTO page_removal_stamps (owner_id, stamp) VALUES (OLD.owner_id, 1) "
    "ON CONFLICT (owner_id) DO UPDATE SET stamp = stamp + 1"
)


def upgrade() -> None:
    op.create_table(
        "page_removal_stamps",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER page_removal_stamp AFTER DELETE ON landing_pages "
            "FOR EACH ROW EXECUTE FUNCTION page_removal_stamp()"
        )
        return
    op.execute(
        f"CREATE TRIGGER page_removal_stamp AFTER DELETE ON landing_pages BEGIN {_SQLITE_BUMP}; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER page_removal_stamp ON landing_pages")
        op.execute("DROP FUNCTION page_removal_stamp()")
    else:
        op.execute("DROP TRIGGER page_removal_stamp")
    op.drop_table("page_removal_stamps")
