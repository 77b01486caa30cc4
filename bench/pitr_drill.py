"""Point-in-time recovery drill with pgBackRest and WAL archiving.

Against a throwaway PostgreSQL cluster of its own (tests/pg_cluster.py;
archive_mode=on, every WAL segment pushed to a pgBackRest repository): load ``--size`` of data,
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
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.pg_cluster import Cluster, Clusters, postgres_binaries  # noqa: E402

STANZA = "drill"
# postgresql.conf of the benches' clusters (bench/backup_restore.py's too).
SERVER_SETTINGS = {"max_wal_size": "4GB", "shared_buffers": "256MB", "timezone": "UTC"}
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


class Stanza:
    """The drill's pgBackRest stanza: a repository (and log, lock and spool
    folders) under ``folder`` and the config that names them and the cluster.
    Its commands run as the cluster's user, through ``clusters``."""

    def __init__(self, clusters: Clusters, folder: Path) -> None:
        self.clusters = clusters
        self.folder = folder
        self.config = folder / "pgbackrest.conf"
        self.archive_command = (
            f"pgbackrest --config={self.config} --stanza={STANZA} archive-push %p"
        )

    def create(self, cluster: Cluster) -> None:
        """The folders and the config for ``cluster``, then the stanza. The
        cluster already runs (its port is known only then); nothing is
        archived before: no WAL segment is complete yet."""
        folders = [str(self.folder / name) for name in ("repo", "log", "lock", "spool")]
        self.clusters.run(["mkdir", "-p", *folders])  # as the user pgBackRest runs as
        self.config.write_text(
            "[global]\n"
            f"repo1-path={self.folder / 'repo'}\n"
            "repo1-retention-full=1\n"
            f"log-path={self.folder / 'log'}\n"
            f"lock-path={self.folder / 'lock'}\n"
            f"spool-path={self.folder / 'spool'}\n"
            "process-max=2\n"
            "compress-type=lz4\n"
            "start-fast=y\n"
            "log-level-console=warn\n"
            "log-level-file=info\n"
            f"\n[{STANZA}]\n"
            f"pg1-path={cluster.data_dir}\n"
            f"pg1-port={cluster.port}\n"
            f"pg1-socket-path={cluster.socket_dir}\n"
            "pg1-user=postgres\n"
        )
        self.run("stanza-create")

    def run(self, *args: str) -> None:
        command = ["pgbackrest", f"--config={self.config}", f"--stanza={STANZA}", *args]
        # No time limit: a backup or restore takes as long as its data.
        done = self.clusters.run(command, check=False, timeout=None)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


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

    clusters = Clusters([port], bin_dir=pg_bin)
    stanza = Stanza(clusters, clusters.folder / "pgbackrest")
    try:
        cluster = clusters.primary(
            **SERVER_SETTINGS,
            wal_level="replica",
            archive_mode="on",
            archive_command=stanza.archive_command,
        )
        note(f"cluster in {clusters.folder} on port {cluster.port}")
        stanza.create(cluster)
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
        stanza.run("--type=full", "backup")
        backup_seconds = time.monotonic() - started
        # pgBackRest restores to T from the last backup that stopped before
        # T, comparing whole seconds: T must not fall in the backup's last
        # second (on a small dataset it did, now and then).
        time.sleep(1.0)

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
        stanza.run("check")  # switches WAL and waits for it to be archived
        note(f"T = {target}; stopping the cluster (the disaster)")
        cluster.stop("immediate")

        started = time.monotonic()
        stanza.run(
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
        clusters.close(keep_folder=keep)
        if keep:
            note(f"kept {clusters.folder}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("100MB"),
                        help="data loaded before the full backup (default 100MB)")  # fmt: skip
    parser.add_argument("--pg-bin", type=Path, default=Path("/usr/lib/postgresql/15/bin"))
    parser.add_argument("--port", type=int, default=55440)
    parser.add_argument("--keep", action="store_true", help="keep the cluster's folder")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    _bin, why = postgres_binaries(args.pg_bin)
    if why:
        sys.exit(f"{why} (apt-get install postgresql-15, or give --pg-bin)")
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
