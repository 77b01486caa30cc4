"""Background loops that fail run after run (a server started before
`landform db upgrade`, a database restarting) say so once, in words that
say what to do, and again only now and then, and when they work again."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import OperationalError

from landform.core.failure_log import FailureLog

log = logging.getLogger("tests.failure_log")
NOT_MIGRATED = OperationalError("SELECT 1 FROM stored_files", {}, Exception("no such table"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def said(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == log.name]


def test_a_repeated_failure_is_said_once_then_reminded_then_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    failures = FailureLog(log, "looking for variants", remind_every=300, clock=clock)
    with caplog.at_level(logging.WARNING):
        for _ in range(60):  # five minutes of a retry every 5 s
            failures.failed(NOT_MIGRATED)
            clock.now += 4.9
        first, *rest = said(caplog)
        assert not rest
        assert first.getMessage() == (
            "looking for variants failed; trying again: "
            "the database schema is not set up: run `landform db upgrade`"
        )
        assert first.exc_info is None  # an operator's fix, not a bug: no traceback
        clock.now += 10
        failures.failed(NOT_MIGRATED)
        reminder = said(caplog)[-1].getMessage()
        assert "(61 failures in a row)" in reminder
        failures.succeeded()
        assert said(caplog)[-1].getMessage() == "looking for variants works again after 61 failures"
        count = len(said(caplog))
        failures.succeeded()  # working on: nothing more to say
        assert len(said(caplog)) == count


def test_an_unexpected_failure_keeps_its_traceback_and_a_new_one_is_said_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = FailureLog(log, "cache warming", clock=Clock())
    with caplog.at_level(logging.WARNING):
        failures.failed(NOT_MIGRATED)
        failures.failed(ConnectionRefusedError(111, "Connect call failed"))
        failures.failed(ConnectionRefusedError(111, "Connect call failed"))
        failures.failed(KeyError("popular"))
    messages = [r.getMessage() for r in said(caplog)]
    assert len(messages) == 3
    assert messages[1].endswith("the database cannot be reached (ConnectionRefusedError)"), messages
    assert messages[2].endswith("unexpected error")
    assert said(caplog)[2].exc_info is not None
