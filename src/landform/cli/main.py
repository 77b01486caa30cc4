"""The ``landform`` command."""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from landform.cli import backup
from landform.cli.loadtest import loadtest_app
from landform.cli.options import Output, SlaFile, load_sla, write_output
from landform.core.serving_lock import DataDirBusy, hold_for_serving
from landform.settings import DataDirUnusable, Settings, load_settings, unknown_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from landform.core.db import Database


class _Commands(TyperGroup):
    """Landform's commands; a data folder that cannot be used, which any of
    them may meet when it first reads the settings, is said in one line."""

    def invoke(self, ctx: Any) -> Any:  # typer's own click.Context
        try:
            return super().invoke(ctx)
        except DataDirUnusable as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc


app = typer.Typer(help="Landform: self-hosted landing pages.", no_args_is_help=True, cls=_Commands)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
mail_app = typer.Typer(help="Mail sent in outbox mode.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)


@app.callback()
def _settings_first() -> None:
    """Every command reads the settings: a bad one is named here, once,
    instead of as a traceback from whatever read it first."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        Settings()
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = "_".join(str(part) for part in error["loc"][:1]).upper()
            message = str(error["msg"]).removeprefix("Value error, ")
            # A rule between settings names them itself.
            typer.echo(
                f"error: LANDFORM_{name}: {message}" if name else f"error: {message}", err=True
            )
        raise typer.Exit(2) from exc
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for unknown, guess in unknown_settings(os.environ):
        hint = f" (did you mean {guess}?)" if guess else ""
        typer.echo(f"warning: {unknown} is not a Landform setting; ignored{hint}", err=True)


app.add_typer(db_app, name="db")
app.add_typer(mail_app, name="mail")
app.add_typer(users_app, name="users")
app.command()(backup.backup)
app.command()(backup.restore)


class AsgiServer(StrEnum):
    granian = "granian"
    uvicorn = "uvicorn"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Worker processes (default: LANDFORM_WORKERS, else one per CPU core).",
            show_default=False,
        ),
    ] = 0,
    server: Annotated[
        AsgiServer, typer.Option(help="ASGI server: granian (measured fastest here) or uvicorn.")
    ] = AsgiServer.granian,
    interface: Annotated[
        str,
        typer.Option(
            help="granian's interface: asgi, or rsgi, where the tracking beacon and "
            "published pages are answered natively (measured a third more beacons/s) but "
            "WebSockets carry no subprotocol or close code (docs/operations.md). "
            "uvicorn: asgi only."
        ),
    ] = "asgi",
) -> None:
    """Start Landform. On the embedded defaults it migrates its SQLite database first."""
    if interface not in ("asgi", "rsgi") or (interface == "rsgi" and server != "granian"):
        raise typer.BadParameter("--interface is asgi, or rsgi with --server granian")
    if "LANDFORM_PUBLIC_URL" not in os.environ:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        if ":" in shown:  # an IPv6 address goes in brackets in a URL
            shown = f"[{shown}]"
        os.environ["LANDFORM_PUBLIC_URL"] = f"http://{shown}:{port}"
    settings = load_settings()
    # Checked here, once: in the workers a bad file is a crash loop.
    load_sla(None)
    workers = workers or settings.workers or os.cpu_count() or 1
    _refuse_a_taken_port(host, port)
    try:
        # Held until this process and its workers are gone (never closed).
        hold_for_serving(settings.data_dir)
    except DataDirBusy as exc:
        typer.echo(f"error: {exc}; start the server when it is done", err=True)
        raise typer.Exit(1) from exc
    if settings.should_migrate_on_start:
        # In a child process: the workers fork from this one and would
        # otherwise each carry Alembic and the migration's memory.
        migrated = subprocess.run([sys.executable, "-m", "landform.cli.main", "db", "upgrade"])
        if migrated.returncode != 0:  # it said why (e.g. cannot use the database)
            raise typer.Exit(1)
    # Migrated once here; the workers need not race to do it again.
    os.environ["LANDFORM_MIGRATE_ON_START"] = "false"
    os.environ["LANDFORM_SECRET_KEY"] = settings.secret_key
    os.environ["LANDFORM_DATA_DIR"] = str(settings.data_dir.resolve())
    _limit_malloc_arenas()
    plural = "s" if workers > 1 else ""
    listening = f"[{host}]" if ":" in host else host
    typer.echo(
        f"Landform on http://{listening}:{port} "
        f"({workers} worker{plural}, {_what_it_uses(settings)})"
    )
    if server == "uvicorn":
        import uvicorn

        uvicorn.run(
            "landform.app:serve_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
            backlog=settings.backlog,
            timeout_keep_alive=int(settings.header_read_timeout),
            # Refused (1009) before it is buffered; granian has no such
            # setting, the app's own check (core/ws_limits.py) stands there.
            ws_max_size=settings.ws_max_message_bytes,
            # What is left of the grace period once the drain is over.
            timeout_graceful_shutdown=max(
                1, int(settings.shutdown_grace_seconds - settings.shutdown_drain_seconds)
            ),
        )
        return
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.server import Server

    from landform.core.draining import note_early_signal

    class LandformServer(Server):  # type: ignore[misc,valid-type]
        def signal_handler_interrupt(self, signum: int = 0, *args: Any) -> None:
            # Forked workers inherit this handler and keep it while they
            # import the app: a stop signal then is theirs, not the server's.
            if os.getpid() != self.pid:
                note_early_signal(signum)
                return
            super().signal_handler_interrupt(signum, *args)

    native = interface == "rsgi"
    LandformServer(
        "landform.app:serve_rsgi_app" if native else "landform.app:serve_app",
        address=host,
        port=port,
        interface=Interfaces.RSGI if native else Interfaces.ASGI,
        workers=workers,
        factory=True,
        loop=Loops.auto,
        log_access=False,
        respawn_failed_workers=True,
        backlog=settings.backlog,
        # Keep-alive on; a client gets this long to send its headers.
        http1_settings=HTTP1Settings(
            keep_alive=True, header_read_timeout=int(settings.header_read_timeout * 1000)
        ),
        workers_kill_timeout=settings.shutdown_grace_seconds,
    ).serve()


def _refuse_a_taken_port(host: str, port: int) -> None:
    """Exit at once when something listens on the port. granian binds with
    SO_REUSEPORT, so a second server on a taken port would otherwise start
    and take half of the first one's connections, to its own data."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        try:
            probe.bind((host, port))
        except OSError as exc:
            typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror}", err=True)
            raise typer.Exit(1) from exc


