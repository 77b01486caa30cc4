"""Files and assets: upload latency and rate, and ``GET /assets/{file}``
against nginx serving the same files in the same run.

- Uploads: distinct 5 MB files (MP4: inspection reads its box structure)
  from 4 concurrent uploaders; p50/p99 latency and files per minute.
- Small asset: a ~50 KB PNG, requests/s (wrk -c64) against nginx.
- Large asset: a 20 MB MP4, MB/s (wrk -c4) against nginx (sendfile).

    .venv/bin/python bench/assets.py [--uploads 80] [--duration 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import statistics
import struct
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from one_address import ROOMY_RATE_LIMITS  # noqa: E402 - a sibling module
from public_pages import (  # noqa: E402 - the sibling benchmark's helpers
    LANDFORM,
    WRK_LUA,
    Proc,
    Session,
    ensure_tools,
    find_tool,
    free_port,
    log,
    machine_info,
    median,
    percentile,
    run_wrk,
    set_up_account_and_page,
    start_proc,
    verdict,
    wait_http,
    write_doc,
)

START = "<!-- assets:start -->"
END = "<!-- assets:end -->"
MB = 1024 * 1024
DESCRIPTION = {"small": "~50 KB PNG, wrk -c64", "large": "20 MB MP4, wrk -c4"}


def mp4(size: int, seed: int) -> bytes:
    ftyp = struct.pack(">I4s", 24, b"ftyp") + b"isom\x00\x00\x02\x00isommp41"
    moov = struct.pack(">I4s", 16, b"moov") + struct.pack(">I4s", 8, b"free")
    payload = os.urandom(64) + seed.to_bytes(8, "big")
    media = (payload * (size // len(payload) + 1))[: size - len(ftyp) - len(moov) - 8]
    return ftyp + moov + struct.pack(">I4s", 8 + len(media), b"mdat") + media


def png_about(target: int) -> bytes:
    side = 128
    while True:
        buffer = io.BytesIO()
        Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
        if buffer.tell() >= target:
            return buffer.getvalue()
        side += 16


async def upload_bench(
    base: str, key: str, count: int, size: int, concurrency: int
) -> dict[str, float]:
    files = [mp4(size, i) for i in range(count)]
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for data in files:
        queue.put_nowait(data)

    async def uploader(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            data = queue.get_nowait()
            started = time.perf_counter()
            response = await client.post(
                "/files/upload", files={"file": ("clip.mp4", data, "video/mp4")}
            )
            latencies.append(time.perf_counter() - started)
            if response.status_code != 201:
                raise RuntimeError(f"upload -> {response.status_code}: {response.text[:300]}")

    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(uploader(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "count": count,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "files_per_min": count / elapsed * 60,
        "mb_per_s": count * size / MB / elapsed,
    }


def nginx_for(tmp: Path, files: dict[str, bytes]) -> tuple[Proc, str]:
    root = tmp / "nginx"
    www = root / "www" / "assets"
    www.mkdir(parents=True)
    (root / "tmp").mkdir()
    for name, data in files.items():
        (www / name).write_bytes(data)
        (www / name).chmod(0o644)
    for path in (tmp, root, root / "www", www):
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
                sendfile on; tcp_nopush on; tcp_nodelay on;
                keepalive_requests 100000000;
                open_file_cache max=1000 inactive=60s;
                types {{ image/png png; video/mp4 mp4; }}
                server {{
                    listen 127.0.0.1:{port};
                    root {root}/www;
                    location = /healthz {{ return 200 "ok"; }}
                    location /assets/ {{
                        add_header Cache-Control "public, max-age=31536000, immutable";
                        add_header X-Content-Type-Options nosniff;
                    }}
                }}
            }}
            """
        )
    )
    nginx = find_tool("nginx")
    assert nginx
    proc = start_proc(
        "nginx", [nginx, "-p", str(root), "-c", str(conf)], dict(os.environ), root / "out.log"
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{base}/healthz", timeout=15)
    return proc, base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=80, help="5 MB uploads (80)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run (8)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds (3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="landform-assets-"))
    lua = tmp / "report.lua"
    lua.write_text(WRK_LUA)
    procs: list[Proc] = []
    try:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LANDFORM_")}
        env.update(
            LANDFORM_DATA_DIR=str(tmp / "data"), LANDFORM_PUBLIC_URL=f"http://127.0.0.1:{port}"
        )
        env.update(ROOMY_RATE_LIMITS)
        env["LANDFORM_MAX_UPLOAD_BYTES"] = str(32 * MB)
        env["LANDFORM_STORAGE_QUOTA_BYTES"] = str(4096 * MB)
        landform = start_proc(
            "landform",
            [LANDFORM, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env,
            tmp / "landform.log",
        )
        procs.append(landform)
        base = f"http://127.0.0.1:{port}"
        wait_http(landform, f"{base}/healthz")
        session = Session(base=base, env=env)
        set_up_account_and_page(session)

        log(f"uploading {args.uploads} distinct 5 MB files, 4 at a time")
        uploads = asyncio.run(upload_bench(base, session.api_key, args.uploads, 5 * MB, 4))
        log(f"uploads: {uploads}")

        small, large = png_about(50 * 1024), mp4(20 * MB, 999)
        names = {}
        with httpx.Client(base_url=base, headers={"X-API-Key": session.api_key}, timeout=60) as c:
            for label, data, mime in (("small", small, "image/png"), ("large", large, "video/mp4")):
                response = c.post("/files/upload", files={"file": (label, data, mime)})
                if response.status_code != 201:
                    raise RuntimeError(response.text)
                names[label] = response.json()["url"].rsplit("/", 1)[1]
        nginx, nginx_base = nginx_for(tmp, {names["small"]: small, names["large"]: large})
        procs.append(nginx)
        for label, data in (("small", small), ("large", large)):
            for server_base in (base, nginx_base):
                got = httpx.get(f"{server_base}/assets/{names[label]}", timeout=60).content
                if got != data:
                    raise RuntimeError(f"{server_base} serves different bytes for {label}")

        cases = {"small": 64, "large": 4}
        results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for label, connections in cases.items():
            args.connections = connections
            for server_base in (nginx_base, base):
                run_wrk(f"{server_base}/assets/{names[label]}", False, args.warmup, args, lua)
            for round_ in range(1, args.repeats + 1):
                for server, server_base in (("nginx", nginx_base), ("landform", base)):
                    r = run_wrk(
                        f"{server_base}/assets/{names[label]}", False, args.duration, args, lua
                    )
                    if r.errors or r.non_2xx:
                        raise RuntimeError(f"{server} {label}: {r.errors} {r.non_2xx}")
                    mbps = r.rps * r.bytes_per_request / MB
                    results.setdefault((label, server), []).append((r.rps, mbps, r.p99_ms))
                    log(f"round {round_} {label:5} {server:8} {r.rps:9.0f} req/s {mbps:8.1f} MB/s")
    finally:
        for proc in procs:
            proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(label: str, server: str, index: int) -> float:
        return median([row[index] for row in results[(label, server)]])

    rounds_small = [
        lf[0] / ng[0]
        for lf, ng in zip(results[("small", "landform")], results[("small", "nginx")], strict=True)
    ]
    rounds_large = [
        lf[1] / ng[1]
        for lf, ng in zip(results[("large", "landform")], results[("large", "nginx")], strict=True)
    ]
    small_ratio, large_ratio = statistics.median(rounds_small), statistics.median(rounds_large)
    large_mbps = med("large", "landform", 1)
    info = machine_info()
    section = "\n".join(
        [
            START,
            "## Files and assets (`bench/assets.py`)",
            "",
            f"- Machine: {info['nproc']} CPUs, {info['cpu']}; Python {info['python']}",
            f"- Date: {info['date']}; commit `{info['commit']}`",
            "- Rerun: `.venv/bin/python bench/assets.py`",
            "",
            "`landform serve` with its default workers, embedded defaults (SQLite, local folder). "
            "nginx serves the same files (sendfile, open_file_cache) in the same run; wrk rounds "
            f"alternate, median of {args.repeats}.",
            "",
            "### Upload",
            "",
            f"{uploads['count']} distinct 5 MB MP4 files through `POST /files/upload`, "
            "4 concurrent uploaders (each upload: stream to a spool file with SHA-256, sniff, "
            "box-structure check, store, one row).",
            "",
            "| p50 ms | p99 ms | files/min | MB/s |",
            "|---:|---:|---:|---:|",
            f"| {uploads['p50_ms']:.0f} | {uploads['p99_ms']:.0f} "
            f"| {uploads['files_per_min']:,.0f} | {uploads['mb_per_s']:.0f} |",
            "",
            "### GET /assets/{file}",
            "",
            "| File | Server | req/s | MB/s | p99 ms |",
            "|---|---|---:|---:|---:|",
            *[
                f"| {DESCRIPTION[label]} | {server} | {med(label, server, 0):,.0f} "
                f"| {med(label, server, 1):,.0f} | {med(label, server, 2):.2f} |"
                for label in cases
                for server in ("nginx", "landform")
            ],
            "",
            "### Targets",
            "",
            "| Target | Measured | Result |",
            "|---|---:|---|",
            f"| 5 MB upload p99 ≤ 500 ms (spec: < 2 s) | {uploads['p99_ms']:.0f} ms "
            f"| {verdict(uploads['p99_ms'] <= 500)} |",
            f"| ≥ 1,000 files/min at 4 uploaders | {uploads['files_per_min']:,.0f} "
            f"| {verdict(uploads['files_per_min'] >= 1000)} |",
            f"| small asset req/s ≥ 35 % of nginx | {small_ratio:.0%} "
            f"| {verdict(small_ratio >= 0.35)} |",
            f"| large asset MB/s ≥ 50 % of nginx | {large_ratio:.0%} "
            f"| {verdict(large_ratio >= 0.5)} |",
            f"| large asset ≥ 150 MB/s | {large_mbps:,.0f} MB/s | {verdict(large_mbps >= 150)} |",
            END,
        ]
    )
    print(section)
    if not args.no_write:
        write_doc(section, START, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
