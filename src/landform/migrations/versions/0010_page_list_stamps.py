"""page list stamps per account, moved by triggers when a page is added or
deleted or its title or slug changes (cached analytics answers check them;
see pages/models.py, PageListStamp)

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
CREATE FUNCTION page_list_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owner uuid;
BEGIN
    IF TG_OP = 'DELETE' THEN
        owner := OLD.owner_id;
    ELSE
        owner := NEW.owner_id;
    END IF;
    INSERT INTO page_list_stamps (owner_id, stamp) VALUES (owner, 1)
        ON CONFLICT (owner_id) DO UPDATE SET stamp = page_list_stamps.stamp + 1;
    RETURN NULL;
END
$$
"""

# Only a change of what an analytics answer shows moves the stamp: an edit
# of a page's content (most writes) leaves it, and the reports' cache, be.
_RENAMED_PG = "OLD.title IS DISTINCT FROM NEW.title OR OLD.slug IS DISTINCT FROM NEW.slug"
_RENAMED_SQLITE = "OLD.title IS NOT NEW.title OR OLD.slug IS NOT NEW.slug"

_SQLITE_BUMP = (
    "INSERT INTO page_list_stamps (owner_id, stamp) VALUES ({row}.owner_id, 1) "
    "ON CONFLICT (owner_id) DO UPDATE SET stamp = stamp + 1"
)


def upgrade() -> None:
    op.create_table(
        "page_list_stamps",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER page_list_stamp_change AFTER INSERT OR DELETE ON landing_pages "
            "FOR EACH ROW EXECUTE FUNCTION page_list_stamp()"
        )
        op.execute(
            "CREATE TRIGGER page_list_stamp_rename AFTER UPDATE OF title, slug ON landing_pages "
            f"FOR EACH ROW WHEN ({_RENAMED_PG}) EXECUTE FUNCTION page_list_stamp()"
        )
        return
    op.execute(
        "CREATE TRIGGER page_list_stamp_insert AFTER INSERT ON landing_pages "
        f"BEGIN {_SQLITE_BUMP.format(row='NEW')}; END"
    )
    op.execute(
        "CREATE TRIGGER page_list_stamp_delete AFTER DELETE ON landing_pages "
        f"BEGIN {_SQLITE_BUMP.format(row='OLD')}; END"
    )
    op.execute(
        "CREATE TRIGGER page_list_stamp_rename AFTER UPDATE OF title, slug ON landing_pages "
        f"WHEN {_RENAMED_SQLITE} BEGIN {_SQLITE_BUMP.format(row='NEW')}; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER page_list_stamp_change ON landing_pages")
        op.execute("DROP TRIGGER page_list_stamp_rename ON landing_pages")
        op.execute("DROP FUNCTION page_list_stamp()")
    else:
        for name in ("insert", "delete", "rename"):
            op.execute(f"DROP TRIGGER page_list_stamp_{name}")
    op.drop_table("page_list_stamps")
