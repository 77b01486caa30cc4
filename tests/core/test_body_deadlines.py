"""A request body that does not arrive within LANDFORM_BODY_READ_TIMEOUT is
answered 408 ``request_timeout`` in the one error shape and its connection
closed: on the API and on the beacon, over raw sockets against real servers
(granian's ASGI and RSGI, uvicorn). A body that comes in time, even in
pieces, is answered as always. And the sweeper's rules, in process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from landform.core.body_deadlines import BodyDeadlines, BodyReadTimeout
from tests.live_server import live_server

TIMEOUT = 2.0
LOGIN = b'{"email": "nobody@example.com", "password": "not-the-password"}'
BEACON = b'{"slug": "no-such-page"}'


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float
    closed: bool


def post(port: int, path: str, body: bytes, pieces: list[bytes], every: float) -> Answer:
    """POST ``body``'s length declared, then ``pieces`` one every ``every``
    seconds (until the server answers); the answer, when it came, and
    whether the server closed the connection after it."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(every)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode())
        started = time.monotonic()
        received = b""
        pending = list(pieces)
        while b"\r\n\r\n" not in received and time.monotonic() - started < 30:
            if pending:
                sock.sendall(pending.pop(0))
            with contextlib.suppress(TimeoutError):  # nothing yet: send the next piece
                received += sock.recv(65536)
        seconds = time.monotonic() - started
        assert b"\r\n\r\n" in received, f"no answer to {path} in {seconds:.0f} s: {received!r}"
        head_bytes, _, rest = received.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        sock.settimeout(5)
        while len(rest) < int(headers.get("content-length", "0")):
            rest += sock.recv(65536)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        return Answer(int(lines[0].split()[1]), headers, rest, seconds, closed)


def slowly(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


@pytest.mark.parametrize(
    ("server", "interface"), [("granian", "asgi"), ("uvicorn", "asgi"), ("granian", "rsgi")]
)
def test_a_body_that_does_not_arrive_in_time_is_answered_408(
    tmp_path: Path, server: str, interface: str
) -> None:
    env = {"LANDFORM_BODY_READ_TIMEOUT": str(TIMEOUT)}
    with live_server(tmp_path, workers=1, server=server, interface=interface, **env) as base:
        port = int(base.rsplit(":", 1)[1])
        cases = {
            # A byte every 0.7 s: slowloris.
            "api dribbled": ("/auth/login", LOGIN, slowly(LOGIN), 0.7),
            "beacon dribbled": ("/analytics/track-view", BEACON, slowly(BEACON), 0.7),
            # The headers, then nothing.
            "api silent": ("/auth/login", LOGIN, [], 0.5),
            "beacon silent": ("/analytics/track-view", BEACON, [], 0.5),
            # In time, in three pieces: answered as always.
            "api in time": ("/auth/login", LOGIN, [LOGIN[:10], LOGIN[10:30], LOGIN[30:]], 0.3),
            "beacon in time": ("/analytics/track-view", BEACON, [BEACON[:5], BEACON[5:]], 0.3),
        }
        with ThreadPoolExecutor(len(cases)) as pool:
            futures = {name: pool.submit(post, port, *case) for name, case in cases.items()}
            answers = {name: future.result() for name, future in futures.items()}

        for name in ("api dribbled", "beacon dribbled", "api silent", "beacon silent"):
            answer = answers[name]
            assert answer.status == 408, (name, answer)
            error = json.loads(answer.body)["error"]
            assert error["code"] == "request_timeout", (name, error)
            assert error["message"] == "the request body did not arrive within 2 seconds"
            assert answer.headers["connection"] == "close", (name, answer.headers)
            assert answer.closed, name
            # Not before its time, and soon after it: a sweeper tick (0.5 s)
            # plus what a loaded CI machine adds, far short of the 30-s wait
            # an unbounded read runs into here.
            assert TIMEOUT - 0.1 <= answer.seconds < TIMEOUT + 6, (name, answer.seconds)
            if name.startswith("beacon"):
                assert answer.headers["access-control-allow-origin"] == "*"
        login = answers["api in time"]
        assert login.status == 401, login
        assert json.loads(login.body)["error"]["code"] == "invalid_credentials"
        beacon = answers["beacon in time"]
        assert beacon.status == 404, beacon
        assert json.loads(beacon.body)["error"]["code"] == "page_not_found"
    log = next(tmp_path.glob("server-*.log")).read_text()
    assert "Traceback" not in log, log[-3000:]


def test_a_large_body_gets_time_in_proportion() -> None:
    deadlines = BodyDeadlines(30.0, 1024 * 1024)
    assert deadlines.deadline(0, since=100.0) == 130.0
    assert deadlines.deadline(1024 * 1024, since=100.0) == 130.0
    assert deadlines.deadline(10 * 1024 * 1024, since=100.0) == 400.0


async def test_only_a_wait_past_its_deadline_is_cut_short() -> None:
    deadlines = BodyDeadlines(0.2, 1024)
    await deadlines.start()
    try:
        never: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        with pytest.raises(BodyReadTimeout):
            await deadlines.within(never, deadlines.deadline())
        # The task is not left cancelled: it goes on to answer.
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        assert await asyncio.sleep(0.01, "on") == "on"

        # A body that comes in time is returned.
        soon = asyncio.ensure_future(asyncio.sleep(0.05, b"body"))
        assert await deadlines.within(soon, deadlines.deadline()) == b"body"

        # Any other cancellation of a waiting request stays a cancellation.
        waiter = asyncio.ensure_future(
            deadlines.within(asyncio.get_running_loop().create_future(), deadlines.deadline())
        )
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        # Nothing is left registered or marked.
        await asyncio.sleep(0.3)
        assert not deadlines._waiting and not deadlines._expired
    finally:
        await deadlines.stop()
