"""Database failover against real, throwaway PostgreSQL clusters
(tests/pg_cluster.py): a database that is down or hung answers 503
``database_unavailable`` and never hangs; pooled connections survive a
restart; a read whose connection dies is served again; a replica that lags
or cannot be reached gets no reads until it is back; a multi-host URL finds
the promoted replica; and the issue's drill: ``pg_ctl restart -m fast``
under steady load from a real server process.

They need the PostgreSQL programs (Debian's postgresql-15), not the test
database of the suite: they bring their own clusters, on ports 55432-55439.
Without the programs they skip, except in CI (LANDFORM_TEST_REQUIRE_SERVICES=1),
where they fail. They do not use the suite's database, so they run in the
suite's first (SQLite) pass only."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from landform.app import create_app
from landform.core.db import Database
from landform.core.db_failures import DatabaseUnavailable
from landform.core.migrate import upgrade
from tests.conftest import ON_POSTGRES, PASSWORD, assert_error, make_settings, signed_in
from tests.live_server import live_server
from tests.pg_cluster import Cluster, Clusters, postgres_binaries

pytestmark = [
    pytest.mark.postgres,
    # Nothing here uses the suite's database, so one pass is enough.
    pytest.mark.skipif(
        ON_POSTGRES, reason="brings its own PostgreSQL clusters: runs in the SQLite pass"
    ),
]

PORTS = range(55432, 55440)
DATABASE = "landform"
OPS_TOKEN = "failover-ops-token"


def throwaway_clusters() -> Clusters:
    _bin, why = postgres_binaries()
    if why:
        if os.environ.get("LANDFORM_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL clusters are required in CI: {why}")
        pytest.skip(why)
    return Clusters(PORTS)


@pytest.fixture
def clusters() -> Iterator[Clusters]:
    with throwaway_clusters() as made:
        yield made


def migrated(cluster: Cluster) -> str:
    """The Landform database on ``cluster``, created and migrated; its URL."""
    cluster.sql(f"CREATE DATABASE {DATABASE}")
    url = cluster.url(DATABASE)

    async def _migrate() -> None:
        engine = create_async_engine(url)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(_migrate())
    return url


@asynccontextmanager
async def api(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(make_settings(tmp_path, **settings))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


async def titles(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await client.get("/landing-pages", headers=headers)
    assert response.status_code == 200, response.text
    return sorted(page["title"] for page in response.json()["items"])


async def create(client: httpx.AsyncClient, headers: dict[str, str], title: str) -> None:
    response = await client.post("/landing-pages", json={"title": title}, headers=headers)
    assert response.status_code == 201, response.text


# Down, hung, restarted


async def test_a_database_that_is_down_answers_503_at_once_and_is_used_again_when_back(
    clusters: Clusters, tmp_path: Path
) -> None:
    primary = clusters.primary()
    url = await asyncio.to_thread(migrated, primary)
    async with api(tmp_path, database_url=url, database_reconnect_wait=0.5) as (app, client):
        ada = await signed_in(client, app, "ada@example.com")
        await create(client, ada, "Before")

        await asyncio.to_thread(primary.stop)
        async with asyncio.timeout(20):  # never a hang
            read = await client.get("/landing-pages", headers=ada)
            write = await client.post("/landing-pages", json={"title": "Lost"}, headers=ada)
        for response in (read, write):
            error = assert_error(response, 503, "database_unavailable")
            assert error["details"] == {"lost_connection": False}
            assert response.headers["Retry-After"] == "1"

        # Back: the pool's connections to the old server were found dead
        # (pre-ping) and replaced; nothing of the failed write was kept.
        await asyncio.to_thread(primary.start)
        assert await titles(client, ada) == ["Before"]
        await create(client, ada, "After")
        assert await titles(client, ada) == ["After", "Before"]

        # A restart ends every pooled session; the next requests do not notice.
        await asyncio.to_thread(primary.restart)
        assert await titles(client, ada) == ["After", "Before"]
        await create(client, ada, "Later")


async def test_published_pages_held_in_memory_stay_served_while_the_database_is_away(
    clusters: Clusters, tmp_path: Path
) -> None:
    """Pages are held in memory so that visitors do not depend on the
    database. Before, the change log's failing poll dropped them all within
    a poll interval, and every view was a 503 until the database was back."""
    primary = clusters.primary()
    url = await asyncio.to_thread(migrated, primary)
    settings = {"database_url": url, "database_reconnect_wait": 0.5}
    async with (
        api(tmp_path / "one", **settings, page_change_poll_interval=0.05) as (app, client),
        api(tmp_path / "two", **settings) as (other_app, other),
    ):
        ada = await signed_in(client, app, "ada@example.com")
        made = await client.post(
            "/landing-pages", json={"title": "Kept", "slug": "kept"}, headers=ada
        )
        page_id = made.json()["id"]
        assert (await client.post(f"/landing-pages/{page_id}/publish", headers=ada)).is_success
        before = await client.get("/kept")
        assert before.status_code == 200

        await asyncio.to_thread(primary.stop)
        await asyncio.sleep(1)  # some twenty polls of the change log fail
        during = await client.get("/kept")
        assert during.status_code == 200 and during.content == before.content
        assert (await client.get("/not-held-here")).status_code == 503

        # Back, the log is followed again: a change made by another worker
        # reaches this one.
        await asyncio.to_thread(primary.start)
        assert (await other.post(f"/landing-pages/{page_id}/unpublish", headers=ada)).is_success
        for _ in range(200):
            if (await client.get("/kept")).status_code == 404:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the unpublish made elsewhere never reached this worker")


async def test_a_worker_whose_requests_went_quiet_still_answers_a_long_outage_at_once(
    clusters: Clusters, tmp_path: Path
) -> None:
    """The outage's wait counts from its start as the worker's change-log
    poll sees it, not from this worker's next request: with two workers,
    each one's requests went quiet while the other's waited, and every
    request then waited the whole wait again."""
    primary = clusters.primary()
    url = await asyncio.to_thread(migrated, primary)
    async with api(
        tmp_path, database_url=url, database_reconnect_wait=4, page_change_poll_interval=0.05
    ) as (app, client):
        ada = await signed_in(client, app, "ada@example.com")
        await asyncio.to_thread(primary.stop)
        await asyncio.sleep(4.5)  # no request here; the polls fail
        started = time.monotonic()
        assert_error(await client.get("/landing-pages", headers=ada), 503, "database_unavailable")
        # At once, not after a new outage's whole 4 s wait.
        assert time.monotonic() - started < 2.0


POOL = 6


async def test_a_cold_page_and_a_new_beacon_wait_out_a_restart_like_the_api(
    clusters: Clusters, tmp_path: Path
) -> None:
    """The hot paths load what they do not hold (a published page's bytes,
    the page a beacon names) with one query of their own: during a restart
    that query waits for the database as every other request does. Before,
    both answered 503 at once, and the view was lost: browsers do not send
    a beacon again."""
    primary = clusters.primary()
    url = await asyncio.to_thread(migrated, primary)
    async with api(tmp_path, database_url=url, database_reconnect_wait=10) as (app, client):
        ada = await signed_in(client, app, "ada@example.com")
        made = await client.post(
            "/landing-pages", json={"title": "Hot", "slug": "hot"}, headers=ada
        )
        page_id = made.json()["id"]
        assert (await client.post(f"/landing-pages/{page_id}/publish", headers=ada)).is_success
        app.components._forget_all()  # as a worker that has not served it yet
        await asyncio.to_thread(primary.stop)

        def back_in_a_second() -> None:
            time.sleep(1)
            primary.start()

        restart = asyncio.create_task(asyncio.to_thread(back_in_a_second))
        async with asyncio.timeout(20):
            view, beacon = await asyncio.gather(
                client.get("/hot"),
                client.post("/analytics/track-view", json={"page_id": page_id, "path": "/hot"}),
            )
        await restart
        assert view.status_code == 200, view.text
        assert "Hot" in view.text
        assert beacon.status_code == 202, beacon.text


async def test_pooled_connections_a_restart_ended_are_replaced_before_use(
    clusters: Clusters, tmp_path: Path
) -> None:
    primary = clusters.primary()
    url = await asyncio.to_thread(migrated, primary)
    # The pool alone (an app's background tasks would find the dead
    # connections first, and SQLAlchemy then renews the whole pool).
    db = Database(make_settings(tmp_path, database_url=url, database_pool_size=POOL))

    async def one_each() -> list[int]:
        """As many transactions at once as the pool holds: each takes a
        different pooled connection."""

        async def one() -> int:
            async with db.write() as session:
                await asyncio.sleep(0.05)  # hold it while the others take theirs
                return int(await session.scalar(text("SELECT 1")))

        return await asyncio.gather(*(one() for _ in range(POOL)))

    try:
        assert await one_each() == [1] * POOL
        assert db.primary.sync_engine.pool.checkedin() == POOL
        await asyncio.to_thread(primary.restart)
        # Each is pinged when taken, found dead, and replaced.
        assert await one_each() == [1] * POOL
    finally:
        await db.dispose()


async def test_a_server_that_accepts_but_never_answers_does_not_hang_a_request(
    tmp_path: Path,
) -> None:
    # A listener that never speaks: asyncpg would wait 60 s for its greeting.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    settings = make_settings(
        tmp_path,
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{DATABASE}",
        database_connect_timeout=0.5,
        database_reconnect_wait=0,
    )
    db = Database(settings)
    try:
        async with asyncio.timeout(10):
            with pytest.raises(DatabaseUnavailable) as raised:
                async with db.read() as session:
                    await session.execute(text("SELECT 1"))
        assert raised.value.status == 503 and raised.value.code == "database_unavailable"
        assert isinstance(raised.value.__cause__, TimeoutError)
    finally:
        await db.dispose()
        silent.close()


@dataclass
class KillOnce:
    """Ends the server session under the next statement that names
    ``table`` and carries ``value`` (so it is the request's, not a background
    task's), as a restart would, right before that statement is sent."""

    cluster: Cluster
    starts_with: str
    value: Any
    armed: bool = False
    killed: int = 0

    def __call__(self, conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if (
            self.armed
            and statement.lstrip().upper().startswith(self.starts_with)
            and "landing_pages" in statement
            and any(str(p) == str(self.value) for p in parameters or ())
        ):
            self.armed = False
            pid = conn.connection.driver_connection.get_server_pid()
            # Waits until the backend is gone (PostgreSQL 14+).
            assert self.cluster.sql(f"SELECT pg_terminate_backend({pid}, 5000)") == "t"
            self.killed += 1


async def test_a_read_whose_connection_dies_is_served_again_a_write_answers_503(
    clusters: Clusters, tmp_path: Path
) -> None:
    primary = clusters.primary()
    url = await asyncio.to_thread(migrated, primary)
    async with api(tmp_path, database_url=url) as (app, client):
        ada = await signed_in(client, app, "ada@example.com")
        created = await client.post("/landing-pages", json={"title": "Kept"}, headers=ada)
        page_id = created.json()["id"]
        engine = app.components.db.primary.sync_engine

        select_pages = KillOnce(primary, "SELECT", uuid.UUID(page_id))
        event.listen(engine, "before_cursor_execute", select_pages)
        select_pages.armed = True
        read = await client.get(f"/landing-pages/{page_id}", headers=ada)
        event.remove(engine, "before_cursor_execute", select_pages)
        assert select_pages.killed == 1
        assert read.status_code == 200, read.text
        assert read.json()["title"] == "Kept"

        insert = KillOnce(primary, "INSERT", "Lost")
        event.listen(engine, "before_cursor_execute", insert)
        insert.armed = True
        write = await client.post("/landing-pages", json={"title": "Lost"}, headers=ada)
        event.remove(engine, "before_cursor_execute", insert)
        assert insert.killed == 1
        error = assert_error(write, 503, "database_unavailable")
        assert error["details"] == {"lost_connection": True}
        assert write.headers["Retry-After"] == "1"
        # The server rolled the write back with its session; the client may
        # send it again.
        assert await titles(client, ada) == ["Kept"]


# Replicas: lag and reachability


@pytest.fixture
def primary_and_replica(clusters: Clusters) -> tuple[Cluster, Cluster, str]:
    primary = clusters.primary()
    migrated(primary)
    replica = clusters.replica_of(primary)
    return primary, replica, replica.url(DATABASE)


async def replica_report(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(
        "/ops/performance",
        params={"routes": "false"},
        headers={"Authorization": f"Bearer {OPS_TOKEN}"},
    )
    assert response.status_code == 200, response.text
    [replica] = response.json()["database"]["replicas"]
    return replica  # type: ignore[no-any-return]


async def until_rotation(client: httpx.AsyncClient, wanted: bool) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            report = await replica_report(client)
            if report["inRotation"] is wanted:
                return report
            await asyncio.sleep(0.1)


MAX_LAG = 2.0
PIN = 0.3


def with_replica(primary: Cluster, replica_url: str) -> dict[str, Any]:
    """Settings of an app reading from ``replica_url``, checked often, with a
    short read-your-writes pin and /ops/performance open to the tests."""
    return {
        "database_url": primary.url(DATABASE),
        "database_replica_urls": [replica_url],
        "database_replica_check_interval": 0.2,
        "read_your_writes_seconds": PIN,
        "ops_token": OPS_TOKEN,
    }


async def test_a_lagging_replica_gets_no_reads_until_it_catches_up(
    primary_and_replica: tuple[Cluster, Cluster, str], tmp_path: Path
) -> None:
    primary, replica, replica_url = primary_and_replica
    async with api(
        tmp_path, **with_replica(primary, replica_url), database_replica_max_lag_seconds=MAX_LAG
    ) as (app, client):
        ada = await signed_in(client, app, "ada@example.com")
        await create(client, ada, "One")
        replica.wait_for("SELECT count(*) FROM landing_pages", "1", database=DATABASE)

        # An idle primary does not make an up-to-date replica look late.
        await asyncio.sleep(MAX_LAG + 1)
        report = await replica_report(client)
        assert report["inRotation"] and report["reachable"]
        assert report["lagSeconds"] < MAX_LAG

        # Replay stops; the primary goes on.
        await asyncio.to_thread(replica.pause_replay)
        await create(client, ada, "Two")
        report = await until_rotation(client, False)
        assert report["lagSeconds"] > MAX_LAG and "behind the primary" in report["reason"]
        assert replica.sql("SELECT count(*) FROM landing_pages", DATABASE) == "1"
        # Ada's pin is long over: the replica would not have her second page.
        assert await titles(client, ada) == ["One", "Two"]

        await asyncio.to_thread(replica.resume_replay)
        report = await until_rotation(client, True)
        assert report["lagSeconds"] <= MAX_LAG and report["reason"] == ""

        # Reads go to the replica again: a row it has not replayed is not
        # seen (written behind the app's back, so nobody is pinned).
        await asyncio.to_thread(replica.pause_replay)
        await asyncio.to_thread(
            primary.sql,
            "UPDATE landing_pages SET title = 'Renamed' WHERE title = 'One'",
            DATABASE,
        )
        assert await titles(client, ada) == ["One", "Two"]
        await asyncio.to_thread(replica.resume_replay)


async def test_a_writer_reads_the_write_for_as_long_as_a_replica_in_rotation_lacks_it(
    primary_and_replica: tuple[Cluster, Cluster, str], tmp_path: Path
) -> None:
    """Before: a writer's reads went back to the replicas after a fixed 5 s,
    while a replica up to ``database_replica_max_lag_seconds`` behind stays
    in rotation: between the two, a page just written was not found. Now the
    read-your-writes window defaults to how far behind a replica in rotation
    may be, and within it only a replica past the write serves the writer."""
    primary, replica, replica_url = primary_and_replica
    settings = with_replica(primary, replica_url)
    del settings["read_your_writes_seconds"]
    max_lag = 6.0  # above the old fixed window
    async with api(tmp_path, **settings, database_replica_max_lag_seconds=max_lag) as (
        app,
        client,
    ):
        ada = await signed_in(client, app, "ada@example.com")
        await create(client, ada, "One")
        replica.wait_for("SELECT count(*) FROM landing_pages", "1", database=DATABASE)

        await asyncio.to_thread(replica.pause_replay)
        await create(client, ada, "Two")
        # Every read until the replica leaves rotation, and one after.
        while (await replica_report(client))["inRotation"]:
            assert await titles(client, ada) == ["One", "Two"]
            await asyncio.sleep(0.2)
        assert await titles(client, ada) == ["One", "Two"]
        await asyncio.to_thread(replica.resume_replay)


async def test_an_unreachable_replica_gets_no_reads_until_it_answers(
    primary_and_replica: tuple[Cluster, Cluster, str], tmp_path: Path
) -> None:
    primary, replica, replica_url = primary_and_replica
    async with api(tmp_path, **with_replica(primary, replica_url)) as (app, client):
        ada = await signed_in(client, app, "ada@example.com")
        await create(client, ada, "One")
        replica.wait_for("SELECT count(*) FROM landing_pages", "1", database=DATABASE)
        await asyncio.sleep(PIN)

        await asyncio.to_thread(replica.stop)
        # Reads are answered (by the primary) whether or not the check has
        # noticed yet: one that finds the replica gone moves on at once.
        for _ in range(4):
            assert await titles(client, ada) == ["One"]
        report = await until_rotation(client, False)
        assert not report["reachable"] and report["reason"].startswith("unreachable")

        await asyncio.to_thread(replica.start)
        report = await until_rotation(client, True)
        assert report["reachable"]
        assert await titles(client, ada) == ["One"]


# Promotion


async def test_a_multi_host_url_finds_the_promoted_replica(
    primary_and_replica: tuple[Cluster, Cluster, str], tmp_path: Path
) -> None:
    primary, replica, _ = primary_and_replica
    both = (
        f"postgresql+asyncpg://postgres@/{DATABASE}?host=127.0.0.1:{primary.port}"
        f"&host=127.0.0.1:{replica.port}&target_session_attrs=read-write"
    )
    async with api(tmp_path, database_url=both) as (app, client):
        ada = await signed_in(client, app, "ada@example.com")
        await create(client, ada, "One")
        replica.wait_for("SELECT count(*) FROM landing_pages", "1", database=DATABASE)

        # The replica is read-only: the URL picked the primary.
        async with app.components.db.primary.connect() as connection:
            port = await connection.scalar(text("SELECT current_setting('port')"))
        assert int(port) == primary.port

        await asyncio.to_thread(replica.promote)
        await asyncio.to_thread(primary.stop)
        created = await client.post("/landing-pages", json={"title": "Two"}, headers=ada)
        assert created.status_code == 201, created.text
        assert await titles(client, ada) == ["One", "Two"]
        async with app.components.db.primary.connect() as connection:
            port = await connection.scalar(text("SELECT current_setting('port')"))
        assert int(port) == replica.port
        assert replica.sql("SELECT count(*) FROM landing_pages", DATABASE) == "2"


# The drill: pg_ctl restart -m fast under steady load


@dataclass
class Outcome:
    started: float
    ended: float
    ok: bool
    what: str


def ops_token_for(base: str, email: str) -> str:
    """Register, verify (through the ops outbox) and log in; an access token."""
    with httpx.Client(base_url=base, timeout=10) as client:
        registered = client.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        outbox = client.get(
            "/ops/outbox", params={"to": email}, headers={"Authorization": f"Bearer {OPS_TOKEN}"}
        )
        found = re.search(r"token=([A-Za-z0-9_%-]+)", outbox.json()["messages"][0]["message"])
        assert found
        token = found.group(1).replace("%2D", "-")
        verified = client.post("/auth/verify-email", json={"token": token})
        assert verified.status_code == 200, verified.text
        login = client.post("/auth/login", json={"email": email, "password": PASSWORD})
        return str(login.json()["access_token"])


async def steady_client(
    base: str, token: str, until: float, outcomes: list[Outcome], number: int
) -> None:
    """Reads and writes of one marketer, back to back: create, read, list,
    rename, read; every request timed and judged."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        page_id: str | None = None
        step = 0
        while time.monotonic() < until:
            if page_id is None or step % 5 == 0:
                method, path, body = "POST", "/landing-pages", {"title": f"c{number}-{step}"}
            elif step % 5 == 3:
                method, path, body = "PUT", f"/landing-pages/{page_id}", {"title": f"r{step}"}
            elif step % 5 == 2:
                method, path, body = "GET", "/landing-pages?limit=20", None
            else:
                method, path, body = "GET", f"/landing-pages/{page_id}", None
            started = time.monotonic()
            try:
                response = await client.request(method, path, json=body)
                ok = response.is_success
                what = f"{method} {response.status_code}"
                if ok and method == "POST":
                    page_id = response.json()["id"]
                elif not ok:
                    what += f" {response.text[:200]}"
            except httpx.HTTPError as exc:
                ok, what = False, f"{method} {type(exc).__name__}"
            outcomes.append(Outcome(started, time.monotonic(), ok, what))
            step += 1


LOAD_SECONDS = 14.0
RESTART_AT = 3.0
CLIENTS = 6


@pytest.mark.server
def test_a_fast_restart_under_load_costs_at_most_one_percent_of_requests(
    clusters: Clusters, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    primary = clusters.primary()
    url = migrated(primary)
    with live_server(
        tmp_path,
        workers=2,
        fresh=False,
        LANDFORM_DATABASE_URL=url,
        LANDFORM_OPS_TOKEN=OPS_TOKEN,
    ) as base:
        tokens = [ops_token_for(base, f"client{n}@example.com") for n in range(CLIENTS)]
        outcomes: list[Outcome] = []
        restart: dict[str, float] = {}

        def restart_primary() -> None:
            time.sleep(RESTART_AT)
            restart["began"] = time.monotonic()
            primary.restart("fast")
            restart["ended"] = time.monotonic()

        async def load() -> None:
            until = time.monotonic() + LOAD_SECONDS
            await asyncio.gather(
                *(steady_client(base, token, until, outcomes, n) for n, token in enumerate(tokens))
            )

        restarter = threading.Thread(target=restart_primary)
        restarter.start()
        asyncio.run(load())
        restarter.join()

    failed = [o for o in outcomes if not o.ok]
    began, ended = restart["began"], restart["ended"]
    longest = max(o.ended - o.started for o in outcomes)
    window = (max(o.ended for o in failed) - min(o.started for o in failed)) if failed else 0.0
    last_failure = (max(o.ended for o in failed) - began) if failed else 0.0
    after_restart = [o for o in outcomes if o.started >= began]
    served_again = min((o.ended for o in after_restart if o.ok), default=float("nan")) - began
    with capsys.disabled():
        print(
            f"\nrestart drill: {len(outcomes)} requests, {len(failed)} failed "
            f"({100 * len(failed) / len(outcomes):.2f} %), pg_ctl restart {ended - began:.2f} s, "
            f"error window {window:.2f} s, last failure {last_failure:.2f} s after the restart "
            f"began, first success after it {served_again:.2f} s, slowest request {longest:.2f} s; "
            f"failures: {[o.what for o in failed][:10]}"
        )
    # The drill criteria.
    assert len(outcomes) >= 200, "too little load to judge"
    assert len(failed) <= 0.01 * len(outcomes), [o.what for o in failed]
    assert all(o.ended <= began + 10 for o in failed)
    assert longest < 10, "a request hung"
