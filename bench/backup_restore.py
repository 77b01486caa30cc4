"""How long ``landform backup`` and ``landform restore`` take on PostgreSQL
for ``--size`` of data (database plus stored files).

On a throwaway PostgreSQL cluster of its own (tests/pg_cluster.py, with the
PITR drill's server settings, without archiving): migrate, fill a demo
account with synthetic analytics traffic (``landform analytics generate``,
in rounds until the database is ~85 % of ``--size``) and files (the rest, at
least 15 %, 2 MB each), then time ``landform backup`` and ``landform
restore`` into a second, empty database — the commands an operator runs, as
processes. Prints the numbers (``--json`` for JSON).

    python bench/backup_restore.py --size 1GB
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pitr_drill import SERVER_SETTINGS, parse_size  # noqa: E402
from tests.pg_cluster import Clusters  # noqa: E402

FILE_BYTES = 2 * 1024 * 1024
EVENTS_PER_ROUND = 250_000
DATABASE_SHARE = 0.85


@dataclass
class Result:
    database_bytes: int
    files_bytes: int
    rows: int
    files: int
    backup_bytes: int
    backup_seconds: float
    restore_seconds: float
    restore_jobs: int


def landform(*args: str, env: dict[str, str]) -> str:
    answer = subprocess.run(
        [sys.executable, "-m", "landform.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"landform {' '.join(args)} failed:\n{answer.stdout}{answer.stderr}")
    return answer.stdout


async def add_files(env: dict[str, str], total: int) -> int:
    """PDF-looking files of random bytes for the demo owner, straight into
    storage and the files table (the upload path is not what is measured)."""
    from sqlalchemy import select

    from landform.auth.models import User
    from landform.core.db import Database
    from landform.files.models import StoredFile
    from landform.files.storage import LocalStorage
    from landform.settings import Settings

    settings = Settings(
        database_url=env["LANDFORM_DATABASE_URL"], data_dir=env["LANDFORM_DATA_DIR"]
    )
    storage = LocalStorage(settings.files_dir)
    db = Database(settings)
    count = 0
    try:
        async with db.read() as session:
            owner = (await session.scalars(select(User.id))).first()
        for _ in range(max(0, total // FILE_BYTES)):
            data = b"%PDF-1.7\n" + os.urandom(FILE_BYTES - 9)
            digest = hashlib.sha256(data).hexdigest()
            staged = settings.data_dir / "staged.pdf"
            staged.write_bytes(data)
            await storage.put(f"{digest}.pdf", staged, "application/pdf")
            async with db.write() as session:
                session.add(
                    StoredFile(
                        id=uuid.uuid4(), owner_id=owner, sha256=digest, size=len(data),
                        storage_key=f"{digest}.pdf", content_type="application/pdf",
                        category="document", label=f"bench-{count}.pdf",
                        created_at=datetime.now(UTC),
                    )
                )  # fmt: skip
            count += 1
    finally:
        await db.dispose()
    return count


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def run(size: int, pg_bin: Path, port: int, jobs: int, keep: bool) -> Result:
    def note(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    clusters = Clusters([port], bin_dir=pg_bin)
    work = Path(tempfile.mkdtemp(prefix="landform-restore-bench-"))
    try:
        cluster = clusters.primary(**SERVER_SETTINGS)
        cluster.sql("CREATE DATABASE landform")
        cluster.sql("CREATE DATABASE landform_restored")
        source = {
            "LANDFORM_DATABASE_URL": cluster.url("landform"),
            "LANDFORM_DATA_DIR": str(work / "a"),
        }
        target = {
            "LANDFORM_DATABASE_URL": cluster.url("landform_restored"),
            "LANDFORM_DATA_DIR": str(work / "b"),
        }
        landform("db", "upgrade", env=source)
        size_sql = "SELECT pg_database_size('landform')"
        seed = 0
        while int(cluster.sql(size_sql)) < size * DATABASE_SHARE:
            note(f"database at {int(cluster.sql(size_sql)) / 1024**2:,.0f} MB: generating")
            landform(
                "analytics", "generate", "--pages", "100", "--events", str(EVENTS_PER_ROUND),
                "--days", "90", "--seed", str(seed),
                env=source,
            )  # fmt: skip
            seed += 1
        cluster.sql("VACUUM ANALYZE")
        database_bytes = int(cluster.sql(size_sql))
        files_target = max(int(size * (1 - DATABASE_SHARE)), size - database_bytes)
        files = asyncio.run(add_files(source, files_target))
        files_bytes = folder_bytes(work / "a" / "files")
        note(f"{database_bytes / 1024**2:,.0f} MB database, {files_bytes / 1024**2:,.0f} MB files")

        started = time.monotonic()
        output = landform("backup", "--output", str(work / "backup"), env=source)
        backup_seconds = time.monotonic() - started
        note(output.strip())
        manifest = json.loads((work / "backup" / "manifest.json").read_text())

        started = time.monotonic()
        output = landform("restore", str(work / "backup"), "--jobs", str(jobs), env=target)
        restore_seconds = time.monotonic() - started
        note(output.strip())
        return Result(
            database_bytes=database_bytes,
            files_bytes=files_bytes,
            rows=sum(manifest["counts"].values()),
            files=files,
            backup_bytes=folder_bytes(work / "backup"),
            backup_seconds=round(backup_seconds, 1),
            restore_seconds=round(restore_seconds, 1),
            restore_jobs=jobs,
        )
    finally:
        clusters.close(keep_folder=keep)
        if keep:
            note(f"kept {work} and the cluster in {clusters.folder}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1GB"))
    parser.add_argument("--pg-bin", type=Path, default=Path("/usr/lib/postgresql/15/bin"))
    parser.add_argument("--port", type=int, default=55442)
    parser.add_argument("--jobs", type=int, default=2, help="landform restore --jobs")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.size, args.pg_bin, args.port, args.jobs, args.keep)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        for name, value in asdict(result).items():
            print(f"{name:>16}: {value}")


if __name__ == "__main__":
    main()
