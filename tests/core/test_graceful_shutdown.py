"""SIGTERM to a worker of a real server under steady load: it drains
(not ready, connections closed after their next response), finishes what is
in flight — a slow upload still arriving when it stops accepting included —
flushes its analytics, and exits by itself; the clients see no failure and
no acknowledged write or event is missing afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import websockets
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed, InvalidStatus

from landform.analytics.models import AnalyticsEvent
from landform.core.db import Database
from landform.pages.models import LandingPage
from tests.analytics.conftest import BROWSER
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL, make_settings
from tests.files.samples import png
from tests.live_server import live_server, verified_login

DRAIN_SECONDS = 1.5
CLIENTS = 12
LOAD_SECONDS = 2.0 + DRAIN_SECONDS + 3.0


def pid_alive(pid: int) -> bool:
    """Running (an exited child of ours not yet reaped is a zombie: gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def exit_time(pid: int, since: float, limit: float = 20) -> float | None:
    """Seconds from ``since`` until process ``pid`` was gone (None: still there
    after ``limit``)."""
    for _ in range(int(limit * 10)):
        if not pid_alive(pid):
            return time.monotonic() - since
        await asyncio.sleep(0.1)
    return None


async def client_on_worker(base: str, pid: int) -> httpx.AsyncClient:
    """A one-connection client whose connection the given worker accepted."""
    for _ in range(200):
        client = httpx.AsyncClient(
            base_url=base, timeout=30, limits=httpx.Limits(max_connections=1)
        )
        if (await client.get("/healthz")).json()["worker"] == pid:
            return client
        await client.aclose()
    raise AssertionError(f"no connection reached worker {pid}")


async def trickled_upload(data: bytes, seconds: float) -> tuple[str, AsyncIterator[bytes]]:
    """A multipart body that arrives in pieces over ``seconds``."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    pieces = 10

    async def chunks() -> AsyncIterator[bytes]:
        step = len(body) // pieces + 1
        for start in range(0, len(body), step):
            yield body[start : start + step]
            await asyncio.sleep(seconds / pieces)

    return f"multipart/form-data; boundary={boundary}", chunks()


class Load:
    def __init__(self, base: str, token: str, page_id: str, slug: str) -> None:
        self.base = base
        self.auth = {"Authorization": f"Bearer {token}"}
        self.page_id = page_id
        self.slug = slug
        self.failures: list[str] = []
        self.answered = 0
        self.events: set[str] = set()
        self.created: set[str] = set()

    async def run(self, seconds: float) -> None:
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=self.base, timeout=30, limits=limits) as client:
            deadline = time.monotonic() + seconds
            await asyncio.gather(*(self._user(client, n, deadline) for n in range(CLIENTS)))

    async def _user(self, client: httpx.AsyncClient, user: int, deadline: float) -> None:
        step = 0
        while time.monotonic() < deadline:
            step += 1
            try:
                await self._one(client, user, step)
            except httpx.HTTPError as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")

    async def _one(self, client: httpx.AsyncClient, user: int, step: int) -> None:
        kind = step % 4
        if kind == 0:
            response = await client.get(f"/{self.slug}")
            ok = response.status_code == 200 and b"<html" in response.content
        elif kind == 1:
            event = str(uuid.uuid4())
            response = await client.post(
                "/analytics/track-view",
                json={"id": event, "page_id": self.page_id},
                headers={"User-Agent": BROWSER, "X-Forwarded-For": f"10.9.{user}.{step % 250}"},
            )
            ok = response.status_code == 202
            if ok:
                self.events.add(event)
        elif kind == 2:
            response = await client.get("/landing-pages", headers=self.auth)
            ok = response.status_code == 200
        else:
            slug = f"drain-{user}-{step}"
            response = await client.post(
                "/landing-pages", json={"title": slug, "slug": slug}, headers=self.auth
            )
            ok = response.status_code == 201
            if ok:
                self.created.add(response.json()["id"])
        self.answered += 1
        if not ok:
            self.failures.append(f"{response.status_code} {response.text[:200]}")


async def stored(data_dir: Path) -> tuple[set[str], set[str]]:
    """(event ids, landing page ids) in the database."""
    settings = make_settings(data_dir, database_url=TEST_DATABASE_URL if ON_POSTGRES else "")
    db = Database(settings)
    try:
        async with db.read_primary() as session:
            # One statement: at READ COMMITTED (PostgreSQL) a second one would
            # also count the batches committed in between.
            stored_ids = (await session.scalars(select(AnalyticsEvent.id))).all()
            events = set(stored_ids)
            assert len(stored_ids) == len(events)  # none stored twice
            pages = set((await session.scalars(select(LandingPage.id))).all())
        return {str(e) for e in events}, {str(p) for p in pages}
    finally:
        await db.dispose()


async def drill(base: str, data_dir: Path, token: str, page_id: str) -> dict[str, Any]:
    load = Load(base, token, page_id, "drain-test")
    load_task = asyncio.create_task(load.run(LOAD_SECONDS))
    await asyncio.sleep(1.0)

    async with httpx.AsyncClient(base_url=base, timeout=10) as probe:
        target = (await probe.get("/healthz", headers={"Connection": "close"})).json()["worker"]
    uploader = await client_on_worker(base, target)
    prober = await client_on_worker(base, target)
    content_type, body = await trickled_upload(png((400, 300)), seconds=DRAIN_SECONDS + 1.5)
    upload = asyncio.create_task(
        uploader.post(
            "/files/upload",
            content=body,
            headers={**load.auth, "Content-Type": content_type},
        )
    )
    await asyncio.sleep(0.2)  # the upload is under way

    os.kill(target, signal.SIGTERM)
    sent_at = time.monotonic()
    await asyncio.sleep(0.2)
    ready = await prober.get("/readyz")

    uploaded = await upload
    await load_task
    exited_after = await exit_time(target, sent_at)
    await uploader.aclose()
    await prober.aclose()
    return {
        "load": load,
        "ready": ready,
        "uploaded": uploaded,
        "exited_after": exited_after,
    }


@pytest.mark.parametrize("interface", ["asgi", "rsgi"])
def test_sigterm_under_load_drains_finishes_in_flight_and_loses_nothing(
    tmp_path: Path, interface: str
) -> None:
    env = {
        "LANDFORM_SHUTDOWN_DRAIN_SECONDS": str(DRAIN_SECONDS),
        "LANDFORM_SHUTDOWN_GRACE_SECONDS": "20",
        "LANDFORM_TRUSTED_PROXIES": "127.0.0.1",
        "LANDFORM_ANALYTICS_RATE_BURST": "1000000",
    }
    with live_server(tmp_path, workers=2, interface=interface, **env) as base:
        token = verified_login(base, tmp_path, "drain@example.com")
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as api:
            page = api.post("/landing-pages", json={"title": "Drain", "slug": "drain-test"}).json()
            assert api.post(f"/landing-pages/{page['id']}/publish").status_code == 200
        result = asyncio.run(drill(base, tmp_path, token, page["id"]))
        load: Load = result["load"]

        # Draining: not ready, and the connection is let go after the answer.
        assert result["ready"].status_code == 503
        assert result["ready"].json()["error"]["code"] == "not_ready"
        assert result["ready"].headers["connection"] == "close"
        # The upload began before the SIGTERM and was still arriving when the
        # worker stopped accepting: it was finished, and the file is kept.
        uploaded = result["uploaded"]
        assert uploaded.status_code == 201, uploaded.text
        with httpx.Client(base_url=base, headers=headers, timeout=10) as api:
            kept = api.get(f"/files/{uploaded.json()['id']}")
            assert kept.status_code == 200
            assert kept.json()["size"] == uploaded.json()["size"]
        # The worker left by itself, well inside the grace period.
        assert result["exited_after"] is not None, "the worker did not exit within 20 s"
        # Not one request failed, and the load really went on throughout.
        assert load.failures == []
        assert load.answered > 100 and load.events and load.created

        deadline = time.monotonic() + 20
        while True:
            events, pages = asyncio.run(stored(tmp_path))
            if load.events <= events or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    assert load.events - events == set(), "acknowledged events were lost"
    assert load.created <= pages, "acknowledged pages were lost"
    print(
        f"{load.answered} requests, 0 failed; {len(load.events)} events and "
        f"{len(load.created)} pages acknowledged, all stored; worker exited "
        f"{result['exited_after']:.1f} s after SIGTERM"
    )


def test_live_streams_are_ended_so_clients_reconnect_and_the_worker_exits(
    tmp_path: Path,
) -> None:
    """An open WebSocket would hold the server's shutdown until the kill: the
    drain ends it with 1001 (going away), and the client reconnects to the
    worker that replaced this one."""
    env = {"LANDFORM_SHUTDOWN_DRAIN_SECONDS": "0.5", "LANDFORM_SHUTDOWN_GRACE_SECONDS": "20"}
    with live_server(tmp_path, workers=1, **env) as base:
        token = verified_login(base, tmp_path, "streams@example.com")
        url = f"{base.replace('http://', 'ws://')}/ws/analytics?access_token={token}"
        worker = httpx.get(f"{base}/healthz").json()["worker"]

        async def scenario() -> tuple[int, str, float | None]:
            async with websockets.connect(url) as ws:
                assert json.loads(await ws.recv())["type"] == "hello"
                os.kill(worker, signal.SIGTERM)
                sent_at = time.monotonic()
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), 10)
                received = closed.value.rcvd
                assert received is not None
                code, reason = received.code, received.reason
            exited_after = await exit_time(worker, sent_at)
            for _ in range(100):  # the replacement worker starts
                try:
                    async with websockets.connect(url) as again:
                        assert json.loads(await again.recv())["type"] == "hello"
                        break
                except (OSError, InvalidStatus):
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError("no worker took the reconnection")
            return code, reason, exited_after

        code, reason, exited_after = asyncio.run(scenario())
        assert (code, reason) == (1001, "server restarting: reconnect")
        assert exited_after is not None, "the worker did not exit within 20 s"
        assert httpx.get(f"{base}/healthz").json()["worker"] != worker


def children_of(pid: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return {int(child) for child in found.stdout.split()}


def test_a_server_stopped_while_a_worker_starts_stops_at_once(tmp_path: Path) -> None:
    """``landform serve`` told to stop while one of its workers is still
    starting (it imports and builds the app, with the handler it inherited
    from the server process): the worker keeps the SIGTERM and acts on it
    once started, so the server is gone in seconds, not after the grace
    period's kill."""
    env = {"LANDFORM_SHUTDOWN_DRAIN_SECONDS": "0.3", "LANDFORM_SHUTDOWN_GRACE_SECONDS": "30"}
    with live_server(tmp_path, workers=1, **env) as base:
        first = httpx.get(f"{base}/healthz", headers={"Connection": "close"}).json()["worker"]
        server = int(Path(f"/proc/{first}/stat").read_text().split(")")[1].split()[1])
        os.kill(first, signal.SIGTERM)
        replacement = None
        for _ in range(2000):
            replacement = next(iter(children_of(server) - {first}), None)
            if replacement is not None:
                break
            time.sleep(0.005)
        assert replacement is not None, "the server started no replacement worker"
        os.kill(server, signal.SIGTERM)  # the worker is still starting
        stopped_after = asyncio.run(exit_time(server, time.monotonic(), limit=25))
        assert stopped_after is not None and stopped_after < 15, stopped_after
        assert not pid_alive(replacement)


def test_under_uvicorn_too_a_worker_drains_and_is_replaced(tmp_path: Path) -> None:
    """``landform serve --server uvicorn``: the same app (an ASGI 3 callable),
    the same drain on SIGTERM."""
    env = {"LANDFORM_SHUTDOWN_DRAIN_SECONDS": "1.5", "LANDFORM_SHUTDOWN_GRACE_SECONDS": "20"}
    with live_server(tmp_path, workers=2, server="uvicorn", **env) as base:

        async def scenario() -> tuple[httpx.Response, float | None]:
            target = (await asyncio.to_thread(httpx.get, f"{base}/healthz")).json()["worker"]
            prober = await client_on_worker(base, target)
            os.kill(target, signal.SIGTERM)
            sent_at = time.monotonic()
            await asyncio.sleep(0.2)
            ready = await prober.get("/readyz")
            await prober.aclose()
            return ready, await exit_time(target, sent_at)

        ready, exited_after = asyncio.run(scenario())
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "not_ready"
        assert exited_after is not None, "the worker did not exit within 20 s"
        assert httpx.get(f"{base}/healthz").status_code == 200


def test_workers_do_not_outlive_a_killed_server(tmp_path: Path) -> None:
    """``kill -9`` of ``landform serve`` (the OOM killer, a supervisor that
    kills only the process it started) must not leave its workers serving
    on as orphans: nothing would replace one that dies, and they hold the
    port, so a new ``landform serve`` could not start ("cannot listen")."""
    with live_server(tmp_path, workers=2) as base:
        workers: set[int] = set()
        deadline = time.monotonic() + 15
        while len(workers) < 2 and time.monotonic() < deadline:
            workers.add(httpx.get(f"{base}/healthz").json()["worker"])
        processes = [psutil.Process(pid) for pid in workers]
        os.kill(processes[0].ppid(), signal.SIGKILL)
        # Before: both still ran, reparented, minutes later.
        _gone, alive = psutil.wait_procs(processes, timeout=20)
        assert alive == []
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/healthz", timeout=2)
