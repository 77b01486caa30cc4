"""content stamps per account, moved by triggers (cached GraphQL answers
check them; see core/owner_stamps.py)

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables an account's answers are made of, the column naming the
# account, and the changes that move its stamp. (A page's versions change
# only together with the page's own row; a new account has no answers yet,
# and a deleted one's rows go with it.)
WATCHED = [
    ("landing_pages", "owner_id", ("INSERT", "UPDATE", "DELETE")),
    ("files", "owner_id", ("INSERT", "UPDATE", "DELETE")),
    ("api_keys", "user_id", ("INSERT", "UPDATE", "DELETE")),
    ("users", "id", ("UPDATE",)),
]

# One function per column naming the account: a generic one would have to
# turn the whole row (a page's content included) into JSON to find it.
_PG_FUNCTION = """
CREATE FUNCTION owner_stamp_by_{column}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owner uuid;
BEGIN
    IF TG_OP = 'DELETE' THEN
        owner := OLD.{column};
    ELSE
        owner := NEW.{column};
    END IF;
    INSERT INTO owner_stamps (owner_id, stamp) VALUES (owner, 1)
        ON CONFLICT (owner_id) DO UPDATE SET stamp = owner_stamps.stamp + 1;
    RETURN NULL;
END
$$
"""


def _trigger(table: str, event: str) -> str:
    return f"owner_stamp_{table}_{event.lower()}"


def upgrade() -> None:
    op.create_table(
        "owner_stamps",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for column in sorted({column for _table, column, _events in WATCHED}):
            op.execute(_PG_FUNCTION.format(column=column))
        for table, column, events in WATCHED:
            op.execute(
                f"CREATE TRIGGER owner_stamp_{table} AFTER {' OR '.join(events)} ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION owner_stamp_by_{column}()"
            )
        return
    for table, column, events in WATCHED:
        for event in events:
            row = "OLD" if event == "DELETE" else "NEW"
            # Names from WATCHED above, not input.
            bump = (
                f"INSERT INTO owner_stamps (owner_id, stamp) VALUES ({row}.{column}, 1) "  # noqa: S608
                "ON CONFLICT (owner_id) DO UPDATE SET stamp = stamp + 1"
            )
            op.execute(
                f"CREATE TRIGGER {_trigger(table, event)} AFTER {event} ON {table} BEGIN {bump}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _column, _events in WATCHED:
            op.execute(f"DROP TRIGGER owner_stamp_{table} ON {table}")
        for column in sorted({column for _table, column, _events in WATCHED}):
            op.execute(f"DROP FUNCTION owner_stamp_by_{column}()")
    else:
        for table, _column, events in WATCHED:
            for event in events:
                op.execute(f"DROP TRIGGER {_trigger(table, event)}")
    op.drop_table("owner_stamps")
