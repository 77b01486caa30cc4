"""What measuring costs the hot path: ``GET /{slug}`` with the ops recorder
on (every request timed into HdrHistograms, snapshots shared between
workers) against the same server with it off (``LANDFORM_OPS_METRICS_ENABLED
=false``), in the same run, alternating rounds. Target: under 2 %.

    .venv/bin/python bench/ops_overhead.py [--seconds 8] [--repeats 7]

Writes its section of docs/benchmarks.md (between the ops_overhead
markers).
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cache_mix import slug_rates  # noqa: E402
from public_pages import ensure_tools, log, machine_info, verdict, write_doc  # noqa: E402

START = "<!-- ops_overhead:start -->"
END = "<!-- ops_overhead:end -->"
SCRIPT = "bench/ops_overhead.py"
TARGET_COST = 0.02


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=8, help="seconds per wrk run (8)")
    p.add_argument("--repeats", type=int, default=7, help="alternating rounds (7)")
    p.add_argument("--workers", type=int, default=2, help="server workers (2)")
    p.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    ensure_tools()
    info = machine_info()
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="landform-ops-overhead-"))
    token = secrets.token_urlsafe(24)
    modes = {
        "recording off": {"LANDFORM_OPS_METRICS_ENABLED": "false"},
        "recording on": {"LANDFORM_OPS_TOKEN": token},
    }
    try:
        rates = slug_rates(modes, tmp, args.workers, args.seconds, args.repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    off = statistics.median(rates["recording off"])
    on = statistics.median(rates["recording on"])
    # Paired rounds: each "on" against the "off" run just before it.
    paired = [1 - b / a for a, b in zip(rates["recording off"], rates["recording on"], strict=True)]
    cost = statistics.median(paired)
    lines = [
        START,
        "## What recording metrics costs `GET /{slug}`",
        "",
        f"Written by `{SCRIPT}` ({time.strftime('%Y-%m-%d')}, "
        f"{(time.monotonic() - started) / 60:.0f} min). Machine: {info['nproc']} CPUs, "
        f"{info['cpu']}. Two `landform serve` processes ({args.workers} workers each, SQLite), "
        "one with the ops recorder on (every request timed into HdrHistograms, folded once a "
        "second, snapshots shared between workers every 2 s) and one with it off; wrk, 64 "
        f"connections, {args.seconds:.0f} s per run, {args.repeats} alternating rounds.",
        "",
        "| recorder | requests/s (median) | runs |",
        "| --- | --- | --- |",
        f"| off | {off:,.0f} | {', '.join(f'{r:,.0f}' for r in rates['recording off'])} |",
        f"| on | {on:,.0f} | {', '.join(f'{r:,.0f}' for r in rates['recording on'])} |",
        "",
        f"- Cost of recording: **{cost * 100:.1f} %** (median of the paired rounds; medians "
        f"alone: {(1 - on / off) * 100:.1f} %), target < {TARGET_COST * 100:.0f} %: "
        f"{verdict(cost < TARGET_COST)}.",
        "",
        f"Rerun: `.venv/bin/python {SCRIPT} --seconds {args.seconds:.0f} --repeats {args.repeats}`",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_doc(section, START, END)
    log(f"recording cost {cost * 100:.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
