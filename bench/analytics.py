"""Analytics benchmark: tracking beacons against nginx, ingestion lag and
completeness, uncached reports and a custom query over 10 million events,
and WebSocket connects with 1,000 live connections open.

    .venv/bin/python bench/analytics.py [--duration 10] [--repeats 3]
        [--track-modes sqlite,postgres] [--reports-database-url URL | --skip-reports]

1. ``POST /analytics/track-view`` with wrk (-c64, a Lua script: a small JSON
   beacon, a browser User-Agent and a different X-Forwarded-For on every
   request, so visitors differ and the per-address rate limit is not what is
   measured; every status counted), beside nginx answering the same POST with
   a bare 204, alternating rounds. ``landform serve --workers 2`` (granian) on
   the embedded default (SQLite, local spool) and, with ``postgres`` in
   ``--track-modes``, on PostgreSQL + Redis (stream ingestion), each on a fresh
   database; ``sqlite-rsgi`` and ``postgres-rsgi`` run the same over granian's
   RSGI interface (``landform serve --interface rsgi``, the bare handler
   likewise). After the runs: every 202 stored (and nothing unsent), and ingestion lag
   (``ingested_ms - received_ms``) percentiles from the database.
2. ``GET /analytics/pages/{id}`` (30 days, page ids cycled) and ``GET
   /analytics/dashboard`` with wrk --latency (-c8, and -c1) against a server on
   a database of ≥ 10M generated events (``landform analytics generate``),
   report cache off (``LANDFORM_ANALYTICS_REPORT_CACHE_SECONDS=0``).
3. ``POST /analytics/custom-query``: 30 days, views and visitors by day ×
   utm_source, same server.
4. ``/ws/analytics``: 1,000 authenticated connections opened one after the
   other and held, each timed from connect start to the server's "hello";
   then more connects timed while the 1,000 stay open.

Writes its section of docs/benchmarks.md (between the analytics markers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import resource
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from one_address import ROOMY_RATE_LIMITS  # noqa: E402 - a sibling module
from public_pages import (  # noqa: E402 - the sibling benchmark's helpers
    LANDFORM,
    Proc,
    Session,
    check,
    descendants,
    ensure_tools,
    find_tool,
    free_port,
    log,
    machine_info,
    median,
    percentile,
    server_errors,
    set_up_account_and_page,
    start_proc,
    verdict,
    wait_http,
    write_doc,
)

START = "<!-- analytics:start -->"
END = "<!-- analytics:end -->"
SCRIPT = "bench/analytics.py"
HERE = Path(__file__).resolve().parent

# Targets (issue 4).
TARGET_TRACK_RATIO = 0.15
TARGET_TRACK_RPS = 8000.0
TARGET_LAG_P99_MS = 2000.0
TARGET_REPORT_P99_MS = 50.0
TARGET_QUERY_P99_MS = 100.0
TARGET_WS_P99_MS = 20.0

BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
# Databases this script may drop and create; never these.
PROTECTED_DATABASES = {"test", "lf_gen", "postgres", "template0", "template1"}

# Counts every response status per wrk thread (``response``), and prints one
# machine-readable line at the end with the statuses of all threads;
# latencies in us.
STATUS_LUA = r"""
local threads = {}
setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
statuses = {}
issued = 0
response = function(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end
done = function(summary, latency, requests)
  local total = {}
  local sent = 0
  for _, thread in ipairs(threads) do
    sent = sent + (thread:get("issued") or 0)
    local counts = thread:get("statuses")
    for key, n in pairs(counts) do total[key] = (total[key] or 0) + n end
  end
  local parts = {}
  for key, n in pairs(total) do
    parts[#parts + 1] = string.format("\"%s\": %.0f", key, n)
  end
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\": %.0f, \"duration_us\": %.0f, \"bytes\": %.0f, " ..
    "\"err_connect\": %.0f, \"err_read\": %.0f, \"err_write\": %.0f, " ..
    "\"err_status\": %.0f, \"err_timeout\": %.0f, " ..
    "\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"p999\": %.1f, " ..
    "\"max\": %.1f, \"mean\": %.1f, \"issued\": %.0f, \"statuses\": {%s}}\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean, sent, table.concat(parts, ", ")))
end
"""

# A beacon per request, each from another client address (10.x.y.z, unique
# per thread and request) as a trusted proxy would forward it.
TRACK_LUA = r"""
local body = BODY
local ua = UA
request = function()
  issued = issued + 1
  local a = (tid or 0) * 4194304 + issued
  local xff = string.format("10.%d.%d.%d",
    math.floor(a / 65536) % 256, math.floor(a / 256) % 256, a % 256)
  return wrk.format("POST", "/analytics/track-view", {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = ua,
    ["X-Forwarded-For"] = xff,
  }, body)
end
"""

# GET one of PATHS per request, each thread starting at its own offset.
PATHS_LUA = r"""
local paths = PATHS
local i = nil
request = function()
  if i == nil then i = ((tid or 0) * 7) % #paths end
  issued = issued + 1
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua one here


def lua_list(values: list[str]) -> str:
    return "{" + ", ".join(lua_string(v) for v in values) + "}"


# --- wrk ---------------------------------------------------------------------------


@dataclass
class Wrk:
    rps: float
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    statuses: dict[str, int]
    errors: dict[str, int]
    issued: int = 0  # requests the Lua request() made (0 when it has none)

    def count(self, status: int) -> int:
        return self.statuses.get(str(status), 0)

    def other(self, status: int) -> int:
        """Responses with any other status, plus socket errors and timeouts."""
        return sum(n for k, n in self.statuses.items() if k != str(status)) + sum(
            self.errors.values()
        )


def run_wrk(
    url: str,
    lua: Path,
    duration: float,
    connections: int,
    threads: int,
    headers: dict[str, str] | None = None,
) -> Wrk:
    argv = [
        find_tool("wrk") or "wrk",
        "--latency",
        "-t",
        str(min(threads, connections)),
        "-c",
        str(connections),
        "-d",
        f"{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(lua),
    ]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    match = re.search(r"^WRKJSON (\{.*\})$", out, re.M)
    if not match:
        raise RuntimeError(f"no WRKJSON line in wrk output:\n{out}")
    data = json.loads(match.group(1))
    seconds = data["duration_us"] / 1e6
    requests = int(data["requests"])
    return Wrk(
        rps=requests / seconds,
        requests=requests,
        seconds=seconds,
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        p999_ms=data["p999"] / 1000,
        max_ms=data["max"] / 1000,
        statuses={k: int(v) for k, v in data["statuses"].items()},
        issued=int(data["issued"]),
        # err_status is wrk's count of non-2xx/3xx: the statuses say more.
        errors={
            k[4:]: int(v)
            for k, v in data.items()
            if k.startswith("err_") and k != "err_status" and v
        },
    )


# --- servers -----------------------------------------------------------------------


def landform_env(data: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANDFORM_")}
    env.update(
        LANDFORM_DATA_DIR=str(data),
        LANDFORM_PUBLIC_URL=f"http://127.0.0.1:{port}",
        LANDFORM_ACCESS_TOKEN_TTL="7200",
    )
    env.update(ROOMY_RATE_LIMITS)
    env.update(extra)
    return env


def start_landform(
    name: str,
    env: dict[str, str],
    port: int,
    workers: int,
    log_path: Path,
    server: str = "granian",
    interface: str = "asgi",
) -> tuple[Proc, str]:
    proc = start_proc(
        name,
        [
            LANDFORM,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--server",
            server,
            "--interface",
            interface,
        ],
        env,
        log_path,
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{base}/healthz", timeout=90)
    log(f"{name} up on {base}; processes under it: {descendants(proc.pid)}")
    return proc, base


def start_bare_handler(
    tmp: Path, workers: int, server: str, interface: str = "asgi"
) -> tuple[Proc, str]:
    """``bare_beacon.py`` (reads the body, parses the JSON, 202) under the same
    server, interface and worker count as Landform: Python's and the
    server's floor."""
    port = free_port()
    tools = Path(LANDFORM).parent
    common = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if server == "uvicorn":
        argv = [str(tools / "uvicorn"), *common, "--log-level", "warning", "--no-access-log"]
        argv += ["--app-dir", str(HERE)]
    else:
        argv = [str(tools / "granian"), "--interface", interface, "--no-ws", *common]
        argv += ["--log-level", "warning", "--working-dir", str(HERE)]
    argv.append("bare_beacon:rsgi_app" if interface == "rsgi" else "bare_beacon:app")
    proc = start_proc("bare handler", argv, dict(os.environ), tmp / "bare.log")
    base = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{base}/healthz", timeout=30)
    return proc, base


def start_nginx_204(tmp: Path) -> tuple[Proc, str]:
    """nginx answering ``POST /analytics/track-view`` with a bare 204 (it
    reads and discards the body): the network floor."""
    root = tmp / "nginx"
    (root / "tmp").mkdir(parents=True)
    for path in (tmp, root):
        path.chmod(0o755)
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(
        textwrap.dedent(
            f"""\
            worker_processes {os.cpu_count() or 2};
            daemon off;
            pid {root}/nginx.pid;
            error_log {root}/error.log warn;
            events {{ worker_connections 4096; }}
            http {{
                access_log off;
                client_body_temp_path {root}/tmp/body;
                proxy_temp_path {root}/tmp/proxy;
                fastcgi_temp_path {root}/tmp/fastcgi;
                uwsgi_temp_path {root}/tmp/uwsgi;
                scgi_temp_path {root}/tmp/scgi;
                tcp_nodelay on;
                keepalive_timeout 75s;
                keepalive_requests 100000000;
                server_tokens off;
                server {{
                    listen 127.0.0.1:{port};
                    location = /healthz {{ return 200 "ok"; }}
                    location = /analytics/track-view {{ return 204; }}
                }}
            }}
            """
        )
    )
    nginx = find_tool("nginx")
    assert nginx
    argv = [nginx, "-p", str(root), "-c", str(conf)]
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr
    match = re.search(r"nginx/(\d+)\.(\d+)", version)
    if match and (int(match.group(1)), int(match.group(2))) >= (1, 19):
        argv[1:1] = ["-e", str(root / "error.log")]
    subprocess.run([*argv, "-t"], check=True, capture_output=True)
    proc = start_proc("nginx", argv, dict(os.environ), root / "stdout.log")
    base = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{base}/healthz", timeout=15)
    return proc, base


# --- databases -------------------------------------------------------------------


def asyncpg_dsn(url: str) -> str:
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def pg(dsn: str, *queries: str, args: tuple[Any, ...] = ()) -> list[list[Any]]:
    """Run each query on a fresh connection; the rows of each."""
    import asyncpg

    async def go() -> list[list[Any]]:
        connection = await asyncpg.connect(asyncpg_dsn(dsn))
        try:
            out = []
            for query in queries:
                out.append(
                    [tuple(r) for r in await connection.fetch(query, *args)]
                    if query.lstrip().upper().startswith(("SELECT", "WITH"))
                    else [await connection.execute(query, *args)]
                )
            return out
        finally:
            await connection.close()

    return asyncio.run(go())


def fresh_pg_database(admin_url: str, name: str) -> str:
    if name in PROTECTED_DATABASES or not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"refusing to drop and create the database {name!r}")
    pg(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")
    return admin_url.rstrip("/").rsplit("/", 1)[0] + f"/{name}"


STREAM_KEY = "landform:analytics:events"  # landform.analytics.stream.STREAM


def stream_length(redis_url: str) -> int:
    """Events in the Redis stream not yet written (acknowledged ones are deleted)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.xlen(STREAM_KEY))
    finally:
        client.close()


def clear_redis_stream(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter("landform:analytics:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class EventStore:
    """The raw events table of one database (SQLite file or PostgreSQL)."""

    def __init__(self, sqlite_path: Path | None = None, pg_url: str = "") -> None:
        self.sqlite_path = sqlite_path
        self.pg_url = pg_url

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.pg_url:
            return pg(self.pg_url, sql)[0]
        assert self.sqlite_path is not None
        con = sqlite3.connect(self.sqlite_path, timeout=30)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def count(self) -> int:
        return int(self.query("SELECT count(*) FROM analytics_events")[0][0])

    def lag(self) -> dict[str, float]:
        total = self.count()
        out: dict[str, float] = {"count": total}
        for name, q in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99)):
            offset = max(0, min(total - 1, int(q * total)))
            rows = self.query(
                "SELECT ingested_ms - received_ms AS lag FROM analytics_events "
                f"ORDER BY lag LIMIT 1 OFFSET {offset}"
            )
            out[name] = float(rows[0][0]) if rows else 0.0
        rows = self.query("SELECT max(ingested_ms - received_ms) FROM analytics_events")
        out["max"] = float(rows[0][0] or 0)
        return out


def wait_for_count(store: EventStore, expected: int, timeout: float) -> tuple[int, float]:
    """Poll until ``expected`` events are stored and the count has been still
    for 2 s (requests in flight when wrk stopped land too), or it stops
    moving for 10 s, or ``timeout``. The count, and the seconds until it
    first reached ``expected`` (or gave up)."""
    t0 = time.monotonic()
    last, last_change, reached = -1, t0, None
    while True:
        count = store.count()
        now = time.monotonic()
        if count != last:
            last, last_change = count, now
        if count >= expected and reached is None:
            reached = now - t0
        still = now - last_change
        if (reached is not None and still > 2) or still > 10 or now - t0 > timeout:
            return count, reached if reached is not None else now - t0
        time.sleep(0.25)


# --- 1. tracking -----------------------------------------------------------------


@dataclass
class TrackResult:
    mode: str
    landform: list[Wrk] = field(default_factory=list)
    nginx: list[Wrk] = field(default_factory=list)
    bare: list[Wrk] = field(default_factory=list)  # bare_beacon.py
    warmup_202: int = 0
    warmup_issued: int = 0
    warmup_other: dict[str, int] = field(default_factory=dict)
    stored_after_wait: int = 0
    waited_s: float = 0.0
    stored_after_stop: int = 0
    stored_at_load_end: int = 0
    backlog_after_wait: int | None = None  # Redis stream length
    backlog_after_stop: int | None = None
    lag: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.warmup_202 + sum(r.count(202) for r in self.landform)

    @property
    def drain_rate(self) -> float:
        """Rows stored per second after the load stopped, while catching up."""
        gained = self.stored_after_wait - self.stored_at_load_end
        return gained / self.waited_s if self.waited_s > 0 else 0.0

    @property
    def issued(self) -> int:
        """Requests sent: the 202s plus other answers plus those still in
        flight when wrk stopped (sent, perhaps accepted, never answered)."""
        return self.warmup_issued + sum(r.issued for r in self.landform)

    @property
    def complete(self) -> bool:
        """Every 202 stored, and nothing stored that was not sent."""
        return self.accepted <= self.stored_after_wait <= self.issued

    @property
    def non_202(self) -> dict[str, int]:
        out = dict(self.warmup_other)
        for r in self.landform:
            for key, n in r.statuses.items():
                if key != "202":
                    out[key] = out.get(key, 0) + n
            for key, n in r.errors.items():
                out[f"socket {key}"] = out.get(f"socket {key}", 0) + n
        return out

    @property
    def rps(self) -> float:
        return median([r.count(202) / r.seconds for r in self.landform])

    @property
    def ratio(self) -> float:
        return median(
            [
                (lf.count(202) / lf.seconds) / (ng.count(204) / ng.seconds)
                for lf, ng in zip(self.landform, self.nginx, strict=True)
            ]
        )


def track_bench(mode: str, args: argparse.Namespace, tmp: Path) -> TrackResult:
    tmp = tmp / f"track-{mode}"
    tmp.mkdir()
    result = TrackResult(mode)
    port = free_port()
    extra = {"LANDFORM_TRUSTED_PROXIES": "127.0.0.1"}
    if mode_database(mode) == "postgres":
        url = fresh_pg_database(args.postgres_url, args.track_database)
        clear_redis_stream(args.redis_url)
        extra.update(
            LANDFORM_DATABASE_URL=url.replace("postgresql://", "postgresql+asyncpg://", 1),
            LANDFORM_REDIS_URL=args.redis_url,
            LANDFORM_MIGRATE_ON_START="true",
        )
        store = EventStore(pg_url=url)
    else:
        store = EventStore(sqlite_path=tmp / "data" / "landform.db")
    env = landform_env(tmp / "data", port, **extra)
    procs: list[Proc] = []
    try:
        landform, base = start_landform(
            f"landform ({mode})",
            env,
            port,
            args.workers,
            tmp / "landform.log",
            args.server,
            mode_interface(mode),
        )
        procs.append(landform)
        session = Session(base=base, env=env)
        set_up_account_and_page(session)
        with httpx.Client(base_url=base, timeout=30) as client:
            pages = check(
                client.get("/landing-pages", headers={"Authorization": f"Bearer {session.token}"}),
                200,
            )
        items = pages["items"] if isinstance(pages, dict) else pages
        page_id = next(p["id"] for p in items if p["slug"] == session.slug)
        body = json.dumps(
            {
                "page_id": page_id,
                "path": "/x",
                "referrer": "https://google.com/",
                "screen_width": 1280,
            },
            separators=(",", ":"),
        )
        # One beacon by hand first: it must be accepted (and is counted).
        probe = httpx.post(
            f"{base}/analytics/track-view",
            content=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": BROWSER_UA,
                "X-Forwarded-For": "192.0.2.1",
            },
        )
        if probe.status_code != 202:
            raise RuntimeError(f"track-view -> {probe.status_code}: {probe.text[:300]}")
        result.warmup_202 += 1
        result.warmup_issued += 1
        if store.count() != 0 and mode_database(mode) == "sqlite":
            log("note: events already in the database before the run")
        nginx, nginx_base = start_nginx_204(tmp)
        procs.append(nginx)
        bare, bare_base = start_bare_handler(tmp, args.workers, args.server, mode_interface(mode))
        procs.append(bare)
        lua = tmp / "track.lua"
        lua.write_text(
            STATUS_LUA
            + TRACK_LUA.replace("BODY", lua_string(body)).replace("UA", lua_string(BROWSER_UA))
        )
        url = {
            "nginx": f"{nginx_base}/analytics/track-view",
            "bare": f"{bare_base}/analytics/track-view",
            "landform": f"{base}/analytics/track-view",
        }
        for server in url:
            log(f"[{mode}] warm-up {server} ({args.warmup:g}s)")
            r = run_wrk(url[server], lua, args.warmup, args.connections, args.threads)
            if server == "landform":
                result.warmup_202 += r.count(202)
                result.warmup_issued += r.issued
                for key, n in r.statuses.items():
                    if key != "202":
                        result.warmup_other[key] = result.warmup_other.get(key, 0) + n
        for round_ in range(1, args.repeats + 1):
            for server in url:
                r = run_wrk(url[server], lua, args.duration, args.connections, args.threads)
                getattr(result, server).append(r)
                ok = 204 if server == "nginx" else 202
                log(
                    f"[{mode}] round {round_}/{args.repeats} {server:8} "
                    f"{r.count(ok) / r.seconds:9.0f} {ok}/s  p50 {r.p50_ms:6.2f} ms  "
                    f"p99 {r.p99_ms:6.2f} ms  statuses {r.statuses} errors {r.errors}"
                )
        nginx.stop(signal.SIGQUIT)
        bare.stop()
        result.stored_at_load_end = store.count()
        log(
            f"[{mode}] {result.accepted:,} accepted (202), {result.stored_at_load_end:,} "
            "stored so far; waiting for the rest in the database"
        )
        result.stored_after_wait, result.waited_s = wait_for_count(
            store, result.accepted, args.ingest_timeout
        )
        result.lag = store.lag()
        log(
            f"[{mode}] stored {result.stored_after_wait:,} of {result.accepted:,} after "
            f"{result.waited_s:.1f}s; lag p50 {result.lag['p50']:.0f} ms "
            f"p99 {result.lag['p99']:.0f} ms max {result.lag['max']:.0f} ms"
        )
        if mode_database(mode) == "postgres":
            result.backlog_after_wait = stream_length(args.redis_url)
        result.errors = server_errors(landform)
        landform.stop()
        result.stored_after_stop = store.count()
        if mode_database(mode) == "postgres":
            result.backlog_after_stop = stream_length(args.redis_url)
            log(
                f"[{mode}] Redis stream backlog: {result.backlog_after_wait:,} after the wait, "
                f"{result.backlog_after_stop:,} after a graceful stop"
            )
        if result.stored_after_stop != result.stored_after_wait:
            log(f"[{mode}] after a graceful stop: {result.stored_after_stop:,} stored")
        return result
    finally:
        for proc in reversed(procs):
            proc.stop()
        if mode_database(mode) == "postgres":
            clear_redis_stream(args.redis_url)


# --- 2./3. reports and custom query -------------------------------------------------


@dataclass
class ReportsResult:
    events: int
    first: str
    last: str
    pages: int
    owner: str
    auth: str
    cases: dict[str, dict[int, Wrk]] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)


def owner_token(
    base: str, env: dict[str, str], db_url: str, email: str, password: str
) -> tuple[str, str]:
    """An access token for the data's owner: logging in when the password
    is known, else one signed with the server's key for their user id."""
    if password:
        with httpx.Client(base_url=base, timeout=30) as client:
            body = check(
                client.post("/auth/login", json={"email": email, "password": password}), 200
            )
        return body["access_token"], "logged in with the owner's password"
    from landform.auth.tokens import AccessTokens

    rows = pg(db_url, "SELECT id FROM users WHERE email = $1", args=(email.lower(),))[0]
    if not rows:
        raise SystemExit(f"no user {email} in the reports database")
    tokens = AccessTokens(env["LANDFORM_SECRET_KEY"], int(env["LANDFORM_ACCESS_TOKEN_TTL"]))
    token = tokens.issue(rows[0][0], dt.datetime.now(dt.UTC))
    return token, "access token signed with the server's key for the owner (no password given)"


def reports_bench(
    args: argparse.Namespace, tmp: Path, procs: list[Proc]
) -> tuple[ReportsResult, str, str, Proc]:
    db_url = args.reports_database_url
    stats = pg(db_url, "SELECT count(*), min(received_ms), max(received_ms) FROM analytics_events")
    events, first_ms, last_ms = stats[0][0]
    if events < args.min_events:
        raise SystemExit(
            f"{db_url} holds {events:,} events, fewer than --min-events {args.min_events:,}: "
            "generate them (landform analytics generate --pages 100 --events 10000000 --days 30) "
            "or pass --skip-reports"
        )
    owner_rows = pg(
        db_url,
        "SELECT p.id FROM landing_pages p JOIN users u ON u.id = p.owner_id "
        "WHERE u.email = $1 AND p.status = 'published' ORDER BY p.id",
        args=(args.owner_email.lower(),),
    )[0]
    page_ids = [str(r[0]) for r in owner_rows]
    if not page_ids:
        raise SystemExit(f"{args.owner_email} has no published pages in {db_url}")

    def stamp(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")

    port = free_port()
    env = landform_env(
        tmp / "reports-data",
        port,
        LANDFORM_DATABASE_URL=db_url,
        LANDFORM_MIGRATE_ON_START="false",
        LANDFORM_ANALYTICS_REPORT_CACHE_SECONDS="0",
        LANDFORM_SECRET_KEY=secrets.token_urlsafe(48),
    )
    landform, base = start_landform(
        "landform (reports)", env, port, args.workers, tmp / "landform-reports.log"
    )
    procs.append(landform)
    token, how = owner_token(base, env, db_url, args.owner_email, args.owner_password)
    result = ReportsResult(
        events=events,
        first=stamp(first_ms),
        last=stamp(last_ms),
        pages=len(page_ids),
        owner=args.owner_email,
        auth=how,
    )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    since = (now - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    auth = {"Authorization": f"Bearer {token}"}
    query = {
        "metrics": ["views", "visitors"],
        "dimensions": ["day", "utm_source"],
        "date_range": {"from": since, "to": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "limit": 1000,
    }
    query_body = json.dumps(query, separators=(",", ":"))
    page_paths = [f"/analytics/pages/{p}?from={since}" for p in page_ids]
    with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
        sample = check(client.get(page_paths[0]), 200)
        result.samples["page"] = (
            f"{len(json.dumps(sample)):,} B JSON, {len(sample.get('series', []))} series points"
        )
        sample = check(client.get("/analytics/dashboard"), 200)
        result.samples["dashboard"] = f"{len(json.dumps(sample)):,} B JSON"
        sample = check(
            client.post(
                "/analytics/custom-query",
                content=query_body,
                headers={"Content-Type": "application/json"},
            ),
            200,
        )
        result.samples["query"] = (
            f"{len(sample.get('rows', []))} rows, {len(json.dumps(sample)):,} B JSON"
        )
    log(f"reports samples: {result.samples}")
    (tmp / "pages.lua").write_text(STATUS_LUA + PATHS_LUA.replace("PATHS", lua_list(page_paths)))
    (tmp / "get.lua").write_text(STATUS_LUA)
    (tmp / "query.lua").write_text(
        STATUS_LUA
        + 'wrk.method = "POST"\n'
        + f"wrk.body = {lua_string(query_body)}\n"
        + 'wrk.headers["Content-Type"] = "application/json"\n'
    )
    cases = {
        "page": (f"{base}/", tmp / "pages.lua"),
        "dashboard": (f"{base}/analytics/dashboard", tmp / "get.lua"),
        "query": (f"{base}/analytics/custom-query", tmp / "query.lua"),
    }
    for name, (url, lua) in cases.items():
        run_wrk(url, lua, args.warmup, args.report_connections, args.threads, auth)
        for connections in (args.report_connections, 1):
            r = run_wrk(url, lua, args.report_duration, connections, args.threads, auth)
            result.cases.setdefault(name, {})[connections] = r
            log(
                f"{name:9} -c{connections:<3} {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
                f"p90 {r.p90_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  max {r.max_ms:6.1f} ms  "
                f"statuses {r.statuses} errors {r.errors}"
            )
    return result, base, token, landform


# --- 4. WebSocket -------------------------------------------------------------------


async def ws_bench(base: str, token: str, held: int, extra: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    uri = base.replace("http://", "ws://") + f"/ws/analytics?access_token={token}"
    open_: list[Any] = []
    readers: list[asyncio.Task[None]] = []
    first: list[float] = []
    more: list[float] = []
    failures: dict[str, int] = {}
    closed: dict[str, int] = {}

    async def drain(ws: Any) -> None:
        try:
            async for _ in ws:
                pass
        except Exception:  # noqa: S110 - a close is counted below
            pass
        code = str(ws.close_code)
        closed[code] = closed.get(code, 0) + 1

    async def one(into: list[float]) -> None:
        t0 = time.perf_counter()
        try:
            ws = await connect(uri, open_timeout=30, max_queue=None)
            hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
        except Exception as exc:  # counted, the run goes on
            key = type(exc).__name__
            failures[key] = failures.get(key, 0) + 1
            return
        into.append((time.perf_counter() - t0) * 1000)
        if hello.get("type") != "hello":
            failures["no hello first"] = failures.get("no hello first", 0) + 1
        open_.append(ws)
        readers.append(asyncio.create_task(drain(ws)))

    async def keepalive() -> None:
        # The server drops a client silent for three heartbeats (20 s each).
        while True:
            await asyncio.sleep(15)
            for ws in list(open_):
                with contextlib.suppress(Exception):
                    await ws.send('{"type":"pong"}')

    pinger = asyncio.create_task(keepalive())
    t0 = time.perf_counter()
    for _ in range(held):
        await one(first)
    held_s = time.perf_counter() - t0
    await asyncio.sleep(2)  # a couple of live ticks with everything open
    still_open = sum(1 for ws in open_ if ws.close_code is None)
    extra_conns_start = len(open_)
    for _ in range(extra):
        await one(more)
    open_at_end = sum(1 for ws in open_ if ws.close_code is None)
    pinger.cancel()
    await asyncio.gather(*(ws.close() for ws in open_), return_exceptions=True)
    await asyncio.gather(*readers, return_exceptions=True)
    closed.pop("1000", None)  # our own closes
    return {
        "held": held,
        "extra": extra,
        "opened_first": len(first),
        "opened_more": len(more),
        "open_before_extra": still_open,
        "open_at_end": open_at_end,
        "extra_from": extra_conns_start,
        "seconds_first": held_s,
        "first_p50": percentile(first, 50) if first else 0.0,
        "first_p99": percentile(first, 99) if first else 0.0,
        "first_max": max(first, default=0.0),
        "more_p50": percentile(more, 50) if more else 0.0,
        "more_p99": percentile(more, 99) if more else 0.0,
        "more_max": max(more, default=0.0),
        "failures": failures,
        "server_closed": closed,
    }


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else max(soft, min(hard, wanted))
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- report --------------------------------------------------------------------------


NON_DEFAULT: dict[str, Any] = {}
OPTION: dict[str, str] = {}
SECRET_OPTIONS = {"owner_password"}


def rerun_command(args: argparse.Namespace) -> str:
    parts = [f".venv/bin/python {SCRIPT}"]
    for key, value in sorted(vars(args).items()):
        if key not in NON_DEFAULT or value == NON_DEFAULT[key]:
            continue
        if isinstance(value, bool):
            parts.append(OPTION[key])
        elif key in SECRET_OPTIONS:
            parts.append(f"{OPTION[key]} '…'")
        else:
            parts.append(
                f"{OPTION[key]} {value:g}" if isinstance(value, float) else f"{OPTION[key]} {value}"
            )
    return " ".join(parts)


def fmt_statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items())) or "none"


def build_section(
    args: argparse.Namespace,
    info: dict[str, str],
    nginx_version: str,
    load_after: str,
    track: list[TrackResult],
    reports: ReportsResult | None,
    ws: dict[str, Any] | None,
    ws_server: str,
    errors: list[str],
) -> str:
    lines = [
        START,
        "## Analytics (`bench/analytics.py`)",
        "",
        "Generated by the script; edits between these markers are overwritten.",
        "",
        f"- Machine: {info['nproc']} CPUs, {info['cpu']}; Python {info['python']}; {nginx_version}",
        f"- Date: {info['date']}; commit `{info['commit']}`",
        f"- Load average before / after the run: {info['load']} / {load_after} "
        "(wrk, nginx, Landform, PostgreSQL, Redis and the WebSocket client share the "
        "machine; other work may too: compare ratios, not absolute numbers)",
        f"- Rerun: `{rerun_command(args)}`",
        "",
    ]
    targets: list[tuple[str, str, bool]] = []
    if track:
        lines += [
            "### POST /analytics/track-view against nginx answering 204",
            "",
            f"`landform serve --workers {args.workers} --server {args.server}` with "
            "`LANDFORM_TRUSTED_PROXIES=127.0.0.1`, each mode on a fresh database. wrk "
            f"`-t{args.threads} -c{args.connections} -d{args.duration:g}s` with a Lua script "
            'POSTing `{"page_id", "path": "/x", "referrer": "https://google.com/", '
            '"screen_width": 1280}` (JSON), a Chrome User-Agent and a different '
            "`X-Forwarded-For` on every request (distinct visitors; the per-address rate "
            "limit is not what is measured), counting every status. nginx "
            f"(`worker_processes {os.cpu_count()}`, `return 204`, same script) is the network "
            "floor; `bench/bare_beacon.py` (a bare Python ASGI handler that reads the body, "
            f"parses its JSON and answers 202; {args.server}, {args.workers} workers, as "
            "Landform) is Python's and the server's floor. "
            f"{args.warmup:g}s warm-up each, rounds alternate nginx/bare handler/Landform, "
            f"median of {args.repeats}. Accepted = 202 responses per second. Modes marked "
            "RSGI: `landform serve --interface rsgi` (the beacon answered natively, "
            "`core/rsgi.py`), and the bare handler under granian's RSGI interface too.",
            "",
            "| Mode | nginx 204/s | bare handler 202/s (/ nginx) | Landform 202/s "
            "| Landform / nginx (median of rounds) | each round | Landform / bare handler "
            "| Landform p50 / p99 ms | non-202 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for t in track:
            rounds = [
                (lf.count(202) / lf.seconds) / (ng.count(204) / ng.seconds)
                for lf, ng in zip(t.landform, t.nginx, strict=True)
            ]
            nginx_rps = median([r.count(204) / r.seconds for r in t.nginx])
            bare_rps = median([r.count(202) / r.seconds for r in t.bare])
            bare_ratio = median(
                [
                    (b.count(202) / b.seconds) / (ng.count(204) / ng.seconds)
                    for b, ng in zip(t.bare, t.nginx, strict=True)
                ]
            )
            lines.append(
                f"| {MODE_LABEL[t.mode]} | {nginx_rps:,.0f} | {bare_rps:,.0f} ({bare_ratio:.0%}) "
                f"| {t.rps:,.0f} | **{t.ratio:.2f}** ({t.ratio:.0%}) "
                f"| {', '.join(f'{r:.2f}' for r in rounds)} | {t.rps / bare_rps:.0%} | "
                f"{median([r.p50_ms for r in t.landform]):.2f} / "
                f"{median([r.p99_ms for r in t.landform]):.2f} | {fmt_statuses(t.non_202)} |"
            )
        lines += [
            "",
            "Completeness and ingestion lag, from the database after the runs. Every 202 "
            "(warm-up and the single probe included) must be a stored row; a few more rows "
            "than 202s are expected: requests in flight when wrk stops (at most one per "
            "connection and run) can be accepted but never answered, so stored rows must lie "
            "between the 202s and the requests sent. Lag is `ingested_ms - received_ms` "
            "over all stored rows (a lower bound when not all are stored yet). The wait "
            f'after the load ends is at most {args.ingest_timeout:g} s; "catch-up" is rows '
            "stored per second during it; the Redis backlog is the stream's length "
            "(events accepted, not yet written).",
            "",
            "| Mode | sent | 202s | stored when load ended | stored after wait (s) "
            "| catch-up rows/s | after graceful stop | Redis backlog after stop "
            "| lag p50 ms | lag p90 ms | lag p99 ms | lag max ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for t in track:
            backlog = "—" if t.backlog_after_stop is None else f"{t.backlog_after_stop:,}"
            lines.append(
                f"| {MODE_LABEL[t.mode]} | {t.issued:,} | {t.accepted:,} "
                f"| {t.stored_at_load_end:,} | {t.stored_after_wait:,} ({t.waited_s:.1f}) "
                f"| {t.drain_rate:,.0f} | {t.stored_after_stop:,} | {backlog} "
                f"| {t.lag['p50']:,.0f} | {t.lag['p90']:,.0f} | {t.lag['p99']:,.0f} "
                f"| {t.lag['max']:,.0f} |"
            )
            label = MODE_LABEL[t.mode]
            targets += [
                (
                    f"track-view ≥ {TARGET_TRACK_RATIO:.0%} of nginx ({label})",
                    f"{t.ratio:.0%}",
                    t.ratio >= TARGET_TRACK_RATIO,
                ),
                (
                    f"track-view ≥ {TARGET_TRACK_RPS:,.0f} events/s at {args.connections} "
                    f"connections ({label})",
                    f"{t.rps:,.0f}/s",
                    t.rps >= TARGET_TRACK_RPS,
                ),
                (
                    f"ingestion lag p99 ≤ {TARGET_LAG_P99_MS / 1000:g} s ({label})",
                    f"{t.lag['p99'] / 1000:.2f} s"
                    + (
                        ""
                        if t.complete
                        else f" (≥; {t.stored_after_wait:,} of {t.accepted:,} stored)"
                    ),
                    t.lag["p99"] <= TARGET_LAG_P99_MS and t.complete,
                ),
                (
                    f"every 202 stored, nothing unsent stored ({label})",
                    f"{t.stored_after_wait - t.accepted:+,} rows vs 202s; "
                    f"{t.issued - t.accepted:,} unanswered",
                    t.complete,
                ),
            ]
        lines.append("")
    if reports:
        r = reports
        lines += [
            f"### Reports and a custom query over {r.events / 1e6:.1f}M events, uncached",
            "",
            f"PostgreSQL database with {r.events:,} events from {r.first} to {r.last} UTC "
            f"(`landform analytics generate`), {r.pages} published pages of `{r.owner}`; "
            f"{r.auth}. `landform serve --workers {args.workers}` with "
            "`LANDFORM_ANALYTICS_REPORT_CACHE_SECONDS=0`. wrk `--latency "
            f"-d{args.report_duration:g}s`, {args.warmup:g}s warm-up, at "
            "1 connection (one request at a time: the latency of an uncached report, which "
            f"the targets are about) and at {args.report_connections} (the machine saturated: "
            "its throughput, and how latency grows when requests queue for two cores). "
            "Page report: `GET /analytics/pages/{id}?from=<30 days ago>`, page ids "
            f"cycled through all {r.pages} ({r.samples.get('page', '')}); dashboard: default "
            f"30 days ({r.samples.get('dashboard', '')}); custom query: views and visitors by "
            f"day × utm_source over 30 days, limit 1000 ({r.samples.get('query', '')}).",
            "",
            "| Request | connections | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms "
            "| non-200 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        names = {
            "page": "GET /analytics/pages/{id}",
            "dashboard": "GET /analytics/dashboard",
            "query": "POST /analytics/custom-query",
        }
        for name, by_c in r.cases.items():
            for c, w in sorted(by_c.items(), reverse=True):
                other = {k: v for k, v in w.statuses.items() if k != "200"}
                other.update({f"socket {k}": v for k, v in w.errors.items()})
                lines.append(
                    f"| {names[name]} | {c} | {w.rps:,.0f} | {w.p50_ms:.2f} | {w.p90_ms:.2f} "
                    f"| {w.p99_ms:.2f} | {w.p999_ms:.2f} | {w.max_ms:.1f} "
                    f"| {fmt_statuses(other)} |"
                )
        for name, limit in (
            ("page", TARGET_REPORT_P99_MS),
            ("dashboard", TARGET_REPORT_P99_MS),
            ("query", TARGET_QUERY_P99_MS),
        ):
            w = r.cases[name][1]
            ok = w.p99_ms <= limit and w.other(200) == 0
            targets.append(
                (
                    f"{names[name]} p99 ≤ {limit:g} ms, uncached, one request at a time",
                    f"{w.p99_ms:.1f} ms",
                    ok,
                )
            )
        lines.append("")
    if ws:
        lines += [
            f"### WebSocket connects with {ws['held']:,} open",
            "",
            f"`/ws/analytics?access_token=…` on {ws_server}. One client process "
            "(`websockets`, asyncio) opens connections one after the other and keeps them "
            "open (reading every message, answering the heartbeat); each connect is timed "
            'from its start to the server\'s first message, `{"type": "hello"}`. Then '
            f"{ws['extra']} more connects are timed while the first ones stay open.",
            "",
            "| Connects | opened | p50 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|",
            f"| 1 … {ws['held']:,} (while opening them; {ws['seconds_first']:.1f} s) "
            f"| {ws['opened_first']:,} | {ws['first_p50']:.2f} | {ws['first_p99']:.2f} "
            f"| {ws['first_max']:.1f} |",
            f"| {ws['extra']} more, with {ws['open_before_extra']:,} open "
            f"| {ws['opened_more']:,} | {ws['more_p50']:.2f} | {ws['more_p99']:.2f} "
            f"| {ws['more_max']:.1f} |",
            "",
            f"Open at the end: {ws['open_at_end']:,}; failed connects: "
            f"{fmt_statuses(ws['failures'])}; closed by the server before the end: "
            f"{fmt_statuses(ws['server_closed'])}.",
            "",
        ]
        ok = (
            ws["open_before_extra"] >= ws["held"]
            and not ws["failures"]
            and ws["more_p99"] <= TARGET_WS_P99_MS
        )
        targets.append(
            (
                f"WebSocket connect p99 ≤ {TARGET_WS_P99_MS:g} ms with {ws['held']:,} open",
                f"{ws['more_p99']:.1f} ms ({ws['open_before_extra']:,} open)",
                ok,
            )
        )
    if errors:
        lines += ["### Errors in the Landform logs during the run", ""]
        lines += [f"- `{line}`" for line in errors[:10]]
        lines.append("")
    lines += ["### Targets", "", "| Target | Measured | Result |", "|---|---:|---|"]
    lines += [f"| {name} | {value} | {verdict(ok)} |" for name, value, ok in targets]
    lines += ["", END]
    return "\n".join(lines)


MODE_LABEL = {
    "sqlite": "SQLite + local spool",
    "postgres": "PostgreSQL + Redis stream",
    # ``landform serve --interface rsgi``: the beacon answered natively.
    "sqlite-rsgi": "SQLite + local spool, RSGI",
    "postgres-rsgi": "PostgreSQL + Redis stream, RSGI",
}


def mode_database(mode: str) -> str:
    """``sqlite`` or ``postgres``: the track mode without its interface."""
    return mode.removesuffix("-rsgi")


def mode_interface(mode: str) -> str:
    return "rsgi" if mode.endswith("-rsgi") else "asgi"


# --- main ------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10, help="seconds per track wrk run (10)")
    p.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per case (3)")
    p.add_argument("--repeats", type=int, default=3, help="alternating track rounds (3)")
    p.add_argument("--connections", type=int, default=64, help="track wrk connections (64)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--workers", type=int, default=2, help="landform serve --workers (2)")
    p.add_argument(
        "--server",
        choices=("granian", "uvicorn"),
        default="granian",
        help="landform serve --server for the tracking runs (granian)",
    )
    p.add_argument(
        "--track-modes",
        default="sqlite,postgres",
        help="comma-separated: sqlite (embedded default), postgres (PostgreSQL + Redis); "
        "each also as sqlite-rsgi, postgres-rsgi (landform serve --interface rsgi)",
    )
    p.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin connection, to create the scratch tracking database",
    )
    p.add_argument(
        "--track-database",
        default="lf_bench_track",
        help="scratch database for the PostgreSQL tracking run; dropped and created",
    )
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    p.add_argument("--ingest-timeout", type=float, default=90, help="seconds to wait (90)")
    p.add_argument(
        "--reports-database-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/lf_gen",
        help="a database filled by `landform analytics generate` (read only here)",
    )
    p.add_argument("--owner-email", default="demo@landform.local", help="the generator's owner")
    p.add_argument(
        "--owner-password",
        default=os.environ.get("LF_BENCH_OWNER_PASSWORD", ""),
        help="to log in as the owner (or LF_BENCH_OWNER_PASSWORD); without it a token is "
        "signed with the server's key",
    )
    p.add_argument("--min-events", type=int, default=10_000_000, help="(10000000)")
    p.add_argument(
        "--report-connections",
        type=int,
        default=8,
        help="connections of the saturated report run, beside the single one (8)",
    )
    p.add_argument("--report-duration", type=float, default=10, help="seconds per wrk run (10)")
    p.add_argument("--ws-connections", type=int, default=1000, help="held open (1000)")
    p.add_argument("--ws-extra", type=int, default=200, help="timed with those open (200)")
    p.add_argument("--skip-track", action="store_true")
    p.add_argument("--skip-reports", action="store_true", help="when there is no 10M database")
    p.add_argument("--skip-ws", action="store_true")
    p.add_argument("--keep-temp", action="store_true", help="keep logs, databases, configs")
    p.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    for action in p._actions:
        if action.dest != "help":
            NON_DEFAULT[action.dest] = action.default
            OPTION[action.dest] = action.option_strings[0]
    return p.parse_args()


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    ensure_tools()
    fds = raise_fd_limit(4 * args.ws_connections + 4096)
    info = machine_info()
    nginx_version = subprocess.run(
        [find_tool("nginx") or "nginx", "-v"], capture_output=True, text=True
    ).stderr.strip()

    def terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    tmp = Path(tempfile.mkdtemp(prefix="landform-analytics-"))
    procs: list[Proc] = []
    errors: list[str] = []
    try:
        track: list[TrackResult] = []
        if not args.skip_track:
            for mode in [m.strip() for m in args.track_modes.split(",") if m.strip()]:
                if mode not in MODE_LABEL:
                    raise SystemExit(f"unknown track mode {mode!r}")
                t = track_bench(mode, args, tmp)
                track.append(t)
                errors += [f"[{mode}] {line}" for line in t.errors]
        reports = ws = None
        ws_server = ""
        ws_proc: Proc | None = None
        ws_base = ws_token = ""
        if not args.skip_reports:
            reports, ws_base, ws_token, ws_proc = reports_bench(args, tmp, procs)
            ws_server = (
                f"the reports server (PostgreSQL, {reports.events:,} events; every connect "
                "also counts the owner's current visitors there)"
            )
        if not args.skip_ws:
            if ws_proc is None:
                port = free_port()
                env = landform_env(tmp / "ws-data", port)
                ws_proc, ws_base = start_landform(
                    "landform (ws)", env, port, args.workers, tmp / "landform-ws.log"
                )
                procs.append(ws_proc)
                session = Session(base=ws_base, env=env)
                set_up_account_and_page(session)
                ws_token = session.token
                ws_server = "a fresh embedded server (SQLite, an owner without traffic)"
            log(f"WebSocket: opening {args.ws_connections} connections (fd limit {fds})")
            ws = asyncio.run(ws_bench(ws_base, ws_token, args.ws_connections, args.ws_extra))
            log(f"WebSocket: {ws}")
        if ws_proc is not None:
            errors += [f"[reports/ws] {line}" for line in server_errors(ws_proc)]
        load_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        for line in errors:
            log(f"landform log: {line}")
        section = build_section(
            args, info, nginx_version, load_after, track, reports, ws, ws_server, errors
        )
        print()
        print(section)
        if not args.no_write:
            write_doc(section, START, END)
        log(f"done in {time.monotonic() - started:.0f}s")
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for proc in reversed(procs):
            proc.stop()
        if args.keep_temp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
