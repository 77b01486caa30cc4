"""Start a real ``landform serve`` process for tests that need one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from redis import Redis
from sqlalchemy.ext.asyncio import create_async_engine

from landform.core.clock import Clock
from landform.core.db import Database
from landform.core.mail import OutboxMailer
from landform.core.migrate import upgrade
from tests.conftest import (
    ON_POSTGRES,
    PASSWORD,
    ROOMY_RATE_LIMITS,
    TEST_DATABASE_URL,
    make_settings,
    truncate_postgres,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(
    data_dir: Path,
    workers: int = 2,
    *,
    fresh: bool = True,
    server: str = "granian",
    interface: str = "asgi",
    **env: str,
) -> Iterator[str]:
    """A server on a free port, on this run's database (emptied first unless
    not ``fresh``, and so is the test Redis database when the server uses
    it: entries another test's server left in the stream belong to another
    database); yields its base URL. A failing body gets the server's log.
    ``interface``: granian's, asgi or rsgi (``landform serve --interface``).
    A ``LANDFORM_DATABASE_URL`` in ``env`` names a database of the test's own
    (a throwaway cluster), used as it is."""
    port = free_port()
    roomy = {f"LANDFORM_{name.upper()}": str(value) for name, value in ROOMY_RATE_LIMITS.items()}
    # Tests stop their servers at once, unless a test is about draining.
    quick_stop = {"LANDFORM_SHUTDOWN_DRAIN_SECONDS": "0"}
    environment = {**os.environ, **roomy, **quick_stop, "LANDFORM_DATA_DIR": str(data_dir), **env}
    if ON_POSTGRES and "LANDFORM_DATABASE_URL" not in env:
        if fresh:
            asyncio.run(migrated_and_emptied(TEST_DATABASE_URL))
        environment["LANDFORM_DATABASE_URL"] = TEST_DATABASE_URL
    if fresh and env.get("LANDFORM_REDIS_URL"):
        with Redis.from_url(env["LANDFORM_REDIS_URL"]) as redis:
            redis.flushdb()
    log_path = data_dir / f"server-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "landform.cli.main",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--server",
            server,
            "--interface",
            interface,
        ],
        env=environment,
        # A file, not a pipe nobody reads: a server that logs more than the
        # pipe holds (tracebacks) would block on its next write.
        stdout=log,
        stderr=subprocess.STDOUT,
        # Its own process group, so the workers go too if it has to be killed.
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        kill_group(process)
        log.close()
        raise RuntimeError(log_path.read_text())
    await_every_worker(base, workers, deadline)
    try:
        yield base
    except BaseException:
        log.flush()
        sys.stderr.write(f"--- server log ({log_path}):\n{log_path.read_text()[-20_000:]}\n")
        raise
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        # A worker the server could not stop (one SIGTERMed while it was
        # still starting waits for the server's kill timeout) must not outlive
        # the test, still holding its port and database connections.
        kill_group(process)
        log.close()


def kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


async def migrated_and_emptied(url: str) -> None:
    """Up to date (a test run alone has had no other test migrate it) and empty."""
    engine = create_async_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    await truncate_postgres(url)


def await_every_worker(base: str, workers: int, deadline: float) -> None:
    """Until each worker has answered once over a fresh connection (or the
    deadline): the first to start takes every connection until the others
    accept too, and tests that spread requests over workers assume they do."""
    seen: set[int] = set()
    while len(seen) < workers and time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{base}/healthz", headers={"Connection": "close"}, timeout=1)
            seen.add(answer.json()["worker"])
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.02)


def outbox_token(data_dir: Path, email: str) -> str:
    """The verification token mailed to ``email`` by a live server."""
    settings = make_settings(data_dir, database_url=TEST_DATABASE_URL if ON_POSTGRES else "")

    async def _read() -> str:
        db = Database(settings)
        messages = await OutboxMailer(db, Clock()).list(recipient=email)
        await db.dispose()
        match = re.search(r"token=([A-Za-z0-9_-]+)", messages[0].message)
        assert match
        return match.group(1)

    return asyncio.run(_read())


def verified_login(base: str, data_dir: Path, email: str) -> str:
    """Register, verify and log in over HTTP; returns an access token."""
    with httpx.Client(base_url=base, timeout=10) as api:
        assert (
            api.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code
            == 201
        )
        token = outbox_token(data_dir, email)
        assert api.post("/auth/verify-email", json={"token": token}).status_code == 200
        response = api.post("/auth/login", json={"email": email, "password": PASSWORD})
        return str(response.json()["access_token"])
