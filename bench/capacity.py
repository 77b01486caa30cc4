"""The capacity report: the spec's ``peak_traffic_simulation`` through the
load-test harness against this machine, on the embedded default (SQLite,
local files, in-process cache) and on PostgreSQL + Redis, 2 workers each.

    .venv/bin/python bench/capacity.py [--duration 5m] [--scale 0.01]

For each configuration, on fresh data: ``landform loadtest run
peak_traffic_simulation --scale 0.01 --duration 5m`` (100 users, 500
requests/s) with its verdict and SLA table, then, on a fresh server again,
``landform loadtest capacity`` (60-second steps of the same mix, ×1.5 each,
until a component leaves its Target). The load generators share the two
cores with the server (and with PostgreSQL and Redis), as a one-machine
deployment would be measured.

Writes docs/capacity.md's measured section and keeps each run's
result.json and report.html under docs/capacity/.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from public_pages import LANDFORM, ROOT, free_port, log, machine_info  # noqa: E402

from analytics import landform_env, start_landform  # noqa: E402

DOC = ROOT / "docs" / "capacity.md"
RESULTS = ROOT / "docs" / "capacity"
START = "<!-- capacity:start -->"
END = "<!-- capacity:end -->"
TARGET_RPS = 1000.0
TOKEN = "capacity-bench-" + secrets.token_hex(8)


def configuration(name: str, args: argparse.Namespace) -> dict[str, str]:
    if name == "embedded":
        return {}
    database = args.postgres_url.rsplit("/", 1)[1]
    admin = args.postgres_url.rsplit("/", 1)[0].replace("postgresql+asyncpg", "postgresql")
    for sql in (f"drop database if exists {database}", f"create database {database}"):
        subprocess.run(["psql", "-q", f"{admin}/postgres", "-c", sql], check=True)
    db = args.redis_url.rsplit("/", 1)[1]
    subprocess.run(["redis-cli", "-n", db, "flushdb"], check=True, capture_output=True)
    return {"LANDFORM_DATABASE_URL": args.postgres_url, "LANDFORM_REDIS_URL": args.redis_url}


def fresh_server(name: str, args: argparse.Namespace, tmp: Path) -> tuple[Any, str]:
    data = tmp / f"{name}-{time.monotonic_ns()}"
    port = free_port()
    env = landform_env(
        data, port,
        LANDFORM_OPS_TOKEN=TOKEN,
        LANDFORM_TRUSTED_PROXIES="127.0.0.1",
        **configuration(name, args),
    )  # fmt: skip
    subprocess.run([LANDFORM, "db", "upgrade"], env=env, check=True, capture_output=True)
    return start_landform(name, env, port, args.workers, data.with_suffix(".log"))


def loadtest(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "LANDFORM_OPS_TOKEN": TOKEN}
    ran = subprocess.run([LANDFORM, "loadtest", *argv], env=env, capture_output=True, text=True)
    if ran.returncode == 2:
        raise SystemExit(f"landform loadtest {argv[0]} could not run:\n{ran.stderr}")
    return ran


def measure(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    out = RESULTS / name
    shutil.rmtree(out, ignore_errors=True)
    server, base = fresh_server(name, args, tmp)
    try:
        log(f"{name}: peak mix at --scale {args.scale} for {args.duration}")
        ran = loadtest(
            "run", "peak_traffic_simulation", "--host", base, "--scale", str(args.scale),
            "--duration", args.duration, "--output", str(out),
        )  # fmt: skip
        log(ran.stdout)
    finally:
        server.stop()
    server, base = fresh_server(name, args, tmp)
    try:
        log(f"{name}: capacity search")
        steps = tmp / f"{name}-capacity"
        searched = loadtest(
            "capacity", "--host", base, "--start", str(args.start), "--factor", str(args.factor),
            "--step-duration", args.step_duration, "--warm-up", "30s", "--output", str(steps),
        )  # fmt: skip
        log(searched.stdout)
        shutil.copy(steps / "capacity.json", out / "capacity.json")
    finally:
        server.stop()
    return {
        "result": json.loads((out / "result.json").read_text()),
        "capacity": json.loads((out / "capacity.json").read_text()),
        "exit": ran.returncode,
    }


def table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def section(found: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    info = machine_info()
    parts = [
        START,
        f"## Measured ({info['date']}, commit {info['commit']})\n",
        f"Machine: {info['nproc']} cores ({info['cpu']}), Python {info['python']}; the load "
        "generators (Locust, one process per core) run on the same cores as the server. "
        f"Command: `.venv/bin/python bench/capacity.py --duration {args.duration} "
        f"--scale {args.scale}`.\n",
    ]
    summary_rows = []
    for name, data in found.items():
        result, capacity = data["result"], data["capacity"]
        res = result["performanceResults"]["loadTest"]["results"]
        summary_rows.append(
            [
                LABELS[name],
                f"{result['throughput']['target']:g}",
                f"{result['throughput']['achieved']:.1f}",
                f"{res['successRate']:.2f} %",
                f"{res['p50ResponseTime']:.1f}",
                f"{res['p99ResponseTime']:.1f}",
                "pass" if result["verdict"]["passed"] else "**FAIL**",
                f"{capacity['capacity']:g} req/s"
                if capacity["capacity"]
                else "below the first step",
            ]
        )
    parts.append(
        table(
            summary_rows,
            [
                "Configuration",
                "Target req/s",
                "Achieved req/s (after ramp-up)",
                "Success",
                "p50 ms",
                "p99 ms",
                "Verdict",
                "Capacity (every Target met)",
            ],
        )  # fmt: skip
    )
    best = max((d["capacity"]["capacity"] or 0.0) for d in found.values())
    parts.append(
        f"\nTarget: the peak mix at ≥ {TARGET_RPS:g} requests/s with every component inside its "
        f"Target column. **{'Met' if best >= TARGET_RPS else 'Not met'}**: the best capacity "
        f"measured here is {best:g} requests/s.\n"
    )
    for name, data in found.items():
        result, capacity = data["result"], data["capacity"]
        parts.append(f"### {LABELS[name]}\n")
        parts.append(
            f"`landform loadtest run peak_traffic_simulation --scale {args.scale} --duration "
            f"{args.duration}`: exit {data['exit']}; report: "
            f"[report.html](capacity/{name}/report.html), "
            f"[result.json](capacity/{name}/result.json).\n"
        )
        reasons = result["verdict"]["reasons"]
        parts.append(
            "Verdict: "
            + ("passed." if not reasons else "failed:\n\n" + "\n".join(f"- {r}" for r in reasons))
            + "\n"
        )
        parts.append(
            table(
                [
                    [
                        row["name"],
                        row["source"],
                        f"{row['p99']:.1f}",
                        str(row["samples"]),
                        f"< {row['target']:g}",
                        f"< {row['acceptable']:g}",
                        f"< {row['critical']:g}",
                        row["status"],
                    ]
                    for row in result["components"]
                ],
                [
                    "Component",
                    "Measured by",
                    "p99 ms",
                    "Samples",
                    "Target",
                    "Acceptable",
                    "Critical",
                    "Status",
                ],
            )  # fmt: skip
        )
        parts.append("")
        parts.append(
            table(
                [
                    [
                        op["name"],
                        str(op["requests"]),
                        str(op["errors"]),
                        f"{op['p50ResponseTime']:.1f}",
                        f"{op['p99ResponseTime']:.1f}",
                        f"{op['serviceP99']:.1f}",
                        op["status"],
                    ]
                    for op in result["operations"]
                ],
                [
                    "Operation",
                    "Requests",
                    "Errors",
                    "p50 ms",
                    "p99 ms",
                    "p99 w/o wait ms",
                    "Status",
                ],
            )  # fmt: skip
        )
        parts.append("\nCapacity search (60-second steps of the same mix):\n")
        parts.append(
            table(
                [
                    [
                        f"{s['rate']:g}",
                        str(s["users"]),
                        f"{s['achieved']:.1f}",
                        f"{s['p99']:.1f}",
                        "met every Target" if s["passed"] else "; ".join(s["reasons"])[:160],
                    ]
                    for s in capacity["steps"]
                ],
                ["Step req/s", "Users", "Achieved", "p99 ms", "Outcome"],
            )  # fmt: skip
        )
        parts.append(
            f"\nCapacity: **{capacity['capacity']:g} requests/s**.\n"
            if capacity["capacity"]
            else "\nCapacity: below the first step.\n"
        )
    parts.append(END)
    return "\n".join(parts)


LABELS = {"embedded": "Embedded default (SQLite, local files, in-process cache)",
          "postgres": "PostgreSQL + Redis"}  # fmt: skip


def write(text: str) -> None:
    current = DOC.read_text() if DOC.exists() else f"# Capacity\n\n{START}\n{END}\n"
    head, rest = current.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(head + text + tail)
    log(f"wrote {DOC.relative_to(ROOT)}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", default="5m")
    p.add_argument("--scale", type=float, default=0.01)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--start", type=float, default=50)
    p.add_argument("--factor", type=float, default=1.5)
    p.add_argument("--step-duration", default="60s")
    p.add_argument("--configs", default="embedded,postgres")
    p.add_argument(
        "--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/landform_bench"
    )
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="landform-capacity-"))
    found = {name: measure(name, args, tmp) for name in args.configs.split(",")}
    text = section(found, args)
    print(text)
    if not args.no_write:
        write(text)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
