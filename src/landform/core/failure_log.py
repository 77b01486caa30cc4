"""What a background loop says when its work fails run after run.

A server started before `landform db upgrade`, or through a database
restart, has loops (image variants, cache warming, the public change log)
that try again every few seconds. Each said every failure, with a
traceback: thousands of lines an hour, hiding the one line that says what
to do. A ``FailureLog`` says the first failure, then nothing while the same
failure repeats but a reminder now and then, and one line when the work
succeeds again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from landform.core.db_failures import cannot_connect, missing_from_schema

# How often a failure that goes on is said again.
REMIND_EVERY_SECONDS = 300.0


def _expected(error: BaseException) -> str:
    """What a failure the operator fixes outside the process is, in words
    (no traceback helps); "" for one that is unexpected."""
    if missing_from_schema(error):
        return "the database schema is not set up: run `landform db upgrade`"
    if cannot_connect(error):
        return f"the database cannot be reached ({type(error).__name__})"
    return ""


class FailureLog:
    def __init__(
        self,
        logger: logging.Logger,
        work: str,
        remind_every: float = REMIND_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.work = work  # "looking for missing image variants"
        self.remind_every = remind_every
        self.clock = clock
        self.failures = 0  # in a row
        self._said: str | None = None  # the failure last said
        self._said_at = 0.0

    def failed(self, error: BaseException) -> None:
        self.failures += 1
        expected = _expected(error)
        what = expected or f"{type(error).__name__}: {error}"
        now = self.clock()
        if what == self._said and now - self._said_at < self.remind_every:
            return
        again = f" ({self.failures} failures in a row)" if self.failures > 1 else ""
        self.logger.warning(
            "%s failed%s; trying again: %s",
            self.work,
            again,
            expected or "unexpected error",
            exc_info=None if expected else error,
        )
        self._said, self._said_at = what, now

    def succeeded(self) -> None:
        if self.failures:
            self.logger.warning("%s works again after %d failures", self.work, self.failures)
        self.failures = 0
        self._said = None