def _what_it_uses(settings: Settings) -> str:
    """Where the data lives, for the start-up line: the database, Redis
    and file storage, never a password."""
    from sqlalchemy.engine import make_url

    if settings.is_sqlite:
        parts = [f"SQLite {settings.data_dir / 'landform.db'}"]
    else:
        url = make_url(settings.primary_database_url)
        hosts = url.query.get("host") or url.host or "local socket"
        where = ",".join(hosts) if isinstance(hosts, tuple) else f"{hosts}:{url.port or 5432}"
        parts = [f"PostgreSQL {where}/{url.database}"]
    if settings.redis_url:
        redis = make_url(settings.redis_url)
        at = f"{redis.host}:{redis.port or 6379}/{redis.database or 0}" if redis.host else "socket"
        parts.append(f"Redis {at}")
    parts.append(f"files in {settings.storage_url or settings.data_dir / 'files'}")
    return ", ".join(parts)


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


async def _migrate(
    migrate: Callable[[AsyncEngine, str], Awaitable[str | None]],
    revision: str,
    check: Callable[[str | None], None] = lambda _before: None,
) -> tuple[str | None, str | None]:
    """Run a migration command; the revisions before and after it (before:
    as found when its turn came, after another migrating at once). A
    revision Alembic does not know, or a database that cannot be reached,
    ends the command with a message (exit 1) rather than a traceback;
    ``check`` may end it first, told the revision the database is at."""
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import DBAPIError

    from landform.core.db import Database
    from landform.core.db_failures import DatabaseUnavailable
    from landform.core.migrate import current_revision

    settings = load_settings()
    db = Database(settings)
    try:
        check(await current_revision(db.primary))
        before = await migrate(db.primary, revision)
        return before, await current_revision(db.primary)
    except (CommandError, AssertionError, KeyError) as exc:
        typer.echo(f"error: {revision!r} is no revision to migrate to here ({exc})", err=True)
        raise typer.Exit(1) from exc
    except (DBAPIError, DatabaseUnavailable, OSError) as exc:
        typer.echo(f"error: cannot use the database: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        await db.dispose()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (Alembic) to LANDFORM_DATABASE_URL."""
    from landform.core.migrate import upgrade

    before, after = asyncio.run(_migrate(upgrade, "head", _newer_left_as_it_is))
    if before == after:
        typer.echo(f"database is up to date (at {after})")
    else:
        typer.echo(f"database migrated from {before or 'empty'} to {after}")


@db_app.command("downgrade", context_settings={"ignore_unknown_options": True})
def db_downgrade(
    revision: str = typer.Argument(help="the revision to go back to, e.g. 0007 or -1"),
) -> None:
    """Undo migrations down to REVISION.

    Stop every Landform process using the database first, and take a backup:
    a downgrade may drop data."""
    from landform.core.migrate import downgrade
    from landform.core.serving_lock import DataDirBusy, alone

    settings = load_settings()
    try:
        # As a restore: a server on this data folder would go on using the
        # tables the downgrade drops (a server elsewhere, on PostgreSQL,
        # only its operator can stop).
        with alone(settings.data_dir):
            before, after = asyncio.run(
                _migrate(downgrade, revision, lambda at: _downgrade_target_checked(at, revision))
            )
    except DataDirBusy as exc:
        typer.echo(f"error: {exc}; nothing was changed", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"database downgraded from {before} to {after or 'empty'}")


def _newer_left_as_it_is(current: str | None) -> None:
    """A database a newer version of Landform migrated (this one rolled
    back, or not deployed yet in a rolling deploy): nothing for this
    version to do, and its servers may start on it."""
    from landform.core.migrate import head_revision, known_revision

    if current is not None and not known_revision(current):
        typer.echo(
            f"the database is at {current}, newer than this version of Landform knows "
            f"(its newest is {head_revision()}): left as it is"
        )
        raise typer.Exit(0)


def _downgrade_target_checked(current: str | None, target: str) -> None:
    """Said plainly, before Alembic says it its way: a target the database
    is at already (nothing to undo), or one it has not reached (an upgrade,
    not a downgrade)."""
    from alembic.script import ScriptDirectory

    from landform.core.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if current is None:
        typer.echo("error: the database is not set up: there is nothing to downgrade", err=True)
        raise typer.Exit(1)
    if current not in known:
        typer.echo(
            f"error: the database is at {current}, which this version of Landform does not "
            "know (a newer one migrated it): downgrade with that version; nothing was changed",
            err=True,
        )
        raise typer.Exit(1)
    if target == current or (target == "head" and current == script.get_current_head()):
        typer.echo(f"the database is at {current} already: nothing to undo")
        raise typer.Exit(0)
    reached = {rev.revision for rev in script.iterate_revisions(current, "base")}
    if (target in known and target not in reached) or target == "head":
        typer.echo(
            f"error: {target} is newer than the database's revision ({current}): "
            "`landform db upgrade` goes forward; nothing was changed",
            err=True,
        )
        raise typer.Exit(1)


async def _migrated_database() -> tuple[Settings, Database]:
    """The settings and the database, if Landform's schema is in it;
    otherwise the command ends with what to do, having created nothing (no
    data folder, secret key or empty database file)."""
    from landform.core.db import Database
    from landform.core.migrate import current_revision

    found = Settings()
    if found.is_sqlite and not (found.data_dir / "landform.db").exists():
        typer.echo(
            f"error: no Landform database in {found.data_dir}: set LANDFORM_DATA_DIR, "
            "or run `landform db upgrade` (or `landform serve`) first",
            err=True,
        )
        raise typer.Exit(1)
    settings = load_settings()
    db = Database(settings)
    try:
        revision = await current_revision(db.primary)
    except Exception as exc:
        await db.dispose()
        typer.echo(f"error: cannot use the database: {exc}", err=True)
        raise typer.Exit(1) from exc
    if revision is None:
        await db.dispose()
        typer.echo("error: the database is not set up: run `landform db upgrade`", err=True)
        raise typer.Exit(1)
    return settings, db


@mail_app.command("outbox")
def mail_outbox(
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="How many messages, newest first.")
    ] = 10,
    to: Annotated[str | None, typer.Option(help="Only messages to this address.")] = None,
) -> None:
    """Print the mail kept in the outbox, newest first, whole messages."""

    async def _list() -> None:
        from landform.core.clock import Clock
        from landform.core.mail import OutboxMailer

        settings, db = await _migrated_database()
        try:
            messages = await OutboxMailer(db, Clock()).list(limit=limit, recipient=to)
        finally:
            await db.dispose()
        if settings.smtp_url:
            # As GET /ops/outbox says it (outbox_disabled); what is listed
            # below is from before, when there was no SMTP server.
            typer.echo("note: mail goes out over SMTP (LANDFORM_SMTP_URL), not to the outbox")
        if not messages:
            typer.echo(f"(no mail to {to} in the outbox)" if to else "(the outbox is empty)")
        for message in messages:
            typer.echo(f"=== {message.created_at.isoformat()} to {message.recipient}")
            typer.echo(message.message.rstrip("\n"))
            typer.echo("")

    asyncio.run(_list())


