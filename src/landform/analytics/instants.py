"""The instants a report or a custom query may name: UTC, from the epoch to
the year 9000.

Analytics counts whole hours since 1970, so nothing before it can hold
data; and near the ends of ``datetime``'s range a time-zone offset or the
float seconds of ``timestamp()`` step past year 1 or 9999 and raise where
no one expects it. Every such instant is checked here once, at the edge."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)  # exclusive
OUT_OF_RANGE = "must lie between 1970-01-01 and the year 9000 (UTC)"
_PLUS_READ_AS_SPACE = re.compile(r"^(.+[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


# The longest range a report or custom query covers.
MAX_RANGE_DAYS = 731
# Widening a range to whole hours adds less than two hours to what was asked
# for: a range within a limit stays within it, and this one hour more.
WIDENED_BY = 1


def to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive one is UTC already), or ``ValueError``
    when it lies outside [1970-01-01, 9000-01-01)."""
    try:
        utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # an offset that crosses year 1 or 9999
        raise ValueError(OUT_OF_RANGE) from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError(OUT_OF_RANGE)
    return utc


def parse_instant(value: Any) -> datetime:
    """An ISO 8601 date or datetime string as a checked UTC instant
    (``to_utc``), or ``ValueError``. Our own reading rather than pydantic's:
    Python's takes dates and datetimes alike, naive times must mean UTC,
    not local, and a number is not a date here."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date or datetime string")
    # A "+02:00" typed into a URL unencoded arrives as " 02:00" (a query
    # string's "+" is a space): read it as the offset it was.
    value = _PLUS_READ_AS_SPACE.sub(r"\1+\2", value)
    # Python reads any character between date and time as the separator:
    # "2026-12-01+02:00" (a date and an offset) would be 02:00 that day.
    date_ends = 10 if value[4:5] == "-" else 8  # 2026-12-01 or 20261201
    if len(value) > date_ends and value[date_ends] not in "Tt ":
        raise ValueError(
            "must be an ISO 8601 date or datetime, e.g. 2025-03-01 or 2025-03-01T09:00:00+02:00"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date or datetime, e.g. 2025-03-01") from None
    return to_utc(parsed)
