"""Public page benchmark: GET /{slug} against nginx serving the same bytes,
publish-time render cost of a 30-block page, and worker memory with many
published pages.

Rerun with:

    .venv/bin/python bench/public_pages.py

It installs wrk and nginx if missing (apt-get, as root), starts Landform
(``landform serve``, default worker count) and nginx on free ports with fresh
temporary folders, measures, writes its section of docs/benchmarks.md
(between the public_pages markers) and stops everything it started.

Only the ratios between Landform and nginx measured in the same run mean
anything across machines; absolute numbers depend on the host and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import glob
import gzip
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from one_address import ROOMY_RATE_LIMITS

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LANDFORM = str(VENV_BIN / "landform")
DOC = ROOT / "docs" / "benchmarks.md"
START = "<!-- public_pages:start -->"
END = "<!-- public_pages:end -->"
TEMPLATES_DIR = ROOT / "src" / "landform" / "templates" / "data"

# Targets from the spec.
TARGET_RPS_RATIO = 0.40
TARGET_P99_MS = 15.0
TARGET_RENDER_P99_MS = 5.0
TARGET_RSS_MB = 250.0

# Prints one machine-readable line at the end of a wrk run; latencies in us.
WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\": %.0f, \"duration_us\": %.0f, \"bytes\": %.0f, " ..
    "\"err_connect\": %.0f, \"err_read\": %.0f, \"err_write\": %.0f, " ..
    "\"err_status\": %.0f, \"err_timeout\": %.0f, " ..
    "\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"p999\": %.1f, " ..
    "\"max\": %.1f, \"mean\": %.1f}\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- tools -----------------------------------------------------------------------


def ensure_tools() -> None:
    missing = [tool for tool in ("wrk", "nginx") if not find_tool(tool)]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(
            f"missing: {', '.join(missing)}; install them as root: "
            "apt-get update && apt-get install -y wrk nginx"
        )
    log(f"missing {', '.join(missing)}: running apt-get update && apt-get install -y wrk nginx")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "wrk", "nginx"], check=True, env=env)
    # The Debian package starts a system nginx on port 80; this benchmark
    # runs its own, so leave that one alone (it does not use our ports).
    for tool in missing:
        if not find_tool(tool):
            sys.exit(f"{tool} is still missing after apt-get install")


def find_tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )


# --- processes ---------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.popen.poll() is not None:
            return
        log(f"stopping {self.name} (pid {self.pid})")
        # Started in its own process group: the group id is its pid, and holds
        # only the processes it spawned (workers).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(5)


def start_proc(name: str, argv: list[str], env: dict[str, str], log_path: Path) -> Proc:
    handle = open(log_path, "wb")  # noqa: SIM115 - owned by the child
    popen = subprocess.Popen(
        argv,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        # A process group, not a new session: with the kernel's autogroup
        # scheduling (on by default) each session gets an equal CPU share, so
        # a server in its own session would be held to one core against wrk
        # whatever its worker count. In one session every process competes
        # as itself, as on a machine without autogroup.
        process_group=0,
    )
    handle.close()
    log(f"started {name} (pid {popen.pid}): {' '.join(argv)}")
    return Proc(name, popen, log_path)


def wait_http(proc: Proc, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout:.0f}s:\n{proc.tail()}")


def server_errors(proc: Proc) -> list[str]:
    """The exception line of each traceback in a server log, counted once per
    failure: a traceback granian logs again right after Landform logged the
    same exception ("Application callable raised an exception") is skipped."""
    try:
        text = proc.log_path.read_text(errors="replace")
    except OSError:
        return []
    counts: dict[str, int] = {}
    previous = ""
    blocks = text.split("Traceback (most recent call last):")
    for before, block in zip(blocks, blocks[1:], strict=False):
        if "The above exception was" in block or "During handling of the above" in block:
            continue  # a cause; the traceback that follows it is the one to count
        lines = [ln for ln in block.splitlines() if ln and not ln.startswith((" ", "\t"))]
        last = lines[0][:200] if lines else "?"
        name, _, message = last.partition(":")
        normal = name.rsplit(".", 1)[-1] + ":" + message
        relogged = before.rstrip().endswith("Application callable raised an exception")
        if relogged and normal == previous:
            continue
        previous = normal
        counts[normal] = counts.get(normal, 0) + 1
    return [f"{n}× {line}" for line, n in sorted(counts.items(), key=lambda kv: -kv[1])]


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def proc_status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def kb(value: str) -> float:
    return float(value.split()[0]) if value else 0.0


# --- Landform via its HTTP API -------------------------------------------------------


@dataclass
class Session:
    base: str
    env: dict[str, str]
    token: str = ""
    api_key: str = ""
    slug: str = ""
    identity: bytes = b""
    gzipped: bytes = b""
    br_bytes: int = 0
    headers: dict[str, str] = field(default_factory=dict)


def check(response: httpx.Response, expected: int) -> Any:
    if response.status_code != expected:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} -> "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json() if response.content else None


def set_up_account_and_page(s: Session) -> None:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    password = "bench-" + uuid.uuid4().hex  # noqa: S105 - throwaway account
    with httpx.Client(base_url=s.base, timeout=30) as client:
        check(client.post("/auth/register", json={"email": email, "password": password}), 201)
        outbox = subprocess.run(
            [LANDFORM, "mail", "outbox", "--to", email],
            env=s.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        match = re.search(r"token=([A-Za-z0-9_\-.~%]+)", outbox)
        if not match:
            raise RuntimeError(f"no token=... in the outbox:\n{outbox}")
        check(client.post("/auth/verify-email", json={"token": match.group(1)}), 200)
        s.token = check(
            client.post("/auth/login", json={"email": email, "password": password}), 200
        )["access_token"]
        auth = {"Authorization": f"Bearer {s.token}"}
        template_ids = [t["id"] for t in check(client.get("/templates", headers=auth), 200)]
        if "saas-launch" not in template_ids:
            raise RuntimeError(f"template saas-launch not in {template_ids}")
        s.slug = "bench-launch"
        page = check(
            client.post(
                "/landing-pages",
                json={"title": "Bench launch", "slug": s.slug, "template_id": "saas-launch"},
                headers=auth,
            ),
            201,
        )
        check(client.post(f"/landing-pages/{page['id']}/publish", headers=auth), 200)
        s.api_key = check(client.post("/auth/api-keys", json={"name": "bench"}, headers=auth), 201)[
            "key"
        ]

        for encoding in ("identity", "gzip", "br"):
            with client.stream(
                "GET", f"/{s.slug}", headers={"Accept-Encoding": encoding}
            ) as response:
                body = b"".join(response.iter_raw())
                if response.status_code != 200:
                    raise RuntimeError(f"GET /{s.slug} ({encoding}) -> {response.status_code}")
                got = response.headers.get("content-encoding", "identity")
                if got != encoding:
                    raise RuntimeError(f"asked for {encoding}, got Content-Encoding {got}")
                if encoding == "identity":
                    s.identity = body
                    s.headers = dict(response.headers)
                elif encoding == "gzip":
                    s.gzipped = body
                else:
                    s.br_bytes = len(body)
        if gzip.decompress(s.gzipped) != s.identity:
            raise RuntimeError("the gzip variant does not decompress to the identity bytes")


# --- nginx ------------------------------------------------------------------------------


def nginx_conf(root: Path, port: int, slug: str, headers: dict[str, str]) -> str:
    # The same response headers Landform sends (nginx makes its own
    # Content-Length, ETag, Vary and Content-Encoding).
    copied = [
        "cache-control",
        "content-security-policy",
        "x-content-type-options",
        "referrer-policy",
        "x-frame-options",
    ]
    add = "\n".join(
        f"            add_header {name} {json.dumps(headers[name])} always;"
        for name in copied
        if name in headers
    )
    content_type = headers.get("content-type", "text/html; charset=utf-8")
    mime, _, params = content_type.partition(";")
    charset = params.split("=", 1)[1].strip() if "=" in params else "utf-8"
    return textwrap.dedent(
        f"""\
        worker_processes {os.cpu_count() or 2};
        daemon off;
        pid {root}/nginx.pid;
        error_log {root}/error.log warn;
        events {{
            worker_connections 4096;
        }}
        http {{
            access_log off;
            client_body_temp_path {root}/tmp/body;
            proxy_temp_path {root}/tmp/proxy;
            fastcgi_temp_path {root}/tmp/fastcgi;
            uwsgi_temp_path {root}/tmp/uwsgi;
            scgi_temp_path {root}/tmp/scgi;
            sendfile on;
            tcp_nopush on;
            tcp_nodelay on;
            keepalive_timeout 75s;
            keepalive_requests 100000000;
            open_file_cache max=1000 inactive=60s;
            server_tokens off;
            gzip off;
            gzip_static on;
            gzip_vary on;
            types {{ }}
            default_type {mime.strip()};
            charset {charset};
            server {{
                listen 127.0.0.1:{port};
                root {root}/www;
                location = /healthz {{
                    return 200 "ok";
                }}
                location = /{slug} {{
        {add}
                }}
            }}
        }}
        """
    )


def start_nginx(tmp: Path, s: Session) -> tuple[Proc, str]:
    root = tmp / "nginx"
    www = root / "www"
    (root / "tmp").mkdir(parents=True)
    www.mkdir()
    (www / s.slug).write_bytes(s.identity)
    (www / f"{s.slug}.gz").write_bytes(s.gzipped)
    # nginx workers drop to an unprivileged user when started as root.
    for path in (tmp, root, www):
        path.chmod(0o755)
    for path in www.iterdir():
        path.chmod(0o644)
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(nginx_conf(root, port, s.slug, s.headers))
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
    log(f"nginx {version.strip()} master pid {proc.pid} on {base}")
    return proc, base


def verify_same_bytes(nginx_base: str, s: Session) -> None:
    with httpx.Client(base_url=nginx_base, timeout=10) as client:
        for encoding, expected in (("identity", s.identity), ("gzip", s.gzipped)):
            with client.stream("GET", f"/{s.slug}", headers={"Accept-Encoding": encoding}) as r:
                body = b"".join(r.iter_raw())
                if r.status_code != 200 or body != expected:
                    raise RuntimeError(f"nginx serves different bytes for {encoding}")
                if r.headers.get("content-type") != s.headers.get("content-type"):
                    raise RuntimeError(
                        f"nginx Content-Type {r.headers.get('content-type')!r} != "
                        f"{s.headers.get('content-type')!r}"
                    )


# --- wrk ----------------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    bytes_per_request: float
    errors: dict[str, int]
    non_2xx: int


def run_wrk(
    url: str, gzip_: bool, duration: float, args: argparse.Namespace, lua: Path
) -> WrkResult:
    argv = [
        find_tool("wrk") or "wrk",
        "--latency",
        "-t",
        str(args.threads),
        "-c",
        str(args.connections),
        "-d",
        f"{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(lua),
    ]
    if gzip_:
        argv += ["-H", "Accept-Encoding: gzip"]
    argv.append(url)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    match = re.search(r"^WRKJSON (\{.*\})$", out, re.M)
    if not match:
        raise RuntimeError(f"no WRKJSON line in wrk output:\n{out}")
    data = json.loads(match.group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    requests = int(data["requests"])
    return WrkResult(
        rps=requests / (data["duration_us"] / 1e6),
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        requests=requests,
        bytes_per_request=data["bytes"] / max(requests, 1),
        errors={k[4:]: int(v) for k, v in data.items() if k.startswith("err_") and v},
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def wrk_rounds(
    targets: dict[str, str], args: argparse.Namespace, tmp: Path
) -> dict[tuple[str, str], list[WrkResult]]:
    lua = tmp / "report.lua"
    lua.write_text(WRK_LUA)
    order = [(server, enc) for enc in ("identity", "gzip") for server in ("nginx", "landform")]
    for server, enc in order:
        log(f"warm-up {server} {enc} ({args.warmup:g}s)")
        run_wrk(targets[server], enc == "gzip", args.warmup, args, lua)
    results: dict[tuple[str, str], list[WrkResult]] = {key: [] for key in order}
    for round_ in range(1, args.repeats + 1):
        for server, enc in order:
            r = run_wrk(targets[server], enc == "gzip", args.duration, args, lua)
            results[(server, enc)].append(r)
            problems = ""
            if r.errors or r.non_2xx:
                problems = f"  errors={r.errors} non-2xx={r.non_2xx}"
            log(
                f"round {round_}/{args.repeats} {server:8} {enc:8} {r.rps:9.0f} req/s  "
                f"p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
                f"{r.bytes_per_request:7.0f} B/resp{problems}"
            )
    return results


# --- in-process render --------------------------------------------------------------------


def render_bench(args: argparse.Namespace) -> dict[str, Any]:
    from landform.pages.blocks import PageContent
    from landform.pages.render import RenderInput, Seo, render_page
    from landform.pages.service import render_version

    templates = [
        json.loads(Path(p).read_text()) for p in sorted(glob.glob(str(TEMPLATES_DIR / "*.json")))
    ]
    pool = [block for t in templates for block in t["blocks"]]
    blocks = [pool[i % len(pool)] for i in range(args.blocks)]
    content = {"theme": templates[0]["theme"], "blocks": blocks}
    page_id = uuid.uuid4()
    slug, title, public_url = "bench-30-blocks", "Thirty blocks", "http://127.0.0.1:8000"
    seo: dict[str, Any] = {}
    parsed = PageContent.model_validate(content)
    render_input = RenderInput(
        page_id=str(page_id),
        slug=slug,
        title=title,
        seo=Seo(),
        content=parsed,
        public_url=public_url,
    )
    sample = render_version(page_id, slug, title, seo, content, public_url)
    cases: dict[str, Callable[[], object]] = {
        "render_version": lambda: render_version(page_id, slug, title, seo, content, public_url),
        "render_page": lambda: render_page(render_input),
    }
    out: dict[str, Any] = {
        "blocks": len(blocks),
        "types": sorted({b["type"] for b in blocks}),
        "html_bytes": len(sample.html),
        "gzip_bytes": len(sample.html_gzip),
        "br_bytes": len(sample.html_br),
    }
    for name, fn in cases.items():
        for _ in range(args.render_warmup):
            fn()
        times: list[float] = []
        deadline = time.perf_counter() + args.render_budget
        while len(times) < args.render_iterations and (
            time.perf_counter() < deadline or len(times) < 200
        ):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = {
            "n": len(times),
            "p50": percentile(times, 50),
            "p99": percentile(times, 99),
            "max": max(times),
        }
        log(
            f"{name}: {len(times)} iterations, p50 {out[name]['p50']:.2f} ms, "
            f"p99 {out[name]['p99']:.2f} ms"
        )
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# --- memory with many published pages -------------------------------------------------


async def publish_many(s: Session, count: int, concurrency: int, budget: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {s.api_key}"}
    async with httpx.AsyncClient(base_url=s.base, headers=headers, timeout=60) as client:
        templates = [t["id"] for t in (await client.get("/templates")).json()]
    statuses: dict[str, int] = {}
    slugs: list[str] = []
    latencies: list[float] = []
    next_index = 0
    deadline = time.monotonic() + budget
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index
        while next_index < count and time.monotonic() < deadline:
            i = next_index
            next_index += 1
            slug = f"mem-{i:05d}"
            t0 = time.perf_counter()
            created = await client.post(
                "/landing-pages",
                json={
                    "title": f"Page {i}",
                    "slug": slug,
                    "template_id": templates[i % len(templates)],
                },
            )
            key = f"create {created.status_code}"
            statuses[key] = statuses.get(key, 0) + 1
            if created.status_code != 201:
                continue
            published = await client.post(f"/landing-pages/{created.json()['id']}/publish")
            key = f"publish {published.status_code}"
            statuses[key] = statuses.get(key, 0) + 1
            latencies.append((time.perf_counter() - t0) * 1000)
            if published.status_code == 200:
                slugs.append(slug)

    t0 = time.monotonic()
    async with httpx.AsyncClient(
        base_url=s.base, headers=headers, timeout=60, limits=limits
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    elapsed = time.monotonic() - t0
    return {
        "requested": count,
        "published": len(slugs),
        "seconds": elapsed,
        "per_second": len(slugs) / elapsed if elapsed else 0.0,
        "statuses": statuses,
        "create_publish_p50_ms": percentile(latencies, 50) if latencies else 0.0,
        "create_publish_p99_ms": percentile(latencies, 99) if latencies else 0.0,
        "stopped_at_budget": len(slugs) < count and time.monotonic() >= deadline,
        "slugs": slugs,
    }


READ_LUA = r"""
local paths = {}
for line in io.lines(os.getenv("LF_BENCH_SLUGS")) do paths[#paths + 1] = "/" .. line end
local threads = 0
setup = function(thread)
  thread:set("thread_index", threads)
  threads = threads + 1
end
local i = 0
init = function(args)
  local start, count = tonumber(args[1]), tonumber(args[2])
  i = (start + thread_index * math.floor(#paths / count)) % #paths
end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], {["Accept-Encoding"] = "gzip, br"})
end
"""


def read_all(base: str, slugs: list[str], args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Request every slug about ``--read-passes`` times with wrk, each wrk
    thread walking the whole list from its own offset, in short runs until
    enough requests were made."""
    slug_file = tmp / "slugs.txt"
    slug_file.write_text("\n".join(slugs) + "\n")
    lua = tmp / "read.lua"
    lua.write_text(READ_LUA + WRK_LUA)
    env = {**os.environ, "LF_BENCH_SLUGS": str(slug_file)}
    wanted = args.read_passes * len(slugs)
    done = errors = non_2xx = 0
    t0 = time.monotonic()
    while done < wanted:
        start = done // args.threads
        argv = [
            find_tool("wrk") or "wrk",
            "-t",
            str(args.threads),
            "-c",
            str(args.read_connections),
            "-d",
            "5s",
            "--timeout",
            "10s",
            "-s",
            str(lua),
            f"{base}/",
            "--",
            str(start),
            str(args.threads),
        ]
        out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env).stdout
        data = json.loads(re.search(r"^WRKJSON (\{.*\})$", out, re.M).group(1))  # type: ignore[union-attr]
        done += int(data["requests"])
        errors += sum(int(v) for k, v in data.items() if k.startswith("err_") and k != "err_status")
        non_2xx += int(data["err_status"])
    return {
        "requests": done,
        "seconds": time.monotonic() - t0,
        "errors": errors,
        "non_2xx": non_2xx,
    }


