"""What the peak mix costs the server per request, at a fixed rate below
capacity: the CPU time of the server's processes (read from /proc) over the
measured run divided by the requests it answered, with the run's p50/p99
and cache hit ratio. A capacity search moves in steps of x1.5 and shares
the two cores with the load generators; this moves with every change of
the server's cost, so a change to the mix's paths is measured against its
parent in one sitting:

    git worktree add /tmp/mix-before HEAD~1
    .venv/bin/python bench/mix_cost.py --tree before=/tmp/mix-before --tree after=. --rounds 3

Each run: a fresh embedded server (2 workers, the tree's ``src`` first on
PYTHONPATH), ``landform loadtest prepare`` (not measured), then
``landform loadtest run peak_traffic_simulation --fixture …`` at
``--scale`` (0.002: 20 users, 100 requests/s) for ``--duration``. The load
generator is this checkout's for every tree. Trees alternate within each
round. Prints the table; writes nothing."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from public_pages import LANDFORM, descendants, free_port, log  # noqa: E402

from analytics import landform_env, start_landform  # noqa: E402

TOKEN = "mix-cost-bench"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system time of these processes so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone: its time is lost to both ends alike
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def loadtest(*argv: str, tree: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "LANDFORM_OPS_TOKEN": TOKEN}
    ran = subprocess.run([LANDFORM, "loadtest", *argv], env=env, capture_output=True, text=True)
    if ran.returncode == 2:
        raise SystemExit(f"{tree}: landform loadtest {argv[0]} could not run:\n{ran.stderr}")
    return ran


def one_run(label: str, tree: Path, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    data = tmp / f"{label}-{len(list(tmp.iterdir()))}"
    port = free_port()
    env = landform_env(data, port, LANDFORM_OPS_TOKEN=TOKEN, LANDFORM_TRUSTED_PROXIES="127.0.0.1")
    env["PYTHONPATH"] = str(tree / "src")
    subprocess.run([LANDFORM, "db", "upgrade"], env=env, check=True, capture_output=True)
    server, base = start_landform(label, env, port, 2, data.with_suffix(".log"))
    try:
        fixture = data.with_suffix(".fixture.json")
        loadtest("prepare", "--host", base, "--output", str(fixture), tree=tree)
        pids = [server.pid, *descendants(server.pid)]
        before = cpu_seconds(pids)
        out = data.with_suffix(".out")
        loadtest(
            "run", "peak_traffic_simulation", "--host", base, "--scale", str(args.scale),
            "--duration", args.duration, "--fixture", str(fixture), "--output", str(out),
            tree=tree,
        )  # fmt: skip
        used = cpu_seconds(pids) - before
    finally:
        server.stop()
    result = json.loads((out / "result.json").read_text())
    load = result["performanceResults"]["loadTest"]
    requests = load["totalRequests"]
    figures = {
        "cpu_ms": 1000 * used / requests,
        "requests": requests,
        "rps": load["results"]["requestsPerSecond"],
        "p50": load["results"]["p50ResponseTime"],
        "p99": load["results"]["p99ResponseTime"],
        "hit": result["performanceResults"]["databasePerformance"]["cacheHitRatio"],
    }
    log(f"{label}: {figures}")
    return figures


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tree", action="append", required=True, help="LABEL=PATH of a checkout (repeatable)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.002)
    parser.add_argument("--duration", default="60s")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    trees = [(label, Path(path).resolve()) for label, path in (t.split("=", 1) for t in args.tree)]
    found: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in trees}
    with tempfile.TemporaryDirectory(prefix="mix-cost-") as name:
        tmp = Path(name)
        for round_number in range(args.rounds):
            # Alternate the order too: a machine warming up or cooling down
            # over a sitting favours neither tree.
            ordered = trees if round_number % 2 == 0 else trees[::-1]
            for label, tree in ordered:
                found[label].append(one_run(label, tree, args, tmp))
    print(f"\npeak mix at --scale {args.scale} for {args.duration}, {args.rounds} rounds")
    print("| Tree | server CPU ms/request, each run | median | p50 ms | p99 ms | cache hit % |")
    print("|---|---|---:|---:|---:|---:|")
    for label, runs in found.items():
        each = ", ".join(f"{run['cpu_ms']:.2f}" for run in runs)
        middle = statistics.median
        print(
            f"| {label} | {each} | {middle(r['cpu_ms'] for r in runs):.2f} "
            f"| {middle(r['p50'] for r in runs):.1f} | {middle(r['p99'] for r in runs):.1f} "
            f"| {middle(r['hit'] for r in runs):.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
