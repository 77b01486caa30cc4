"""GraphQL benchmark: the dashboard's data (a user's 20 pages with titles,
status and 7-day views) through GraphQL and through REST, in one run.

    .venv/bin/python bench/graphql_api.py [--duration 10] [--repeats 3] [--connections 16]

One ``landform serve --workers 2`` (granian) on the embedded default
(SQLite), with 20 published pages and ``--events`` of synthetic traffic over
7 days (``landform analytics generate``), report cache as shipped. wrk
--latency at ``--connections``, the cases alternating round by round:

- **GraphQL**: ``POST /graphql`` with
  ``{ landingPages(first: 20) { nodes { id title status analytics { views } } } }``
  (the analytics summary defaults to the last 7 days); the same query
  sent as an automatic persisted query (hash only); and the same query to
  a second server on a copy of the data that keeps no answers
  (``LANDFORM_GRAPHQL_ANSWER_CACHE_SECONDS=0``), so every answer is computed.
- **REST, same data**: two requests per dashboard, alternating on each
  connection: ``GET /landing-pages?limit=20`` (titles, status) and ``POST
  /analytics/custom-query`` (views by page over the same 7 days). Its
  dashboards/s is its requests/s ÷ 2.
- **REST list only**: ``GET /landing-pages?limit=20`` alone (no views), a
  reference for the cost of the list itself.

Writes its section of docs/benchmarks.md (between the graphql markers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from public_pages import (  # noqa: E402
    LANDFORM,
    Proc,
    check,
    ensure_tools,
    free_port,
    log,
    machine_info,
    median,
    server_errors,
    verdict,
    write_doc,
)

from analytics import (  # noqa: E402 - the sibling benchmark's helpers
    STATUS_LUA,
    Wrk,
    landform_env,
    lua_string,
    run_wrk,
    start_landform,
)

START = "<!-- graphql:start -->"
END = "<!-- graphql:end -->"
SCRIPT = "bench/graphql_api.py"

# Targets (issue 5).
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.5

OWNER = "owner@graphql-bench.example"
QUERY = "{ landingPages(first: 20) { nodes { id title status analytics { views } } } }"

# Alternates two requests on each connection (REST needs both for the data).
PAIR_LUA = r"""
local first = FIRST
local second = SECOND
local body = BODY
local auth = AUTH
request = function()
  issued = issued + 1
  if issued % 2 == 1 then
    return wrk.format("GET", first)
  end
  return wrk.format("POST", second,
    {["Content-Type"] = "application/json", ["Authorization"] = auth}, body)
end
"""

# A GraphQL answer with "errors" is a failure even with status 200.
GRAPHQL_ERRORS_LUA = r"""
local count_status = response
response = function(status, headers, body)
  if string.find(body, '"errors"', 1, true) then
    count_status("graphql-errors", headers, body)
  else
    count_status(status, headers, body)
  end
