"""Work a worker does for itself, not for a request: the public change
log's poll (four times a second in every worker), replica and readiness
checks, warming the page cache.

Its database statements are many and quick. Counted in the SLA's Database
Queries, they outnumbered the statements of requests twenty to one on an
idle server and buried a slow request's statement under its p99. A background
task marks itself (``mark_housekeeping``), a request runs such work inside
``housekeeping()``; ``ops.database`` leaves their statements out of that
component, though a slow one is still logged."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_housekeeping: ContextVar[bool] = ContextVar("housekeeping", default=False)


def mark_housekeeping() -> None:
    """The calling background task is housekeeping from here on. Only at
    the top of a task's own coroutine: a task runs in a copy of its
    creator's context, so the mark goes no further than the task (and the
    tasks it starts)."""
    _housekeeping.set(True)


@contextmanager
def housekeeping() -> Iterator[None]:
    """What runs inside is housekeeping (a context variable: tasks started
    inside inherit it; it ends with the block, so it never leaks into the
    caller's context)."""
    token = _housekeeping.set(True)
    try:
        yield
    finally:
        _housekeeping.reset(token)


def is_housekeeping() -> bool:
    return _housekeeping.get()
