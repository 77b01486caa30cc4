"""Domain errors and the one JSON error shape.

Services raise ``DomainError`` subclasses; they become HTTP responses in
exactly one place (``core.http_errors``) and GraphQL errors in another.
Each error carries a stable machine-readable code."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers or {}


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class PreconditionFailed(DomainError):
    status = 412
    code = "precondition_failed"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"


@contextmanager
def paths_renamed(names: Mapping[str, str]) -> Iterator[None]:
    """A domain error raised inside names its ``details`` paths as the
    caller sent them: a service's ``cursor`` is a REST query's
    ``query.cursor`` and a GraphQL query's ``after``."""
    try:
        yield
    except DomainError as exc:
        if isinstance(exc.details, list):
            for detail in exc.details:
                if isinstance(detail, dict) and detail.get("path") in names:
                    detail["path"] = names[detail["path"]]
        raise


class TooManyRequests(DomainError):
    status = 429
    code = "rate_limited"


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def format_loc(
    loc: tuple[Any, ...] | list[Any],
    skip: frozenset[str] = frozenset(),
    unions: frozenset[str] = frozenset(),
) -> str:
    """``('blocks', 3, 'features', 'items', 1, 'title')`` → ``blocks[3].items[1].title``.

    A name in ``skip`` right after an index into a list named in ``unions``
    is the tag pydantic inserts for a member of a tagged union; it is left
    out, so the path names the user's data rather than our model (a field
    of the same name elsewhere, a pricing plan's ``features``, stays). A
    leading ``body`` (FastAPI's) goes too."""
    out = ""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif (
            index >= 2
            and isinstance(loc[index - 1], int)
            and loc[index - 2] in unions
            and part in skip
        ) or (index == 0 and part == "body"):
            pass
        else:
            out += f".{part}" if out else str(part)
    return out


# Tagged unions' tags, and the lists that hold them; see format_loc.
_validation_skip: set[str] = set()
_union_lists: set[str] = set()


def skip_in_error_paths(tags: frozenset[str], lists: frozenset[str]) -> None:
    """Leave the ``tags`` out of error paths where they follow an index into
    one of the ``lists``."""
    _validation_skip.update(tags)
    _union_lists.update(lists)


# A body of many mistakes (50,000 unknown keys, one key of a megabyte) is
# answered with the first few, each cut short: not with an echo of the body
# several times its size.
MAX_DETAILS = 20
MAX_DETAIL_CHARS = 200


def _cut(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else f"{text[: MAX_DETAIL_CHARS - 1]}…"


# Pydantic names our classes where an object was expected ("a valid
# dictionary or instance of ContentUpdate"): the caller sent JSON.
_OBJECT_EXPECTED = dict.fromkeys(
    ("model_type", "model_attributes_type", "dict_type", "dataclass_type"),
    "Input should be a JSON object",
)


def validation_details(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    skip = frozenset(_validation_skip)
    unions = frozenset(_union_lists)
    details = []
    if len(errors) > MAX_DETAILS:
        details = validation_details(errors[:MAX_DETAILS])
        more = len(errors) - MAX_DETAILS
        details.append({"path": "", "message": f"and {more} more errors not listed"})
        return details
    for error in errors:
        message = _OBJECT_EXPECTED.get(str(error.get("type")), str(error.get("msg", "invalid")))
        message = message.removeprefix("Value error, ")
        path = format_loc(error.get("loc", ()), skip, unions)
        # An error raised for a whole model may say where inside it (``at``):
        # the user's own keys, so nothing in them is skipped.
        inside = format_loc((error.get("ctx") or {}).get("at", ()))
        if inside:
            path = inside if not path else f"{path}{'' if inside[0] == '[' else '.'}{inside}"
        details.append({"path": _cut(path), "message": _cut(message)})
    return details