class Role(StrEnum):
    admin = "admin"
    member = "member"


@users_app.command("set-role")
def users_set_role(
    email: Annotated[str, typer.Argument(help="The account's email address.")],
    # A choice: a mistyped role is a usage error (exit 2), said before any
    # database is opened.
    role: Annotated[Role, typer.Argument(help="admin (may see /ops/…) or member.")],
) -> None:
    """Grant or take back the admin role."""

    async def _set() -> None:
        from landform.auth.service import AuthService
        from landform.core.clock import Clock
        from landform.core.errors import DomainError
        from landform.core.mail import OutboxMailer

        settings, db = await _migrated_database()
        try:
            clock = Clock()
            service = AuthService(db, settings, OutboxMailer(db, clock), clock)
            user = await service.set_role(email, role.value)
        except DomainError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(1) from exc
        finally:
            await db.dispose()
        typer.echo(f"{user.email} is now {user.role}")

    asyncio.run(_set())


analytics_app = typer.Typer(
    help="Analytics data: synthetic traffic, rollups.", no_args_is_help=True
)
app.add_typer(analytics_app, name="analytics")


def _demo_address(value: str) -> str:
    """An address's shape only: registration's own check (email-validator)
    refuses reserved names such as the default's ``.local``, which suits an
    account for trying things out."""
    local, _, domain = value.strip().rpartition("@")
    if not local or not domain or any(ch.isspace() for ch in value.strip()):
        raise typer.BadParameter(f"{value!r} is not an email address")
    return value.strip()


