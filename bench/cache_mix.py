"""Caching under the spec's peak mix, with Redis up, away and back; and what
rate limiting costs the hot path.

    .venv/bin/python bench/cache_mix.py [--duration 20] [--concurrency 16]

1. **Peak mix.** ``landform serve`` (SQLite, Redis for L2, the invalidation
   bus and shared rate limits, default workers) with a few accounts, their
   published pages and a week of analytics; then the spec's
   ``peak_traffic_simulation`` weights, at a fixed concurrency: 25 % public
   page views (``GET /{slug}`` and the beacon), 30 % analytics reads (page
   report, dashboard, custom query), 25 % content management (read and edit
   a draft; the spec's journey does not publish), 15 % page creation
   (templates, create, update), 5 % registration. The cache counts come
   from each worker's ``/ops/cache`` (as an operator), before and after:
   hit ratio = lookups answered by any tier / all lookups (spec: ≥ 90 %;
   target ≥ 95 %).
2. **Redis away.** Redis is reached through a TCP relay the benchmark runs;
   the same mix runs with Redis up, with the relay closed (Redis gone: every
   connection refused), and after it is back: latency per phase (target:
   within 2× of normal), 5xx count (target 0), and the L2 hit ratio after
   recovery.
3. **Rate limiter on the hot path.** wrk on ``GET /{slug}`` against servers
   with limits off, on in-process, and on through Redis (limits raised out of
   one address's way so every request passes the check), alternating.

Writes its section of docs/benchmarks.md (between the cache_mix markers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from public_pages import (  # noqa: E402
    LANDFORM,
    Proc,
    check,
    ensure_tools,
    free_port,
    log,
    machine_info,
    server_errors,
    verdict,
    write_doc,
)
from tests.relay import Relay  # noqa: E402

from analytics import STATUS_LUA, landform_env, run_wrk, start_landform  # noqa: E402

START = "<!-- cache_mix:start -->"
END = "<!-- cache_mix:end -->"
SCRIPT = "bench/cache_mix.py"

TARGET_HIT_RATIO = 0.95
SPEC_HIT_RATIO = 0.90
TARGET_DOWN_RATIO = 2.0
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
WEIGHTS = {"public": 25, "analytics": 30, "content": 25, "creation": 15, "registration": 5}


# --- the mix -------------------------------------------------------------------


@dataclass
class Account:
    email: str
    token: str
    pages: list[dict[str, Any]]


@dataclass
class Phase:
    name: str
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    requests: int = 0
    seconds: float = 0.0

    def record(self, journey: str, started: float, status: int) -> None:
        self.latencies.setdefault(journey, []).append((time.perf_counter() - started) * 1000)
        self.statuses[status] += 1
        self.requests += 1

    def all_ms(self) -> list[float]:
        return [ms for values in self.latencies.values() for ms in values]


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Mix:
    def __init__(self, base: str, accounts: list[Account], slugs: list[str]) -> None:
        self.base = base
        self.accounts = accounts
        self.slugs = slugs
        self.custom = {
            "metrics": ["views", "visitors"],
            "dimensions": ["referrer"],
            "limit": 20,
        }

    async def run(self, phase: Phase, seconds: float, concurrency: int) -> None:
        deadline = time.monotonic() + seconds
        started = time.monotonic()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=self.base, timeout=30, limits=limits) as client:

            async def user(seed: int) -> None:
                rng = random.Random(seed)
                journeys = list(WEIGHTS)
                weights = list(WEIGHTS.values())
                while time.monotonic() < deadline:
                    journey = rng.choices(journeys, weights)[0]
                    await getattr(self, journey)(client, rng, phase)

            await asyncio.gather(*(user(seed) for seed in range(concurrency)))
        phase.seconds = time.monotonic() - started

    async def _call(
        self,
        client: httpx.AsyncClient,
        phase: Phase,
        journey: str,
        method: str,
        url: str,
        **kwargs: Any,
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError:
            phase.record(journey, started, 599)
            return None
        phase.record(journey, started, response.status_code)
        return response

    # The spec's five user journeys.

    async def public(self, client: httpx.AsyncClient, rng: random.Random, phase: Phase) -> None:
        # A few pages draw most of the traffic, as on a real site.
        slug = self.slugs[min(int(rng.paretovariate(1.2)) - 1, len(self.slugs) - 1)]
        await self._call(client, phase, "public", "GET", f"/{slug}")
        address = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        await self._call(
            client, phase, "public", "POST", "/analytics/track-view",
            content=json.dumps({"slug": slug, "path": f"/{slug}"}),
            headers={"Content-Type": "text/plain", "User-Agent": BROWSER,
                     "X-Forwarded-For": address},
        )  # fmt: skip

    async def analytics(self, client: httpx.AsyncClient, rng: random.Random, phase: Phase) -> None:
        account = rng.choice(self.accounts)
        auth = {"Authorization": f"Bearer {account.token}"}
        which = rng.random()
        if which < 0.45:
            page = rng.choice(account.pages)
            await self._call(
                client, phase, "analytics", "GET", f"/analytics/pages/{page['id']}", headers=auth
            )
        elif which < 0.9:
            await self._call(
                client, phase, "analytics", "GET", "/analytics/dashboard", headers=auth
            )
        else:
            await self._call(
                client, phase, "analytics", "POST", "/analytics/custom-query",
                json=self.custom, headers=auth,
            )  # fmt: skip

    async def content(self, client: httpx.AsyncClient, rng: random.Random, phase: Phase) -> None:
        account = rng.choice(self.accounts)
        auth = {"Authorization": f"Bearer {account.token}"}
        page = rng.choice(account.pages)
        url = f"/landing-pages/{page['id']}"
        await self._call(client, phase, "content", "GET", url, headers=auth)
        hero = {"type": "hero", "headline": f"Edition {rng.randrange(10**6)}"}
        await self._call(
            client, phase, "content", "PUT", f"{url}/content", json={"blocks": [hero]},
            headers=auth,
        )  # fmt: skip

    async def creation(self, client: httpx.AsyncClient, rng: random.Random, phase: Phase) -> None:
        account = rng.choice(self.accounts)
        auth = {"Authorization": f"Bearer {account.token}"}
        await self._call(client, phase, "creation", "GET", "/templates", headers=auth)
        created = await self._call(
            client, phase, "creation", "POST", "/landing-pages",
            json={"title": f"Draft {rng.randrange(10**9)}"}, headers=auth,
        )  # fmt: skip
        if created is not None and created.status_code == 201:
            await self._call(
                client, phase, "creation", "PUT", f"/landing-pages/{created.json()['id']}",
                json={"title": "Renamed draft"}, headers=auth,
            )  # fmt: skip

    async def registration(
        self, client: httpx.AsyncClient, rng: random.Random, phase: Phase
    ) -> None:
        email = f"visitor-{secrets.token_hex(6)}@mix.example"
        await self._call(
            client, phase, "registration", "POST", "/auth/register",
            json={"email": email, "password": "a long enough pass phrase"},
        )  # fmt: skip


# --- cache counts ------------------------------------------------------------


def fleet_counts(base: str, token: str, workers: int) -> dict[int, dict[str, Any]]:
    """Every worker's ``/ops/cache`` (new connections land on each in turn)."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(50 * workers):
        with httpx.Client(base_url=base, timeout=10) as fresh:
            body = check(fresh.get("/ops/cache", headers={"Authorization": f"Bearer {token}"}), 200)
        seen[body["worker"]] = body["tiers"]
        if len(seen) == workers:
            break
    return seen


