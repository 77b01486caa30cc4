"""Coordinated omission, corrected: against an endpoint that stalls for a
second, a closed loop would see one slow request among hundreds; the
harness measures from each request's intended send time, so every request
that was due during the stall counts what it waited."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from landform.loadtest.config import parse
from landform.loadtest.fixtures import Account, Fixture
from landform.loadtest.runner import run
from landform.loadtest.samples import OperationSample, milliseconds

SCENARIO = """
load_tests:
  - name: probe
    duration: 10s
    ramp_up: 0s
    concurrent_users: 1
    requests_per_second: 40
    scenarios:
      - name: health
        weight: 100%
        operations:
          - GET /healthz
"""
STALL_AFTER, STALL_FOR = 4.0, 1.0


@contextmanager
def stalling_server() -> Iterator[str]:
    """Answers at once, except that from 4 s after its first request it
    holds every answer until 5 s (a garbage-collection pause, a lock)."""
    first: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body leave at once

        def log_message(self, *_: object) -> None:
            pass

        def answer(self, body: bytes) -> None:
            now = time.monotonic()
            if not first:
                first.append(now)
            stall_from = first[0] + STALL_AFTER
            if stall_from <= now < stall_from + STALL_FOR:
                time.sleep(stall_from + STALL_FOR - now)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            self.answer(b'{"status":"ok"}')

        def do_POST(self) -> None:  # noqa: N802  (the harness signs its account in)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.answer(json.dumps({"access_token": "t"}).encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_stall_shows_in_the_percentiles(tmp_path: Path) -> None:
    (test,) = parse(SCENARIO)
    with stalling_server() as host:
        account = Account("probe@loadtest.example", "x", [{"id": "1", "slug": "p"}], ["/a"])
        data = run(test, Fixture(host, "probe", [account]), host, ops_token="", processes=1)
    total = OperationSample()
    for second in data.seconds:
        total.add(second.operations.get("GET /healthz", OperationSample()))
    # 40 requests were due each second: about 40 fell due during the stall.
    assert total.requests >= 300
    assert total.errors == 0
    # Measured from the send: one request waited a second, the rest were quick.
    assert milliseconds(total.service, 95) < 50
    # Measured from the intended send time: ~10 % of requests waited, up to 1 s.
    assert milliseconds(total.latency, 95) > 300
    assert milliseconds(total.latency, 99) > 600
    assert total.latency.get_max_value() / 1000 >= 0.9 * STALL_FOR * 1000


def test_a_run_stopped_early_keeps_only_whole_seconds() -> None:
    """The stall breaches the criterion; the generators are stopped mid-second,
    and that partial second is left out rather than read as a throughput drop."""
    (test,) = parse(
        SCENARIO.replace("duration: 10s", "duration: 30s")
        + '    failure_criteria:\n      - response_time_p99: "> 300ms"\n'
    )
    with stalling_server() as host:
        account = Account("probe@loadtest.example", "x", [{"id": "1", "slug": "p"}], ["/a"])
        data = run(test, Fixture(host, "probe", [account]), host, ops_token="", processes=1)
    assert data.stopped_early is not None and data.stopped_early.startswith("failure criteria")
    assert len(data.seconds) < 25
    requests = [sum(s.requests for s in second.operations.values()) for second in data.seconds]
    # The last second kept is a whole one: about the 40 due, not a fraction.
    assert requests[-1] >= 30, requests
