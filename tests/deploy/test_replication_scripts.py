"""The compose stack's database tier, without Docker: the shipped scripts
and PgBouncer configuration run against real PostgreSQL 15 and PgBouncer on
this machine (throwaway clusters on free ports, removed afterwards).

primary-init.sh makes the roles, the slot and the settings;
replica-entrypoint.sh clones the primary into a streaming hot standby;
PgBouncer, with pgbouncer.ini as shipped (hosts and ports moved to the
throwaway clusters) and started by the shipped entrypoint, admits Landform's
own engines: writes reach the primary, reads the replica, with the
statement timeout the role carries."""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text

from landform.core.db import make_engine
from landform.settings import Settings
from tests.conftest import ON_POSTGRES
from tests.deploy.manifests import COMPOSE_DIR, REQUIRE_TOOLS
from tests.live_server import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
APP_PASSWORD = "app-secret-for-this-test"
REPLICATION_PASSWORD = "replication-secret-for-this-test"

pytestmark = [
    pytest.mark.server,
    # It makes its own clusters: once per suite run is enough (CI runs the
    # suite on SQLite and again on PostgreSQL).
    pytest.mark.skipif(ON_POSTGRES, reason="runs in the SQLite pass; it brings its own PostgreSQL"),
]


def missing(what: str) -> None:
    if REQUIRE_TOOLS:
        pytest.fail(what)
    pytest.skip(what)


@dataclass
class Cluster:
    folder: Path
    primary_port: int
    replica_port: int
    bouncer_port: int
    as_postgres: list[str]
    environment: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run(self, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.as_postgres, *command],
            env={**self.environment, **env},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )

    def sql(self, port: int, query: str, database: str = "landform") -> str:
        return self.run(
            "psql", "-h", str(self.folder), "-p", str(port), "-U", "postgres", "-d", database,
            "-tA", "-v", "ON_ERROR_STOP=1", "-c", query,
        ).stdout.strip()  # fmt: skip


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if not (PG_BIN / "initdb").exists():
        missing(
            f"PostgreSQL 15 server binaries are not in {PG_BIN} (apt-get install postgresql-15)"
        )
    if shutil.which("pgbouncer", path=f"/usr/sbin:{os.environ['PATH']}") is None:
        missing("pgbouncer is not installed (apt-get install pgbouncer)")
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb, postgres and pgbouncer refuse to run as root
        as_postgres = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="landform-replication-"))
    if as_postgres:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    environment = {
        "PATH": f"{PG_BIN}:/usr/sbin:{os.environ['PATH']}",
        "HOME": str(folder),
        "LANG": "C.UTF-8",
    }
    made = Cluster(folder, free_port(), free_port(), free_port(), as_postgres, environment)
    try:
        yield made
    finally:
        # The replica runs under the entrypoint's process: stop it cleanly
        # first (pg_ctl waits for it), then whatever is left.
        stop_server(folder / "replica", as_postgres)
        for process in made.processes:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stop_server(folder / "primary", as_postgres)
        shutil.rmtree(folder, ignore_errors=True)


