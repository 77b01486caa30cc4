"""Request ids and structured logs: every API answer carries an
X-Request-ID (the client's own when it is sane), and the log lines made
while serving it — a slow query, an error — are JSON carrying that id."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from landform.core.logs import JsonFormatter, TextFormatter, configure_logging, request_id
from landform.ops.database import DatabaseMetrics
from landform.ops.recorder import Recorder


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def slow_queries() -> Iterator[Lines]:
    lines = Lines()
    logger = logging.getLogger("landform.slow_query")
    logger.addHandler(lines)
    logger.setLevel(logging.WARNING)
    yield lines
    logger.removeHandler(lines)


async def test_every_answer_has_a_request_id(client: httpx.AsyncClient) -> None:
    first = (await client.get("/templates")).headers["x-request-id"]
    second = (await client.get("/templates")).headers["x-request-id"]
    assert len(first) == 16 and first != second
    given = {"X-Request-ID": "edge-7f3a.42"}
    assert (await client.get("/templates", headers=given)).headers["x-request-id"] == "edge-7f3a.42"
    for hostile in ("a" * 65, "two\nlines", "space d"):
        answer = await client.get("/templates", headers={"X-Request-ID": hostile})
        assert answer.headers["x-request-id"] != hostile
    # Errors too, in the one error shape.
    missing = await client.get("/landing-pages/not-a-uuid", headers=given)
    assert missing.headers["x-request-id"] == "edge-7f3a.42"


@pytest.mark.parametrize("settings_update", [{"ops_slow_query_ms": 0.0001}], indirect=True)
async def test_slow_queries_are_logged_as_json_with_the_request_id(
    client: httpx.AsyncClient, slow_queries: Lines
) -> None:
    await client.post(
        "/auth/login",
        json={"email": "nobody@example.com", "password": "not the password at all"},
        headers={"X-Request-ID": "trace-login-1"},
    )
    mine = [line for line in slow_queries.lines if line.get("request_id") == "trace-login-1"]
    assert mine, slow_queries.lines
    assert any("SELECT" in line["message"] for line in mine)  # the statement itself
    line = mine[0]
    assert line["level"] == "warning" and line["logger"] == "landform.slow_query"
    assert line["message"].startswith("slow query: ") and line["duration_ms"] >= 0
    assert set(line) >= {"time", "level", "logger", "message", "request_id", "duration_ms"}


def test_the_formatter_keeps_tracebacks_and_extra_fields() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("here",), None, extra={"page": "p-1"}
        )
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed here" and line["page"] == "p-1"
    assert "ValueError: boom" in line["exception"]
    assert "request_id" not in line  # made outside any request


def test_text_lines_carry_the_request_id_before_any_traceback() -> None:
    token = request_id.set("req-42")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            record = logging.getLogger("x").makeRecord(
                "x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
            )
        line = TextFormatter().format(record)
    finally:
        request_id.reset(token)
    first, _, rest = line.partition("\n")
    assert first.endswith("x: failed [request req-42]")
    assert "ValueError: boom" in rest
    outside = logging.getLogger("x").makeRecord("x", logging.INFO, __file__, 1, "quiet", (), None)
    assert "[request" not in TextFormatter().format(outside)


def test_a_wait_for_sqlites_write_turn_is_no_slow_query(slow_queries: Lines) -> None:
    metrics = DatabaseMetrics(Recorder(), slow_ms=1)
    connection = SimpleNamespace(info={"landform_started": [time.perf_counter_ns() - 5_000_000]})
    metrics._after(connection, None, "BEGIN IMMEDIATE")
    assert metrics.slow_queries == 0
    assert "write turn" in slow_queries.lines[-1]["message"]
    connection.info["landform_started"].append(time.perf_counter_ns() - 5_000_000)
    metrics._after(connection, None, "SELECT 1")
    assert metrics.slow_queries == 1
    assert slow_queries.lines[-1]["message"].startswith("slow query:")


def test_httpx_does_not_log_the_urls_it_calls() -> None:
    """httpx logs each request's whole URL at INFO, and a webhook's URL can
    hold its secret (user info, a token in the path or query)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        configure_logging("info", json_lines=True)
        assert root.isEnabledFor(logging.INFO)
        for name in ("httpx", "httpcore"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
            assert logging.getLogger(name).isEnabledFor(logging.WARNING), name
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.NOTSET)
