"""The base of every input model: unknown fields are errors, and no string
anywhere in the input may hold a NUL character (PostgreSQL cannot store one
in text or JSON, and no user means one) or a lone surrogate (``"\\ud800"``
parses as JSON into a string that is not Unicode text: it cannot be encoded,
stored or hashed)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

_NUL = ("nul_character", "text must not contain NUL characters")
_SURROGATE = (
    "invalid_unicode",
    "text must be valid Unicode (a lone surrogate such as \\ud800 is not)",
)


def _bad_text_at(value: Any) -> tuple[list[str | int], tuple[str, str]] | None:
    """Where in ``value`` the first string holding NUL or a lone surrogate
    is, innermost key first, and which of the two; or None. The path is
    built only on the way back from a find: a tuple per node cost as much
    again as the walk itself."""
    if isinstance(value, str):
        problem = _text_problem(value)
        return None if problem is None else ([], problem)
    if isinstance(value, dict):
        # A bad key is reported at its object: the key itself cannot be
        # named (an error that quoted it could not be encoded either).
        for key in value:
            problem = _text_problem(key) if isinstance(key, str) else None
            if problem is not None:
                return [], problem
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _bad_text_at(item)
        if found is not None:
            found[0].append(key)
            return found
    return None


def _text_problem(text: str) -> tuple[str, str] | None:
    if "\x00" in text:
        return _NUL
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE
    return None


class InputModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, value: Any) -> Any:
        # Nested input models check their own part again; inputs are small.
        found = _bad_text_at(value)
        if found is not None:
            path, (code, message) = found
            # The error's location is the model's; ``at`` says where inside
            # it, so the error can name the field (core.errors.validation_details).
            raise PydanticCustomError(code, message, {"at": tuple(reversed(path))})
        return value
