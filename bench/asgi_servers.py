"""Which server (and interface) should ``landform serve`` use? Measured,
not guessed.

Starts Landform three times on the same data folder — ``landform serve
--server granian`` (ASGI), ``--server granian --interface rsgi`` (published
pages and the beacon answered natively, the rest bridged: core/rsgi.py) and
``--server uvicorn`` (with uvloop and httptools, as uvicorn is deployed),
each with the default worker count — and drives them with wrk in
alternating rounds on the hot public path (``GET /{slug}``, gzip) and on a
warm API read (``GET /templates``). Writes its section of docs/benchmarks.md.

    .venv/bin/python bench/asgi_servers.py [--duration 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from one_address import ROOMY_RATE_LIMITS  # noqa: E402 - a sibling module
from public_pages import (  # noqa: E402 - the sibling benchmark's helpers
    LANDFORM,
    WRK_LUA,
    Proc,
    Session,
    ensure_tools,
    free_port,
    log,
    machine_info,
    median,
    run_wrk,
    set_up_account_and_page,
    start_proc,
    wait_http,
    write_doc,
)

START = "<!-- asgi_servers:start -->"
END = "<!-- asgi_servers:end -->"
SERVERS = ("granian", "granian-rsgi", "uvicorn")
ARGS = {
    "granian": ["--server", "granian"],
    "granian-rsgi": ["--server", "granian", "--interface", "rsgi"],
    "uvicorn": ["--server", "uvicorn"],
}
PATHS = {"GET /{slug} (gzip)": "slug", "GET /templates": "/templates"}


def base_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANDFORM_")}
    return {**env, **ROOMY_RATE_LIMITS, "LANDFORM_DATA_DIR": str(data)}


def start(server: str, data: Path, tmp: Path) -> tuple[Proc, str]:
    port = free_port()
    env = {**base_env(data), "LANDFORM_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    proc = start_proc(
        f"landform ({server})",
        [LANDFORM, "serve", "--host", "127.0.0.1", "--port", str(port), *ARGS[server]],
        env,
        tmp / f"{server}.log",
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{base}/healthz")
    return proc, base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run (8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up (2)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds (3)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="landform-servers-"))
    data = tmp / "data"
    lua = tmp / "report.lua"
    lua.write_text(WRK_LUA)
    procs: list[Proc] = []
    try:
        proc, base = start("granian", data, tmp)
        procs.append(proc)
        session = Session(base=base, env=base_env(data))
        set_up_account_and_page(session)
        urls = {}
        for server in SERVERS:
            if server != "granian":
                proc, base = start(server, data, tmp)
                procs.append(proc)
            for label, path in PATHS.items():
                target = f"/{session.slug}" if path == "slug" else path
                urls[(server, label)] = base + target
        results: dict[tuple[str, str], list[float]] = {key: [] for key in urls}
        p99: dict[tuple[str, str], list[float]] = {key: [] for key in urls}
        for key, url in urls.items():
            run_wrk(url, key[1].endswith("(gzip)"), args.warmup, args, lua)
        for round_ in range(1, args.repeats + 1):
            for key, url in urls.items():
                r = run_wrk(url, key[1].endswith("(gzip)"), args.duration, args, lua)
                if r.errors or r.non_2xx:
                    raise RuntimeError(f"{key}: errors {r.errors}, non-2xx {r.non_2xx}")
                results[key].append(r.rps)
                p99[key].append(r.p99_ms)
                log(f"round {round_} {key[0]:8} {key[1]:20} {r.rps:9.0f} req/s  p99 {r.p99_ms:.2f}")
    finally:
        for proc in procs:
            proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    info = machine_info()
    rows = []
    for label in PATHS:
        g, r, u = (median(results[(s, label)]) for s in SERVERS)
        g99, r99, u99 = (median(p99[(s, label)]) for s in SERVERS)
        rows.append(
            f"| {label} | {g:,.0f} | {g99:.2f} | {r:,.0f} | {r99:.2f} | {u:,.0f} | {u99:.2f} "
            f"| {r / g:.2f}× | {g / u:.2f}× |"
        )
    section = "\n".join(
        [
            START,
            "## Server: granian (ASGI, RSGI) vs uvicorn (`bench/asgi_servers.py`)",
            "",
            f"- Machine: {info['nproc']} CPUs, {info['cpu']}; Python {info['python']}",
            f"- Date: {info['date']}; commit `{info['commit']}`",
            "- Rerun: `.venv/bin/python bench/asgi_servers.py`",
            "",
            f"`landform serve` with its default workers under each server (uvicorn with uvloop "
            f"and httptools; granian RSGI: `--interface rsgi`, published pages answered "
            f"natively, `/templates` through the bridge to the ASGI app), same data folder; "
            f"wrk `-t{args.threads} -c{args.connections} -d{args.duration:g}s`, alternating, "
            f"median of {args.repeats} rounds.",
            "",
            "| Path | granian ASGI req/s | p99 ms | granian RSGI req/s | p99 ms "
            "| uvicorn req/s | p99 ms | RSGI / ASGI | granian ASGI / uvicorn |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "`landform serve` uses granian over ASGI by default; `--interface rsgi` is the "
            "faster hot path where WebSocket clients need no subprotocol or close codes "
            "(docs/operations.md); `--server uvicorn` stays for comparison.",
            END,
        ]
    )
    print(section)
    if not args.no_write:
        write_doc(section, START, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
