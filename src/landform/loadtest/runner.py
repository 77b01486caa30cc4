"""Runs a load test: its users and rate split over generator processes
(one per core by default), their seconds merged as they arrive, the
server's own figures sampled from ``/ops/performance`` alongside, and the
failure criteria checked every second over the last ten (a breach stops the
run: the spec's stress test asks for the breaking point, not an hour past
it) and once more at the end, over what was measured."""

from __future__ import annotations

import json
import os
import queue
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import httpx

from landform.loadtest.config import LoadTest
from landform.loadtest.fixtures import Account, Fixture
from landform.loadtest.registrations import Registrations
from landform.loadtest.samples import OperationSample, Second, milliseconds
from landform.loadtest.verdict import WINDOW_SECONDS, breaches, window_figures

SERVER_SAMPLE_SECONDS = 2.0


class RunError(RuntimeError):
    """The load test could not run (not: it ran and failed)."""


@dataclass
class RunData:
    test: LoadTest
    host: str
    started_at: str
    processes: int
    seconds: list[Second] = field(default_factory=list)
    generator_cpu: list[float] = field(default_factory=list)  # percent of one core, per second
    server: list[dict[str, float]] = field(default_factory=list)
    server_final: dict[str, Any] | None = None
    stopped_early: str | None = None
    breaches: list[dict[str, Any]] = field(default_factory=list)
    server_watched: bool = True  # False without an ops token: no server figures at all


class ServerWatch(threading.Thread):
    """Samples the server's resources, pool use and cache counts while the
    test runs (needs the ops token; without it the rows stay empty)."""

    def __init__(self, host: str, ops_token: str, started: float) -> None:
        super().__init__(daemon=True, name="server-watch")
        self.client = httpx.Client(
            base_url=host, timeout=5, headers={"Authorization": f"Bearer {ops_token}"}
        )
        self.started = started
        self.samples: list[dict[str, float]] = []
        self.halt = threading.Event()
        self.reachable = bool(ops_token)
        self._last_cache: tuple[float, float] | None = None

    def performance(
        self, scope: str, window: str, routes: bool = True, since: float | None = None
    ) -> dict[str, Any] | None:
        params = {"scope": scope, "window": window, "routes": "true" if routes else "false"}
        if since is not None:
            params["since"] = f"{since:.3f}"
        try:
            answer = self.client.get("/ops/performance", params=params)
        except httpx.HTTPError:
            return None
        return answer.json() if answer.status_code == 200 else None

    def run(self) -> None:
        while self.reachable and not self.halt.wait(SERVER_SAMPLE_SECONDS):
            metrics = self.performance("replica", "1m", routes=False)
            if metrics is None:
                continue
            resources, cache = metrics["resources"], metrics["cache"]
            sample = {
                "at": round(time.monotonic() - self.started, 1),
                "cpuPercent": float(resources.get("cpuPercent", 0.0)),
                "memoryPercent": float(resources.get("memoryPercent", 0.0)),
                "memoryMB": float(resources["memoryUsage"]),
                "openConnections": float(resources["openConnections"]),
                "poolUtilization": float(metrics["database"]["connectionPoolUtilization"]),
            }
            # The database's figures over the last minute, for the result's
            # databasePerformance should the server not answer at the end.
            queries, database = (
                metrics.get("components", {}).get("database", {}),
                metrics["database"],
            )
            sample["dbQueries"] = float(queries.get("count", 0))
            sample["dbQueryAverage"] = float(queries.get("average", 0.0))
            sample["dbQueryP99"] = float(queries.get("p99", 0.0))
            sample["slowQueryCount"] = float(database.get("slowQueryCount", 0))
            sample["replicationLag"] = float(database.get("replicationLag", 0.0))
            hits, lookups = float(cache.get("hits", 0.0)), float(cache.get("lookups", 0.0))
            sample["cacheHits"], sample["cacheLookups"] = hits, lookups
            if self._last_cache is not None and lookups > self._last_cache[1]:
                # Between two samples, not since the server started: a
                # slow decline shows instead of drowning in the past.
                sample["cacheHitRatio"] = round(
                    100 * (hits - self._last_cache[0]) / (lookups - self._last_cache[1]), 3
                )
            self._last_cache = (hits, lookups)
            self.samples.append(sample)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=10)


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def plans(
    test: LoadTest, fixture: Fixture, host: str, ops_token: str, processes: int
) -> list[dict[str, Any]]:
    processes = max(1, min(processes, test.concurrent_users))
    tag = secrets.token_hex(3)
    return [
        {
            "host": host,
            "users": users,
            "rate": test.requests_per_second * users / test.concurrent_users,
            "ramp_up": test.ramp_up,
            "duration": test.duration,
            "scenarios": [
                {
                    "name": s.name,
                    "weight": s.weight,
                    "operations": [f"{method} {path}" for method, path in s.operations],
                }
                for s in test.scenarios
            ],
            "accounts": [asdict(a) for a in fixture.accounts],
            "ops_token": ops_token,
            "tag": f"{tag}{n}",
            "seed": int.from_bytes(secrets.token_bytes(4)),
        }
        for n, users in enumerate(split(test.concurrent_users, processes))
    ]


def _read_lines(index: int, stream: IO[str], lines: queue.Queue[tuple[int, Any]]) -> None:
    for raw in stream:
        try:
            lines.put((index, json.loads(raw)))
        except ValueError:
            continue
    lines.put((index, {"done": True}))


