"""The ``landform`` command."""

from __future__ import annotations

import asyncio
import ctypes
import os
import subprocess
import sys
from typing import Annotated

import typer

from landform.settings import load_settings

app = typer.Typer(help="Landform: self-hosted landing pages.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
mail_app = typer.Typer(help="Mail sent in outbox mode.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(mail_app, name="mail")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (default: one per CPU core).")] = 0,
    server: Annotated[
        str, typer.Option(help="ASGI server: granian (measured fastest here) or uvicorn.")
    ] = "granian",
) -> None:
    """Start Landform. On the embedded defaults it migrates its SQLite database first."""
    workers = workers or os.cpu_count() or 1
    if "LANDFORM_PUBLIC_URL" not in os.environ:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        os.environ["LANDFORM_PUBLIC_URL"] = f"http://{shown}:{port}"
    settings = load_settings()
    if settings.should_migrate_on_start:
        # In a child process: the workers fork from this one and would
        # otherwise each carry Alembic and the migration's memory.
        subprocess.run([sys.executable, "-m", "landform.cli.main", "db", "upgrade"], check=True)
    # Migrated once here; the workers need not race to do it again.
    os.environ["LANDFORM_MIGRATE_ON_START"] = "false"
    os.environ["LANDFORM_SECRET_KEY"] = settings.secret_key
    os.environ["LANDFORM_DATA_DIR"] = str(settings.data_dir.resolve())
    _limit_malloc_arenas()
    database = f"SQLite {settings.data_dir / 'landform.db'}" if settings.is_sqlite else "PostgreSQL"
    plural = "s" if workers > 1 else ""
    typer.echo(f"Landform on http://{host}:{port} ({workers} worker{plural}, {database})")
    if server == "uvicorn":
        import uvicorn

        uvicorn.run(
            "landform.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
        )
        return
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    Server(
        "landform.app:create_app",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        loop=Loops.auto,
        log_access=False,
        respawn_failed_workers=True,
    ).serve()


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas before the workers fork (they inherit it).

    Every thread that allocates (aiosqlite runs one per connection) may get
    an arena of its own, and freed page bytes then sit scattered across them:
    measured with 10,000 published pages, a worker's RSS was 288 MB with the
    default and 219 MB with two arenas, at the same throughput. Also exported
    as MALLOC_ARENA_MAX for workers that are spawned rather than forked."""
    os.environ.setdefault("MALLOC_ARENA_MAX", str(arenas))
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return
    m_arena_max = -8  # from glibc's malloc.h
    libc.mallopt(m_arena_max, arenas)


async def _upgrade() -> None:
    from landform.core.db import Database
    from landform.core.migrate import upgrade

    settings = load_settings()
    db = Database(settings)
    try:
        await upgrade(db.primary)
    finally:
        await db.dispose()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (Alembic) to LANDFORM_DATABASE_URL."""
    asyncio.run(_upgrade())
    typer.echo("database is up to date")


@mail_app.command("outbox")
def mail_outbox(
    limit: Annotated[int, typer.Option(help="How many messages, newest first.")] = 10,
    to: Annotated[str | None, typer.Option(help="Only messages to this address.")] = None,
) -> None:
    """Print the mail kept in the outbox, newest first, whole messages."""

    async def _list() -> None:
        from landform.core.clock import Clock
        from landform.core.db import Database
        from landform.core.mail import OutboxMailer

        db = Database(load_settings())
        try:
            messages = await OutboxMailer(db, Clock()).list(limit=limit, recipient=to)
        finally:
            await db.dispose()
        if not messages:
            typer.echo("(the outbox is empty)")
        for message in messages:
            typer.echo(f"=== {message.created_at.isoformat()} to {message.recipient}")
            typer.echo(message.message.rstrip("\n"))
            typer.echo("")

    asyncio.run(_list())


if __name__ == "__main__":
    app()