def seed_copies(db_path: Path, sources: list[str], count: int) -> list[str]:
    """Copy published pages (and their live versions) under new slugs, straight
    into the SQLite database: the same rows, sizes and bytes publishing makes,
    without the render each publish pays for. Only slugs never requested yet
    are added, so no worker holds a stale "missing" entry for them."""
    import sqlite3

    def columns(con: sqlite3.Connection, table: str) -> list[str]:
        return [row[1] for row in con.execute(f"PRAGMA table_info({table})")]

    con = sqlite3.connect(db_path, timeout=30)
    try:
        page_cols = columns(con, "landing_pages")
        version_cols = columns(con, "page_versions")
        source_rows = {}
        for slug in sources[:64]:
            page_id = con.execute(
                "SELECT id FROM landing_pages WHERE slug = ? AND status = 'published'", (slug,)
            ).fetchone()[0]
            source_rows[slug] = page_id
        ids = list(source_rows.values())
        # Uuid columns on SQLite are 32 hex characters.
        override_page = {"id": ":id", "slug": ":slug", "title": ":title"}
        override_version = {"id": ":vid", "page_id": ":id", "slug": ":slug", "title": ":title"}
        insert_page = (
            f"INSERT INTO landing_pages ({', '.join(page_cols)}) SELECT "
            + ", ".join(override_page.get(c, c) for c in page_cols)
            + " FROM landing_pages WHERE id = :src"
        )
        insert_version = (
            f"INSERT INTO page_versions ({', '.join(version_cols)}) SELECT "
            + ", ".join(override_version.get(c, "v." + c) for c in version_cols)
            + " FROM page_versions v JOIN landing_pages p ON v.page_id = p.id "
            "AND v.number = p.published_number WHERE p.id = :src"
        )
        slugs = []
        with con:
            for i in range(count):
                slug = f"seed-{i:05d}"
                params = {
                    "id": uuid.uuid4().hex,
                    "vid": uuid.uuid4().hex,
                    "slug": slug,
                    "title": f"Seeded {i}",
                    "src": ids[i % len(ids)],
                }
                con.execute(insert_page, params)
                con.execute(insert_version, params)
                slugs.append(slug)
        return slugs
    finally:
        con.close()