# generate's own account, reused run after run without --existing.
DEMO_EMAIL = "demo@landform.local"


@analytics_app.command("generate")
def analytics_generate(
    pages: Annotated[int, typer.Option(min=1, help="Published pages to spread traffic on.")] = 10,
    events: Annotated[int, typer.Option(min=0, help="Events to generate.")] = 100_000,
    days: Annotated[int, typer.Option(min=1, help="Over the last this many days.")] = 30,
    email: Annotated[
        str, typer.Option(help="The demo owner.", callback=_demo_address)
    ] = DEMO_EMAIL,
    password: Annotated[
        str | None, typer.Option(help="Their password if the account is new (default: random).")
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            help="Random seed: the same seed and options, the same visitors and mix "
            "(their times follow the clock)."
        ),
    ] = 0,
    existing: Annotated[
        bool,
        typer.Option(
            "--existing",
            help="Use an account that exists already (other than the default demo "
            "account): pages are published in it and it is marked verified.",
        ),
    ] = False,
) -> None:
    """Fill a demo account's pages with realistic synthetic traffic.

    It is counted into the rollups exactly as live ingestion would count it."""

    async def _run() -> None:
        from landform.analytics.generate import ensure_demo, generate_traffic
        from landform.core.clock import Clock
        from landform.core.errors import DomainError

        retention = Settings().analytics_retention_days
        if days > retention:
            typer.echo(
                f"error: --days {days} is longer than the retention period "
                f"({retention} days, LANDFORM_ANALYTICS_RETENTION_DAYS): "
                "older raw events would be deleted by the next sweep",
                err=True,
            )
            raise typer.Exit(2)
        clock = Clock()
        settings, db = await _migrated_database()
        try:
            try:
                demo = await ensure_demo(
                    db, settings, clock, email, password, pages,
                    existing=existing or email == DEMO_EMAIL,
                )  # fmt: skip
            except DomainError as exc:  # e.g. a weak --password, an account not to touch
                typer.echo(f"error: {exc.message}", err=True)
                raise typer.Exit(2) from exc
            if demo.password is not None:
                typer.echo(f"created {demo.email}, verified, password: {demo.password}")
            else:
                typer.echo(f"using the existing account {demo.email}")
            typer.echo(f"{len(demo.pages)} published pages: " + ", ".join(s for _, s in demo.pages))
            result = await generate_traffic(
                db, clock, demo.owner_id, demo.pages, events, days, seed, progress=typer.echo
            )
        finally:
            await db.dispose()
        typer.echo(
            f"{result.events:,} events ({result.views:,} views, {result.conversions:,} "
            f"conversions, {result.bot_views:,} bot views), {result.rollup_rows:,} rollup rows, "
            f"{result.visitor_rows:,} visitor-days kept, in {result.seconds:.1f} s: "
            f"{result.rate:,.0f} events/s"
        )

    asyncio.run(_run())