def run(
    test: LoadTest,
    fixture: Fixture,
    host: str,
    ops_token: str,
    processes: int | None = None,
    progress: Callable[[str], None] = lambda _: None,
    on_registered: Callable[[list[Account]], None] = lambda _: None,
) -> RunData:
    """``on_registered`` is given every account the run's journeys have
    registered so far, each time there are new ones (at most once a second)
    and once when the generators are gone, interrupted or not: what
    cleanup needs to close them."""
    count = processes or os.cpu_count() or 1
    generator_plans = plans(test, fixture, host, ops_token, count)
    started = time.monotonic()
    started_wall = time.time()
    data = RunData(
        test, host, datetime.now(UTC).isoformat(timespec="seconds"), len(generator_plans)
    )
    data.server_watched = bool(ops_token)
    watch = ServerWatch(host, ops_token, started)
    lines: queue.Queue[tuple[int, Any]] = queue.Queue()
    logs = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed below)
    generators = []
    readers = []
    for n, plan in enumerate(generator_plans):
        process = subprocess.Popen(
            [sys.executable, "-m", "landform.loadtest.generator"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=logs,
            text=True,
        )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(plan) + "\n")
        process.stdin.close()
        reader = threading.Thread(target=_read_lines, args=(n, process.stdout, lines), daemon=True)
        reader.start()
        readers.append(reader)
        generators.append(process)
    watch.start()
    merged: dict[int, Second] = {}
    arrived: dict[int, int] = {}
    cpu: dict[int, float] = {}
    done: set[int] = set()
    errors: list[str] = []
    next_report = 0
    last_complete = -1  # the last second every running generator reported
    deadline = started + test.duration + 60  # generators that hang past this are killed
    registrations = Registrations()
    next_record = 0.0
    try:
        while len(done) < len(generators) and time.monotonic() < deadline:
            if registrations.changed and time.monotonic() >= next_record:
                on_registered(registrations.made())
                next_record = time.monotonic() + 1.0
            try:
                index, line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if registrations.take(line):
                continue
            if "error" in line:
                errors.append(str(line["error"]))
                continue
            if "done" in line:
                done.add(index)
                continue
            second = Second.decode(line)
            into = merged.setdefault(second.at, Second(second.at))
            for name, sample in second.operations.items():
                into.sample(name).add(sample)
            into.users += second.users
            cpu[second.at] = cpu.get(second.at, 0.0) + float(line.get("cpu", 0.0))
            arrived[second.at] = arrived.get(second.at, 0) + 1
            if arrived[second.at] < len(generators) - len(done):
                continue
            if data.stopped_early is None:
                last_complete = max(last_complete, second.at)
            complete = [merged[at] for at in sorted(merged)]
            if second.at >= next_report:
                next_report = second.at + 10
                progress(_progress_line(complete, test))
            found = breaches(test.failure_criteria, window_figures(complete, watch.samples))
            if found and data.stopped_early is None and len(complete) >= WINDOW_SECONDS:
                data.stopped_early = "failure criteria: " + "; ".join(b["text"] for b in found)
                data.breaches = found
                progress(f"stopping early: {data.stopped_early}")
                for process in generators:
                    process.terminate()
    except KeyboardInterrupt:
        data.stopped_early = "interrupted"
        for process in generators:
            process.terminate()
    finally:
        for process in generators:
            if process.poll() is None and len(done) < len(generators):
                process.terminate()  # past the deadline: a generator that hangs
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        watch.stop()
        _record_the_rest(readers, lines, registrations, on_registered)
    logs.seek(0)
    log_text = logs.read()
    logs.close()
    if not merged:
        raise RunError(
            "the load generators measured nothing: "
            + ("; ".join(errors) or log_text[-2000:] or "no output")
        )
    kept = sorted(merged)
    if data.stopped_early is not None and last_complete >= 0:
        # Generators stopped mid-second report what that second had: a
        # partial second would read as a drop in throughput and latency.
        kept = [at for at in kept if at <= last_complete]
    data.seconds = [merged[at] for at in kept]
    data.generator_cpu = [cpu[at] for at in kept]
    data.server = watch.samples
    if not data.breaches:
        data.breaches = final_breaches(data)
    # The server's figures of this run's time, not of a window around it
    # (what came before, preparation included, is not this run's).
    data.server_final = (
        watch.performance("cluster", "1h", since=started_wall) if ops_token else None
    )
    return data


def _record_the_rest(
    readers: list[threading.Thread],
    lines: queue.Queue[tuple[int, Any]],
    registrations: Registrations,
    on_registered: Callable[[list[Account]], None],
) -> None:
    """Every generator's registrations, those still in its pipe when the
    run stopped (early, interrupted or at its end) included: each is an
    account on the server that only this record lets cleanup close."""
    for reader in readers:
        reader.join(timeout=5)  # the generators are gone: their pipes end
    while True:
        try:
            _, line = lines.get_nowait()
        except queue.Empty:
            break
        registrations.take(line)
    if registrations.changed:
        on_registered(registrations.made())


def final_breaches(data: RunData) -> list[dict[str, Any]]:
    """The failure criteria judged once more when the run is over, over its
    last window or, for a run shorter than a window, over all it measured.
    In flight they wait for a whole window (a second or two of a cold start
    is no verdict); without this a run shorter than the window was never
    judged at all, and a breach passed."""
    return breaches(data.test.failure_criteria, window_figures(data.seconds, data.server))


def _progress_line(seconds: list[Second], test: LoadTest) -> str:
    recent = seconds[-WINDOW_SECONDS:]
    total = OperationSample()
    for second in recent:
        total.add(second.merged())
    rate = total.requests / max(1, len(recent))
    p99 = milliseconds(total.latency, 99)
    errors = 100 * total.errors / total.requests if total.requests else 0.0
    users = recent[-1].users if recent else 0
    return (
        f"{len(seconds):>5d} s  {users:>6d} users  {rate:>8.1f} req/s "
        f"(target {test.requests_per_second:g})  p99 {p99:>8.1f} ms  errors {errors:.2f} %"
    )