def memory_bench(s: Session, landform: Proc, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    def snapshot() -> list[dict[str, Any]]:
        rows = []
        for pid in descendants(landform.pid):
            status = proc_status(pid)
            rows.append(
                {
                    "pid": pid,
                    "cmd": cmdline(pid)[:80],
                    "rss_mb": kb(status.get("VmRSS", "")) / 1024,
                    "anon_mb": kb(status.get("RssAnon", "")) / 1024,
                    "file_mb": kb(status.get("RssFile", "")) / 1024
                    + kb(status.get("RssShmem", "")) / 1024,
                    "hwm_mb": kb(status.get("VmHWM", "")) / 1024,
                }
            )
        return rows

    before = snapshot()
    log(f"workers before: {[(r['pid'], round(r['rss_mb'], 1)) for r in before]}")
    log(f"creating and publishing {args.pages} pages (concurrency {args.publish_concurrency})")
    published = asyncio.run(
        publish_many(s, args.pages, args.publish_concurrency, args.publish_budget)
    )
    log(
        f"published {published['published']} pages in {published['seconds']:.1f}s "
        f"({published['per_second']:.0f}/s) statuses={published['statuses']}"
    )
    seeded = {"count": 0, "seconds": 0.0}
    missing = args.pages - published["published"]
    if missing > 0 and published["slugs"] and args.seed_rest:
        log(
            f"publishing through the API is too slow for the budget: copying {missing} "
            "published pages directly in the database"
        )
        t0 = time.monotonic()
        published["slugs"] += seed_copies(
            Path(s.env["LANDFORM_DATA_DIR"]) / "landform.db", published["slugs"], missing
        )
        seeded = {"count": missing, "seconds": time.monotonic() - t0}
    reads = read_all(s.base, published["slugs"], args, tmp)
    log(
        f"read each slug ~{args.read_passes}x: {reads['requests']} requests in "
        f"{reads['seconds']:.1f}s ({reads['requests'] / reads['seconds']:.0f}/s), "
        f"errors {reads['errors']}, non-2xx {reads['non_2xx']}"
    )
    after = snapshot()
    main_status = proc_status(landform.pid)
    log(f"workers after: {[(r['pid'], round(r['rss_mb'], 1)) for r in after]}")
    published.pop("slugs")
    return {
        "publish": published,
        "seeded": seeded,
        "reads": reads,
        "before": before,
        "after": after,
        "main_rss_mb": kb(main_status.get("VmRSS", "")) / 1024,
    }


# --- report ---------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        or "unknown"
    )
    # --no-optional-locks: a read that never takes the index lock others may hold.
    dirty = subprocess.run(
        ["git", "--no-optional-locks", "status", "--porcelain", "--", "src"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + (" (with uncommitted changes in src/)" if dirty else ""),
        "load": " ".join(load),
        "python": sys.version.split()[0],
    }


def verdict(ok: bool) -> str:
    return "**pass**" if ok else "**FAIL**"


def build_section(
    args: argparse.Namespace,
    info: dict[str, str],
    wrk: dict[tuple[str, str], list[WrkResult]] | None,
    render: dict[str, Any] | None,
    memory: dict[str, Any] | None,
    page: Session,
    nginx_version: str,
    load_after: str,
    errors: list[str],
) -> str:
    command = ".venv/bin/python bench/public_pages.py" + "".join(
        f" {OPTION[k]}"
        + ("" if isinstance(v, bool) else f" {v:g}" if isinstance(v, float) else f" {v}")
        for k, v in sorted(vars(args).items())
        if k in NON_DEFAULT and v != NON_DEFAULT[k]
    )
    lines = [
        START,
        "## Public pages (`bench/public_pages.py`)",
        "",
        "Generated by the script; edits between these markers are overwritten.",
        "",
        f"- Machine: {info['nproc']} CPUs, {info['cpu']}; Python {info['python']}; {nginx_version}",
        f"- Date: {info['date']}; commit `{info['commit']}`",
        f"- Load average before / after the run: {info['load']} / {load_after} "
        "(other work may share the machine: compare ratios, not absolute numbers)",
        f"- Rerun: `{command}`",
        "",
    ]
    targets: list[tuple[str, str, bool]] = []
    if wrk:
        lines += [
            "### GET /{slug}: Landform vs nginx serving the same bytes",
            "",
            f"The `saas-launch` template page, published through the API "
            f"({len(page.identity):,} B identity, {len(page.gzipped):,} B gzip). "
            f"`landform serve` with its default workers (one per core) on granian; nginx "
            f"with `worker_processes {os.cpu_count()}`, `access_log off`, keep-alive, "
            f"`gzip_static on` and the same headers. "
            f"wrk `-t{args.threads} -c{args.connections} -d{args.duration:g}s --latency`, "
            f"{args.warmup:g}s warm-up each, runs alternating nginx/Landform, "
            f"median of {args.repeats} runs. wrk, nginx and Landform share the machine's "
            f"cores and one session: with the kernel's autogroup scheduling, a server "
            f"started in a session of its own is held to one core's share against wrk "
            f"(Landform measured ~23k req/s that way against ~35k here), so neither "
            f"server gets one.",
            "",
            "| Encoding | Server | req/s | p50 ms | p90 ms | p99 ms | errors / non-2xx |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for enc in ("identity", "gzip"):
            for server in ("nginx", "landform"):
                runs = wrk[(server, enc)]
                errs = sum(sum(r.errors.values()) for r in runs)
                non2 = sum(r.non_2xx for r in runs)
                lines.append(
                    f"| {enc} | {server} | {median([r.rps for r in runs]):,.0f} | "
                    f"{median([r.p50_ms for r in runs]):.2f} | "
                    f"{median([r.p90_ms for r in runs]):.2f} | "
                    f"{median([r.p99_ms for r in runs]):.2f} | {errs} / {non2} |"
                )
        lines += [
            "",
            "Landform / nginx: the ratio of the medians above, and each round's ratio "
            "(nginx and Landform measured back to back); the targets use the median of "
            "the rounds' ratios, which is less sensitive to other load on the machine.",
            "",
            "| Encoding | req/s, ratio of medians | req/s, each round | median of rounds "
            "| p99, Landform / nginx |",
            "|---|---:|---:|---:|---:|",
        ]
        for enc in ("identity", "gzip"):
            lf, ng = wrk[("landform", enc)], wrk[("nginx", enc)]
            of_medians = median([r.rps for r in lf]) / median([r.rps for r in ng])
            rounds = [a.rps / b.rps for a, b in zip(lf, ng, strict=True)]
            ratio = median(rounds)
            p99 = median([r.p99_ms for r in lf])
            p99_ratio = p99 / median([r.p99_ms for r in ng])
            lines.append(
                f"| {enc} | {of_medians:.2f} | {', '.join(f'{r:.2f}' for r in rounds)} | "
                f"**{ratio:.2f}** ({ratio:.0%}) | {p99_ratio:.1f}× |"
            )
            targets.append(
                (
                    f"GET /{{slug}} {enc}: req/s ≥ {TARGET_RPS_RATIO:.0%} of nginx",
                    f"{ratio:.0%}",
                    ratio >= TARGET_RPS_RATIO,
                )
            )
            targets.append(
                (
                    f"GET /{{slug}} {enc}: p99 ≤ {TARGET_P99_MS:g} ms "
                    f"at {args.connections} connections",
                    f"{p99:.2f} ms",
                    p99 <= TARGET_P99_MS,
                )
            )
        lines.append("")
    if render:
        lines += [
            f"### Page render, {render['blocks']} blocks (in-process)",
            "",
            f"{render['blocks']} blocks cycled from the templates in "
            f"`src/landform/templates/data/` ({', '.join(render['types'])}): "
            f"{render['html_bytes']:,} B HTML, {render['gzip_bytes']:,} B gzip, "
            f"{render['br_bytes']:,} B brotli. `render_version` is the publish-time render "
            "(validate + HTML + gzip + brotli + ETag); `render_page` is the HTML alone.",
            "",
            "| Function | iterations | p50 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in ("render_version", "render_page"):
            r = render[name]
            lines.append(
                f"| `{name}` | {r['n']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['max']:.2f} |"
            )
            targets.append(
                (
                    f"`{name}` p99 ≤ {TARGET_RENDER_P99_MS:g} ms ({render['blocks']} blocks)",
                    f"{r['p99']:.2f} ms",
                    r["p99"] <= TARGET_RENDER_P99_MS,
                )
            )
        lines.append("")
    if memory:
        pub, reads, seeded = memory["publish"], memory["reads"], memory["seeded"]
        total = pub["published"] + seeded["count"]
        workers = memory["after"]
        max_rss = max((w["rss_mb"] for w in workers), default=0.0)
        max_hwm = max((w["hwm_mb"] for w in workers), default=0.0)
        before = max((w["rss_mb"] for w in memory["before"]), default=0.0)
        complete = total >= pub["requested"]
        lines += [
            f"### Worker memory with {total:,} published pages",
            "",
            f"Pages created and published through the API with an API key "
            f"({args.publish_concurrency} concurrent clients, templates cycled): "
            f"{pub['published']:,} of {pub['requested']:,} in {pub['seconds']:.0f} s "
            f"({pub['per_second']:.0f} pages/s; create+publish p50 "
            f"{pub['create_publish_p50_ms']:.0f} ms, p99 {pub['create_publish_p99_ms']:.0f} ms; "
            f"responses {pub['statuses']})"
            + (
                f" — **stopped at the {args.publish_budget:g} s budget**"
                if pub["stopped_at_budget"]
                else ""
            )
            + (
                f"; the other {seeded['count']:,} pages were copied from those published "
                f"ones directly in the database ({seeded['seconds']:.1f} s: same rows, "
                "same bytes per page, no render)"
                if seeded["count"]
                else ""
            )
            + f". Then every slug was read about {args.read_passes}× with wrk "
            f"({reads['requests']:,} requests, {args.read_connections} connections, "
            f"{reads['seconds']:.0f} s = {reads['requests'] / reads['seconds']:,.0f} req/s, "
            f"errors {reads['errors']}, non-2xx {reads['non_2xx']}) so each worker loads "
            f"every page (as far as its store budget allows). RSS from `/proc/<pid>/status`.",
            "",
            "| Process | RSS before MB | RSS after MB | of which anon / file MB "
            "| peak (VmHWM) MB |",
            "|---|---:|---:|---:|---:|",
        ]
        before_by_pid = {w["pid"]: w["rss_mb"] for w in memory["before"]}
        for w in workers:
            lines.append(
                f"| worker pid {w['pid']} | {before_by_pid.get(w['pid'], 0):.1f} | "
                f"{w['rss_mb']:.1f} | {w['anon_mb']:.1f} / {w['file_mb']:.1f} | "
                f"{w['hwm_mb']:.1f} |"
            )
        lines.append(
            f"| `landform serve` (pid {memory['landform_pid']}) | | "
            f"{memory['main_rss_mb']:.1f} | | |"
        )
        from landform.settings import Settings

        budget = int(
            os.environ.get(
                "LANDFORM_PAGE_STORE_BYTES", Settings.model_fields["page_store_bytes"].default
            )
        )
        # The store counts identity + gzip + brotli + 1 KiB per page.
        per_page = len(page.identity) + len(page.gzipped) + page.br_bytes + 1024
        lines += [
            "",
            f"Max worker RSS {max_rss:.1f} MB (was {before:.1f} MB with one page; "
            f"peak {max_hwm:.1f} MB). Each worker's page store is bounded by "
            f"`LANDFORM_PAGE_STORE_BYTES` = {budget / 2**20:.0f} MiB, about "
            f"{budget // per_page:,} pages of the `saas-launch` size ({per_page:,} B each), "
            "so with more published pages than that the store evicts and the RSS "
            "measures that bound plus the worker's own overhead, not all pages.",
            "",
        ]
        targets.append(
            (
                f"Worker RSS ≤ {TARGET_RSS_MB:g} MB with {pub['requested']:,} published pages",
                f"{max_rss:.1f} MB" + ("" if complete else f" (only {total:,} published)"),
                max_rss <= TARGET_RSS_MB and complete,
            )
        )
    if errors:
        lines += ["### Errors in the Landform log during the run", ""]
        lines += [f"- `{line}`" for line in errors[:10]]
        lines.append("")
    lines += ["### Targets", "", "| Target | Measured | Result |", "|---|---:|---|"]
    lines += [f"| {name} | {value} | {verdict(ok)} |" for name, value, ok in targets]
    lines += ["", END]
    return "\n".join(lines)


def write_doc(section: str, start: str = START, end: str = END) -> None:
    """Put ``section`` between its markers in docs/benchmarks.md (appended the first time)."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = (
        DOC.read_text()
        if DOC.exists()
        else (
            "# Benchmarks\n\n"
            "Each section is written by the benchmark named in its heading; rerun it to "
            "refresh the section. Ratios against a baseline measured in the same run are "
            "what to compare across machines.\n"
        )
    )
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)
    log(f"wrote {DOC.relative_to(ROOT)}")


# --- main ---------------------------------------------------------------------------------

NON_DEFAULT: dict[str, Any] = {}
OPTION: dict[str, str] = {}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk run (10)")
    p.add_argument("--warmup", type=float, default=3, help="seconds of wrk warm-up per case (3)")
    p.add_argument("--repeats", type=int, default=3, help="alternating rounds (3)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--blocks", type=int, default=30, help="blocks in the render page (30)")
    p.add_argument("--render-iterations", type=int, default=2000, help="per function (2000)")
    p.add_argument("--render-warmup", type=int, default=20, help="untimed renders first (20)")
    p.add_argument(
        "--render-budget",
        type=float,
        default=20,
        help="seconds per render function; stops early (≥ 200 iterations) when exceeded (20)",
    )
    p.add_argument("--pages", type=int, default=10_000, help="published pages for memory (10000)")
    p.add_argument("--publish-concurrency", type=int, default=16, help="(16)")
    p.add_argument(
        "--publish-budget",
        type=float,
        default=60,
        help="seconds allowed for creating+publishing through the API (60)",
    )
    p.add_argument(
        "--no-seed-rest",
        dest="seed_rest",
        action="store_false",
        help="when the publish budget runs out, measure with fewer pages instead of "
        "copying published pages in the database up to --pages",
    )
    p.add_argument("--read-passes", type=int, default=4, help="reads of each slug (4)")
    p.add_argument("--read-connections", type=int, default=32, help="wrk connections (32)")
    p.add_argument("--skip-wrk", action="store_true")
    p.add_argument("--skip-render", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--keep-temp", action="store_true", help="keep logs, database, configs")
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
    info = machine_info()
    nginx_version = subprocess.run(
        [find_tool("nginx") or "nginx", "-v"], capture_output=True, text=True
    ).stderr.strip()

    # SIGTERM takes the same way out as Ctrl-C, so the finally below runs.
    def terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    tmp = Path(tempfile.mkdtemp(prefix="landform-bench-"))
    procs: list[Proc] = []
    try:
        port = free_port()
        env = {
            **os.environ,
            "LANDFORM_DATA_DIR": str(tmp / "data"),
            "LANDFORM_PUBLIC_URL": f"http://127.0.0.1:{port}",
            **ROOMY_RATE_LIMITS,
        }
        for key in ("LANDFORM_DATABASE_URL", "LANDFORM_REDIS_URL", "LANDFORM_SMTP_URL"):
            env.pop(key, None)
        landform = start_proc(
            "landform",
            [LANDFORM, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env,
            tmp / "landform.log",
        )
        procs.append(landform)
        session = Session(base=f"http://127.0.0.1:{port}", env=env)
        wait_http(landform, f"{session.base}/healthz")
        workers = descendants(landform.pid)
        log(f"landform up on {session.base}; processes under it: {workers}")

        set_up_account_and_page(session)
        log(
            f"published /{session.slug}: {len(session.identity):,} B identity, "
            f"{len(session.gzipped):,} B gzip"
        )

        wrk_results = None
        if not args.skip_wrk:
            nginx, nginx_base = start_nginx(tmp, session)
            procs.append(nginx)
            verify_same_bytes(nginx_base, session)
            wrk_results = wrk_rounds(
                {
                    "nginx": f"{nginx_base}/{session.slug}",
                    "landform": f"{session.base}/{session.slug}",
                },
                args,
                tmp,
            )
            nginx.stop(signal.SIGQUIT)

        render = None if args.skip_render else render_bench(args)

        memory = None
        if not args.skip_memory:
            memory = memory_bench(session, landform, args, tmp)
            memory["landform_pid"] = landform.pid

        if landform.popen.poll() is not None:
            raise RuntimeError(f"landform exited during the run:\n{landform.tail()}")
        load_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        errors = server_errors(landform)
        for line in errors:
            log(f"landform log: {line}")
        section = build_section(
            args, info, wrk_results, render, memory, session, nginx_version, load_after, errors
        )
        print()
        print(section)
        if not args.no_write:
            write_doc(section)
        log(f"done in {time.monotonic() - started:.0f}s")
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for proc in reversed(procs):
            proc.stop()
        if args.keep_temp:
            log(f"kept {tmp} (server logs, database, nginx config)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
