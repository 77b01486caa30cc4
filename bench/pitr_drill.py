"""Point-in-time recovery drill with pgBackRest and WAL archiving.

Against a throwaway PostgreSQL cluster of its own (archive_mode=on, every
WAL segment pushed to a pgBackRest repository): load ``--size`` of data,
take a full backup, write timestamped rows, note the time T, write more,
then — as after a disaster — stop the cluster, restore it to T
(``pgbackrest restore --type=time``), start it, and check that exactly the
rows written at or before T are back. Prints the timings (and ``--json``
them); the cluster and its folders are removed at the end unless ``--keep``.

    python bench/pitr_drill.py --size 1GB        # the drill in docs/operations.md
    python bench/pitr_drill.py --size 20MB --json

Needs PostgreSQL's server binaries (``--pg-bin``, default Debian's
/usr/lib/postgresql/15/bin) and pgBackRest (``apt-get install pgbackrest``).
Run as root it runs the cluster as the ``postgres`` user (initdb refuses
root); otherwise as the current user."""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

STANZA = "drill"
ROW_BYTES = 1024  # each bulk row: 32 random md5 digests
ROWS_PER_TRANSACTION = 20
TRANSACTIONS_PER_PHASE = 25


@dataclass
class Result:
    size_bytes: int  # the database's size after loading
    load_seconds: float
    backup_seconds: float  # pgbackrest full backup
    restore_seconds: float  # pgbackrest restore --type=time
    recovery_seconds: float  # start to promoted (WAL replayed up to T)
    pitr_seconds: float  # restore + recovery: the outage an operator sees
    target_time: str
    rows_before_target: int
    rows_after_target: int
    rows_restored: int
    verified: bool


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)B?\s*", text.upper())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 20MB, 1GB)")
    unit = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[match.group(2)]
    return int(float(match.group(1)) * unit)