def lookups(before: dict[int, Any], after: dict[int, Any]) -> dict[str, dict[str, float]]:
    """Per kind: lookups, answered from L1, from L2, and the hit ratio."""

    def count(tiers: dict[str, Any], tier: str, kind: str, what: str) -> float:
        return float(tiers.get(tier, {}).get(kind, {}).get(what, 0))

    kinds = {kind for tiers in after.values() for kind in tiers.get("l1", {})}
    out: dict[str, dict[str, float]] = {}
    for kind in sorted(kinds):
        totals = {"lookups": 0.0, "l1": 0.0, "l2": 0.0}
        for worker, tiers in after.items():
            old = before.get(worker, {})
            l1_hits = count(tiers, "l1", kind, "hits") - count(old, "l1", kind, "hits")
            l1_misses = count(tiers, "l1", kind, "misses") - count(old, "l1", kind, "misses")
            totals["lookups"] += l1_hits + l1_misses
            totals["l1"] += l1_hits
            totals["l2"] += count(tiers, "l2", kind, "hits") - count(old, "l2", kind, "hits")
        if totals["lookups"]:
            totals["hit_ratio"] = (totals["l1"] + totals["l2"]) / totals["lookups"]
            out[kind] = totals
    answered = sum(k["l1"] + k["l2"] for k in out.values())
    looked = sum(k["lookups"] for k in out.values())
    out["all"] = {"lookups": looked, "hit_ratio": answered / looked if looked else 0.0}
    return out