end
"""


def graphql_lua(body: str) -> str:
    return (
        STATUS_LUA
        + GRAPHQL_ERRORS_LUA
        + 'wrk.method = "POST"\n'
        + f"wrk.body = {lua_string(body)}\n"
        + 'wrk.headers["Content-Type"] = "application/json"\n'
    )


def prepare(env: dict[str, str], events: int, password: str) -> None:
    """Migrate, then 20 published pages with ``events`` over 7 days."""
    subprocess.run([LANDFORM, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run(
        [
            LANDFORM, "analytics", "generate", "--pages", "20", "--events", str(events),
            "--days", "7", "--email", OWNER, "--password", password,
        ],
        env=env, check=True, capture_output=True,
    )  # fmt: skip


def dashboards(rest_pair: Wrk) -> float:
    return rest_pair.rps / 2


def describe(r: Wrk) -> str:
    return (
        f"{r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
        f"max {r.max_ms:6.1f} ms  statuses {r.statuses} errors {r.errors}"
    )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk run (10)")
    p.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per case (3)")
    p.add_argument("--repeats", type=int, default=3, help="alternating rounds (3)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--workers", type=int, default=2, help="landform serve --workers (2)")
    p.add_argument("--events", type=int, default=200_000, help="synthetic events (200000)")
    p.add_argument("--keep-temp", action="store_true", help="keep logs and data")
    p.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    ensure_tools()
    info = machine_info()

    def terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    tmp = Path(tempfile.mkdtemp(prefix="landform-graphql-"))
    procs: list[Proc] = []
    started = time.monotonic()
    try:
        port = free_port()
        env = landform_env(tmp / "data", port, LANDFORM_SECRET_KEY=secrets.token_urlsafe(48))
        password = "bench-" + secrets.token_hex(12)
        log(f"preparing 20 pages and {args.events:,} events")
        prepare(env, args.events, password)
        # The same data behind a second server that keeps no answers, so
        # the cost of computing each answer is measured in the same run.
        shutil.copytree(tmp / "data", tmp / "data-computed")
        computed_port = free_port()
        computed_env = landform_env(
            tmp / "data-computed",
            computed_port,
            LANDFORM_SECRET_KEY=env["LANDFORM_SECRET_KEY"],
            LANDFORM_GRAPHQL_ANSWER_CACHE_SECONDS="0",
        )
        server, base = start_landform("landform", env, port, args.workers, tmp / "landform.log")
        procs.append(server)
        computed, computed_base = start_landform(
            "landform-computed", computed_env, computed_port, args.workers, tmp / "computed.log"
        )
        procs.append(computed)
        with httpx.Client(base_url=base, timeout=30) as client:
            token = check(
                client.post("/auth/login", json={"email": OWNER, "password": password}), 200
            )["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            now = dt.datetime.now(dt.UTC)
            end_hour = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
            since = end_hour - dt.timedelta(days=7)
            custom = {
                "metrics": ["views"],
                "dimensions": ["page"],
                "date_range": {
                    "from": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "to": end_hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                "limit": 1000,
            }
            graph = check(client.post("/graphql", json={"query": QUERY}, headers=auth), 200)
            computed_graph = check(
                client.post(f"{computed_base}/graphql", json={"query": QUERY}, headers=auth), 200
            )
            nodes = graph["data"]["landingPages"]["nodes"]
            listed = check(client.get("/landing-pages?limit=20", headers=auth), 200)["items"]
            rows = check(client.post("/analytics/custom-query", json=custom, headers=auth), 200)
            assert rows["columns"] == ["page", "views"], rows["columns"]
            rest_views = {page_id: views for page_id, views in rows["rows"]}
            graph_views = {node["id"]: node["analytics"]["views"] for node in nodes}
            same = (
                [n["id"] for n in nodes] == [p["id"] for p in listed]
                and all(
                    graph_views[page_id] == rest_views.get(page_id, 0) for page_id in graph_views
                )
                and computed_graph == graph
            )
            log(f"same data both ways: {same}; {sum(graph_views.values()):,} views in 7 days")
            digest = hashlib.sha256(QUERY.encode()).hexdigest()
            apq = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
            # Without Redis each worker learns the hash on its own: teach
            # them all (new connections spread over the workers).
            for _ in range(8 * args.workers):
                with httpx.Client(base_url=base, timeout=30) as fresh:
                    fresh.post("/graphql", json={"query": QUERY, **apq}, headers=auth)
            for _ in range(4 * args.workers):
                with httpx.Client(base_url=base, timeout=30) as fresh:
                    by_hash = check(fresh.post("/graphql", json=apq, headers=auth), 200)
                    assert by_hash == graph, f"the persisted query answers the same: {by_hash}"

        body = json.dumps({"query": QUERY}, separators=(",", ":"))
        (tmp / "graphql.lua").write_text(graphql_lua(body))
        (tmp / "apq.lua").write_text(graphql_lua(json.dumps(apq, separators=(",", ":"))))
        (tmp / "get.lua").write_text(STATUS_LUA)
        (tmp / "pair.lua").write_text(
            STATUS_LUA
            + PAIR_LUA.replace("FIRST", lua_string("/landing-pages?limit=20"))
            .replace("SECOND", lua_string("/analytics/custom-query"))
            .replace("BODY", lua_string(json.dumps(custom, separators=(",", ":"))))
            .replace("AUTH", lua_string(auth["Authorization"]))
        )
        cases = {
            "graphql": (f"{base}/graphql", tmp / "graphql.lua"),
            "graphql_apq": (f"{base}/graphql", tmp / "apq.lua"),
            "graphql_computed": (f"{computed_base}/graphql", tmp / "graphql.lua"),
            "rest_pair": (f"{base}/", tmp / "pair.lua"),
            "rest_list": (f"{base}/landing-pages?limit=20", tmp / "get.lua"),
        }
        for url, lua in cases.values():
            run_wrk(url, lua, args.warmup, args.connections, args.threads, auth)
        runs: dict[str, list[Wrk]] = {name: [] for name in cases}
        for round_number in range(1, args.repeats + 1):
            for name, (url, lua) in cases.items():
                r = run_wrk(url, lua, args.duration, args.connections, args.threads, auth)
                runs[name].append(r)
                log(f"round {round_number} {name:12} {describe(r)}")
        errors = server_errors(server)
        load_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for proc in procs:
            proc.stop()
        if not args.keep_temp:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")

    section = build_section(args, info, runs, same, errors, load_after, time.monotonic() - started)
    print(section)
    if not args.no_write:
        write_doc(section, START, END)
        log("wrote docs/benchmarks.md")
    return 0


def build_section(
    args: argparse.Namespace,
    info: dict[str, str],
    runs: dict[str, list[Wrk]],
    same: bool,
    errors: list[str],
    load_after: str,
    seconds: float,
) -> str:
    def med(name: str, attr: str) -> float:
        return median([getattr(r, attr) for r in runs[name]])

    def bad(name: str) -> int:
        return sum(r.other(200) for r in runs[name])

    graphql_rps = med("graphql", "rps")
    apq_rps = med("graphql_apq", "rps")
    computed_rps = med("graphql_computed", "rps")
    pair_dashboards = median([dashboards(r) for r in runs["rest_pair"]])
    list_rps = med("rest_list", "rps")
    p99 = med("graphql", "p99_ms")
    ratio = graphql_rps / pair_dashboards if pair_dashboards else 0.0
    all_ok = all(bad(name) == 0 for name in runs)
    rows = [
        ("GraphQL, query text", graphql_rps, graphql_rps, "graphql"),
        ("GraphQL, persisted query (hash only)", apq_rps, apq_rps, "graphql_apq"),
        ("GraphQL, kept answers off (each computed)", computed_rps, computed_rps,
         "graphql_computed"),
        ("REST, list + custom query", med("rest_pair", "rps"), pair_dashboards, "rest_pair"),
        ("REST, list only (no views)", list_rps, list_rps, "rest_list"),
    ]  # fmt: skip
    table = "\n".join(
        f"| {label} | {rps:,.0f} | {dash:,.0f} | {med(name, 'p50_ms'):.1f} | "
        f"{med(name, 'p99_ms'):.1f} | {bad(name)} |"
        for label, rps, dash, name in rows
    )
    clean = all_ok and not errors
    targets = "\n".join(
        [
            f"| GraphQL p99 ≤ {TARGET_P99_MS:.0f} ms at {args.connections} connections "
            f"| {p99:.1f} ms | {verdict(p99 <= TARGET_P99_MS)} |",
            f"| GraphQL ≥ {TARGET_RATIO:.0%} of REST for the same data | {ratio:.0%} "
            f"({graphql_rps:,.0f} vs {pair_dashboards:,.0f} dashboards/s) "
            f"| {verdict(ratio >= TARGET_RATIO)} |",
            f"| every response 200, no server errors | {'yes' if clean else 'no'} "
            f"| {verdict(clean)} |",
        ]
    )
    head = textwrap.dedent(
        f"""\
        ## GraphQL (`{SCRIPT}`)

        Run {info["date"]} at commit {info["commit"]}: {info["cpu"]}, {info["nproc"]} CPUs,
        Python {info["python"]}; load before {info["load"]}, after {load_after}.
        Command: `.venv/bin/python {SCRIPT} --duration {args.duration:g}
        --repeats {args.repeats} --connections {args.connections}` ({seconds:.0f} s).
        `landform serve --workers {args.workers}` (granian) on SQLite, 20 published pages and
        {args.events:,} synthetic events over 7 days, report cache as shipped; wrk
        --latency -c{args.connections} -t{args.threads}, {args.duration:g} s per run, the five
        cases alternating for {args.repeats} rounds; medians. Same data both ways
        (checked before the runs): {"yes" if same else "**NO**"}.

        ### A dashboard's data: 20 pages with titles, status and 7-day views

        | case | requests/s | dashboards/s | p50 ms | p99 ms | non-200 |
        | --- | ---: | ---: | ---: | ---: | ---: |
        """
    )
    middle = textwrap.dedent(
        """
        ### Targets

        | target | measured | verdict |
        | --- | --- | --- |
        """
    )
    tail = textwrap.dedent(
        f"""
        REST needs two requests for this data (the list has no analytics); its
        dashboards/s is half its requests/s. Against the list alone, which
        carries less, GraphQL makes {graphql_rps / list_rps if list_rps else 0:.0%} of its
        requests/s.

        Reading it: at {args.connections} connections on 2 cores shared with wrk,
        latency is queueing (p50 ≈ connections ÷ requests/s). As shipped, a
        repeated query is answered from its kept answer (docs/graphql.md, "Kept
        answers"): the credential check, one read of the owner's content and
        analytics stamps, and the stored bytes; an edit drops it on the very
        next request. The "kept answers off" row is a second server on a copy
        of the same data with `LANDFORM_GRAPHQL_ANSWER_CACHE_SECONDS=0`, running
        alongside: every answer parsed, validated, resolved (the list, the
        analytics stamp and the 20 summaries, DataLoaders keeping it to a
        constant number of statements) and serialized — what a miss costs, and
        what a client sending ever-different queries gets.
        """
    )
    problems = (
        "\nServer errors:\n\n" + "\n".join(f"    {e}" for e in errors) + "\n" if errors else ""
    )
    return START + "\n" + head + table + "\n" + middle + targets + "\n" + tail + problems + END


if __name__ == "__main__":
    sys.exit(main())
