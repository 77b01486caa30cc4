"""Structured logs: one JSON object per line (time, level, logger, message,
the request id of the request being served, any extra fields, the
traceback), so a log pipeline can search them and follow one request
through its slow queries and errors."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from landform.core.ids import random_bytes

# The request being served: set by the request layer (ops/timing.py), read
# by the formatter wherever the record is made (tasks inherit it too).
request_id: ContextVar[str] = ContextVar("request_id", default="")

# What a client may send as its own X-Request-ID: nothing that could forge
# log lines or blow up their size.
ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_of(scope: Mapping[str, Any]) -> str:
    """The request's id: the client's X-Request-ID when it is a sane one,
    else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given: str = value.decode("latin-1")
            if ACCEPTABLE_ID.match(given):
                return given
            break
    return random_bytes(8).hex()


_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current:
            data["request_id"] = current
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


class TextFormatter(logging.Formatter):
    """For people reading a terminal: one line, with the request id when
    there is one (to find the other lines of the same request)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        current = request_id.get()
        if not current:
            return line
        head, _, rest = line.partition("\n")  # a traceback follows the first line
        return f"{head} [request {current}]" + (f"\n{rest}" if rest else "")


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so configuring again replaces it instead of adding another."""


def configure_logging(level: str, json_lines: bool) -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request's whole URL at INFO: a webhook's user info,
    # path or query can be its secret (core/webhook.py logs it redacted).
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
