"""Alembic environment. Landform hands in an open connection (see
``landform.core.migrate``), so the same migrations run on SQLite and
PostgreSQL, from the CLI and from tests."""

from alembic import context

from landform.core.models_registry import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `landform db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