class Cluster:
    """A PostgreSQL cluster and its pgBackRest stanza under one folder."""

    def __init__(self, pg_bin: Path, port: int, work: Path) -> None:
        self.pg_bin = pg_bin
        self.port = port
        self.work = work
        self.data = work / "data"
        self.socket = work / "socket"
        self.config = work / "pgbackrest.conf"
        self.as_postgres = os.geteuid() == 0
        self.owner = "postgres" if self.as_postgres else pwd.getpwuid(os.geteuid()).pw_name

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, check=False, cwd=self.work
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
        return result

    def pgbackrest(self, *args: str) -> None:
        self.run("pgbackrest", f"--config={self.config}", f"--stanza={STANZA}", *args)

    def sql(self, statement: str) -> str:
        return self.run(
            str(self.pg_bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", str(self.socket), "-p", str(self.port), "-U", "postgres", "-d", "postgres",
            "-c", statement,
        ).stdout.strip()  # fmt: skip

    def create(self, *, archive: bool = True, tcp: bool = False) -> None:
        """``archive``: WAL to the pgBackRest stanza; ``tcp``: also listen on
        127.0.0.1 (clients that take only host:port URLs)."""
        for name in ("socket", "repo", "log", "lock", "spool"):
            (self.work / name).mkdir(parents=True)
        self.config.write_text(
            "[global]\n"
            f"repo1-path={self.work / 'repo'}\n"
            "repo1-retention-full=1\n"
            f"log-path={self.work / 'log'}\n"
            f"lock-path={self.work / 'lock'}\n"
            f"spool-path={self.work / 'spool'}\n"
            "process-max=2\n"
            "compress-type=lz4\n"
            "start-fast=y\n"
            "log-level-console=warn\n"
            "log-level-file=info\n"
            f"\n[{STANZA}]\n"
            f"pg1-path={self.data}\n"
            f"pg1-port={self.port}\n"
            f"pg1-socket-path={self.socket}\n"
            "pg1-user=postgres\n"
        )
        if self.as_postgres:
            shutil.chown(self.work, "postgres", "postgres")
            for path in self.work.rglob("*"):
                shutil.chown(path, "postgres", "postgres")
        self.run(
            str(self.pg_bin / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        push = f"pgbackrest --config={self.config} --stanza={STANZA} archive-push %p"
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# pitr_drill.py\n"
                f"port = {self.port}\n"
                f"listen_addresses = '{'127.0.0.1' if tcp else ''}'\n"
                f"unix_socket_directories = '{self.socket}'\n"
                "wal_level = replica\n"
                f"archive_mode = {'on' if archive else 'off'}\n"
                f"archive_command = '{push}'\n"
                "max_wal_size = 4GB\n"
                "shared_buffers = 256MB\n"
                "timezone = 'UTC'\n"
            )

    def start(self) -> None:
        self.run(
            str(self.pg_bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.work / "server.log"),
            "-w", "-t", "600", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self.run(str(self.pg_bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        status = self.run(str(self.pg_bin / "pg_ctl"), "-D", str(self.data), "status", check=False)
        return status.returncode == 0


def timestamped_rows(cluster: Cluster, phase: str) -> None:
    """Rows in many small transactions, each row stamped when written."""
    for _ in range(TRANSACTIONS_PER_PHASE):
        cluster.sql(
            f"INSERT INTO drill_events (phase) SELECT '{phase}' "
            f"FROM generate_series(1, {ROWS_PER_TRANSACTION})"
        )


def bulk_rows(cluster: Cluster, size: int) -> None:
    """About ``size`` bytes of rows that do not compress to nothing, in
    transactions of at most ~64 MB."""
    rows = max(1, size // ROW_BYTES)
    per_statement = 64 * 1024 * 1024 // ROW_BYTES
    digests = " || ".join(["md5(random()::text)"] * (ROW_BYTES // 32))
    for start in range(0, rows, per_statement):
        count = min(per_statement, rows - start)
        cluster.sql(f"INSERT INTO bulk (payload) SELECT {digests} FROM generate_series(1, {count})")


def drill(size: int, pg_bin: Path, port: int, keep: bool, say: bool = True) -> Result:
    def note(message: str) -> None:
        if say:
            print(message, file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="landform-pitr-"))
    cluster = Cluster(pg_bin, port, work)
    try:
        note(f"cluster in {work} on port {port}")
        cluster.create()
        cluster.start()
        cluster.pgbackrest("stanza-create")
        cluster.sql(
            "CREATE TABLE bulk (id bigserial PRIMARY KEY, payload text NOT NULL);"
            "CREATE TABLE drill_events (id bigserial PRIMARY KEY, phase text NOT NULL,"
            " written_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        started = time.monotonic()
        note(f"loading {size / 1024**2:,.0f} MB")
        bulk_rows(cluster, size)
        cluster.sql("CHECKPOINT")
        load_seconds = time.monotonic() - started
        database_bytes = int(cluster.sql("SELECT sum(pg_database_size(oid)) FROM pg_database"))

        note("full backup")
        started = time.monotonic()
        cluster.pgbackrest("--type=full", "backup")
        backup_seconds = time.monotonic() - started

        # After the backup: rows (and some volume, for the WAL replay to do)
        # before T, then more after it.
        timestamped_rows(cluster, "before")
        bulk_rows(cluster, size // 20)
        target = cluster.sql("SELECT clock_timestamp()")
        time.sleep(1.0)  # nothing commits at T itself
        timestamped_rows(cluster, "after")
        bulk_rows(cluster, size // 20)
        expected = cluster.sql(
            f"SELECT string_agg(id::text, ',' ORDER BY id) FROM drill_events "
            f"WHERE written_at <= '{target}'"
        )
        after = int(cluster.sql(f"SELECT count(*) FROM drill_events WHERE written_at > '{target}'"))
        cluster.pgbackrest("check")  # switches WAL and waits for it to be archived
        note(f"T = {target}; stopping the cluster (the disaster)")
        cluster.stop("immediate")

        started = time.monotonic()
        cluster.pgbackrest(
            "--delta", "--type=time", f"--target={target}", "--target-action=promote", "restore"
        )
        restore_seconds = time.monotonic() - started
        started_recovery = time.monotonic()
        cluster.start()
        while cluster.sql("SELECT pg_is_in_recovery()") != "f":
            time.sleep(0.1)
        recovery_seconds = time.monotonic() - started_recovery
        pitr_seconds = time.monotonic() - started

        restored = cluster.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM drill_events")
        phases = cluster.sql("SELECT string_agg(DISTINCT phase, ',') FROM drill_events")
        before = expected.split(",") if expected else []
        verified = restored == expected and phases == "before" and len(before) > 0
        note("verified" if verified else f"MISMATCH: {restored!r} != {expected!r}")
        return Result(
            size_bytes=database_bytes,
            load_seconds=round(load_seconds, 2),
            backup_seconds=round(backup_seconds, 2),
            restore_seconds=round(restore_seconds, 2),
            recovery_seconds=round(recovery_seconds, 2),
            pitr_seconds=round(pitr_seconds, 2),
            target_time=target,
            rows_before_target=len(before),
            rows_after_target=after,
            rows_restored=len(restored.split(",")) if restored else 0,
            verified=verified,
        )
    finally:
        if cluster.data.exists() and cluster.running():
            cluster.stop("immediate")
        if keep:
            note(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("100MB"),
                        help="data loaded before the full backup (default 100MB)")  # fmt: skip
    parser.add_argument("--pg-bin", type=Path, default=Path("/usr/lib/postgresql/15/bin"))
    parser.add_argument("--port", type=int, default=55440)
    parser.add_argument("--keep", action="store_true", help="keep the cluster's folder")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    for needed in (args.pg_bin / "initdb", args.pg_bin / "pg_ctl"):
        if not needed.is_file():
            sys.exit(f"{needed} is missing (apt-get install postgresql-15, or give --pg-bin)")
    if shutil.which("pgbackrest") is None:
        sys.exit("pgbackrest is missing (apt-get install pgbackrest)")
    result = drill(args.size, args.pg_bin, args.port, args.keep)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        for name, value in asdict(result).items():
            print(f"{name:>20}: {value}")
    sys.exit(0 if result.verified else 1)


if __name__ == "__main__":
    main()
