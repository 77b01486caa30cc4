"""What an API transaction costs on the embedded default (SQLite): the same
transactions with their statements inline on the event loop's thread (what
``Database.read()`` and ``Database.write()`` do) and through the
connection's own thread (what ``read(scan=True)`` and ``write(bulk=True)``
do, and what every statement did before), in the same run, alternating.

    .venv/bin/python bench/sqlite_sessions.py [--transactions 2000] [--repeats 5]

Each transaction is one an API request makes: an account by id through the
ORM (``GET /auth/me``), a landing page by owner and id (every page route's
ownership check), and a page's title changed in a write transaction (``PUT
/landing-pages/{id}``). CPU time is the whole process's (the event loop's
and the connection threads'), one transaction after another. Writes its
section of docs/benchmarks.md (between the sqlite_sessions markers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from public_pages import LANDFORM, log, machine_info, write_doc  # noqa: E402

START = "<!-- sqlite_sessions:start -->"
END = "<!-- sqlite_sessions:end -->"
SCRIPT = "bench/sqlite_sessions.py"

Transaction = Callable[[], Awaitable[None]]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--transactions", type=int, default=2000, help="per kind and round (2000)")
    p.add_argument("--repeats", type=int, default=5, help="alternating rounds (5)")
    p.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    return p.parse_args()


async def measure(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    # Imported here: the settings are read from the environment set in main.
    from landform.auth.models import User
    from landform.auth.repository import user_by_id
    from landform.core.db import Database
    from landform.pages.models import LandingPage
    from landform.pages.repository import owned_page
    from landform.settings import load_settings

    db = Database(load_settings())
    now = datetime.now(UTC)
    async with db.write() as session:
        user = User(email="bench@example.com", password_hash="-", created_at=now)
        session.add(user)
        await session.flush()
        page = LandingPage(
            owner_id=user.id,
            title="Bench",
            slug="bench",
            content={},
            seo={},
            created_at=now,
            updated_at=now,
        )
        session.add(page)
    owner, page_id = user.id, page.id

    def kinds(inline: bool) -> dict[str, Transaction]:
        async def account() -> None:
            async with db.read(actor=owner, scan=not inline) as session:
                assert await user_by_id(session, owner) is not None

        async def ownership() -> None:
            async with db.read(actor=owner, scan=not inline) as session:
                assert await owned_page(session, owner, page_id) is not None

        async def rename() -> None:
            async with db.write(actor=owner, bulk=not inline) as session:
                found = await owned_page(session, owner, page_id)
                assert found is not None
                found.title = uuid.uuid4().hex

        return {
            "account by id (ORM get), read": account,
            "page by owner and id, read": ownership,
            "page renamed, write": rename,
        }

    found: dict[str, dict[str, list[float]]] = {}
    for round_ in range(args.repeats):
        modes = (True, False) if round_ % 2 == 0 else (False, True)
        for inline in modes:
            mode = "inline" if inline else "in the connection's thread"
            for kind, transaction in kinds(inline).items():
                for _ in range(100):
                    await transaction()
                cpu = time.process_time()
                for _ in range(args.transactions):
                    await transaction()
                spent = (time.process_time() - cpu) / args.transactions * 1e6
                found.setdefault(kind, {}).setdefault(mode, []).append(spent)
        log(f"round {round_ + 1}/{args.repeats} done")
    await db.dispose()
    return found


def section(found: dict[str, dict[str, list[float]]], args: argparse.Namespace, took: float) -> str:
    info = machine_info()
    lines = [
        START,
        f"## An API transaction on SQLite: inline or in the connection's thread (`{SCRIPT}`)",
        "",
        f"Written by `{SCRIPT}` ({info['date']}, {took:.0f} s). Machine: {info['nproc']} CPUs, "
        f"{info['cpu']}, Python {info['python']}, commit {info['commit']}. "
        f"{args.transactions:,} transactions of each kind after another, "
        f"{args.repeats} alternating rounds; CPU µs per transaction (the event loop's and the "
        "connection threads'), median of the rounds. Inline: the statements run on the event "
        "loop's thread (`Database.read()`, `Database.write()`: a write takes the write lock "
        "there when it is free, and commits in the thread); in the thread: every statement "
        "is a trip to the connection's thread (`read(scan=True)`, `write(bulk=True)`; every "
        "transaction before).",
        "",
        "| transaction | inline µs | in the thread µs | inline saves | rounds (inline / thread) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for kind, modes in found.items():
        inline = statistics.median(modes["inline"])
        thread = statistics.median(modes["in the connection's thread"])
        runs = " / ".join(
            ", ".join(f"{v:,.0f}" for v in modes[m])
            for m in ("inline", "in the connection's thread")
        )
        lines.append(
            f"| {kind} | {inline:,.0f} | {thread:,.0f} | {1 - inline / thread:.0%} | {runs} |"
        )
    lines += [
        "",
        f"Rerun: `.venv/bin/python {SCRIPT} --transactions {args.transactions} "
        f"--repeats {args.repeats}`",
        END,
    ]
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    data = tempfile.mkdtemp(prefix="landform-sqlite-sessions-")
    for key in [k for k in os.environ if k.startswith("LANDFORM_")]:
        del os.environ[key]
    os.environ.update(LANDFORM_DATA_DIR=data, LANDFORM_ENV="test")
    subprocess.run([LANDFORM, "db", "upgrade"], check=True, capture_output=True)
    import uvloop

    found = uvloop.run(measure(args))
    text = section(found, args, time.monotonic() - started)
    print(text)
    if not args.no_write:
        write_doc(text, START, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