def stop_server(data: Path, as_postgres: list[str]) -> None:
    """``pg_ctl stop -m fast`` on the server of ``data``, if it runs."""
    if (data / "postmaster.pid").exists():
        subprocess.run(
            [*as_postgres, f"{PG_BIN}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )


def start_in_background(cluster: Cluster, log: str, *command: str, **env: str) -> None:
    with (cluster.folder / log).open("wb") as output:
        process = subprocess.Popen(
            [*cluster.as_postgres, *command],
            env={**cluster.environment, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    cluster.processes.append(process)


def wait_for(
    check: str, condition: Callable[[], bool], cluster: Cluster, seconds: float = 60
) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return
        except subprocess.CalledProcessError:
            pass
        if time.monotonic() > deadline:
            logs = "\n".join(
                f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                for p in cluster.folder.glob("*.log")
            )
            raise AssertionError(f"timed out waiting for {check}\n{logs}")
        time.sleep(0.2)


def test_the_compose_database_tier_replicates_and_pgbouncer_routes_landform(
    cluster: Cluster,
) -> None:
    primary = cluster.folder / "primary"
    # As the official image does: initdb (local trust, passwords over TCP),
    # the database, then every /docker-entrypoint-initdb.d script, then a
    # restart into the real server.
    cluster.run(
        "initdb", "-D", str(primary), "-U", "postgres", "--auth-local=trust",
        "--auth-host=scram-sha-256",
    )  # fmt: skip
    server_options = f"-p {cluster.primary_port} -k {cluster.folder} -c listen_addresses=127.0.0.1"
    # A log file, not our pipes: the server outlives pg_ctl.
    log = str(cluster.folder / "primary.log")
    cluster.run("pg_ctl", "-D", str(primary), "-o", server_options, "-l", log, "-w", "start")
    cluster.sql(cluster.primary_port, "CREATE DATABASE landform", database="postgres")
    cluster.run(
        "bash",
        str(COMPOSE_DIR / "postgres" / "primary-init.sh"),
        POSTGRES_USER="postgres",
        POSTGRES_DB="landform",
        PGDATA=str(primary),
        PGHOST=str(cluster.folder),
        PGPORT=str(cluster.primary_port),
        APP_DB_PASSWORD=APP_PASSWORD,
        REPLICATION_PASSWORD=REPLICATION_PASSWORD,
    )
    cluster.run(
        "pg_ctl", "-D", str(primary), "-o", server_options, "-l", log, "-m", "fast", "-w", "restart"
    )  # fmt: skip
    assert cluster.sql(cluster.primary_port, "SHOW max_connections") == "250"

    # The replica: the shipped entrypoint clones the primary and runs a hot standby.
    start_in_background(
        cluster,
        "replica.log",
        "bash",
        str(COMPOSE_DIR / "postgres" / "replica-entrypoint.sh"),
        "-p", str(cluster.replica_port), "-k", str(cluster.folder),
        "-c", "listen_addresses=127.0.0.1",
        PGDATA=str(cluster.folder / "replica"),
        PRIMARY_HOST="127.0.0.1",
        PRIMARY_PORT=str(cluster.primary_port),
        REPLICATION_PASSWORD=REPLICATION_PASSWORD,
    )  # fmt: skip
    wait_for(
        "the replica to stream from the slot",
        lambda: (
            cluster.sql(
                cluster.primary_port,
                "SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s "
                "ON s.active_pid = r.pid WHERE s.slot_name = 'replica1' AND r.state = 'streaming'",
            )
            == "1"
        ),
        cluster,
    )
    wait_for(
        "the replica to accept connections as a hot standby",
        lambda: cluster.sql(cluster.replica_port, "SELECT pg_is_in_recovery()") == "t",
        cluster,
    )
    # The standby inherited the primary's settings (ALTER SYSTEM travels in
    # the base backup), which a hot standby needs to start at all.
    assert cluster.sql(cluster.replica_port, "SHOW max_connections") == "250"

    # PgBouncer as shipped, pointed at these clusters, started by the shipped entrypoint.
    ini = (COMPOSE_DIR / "pgbouncer" / "pgbouncer.ini").read_text()
    ini = ini.replace(
        "host=postgres-primary port=5432", f"host=127.0.0.1 port={cluster.primary_port}"
    )
    ini = ini.replace(
        "host=postgres-replica port=5432", f"host=127.0.0.1 port={cluster.replica_port}"
    )
    ini = re.sub(r"^listen_port = 6432$", f"listen_port = {cluster.bouncer_port}", ini, flags=re.M)
    ini = re.sub(r"^listen_addr = \*$", "listen_addr = 127.0.0.1", ini, flags=re.M)
    auth_file = cluster.folder / "userlist.txt"
    ini = ini.replace("/var/run/pgbouncer/userlist.txt", str(auth_file))
    assert str(auth_file) in ini and str(cluster.bouncer_port) in ini
    (cluster.folder / "pgbouncer.ini").write_text(ini)
    os.chmod(cluster.folder / "pgbouncer.ini", 0o644)
    start_in_background(
        cluster,
        "pgbouncer.log",
        "sh",
        str(COMPOSE_DIR / "pgbouncer" / "entrypoint.sh"),
        str(cluster.folder / "pgbouncer.ini"),
        PGBOUNCER_AUTH_USER="landform",
        PGBOUNCER_AUTH_PASSWORD=APP_PASSWORD,
        PGBOUNCER_AUTH_FILE=str(auth_file),
    )

    # The migration one-shot, as compose runs it: straight to the primary.
    direct = (
        f"postgresql+asyncpg://landform:{APP_PASSWORD}@127.0.0.1:{cluster.primary_port}/landform"
    )
    migrated = subprocess.run(
        [sys.executable, "-m", "landform.cli.main", "db", "upgrade"],
        env={
            **os.environ,
            "LANDFORM_DATABASE_URL": direct,
            "LANDFORM_DATA_DIR": str(cluster.folder / "migrate"),
            "LANDFORM_DATABASE_STATEMENT_TIMEOUT": "600",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]

    bouncer = f"postgresql+asyncpg://landform:{APP_PASSWORD}@127.0.0.1:{cluster.bouncer_port}"
    asyncio.run(write_through_the_primary_read_from_the_replica(bouncer, cluster.folder))


async def write_through_the_primary_read_from_the_replica(bouncer: str, folder: Path) -> None:
    settings = Settings(data_dir=folder / "app")
    writes = make_engine(f"{bouncer}/landform", settings)
    reads = make_engine(f"{bouncer}/landform_read", settings)
    try:
        deadline = time.monotonic() + 30
        while True:  # PgBouncer has just been started
            try:
                async with writes.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        async with writes.begin() as connection:
            assert (await connection.execute(text("SELECT pg_is_in_recovery()"))).scalar() is False
            # asyncpg's statement_timeout startup parameter is dropped by
            # PgBouncer; the role's own setting applies instead.
            assert (await connection.execute(text("SHOW statement_timeout"))).scalar() == "5s"
            await connection.execute(text("CREATE TABLE deploy_probe (note text)"))
            await connection.execute(
                text("INSERT INTO deploy_probe VALUES ('written on the primary')")
            )
        async with reads.connect() as connection:
            assert (await connection.execute(text("SELECT pg_is_in_recovery()"))).scalar() is True
            deadline = time.monotonic() + 30
            while True:
                exists = await connection.execute(
                    text("SELECT to_regclass('deploy_probe') IS NOT NULL")
                )
                if exists.scalar():
                    break
                assert time.monotonic() < deadline, "the replica never replayed the write"
                await asyncio.sleep(0.1)
            note = await connection.execute(text("SELECT note FROM deploy_probe"))
            assert note.scalar() == "written on the primary"
            # Landform's migrated schema is on the replica too.
            version = await connection.execute(text("SELECT count(*) FROM alembic_version"))
            assert version.scalar() == 1
    finally:
        await writes.dispose()
        await reads.dispose()