def l2_ratio(before: dict[int, Any], after: dict[int, Any]) -> float:
    hits = misses = 0.0
    for worker, tiers in after.items():
        for kind, counts in tiers.get("l2", {}).items():
            old = before.get(worker, {}).get("l2", {}).get(kind, {})
            hits += counts["hits"] - old.get("hits", 0)
            misses += counts["misses"] - old.get("misses", 0)
    return hits / (hits + misses) if hits + misses else 0.0


# --- setting up ----------------------------------------------------------------


def prepare(env: dict[str, str], owners: int, events: int, password: str) -> list[str]:
    subprocess.run([LANDFORM, "db", "upgrade"], env=env, check=True, capture_output=True)
    emails = [f"owner{n}@mix.example" for n in range(owners)]
    for n, email in enumerate(emails):
        subprocess.run(
            [
                LANDFORM, "analytics", "generate", "--pages", "10", "--events", str(events),
                "--days", "7", "--email", email, "--password", password, "--seed", str(n),
            ],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
    subprocess.run(
        [LANDFORM, "users", "set-role", emails[0], "admin"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return emails


def sign_in(base: str, emails: list[str], password: str) -> list[Account]:
    accounts = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for email in emails:
            token = check(
                client.post("/auth/login", json={"email": email, "password": password}), 200
            )["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            pages = check(client.get("/landing-pages?status=published&limit=50", headers=auth), 200)
            accounts.append(Account(email, token, pages["items"]))
    return accounts


def redis_port(url: str) -> tuple[int, str]:
    rest = url.removeprefix("redis://")
    hostport, _, db = rest.partition("/")
    return int(hostport.rsplit(":", 1)[1]), db or "0"


# --- main ----------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=20, help="seconds per mix phase (20)")
    p.add_argument("--concurrency", type=int, default=16, help="simulated users (16)")
    p.add_argument("--owners", type=int, default=4, help="accounts with pages (4)")
    p.add_argument("--events", type=int, default=20_000, help="analytics events each (20000)")
    p.add_argument("--workers", type=int, default=2, help="server workers (2)")
    p.add_argument("--wrk-duration", type=float, default=8, help="seconds per wrk run (8)")
    p.add_argument("--repeats", type=int, default=5, help="alternating wrk rounds (5)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    p.add_argument("--keep-temp", action="store_true")
    p.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    ensure_tools()
    info = machine_info()

    def terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    tmp = Path(tempfile.mkdtemp(prefix="landform-cache-mix-"))
    procs: list[Proc] = []
    started = time.monotonic()
    target_port, db = redis_port(args.redis_url)
    subprocess.run(["redis-cli", "-p", str(target_port), "-n", db, "flushdb"], check=True)
    relay = Relay(target_port)
    relay.open()
    try:
        port = free_port()
        env = landform_env(
            tmp / "data", port,
            LANDFORM_SECRET_KEY=secrets.token_urlsafe(48),
            LANDFORM_REDIS_URL=f"redis://127.0.0.1:{relay.port}/{db}",
            LANDFORM_TRUSTED_PROXIES="127.0.0.1",
        )  # fmt: skip
        password = "bench-" + secrets.token_hex(12)
        log(f"preparing {args.owners} accounts × 10 pages, {args.events:,} events each")
        emails = prepare(env, args.owners, args.events, password)
        server, base = start_landform("landform", env, port, args.workers, tmp / "landform.log")
        procs.append(server)
        accounts = sign_in(base, emails, password)
        operator = accounts[0].token
        slugs = [page["slug"] for account in accounts for page in account.pages]
        random.Random(7).shuffle(slugs)
        mix = Mix(base, accounts, slugs)

        log("warm-up")
        asyncio.run(mix.run(Phase("warm-up"), 5, args.concurrency))
        phases: list[tuple[Phase, dict[str, Any], float]] = []
        for name in ("Redis up", "Redis away", "Redis back"):
            if name == "Redis away":
                relay.close()
            elif name == "Redis back":
                relay.open()
                time.sleep(1)
            before = fleet_counts(base, operator, args.workers)
            phase = Phase(name)
            asyncio.run(mix.run(phase, args.duration, args.concurrency))
            after = fleet_counts(base, operator, args.workers)
            phases.append((phase, lookups(before, after), l2_ratio(before, after)))
            ms = phase.all_ms()
            log(
                f"{name}: {phase.requests / phase.seconds:.0f} req/s, p50 {pct(ms, 0.5):.1f} ms, "
                f"p99 {pct(ms, 0.99):.1f} ms, statuses {dict(phase.statuses)}, "
                f"hit ratio {phases[-1][1]['all']['hit_ratio']:.3f}, L2 {phases[-1][2]:.3f}"
            )
            for kind, counts in phases[-1][1].items():
                log(f"  {kind}: {counts}")
            for journey, values in phase.latencies.items():
                log(f"  {journey}: p50 {pct(values, 0.5):.1f} ms, p99 {pct(values, 0.99):.1f} ms")
        errors = server_errors(server)
        server.stop()
        procs.clear()

        limiter = limiter_bench(args, tmp, relay)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for proc in procs:
            proc.stop()
        relay.close()
        if not args.keep_temp:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")

    section = build_section(args, info, phases, errors, limiter, time.monotonic() - started)
    print(section)
    if not args.no_write:
        write_doc(section, START, END)
    return 0


def limiter_bench(args: argparse.Namespace, tmp: Path, relay: Relay) -> dict[str, list[float]]:
    """GET /{slug} requests/s with the rate limiter off, in-process, through Redis."""
    relay.open()
    modes = {
        "off": {"LANDFORM_RATE_LIMIT_ENABLED": "false"},
        "in-process": {},
        "Redis": {"LANDFORM_REDIS_URL": f"redis://127.0.0.1:{relay.port}/14"},
    }
    return slug_rates(modes, tmp, args.workers, args.wrk_duration, args.repeats)


def slug_rates(
    modes: dict[str, dict[str, str]], tmp: Path, workers: int, seconds: float, repeats: int
) -> dict[str, list[float]]:
    """GET /{slug} requests/s (wrk, 64 connections) against one server per
    mode (extra settings each), in alternating rounds."""
    servers: dict[str, tuple[Proc, str, str]] = {}
    try:
        for mode, extra in modes.items():
            port = free_port()
            data = tmp / f"wrk-{mode}"
            env = landform_env(data, port, LANDFORM_SECRET_KEY=secrets.token_urlsafe(48), **extra)
            password = "bench-" + secrets.token_hex(12)
            subprocess.run([LANDFORM, "db", "upgrade"], env=env, check=True, capture_output=True)
            subprocess.run(
                [LANDFORM, "analytics", "generate", "--pages", "1", "--events", "0",
                 "--email", "wrk@mix.example", "--password", password],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            proc, base = start_landform(f"landform-{mode}", env, port, workers, data / "log")
            with httpx.Client(base_url=base) as client:
                token = check(
                    client.post(
                        "/auth/login", json={"email": "wrk@mix.example", "password": password}
                    ),
                    200,
                )["access_token"]
                listed = check(
                    client.get(
                        "/landing-pages?status=published",
                        headers={"Authorization": f"Bearer {token}"},
                    ),
                    200,
                )
            servers[mode] = (proc, base, listed["items"][0]["slug"])
        lua = tmp / "status.lua"
        lua.write_text(STATUS_LUA)
        rates: dict[str, list[float]] = {mode: [] for mode in modes}
        for _mode, (_proc, base, slug) in servers.items():
            run_wrk(f"{base}/{slug}", lua, 2, 64, 2, {})
        for round_number in range(repeats):
            for mode, (_proc, base, slug) in servers.items():
                result = run_wrk(f"{base}/{slug}", lua, seconds, 64, 2, {})
                rates[mode].append(result.rps)
                log(f"round {round_number + 1} {mode}: {result.rps:,.0f} req/s")
    finally:
        for proc, _, _ in servers.values():
            proc.stop()
    return rates


def build_section(
    args: argparse.Namespace,
    info: dict[str, str],
    phases: list[tuple[Phase, dict[str, Any], float]],
    errors: list[str],
    limiter: dict[str, list[float]],
    took: float,
) -> str:
    up, away, back = phases
    up_ms, away_ms = up[0].all_ms(), away[0].all_ms()
    ratio = up[1]["all"]["hit_ratio"]
    p99_ratio = pct(away_ms, 0.99) / pct(up_ms, 0.99) if up_ms else 0.0
    p50_ratio = pct(away_ms, 0.5) / pct(up_ms, 0.5) if up_ms else 0.0
    fives = {p.name: sum(n for s, n in p.statuses.items() if s >= 500) for p, _, _ in phases}
    lines = [
        START,
        "## Caching under the peak mix, and with Redis away",
        "",
        f"Written by `{SCRIPT}` ({time.strftime('%Y-%m-%d')}, {took / 60:.0f} min). "
        f"Machine: {info['nproc']} CPUs, {info['cpu']}. "
        f"`landform serve` with {args.workers} workers on SQLite, Redis for L2, the "
        f"invalidation bus and rate limits; {args.owners} accounts × 10 published pages, "
        f"{args.events:,} events each; {args.concurrency} simulated users running the "
        f"spec's peak-mix journeys back to back, {args.duration:.0f} s per phase.",
        "",
        "| phase | requests/s | p50 ms | p99 ms | 5xx | hit ratio (all kinds) | L2 hit ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for phase, kinds, l2 in phases:
        ms = phase.all_ms()
        lines.append(
            f"| {phase.name} | {phase.requests / phase.seconds:.0f} | {pct(ms, 0.5):.1f} | "
            f"{pct(ms, 0.99):.1f} | {fives[phase.name]} | {kinds['all']['hit_ratio']:.3f} | "
            f"{l2:.3f} |"
        )
    lines += [
        "",
        "Lookups per kind with Redis up (a lookup is answered by L1, by L2, or loaded):",
        "",
        "| kind | lookups | from L1 | from L2 | hit ratio |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind, counts in up[1].items():
        if kind == "all":
            continue
        lines.append(
            f"| {kind} | {counts['lookups']:.0f} | {counts['l1']:.0f} | {counts['l2']:.0f} | "
            f"{counts['hit_ratio']:.3f} |"
        )
    statuses = ", ".join(
        f"{p.name}: " + " ".join(f"{s}×{n}" for s, n in sorted(p.statuses.items()))
        for p, _, _ in phases
    )
    off = statistics.median(limiter["off"])
    local = statistics.median(limiter["in-process"])
    shared = statistics.median(limiter["Redis"])
    lines += [
        "",
        f"- Hit ratio during the peak mix: **{ratio:.3f}** (target ≥ {TARGET_HIT_RATIO}, "
        f"spec ≥ {SPEC_HIT_RATIO}): {verdict(ratio >= TARGET_HIT_RATIO)}.",
        f"- Redis away: p50 ×{p50_ratio:.2f}, p99 ×{p99_ratio:.2f} of Redis up "
        f"(target ≤ {TARGET_DOWN_RATIO}×): {verdict(p99_ratio <= TARGET_DOWN_RATIO)}; "
        f"5xx while away: {fives['Redis away']} "
        f"({verdict(fives['Redis away'] == 0)}). L2 hit ratio back to "
        f"{back[2]:.3f} after Redis returned (it was {up[2]:.3f}).",
        f"- Statuses: {statuses}. Server tracebacks: {', '.join(errors) or 'none'}.",
        "",
        "Rate limiter on `GET /{slug}` (wrk, 64 connections, "
        f"{args.wrk_duration:.0f} s, median of {args.repeats} alternating rounds; limits raised "
        "so every request is checked and passes):",
        "",
        "| limiter | requests/s | vs off |",
        "| --- | --- | --- |",
        f"| off | {off:,.0f} | 1.00 |",
        f"| in-process buckets | {local:,.0f} | {local / off:.2f} |",
        f"| Redis buckets (leases) | {shared:,.0f} | {shared / off:.2f} |",
        "",
        "Rerun: " + f"`.venv/bin/python {SCRIPT} --duration {args.duration:.0f} "
        f"--concurrency {args.concurrency}`",
        END,
    ]
    return "\n".join(textwrap.dedent(line) for line in lines)


if __name__ == "__main__":
    sys.exit(main())
