"""One load-generator process: Locust (FastHttpUser on gevent) driving the
scenario's journeys at its share of the users and the rate.

    python -m landform.loadtest.generator  < plan.json  > seconds.jsonl

The plan comes as one JSON line on stdin; each second of measurements goes
out as one JSON line on stdout (``samples.Second``), the last one followed
by ``{"done": true}``; each account a journey registers goes out as it is
sent and again when answered (``tell_registration``). It stops after the
plan's duration, on SIGTERM (the coordinator's early stop), or when the
coordinator is gone. Locust patches
the standard library for gevent on import, which is why this runs in a
process of its own and never inside the CLI or the server."""

# ruff: noqa: E402  (gevent must patch the standard library before anything else loads)
from gevent import monkey

monkey.patch_all()

import contextlib
import json
import os
import random
import signal
import sys
import time
from typing import Any

import gevent
import gevent.event
import httpx
import psutil
from locust import FastHttpUser, constant
from locust.env import Environment

from landform.loadtest.fixtures import Account, FixtureError, sign_in
from landform.loadtest.pacing import Schedule, per_user_interval
from landform.loadtest.samples import Second
from landform.loadtest.steps import STEPS, Journey, Shared

TOKEN_REFRESH_SECONDS = 600  # access tokens live 15 minutes by default


class Recorder:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.current = Second(0)

    def record(
        self, operation: str, latency: float, service: float, status: int, size: int
    ) -> None:
        failed = status == 0 or status >= 400
        self.current.sample(operation).record(
            latency, service, str(status) if status else "error", failed, size
        )


def refresh_tokens(host: str, shared: Shared) -> None:
    with httpx.Client(base_url=host, timeout=30) as client:
        for account in shared.accounts:
            shared.tokens[account.email] = sign_in(client, account.email, account.password)


def journey_task(operations: list[str], shared: Shared, recorder: Recorder) -> Any:
    def run(user: Any) -> None:
        def fetch(method: str, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
            answer = user.client.request(method, url, headers=headers, name="(harness)")
            return answer.status_code, answer.content or b""

        journey = Journey.start(shared, user.rng, fetch)
        for operation in operations:
            request = STEPS[operation](journey)
            if request is None:
                continue
            due = user.schedule.take()
            wait = due - time.monotonic()
            if wait > 0:
                gevent.sleep(wait)
            sent = time.monotonic()
            answer = user.client.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                name=operation,
            )
            done = time.monotonic()
            status = answer.status_code or 0
            body = answer.content or b""
            recorder.record(operation, done - due, done - sent, status, len(body))
            if request.on_answer is not None:
                request.on_answer(status, body)

    return run


def visitor_class(plan: dict[str, Any], shared: Shared, recorder: Recorder) -> type[FastHttpUser]:
    interval = per_user_interval(plan["users"], plan["rate"])
    seeds = random.Random(plan["seed"])  # noqa: S311  (traffic, not secrets)
    journeys = {
        journey_task(s["operations"], shared, recorder): max(1, round(s["weight"] * 10))
        for s in plan["scenarios"]
    }

    class Visitor(FastHttpUser):
        # In the class body: Locust turns the weights into its task list
        # when the class is made.
        tasks = journeys  # type: ignore[assignment]
        host = plan["host"]
        wait_time = constant(0)  # pacing is the schedule's
        network_timeout = 30.0
        connection_timeout = 10.0
        max_redirects = 0

        def on_start(self) -> None:
            self.rng = random.Random(seeds.random())  # noqa: S311
            self.schedule = Schedule.starting(time.monotonic(), interval, self.rng)

    return Visitor


def emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def tell_registration(account: Account, status: int | None) -> None:
    """The coordinator records every account a journey registers, for
    cleanup: as it is sent, with its password, then its answer."""
    if status is None:
        emit({"registering": {"email": account.email, "password": account.password}})
    else:
        emit({"registered": account.email, "status": status})


def main() -> int:
    plan = json.loads(sys.stdin.readline())
    accounts = [Account(**a) for a in plan["accounts"]]
    shared = Shared(accounts, {}, plan["ops_token"], plan["tag"], tell_registration)
    try:
        refresh_tokens(plan["host"], shared)
    except (FixtureError, httpx.HTTPError) as exc:
        emit({"error": f"could not sign in the prepared accounts: {exc}"})
        return 2
    recorder = Recorder()
    visitor = visitor_class(plan, shared, recorder)
    environment = Environment(user_classes=[visitor], host=plan["host"])
    runner = environment.create_local_runner()
    stopping = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stopping.set)
    parent = os.getppid()
    me = psutil.Process()
    me.cpu_percent(None)

    def keep_tokens_fresh() -> None:
        while True:
            gevent.sleep(TOKEN_REFRESH_SECONDS)
            # On failure the next journeys' 401s show it.
            with contextlib.suppress(FixtureError, httpx.HTTPError):
                refresh_tokens(plan["host"], shared)

    refresher = gevent.spawn(keep_tokens_fresh)
    spawn_rate = plan["users"] / plan["ramp_up"] if plan["ramp_up"] > 0 else plan["users"]
    recorder.started = time.monotonic()
    runner.start(plan["users"], spawn_rate=spawn_rate)
    deadline = recorder.started + plan["duration"]
    at = 0
    while not stopping.is_set() and time.monotonic() < deadline and os.getppid() == parent:
        at += 1
        stopping.wait(max(0.0, recorder.started + at - time.monotonic()))
        second, recorder.current = recorder.current, Second(at)
        second.users = runner.user_count
        emit({**second.encode(), "cpu": me.cpu_percent(None)})
    runner.quit()
    refresher.kill()
    emit({"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