@analytics_app.command("rebuild")
def analytics_rebuild(
    from_: Annotated[
        str | None, typer.Option("--from", help="First UTC day, YYYY-MM-DD (default: oldest).")
    ] = None,
    to: Annotated[
        str | None, typer.Option(help="Last UTC day, inclusive (default: today).")
    ] = None,
) -> None:
    """Recount the rollups of whole days from the raw events."""
    from datetime import date

    def _day(value: str | None, name: str) -> date | None:
        try:
            return date.fromisoformat(value) if value else None
        except ValueError as exc:
            raise typer.BadParameter(f"not a date (YYYY-MM-DD): {value}", param_hint=name) from exc

    first, last = _day(from_, "--from"), _day(to, "--to")

    async def _run() -> None:
        from landform.analytics.rebuild import rebuild
        from landform.core.clock import Clock
        from landform.core.errors import DomainError

        settings, db = await _migrated_database()
        try:
            result = await rebuild(
                db, Clock(), settings.analytics_retention_days, first, last, progress=typer.echo
            )
        except DomainError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(2) from exc
        finally:
            await db.dispose()
        typer.echo(
            f"rebuilt {len(result.days)} days: {result.events:,} events, "
            f"{result.rollup_rows:,} rollup rows in {result.seconds:.1f} s"
        )

    asyncio.run(_run())


graphql_app = typer.Typer(help="The GraphQL schema.", no_args_is_help=True)
app.add_typer(graphql_app, name="graphql")


@graphql_app.command("schema")
def graphql_schema(
    output: Annotated[
        Path | None, typer.Option(help="Write to this file (e.g. schema.graphql), not stdout.")
    ] = None,
) -> None:
    """Print the schema in SDL (the committed schema.graphql is this)."""
    from landform.graphql.schema import schema_sdl

    write_output(schema_sdl(), output)


ops_app = typer.Typer(help="Monitoring set-up generated from the SLA.", no_args_is_help=True)
app.add_typer(ops_app, name="ops")


@ops_app.command("alert-rules")
def ops_alert_rules(sla_file: SlaFile = None, output: Output = None) -> None:
    """Prometheus alert rules mirroring the SLA (deploy/prometheus/ holds these)."""
    from landform.ops.rules import alert_rules, unmirrored

    sla = load_sla(sla_file)
    write_output(alert_rules(sla), output)
    for gap in unmirrored(sla):  # /ops/sla judges these; Prometheus cannot
        typer.echo(f"warning: no alert rule for {gap}", err=True)


@ops_app.command("grafana-dashboard")
def ops_grafana_dashboard(sla_file: SlaFile = None, output: Output = None) -> None:
    """A Grafana dashboard (JSON) over /metrics (deploy/grafana/ holds it)."""
    from landform.ops.grafana import dashboard

    write_output(dashboard(load_sla(sla_file)), output)


app.add_typer(loadtest_app, name="loadtest")


if __name__ == "__main__":
    app()
