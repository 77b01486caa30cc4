"""The base of every input model: unknown fields are errors, and no string
anywhere in the input may hold a NUL character (PostgreSQL cannot store one
in text or JSON, and no user means one), a lone surrogate (``"\\ud800"``
parses as JSON into a string that is not Unicode text: it cannot be encoded,
stored or hashed), or another control character or a noncharacter (tab,
line feed and carriage return aside): HTML may not hold them (a parse error
in the published page), and ESC sequences reach logs and terminals."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

_NUL = ("nul_character", "text must not contain NUL characters")
_SURROGATE = (
    "invalid_unicode",
    "text must be valid Unicode (a lone surrogate such as \\ud800 is not)",
)


# C0 controls but tab, LF and CR; DEL and the C1 controls; the noncharacters
# (U+FDD0..U+FDEF and the last two code points of every plane).
_CONTROLS = re.compile(
    "[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef"
    + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17))
    + "]"
)


def _bad_text_at(
    value: Any, opaque: frozenset[str] = frozenset()
) -> tuple[list[str | int], tuple[str, str]] | None:
    """Where in ``value`` the first string holding NUL, a lone surrogate or
    another character no text means is, innermost key first, and which; or
    None. The top-level fields in ``opaque`` (passwords) are held to NUL and
    surrogates only. The path is built only on the way back from a find: a
    tuple per node cost as much again as the walk itself."""
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
        found: tuple[list[str | int], tuple[str, str]] | None
        if key in opaque and isinstance(item, str):
            problem = _text_problem(item, controls=False)
            found = None if problem is None else ([], problem)
        else:
            found = _bad_text_at(item)
        if found is not None:
            found[0].append(key)
            return found
    return None


def _text_problem(text: str, controls: bool = True) -> tuple[str, str] | None:
    if "\x00" in text:
        return _NUL
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE
    if controls:
        found = _CONTROLS.search(text)
        if found is not None:
            return (
                "control_character",
                f"text must not contain control characters or noncharacters "
                f"(U+{ord(found.group()):04X}); tab and line breaks are fine",
            )
    return None


class InputModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Fields whose text is opaque, held to NUL and surrogates only: a
    # password set before control characters were refused still signs in.
    opaque_fields: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, value: Any) -> Any:
        # Nested input models check their own part again; inputs are small.
        found = _bad_text_at(value, cls.opaque_fields)
        if found is not None:
            path, (code, message) = found
            # The error's location is the model's; ``at`` says where inside
            # it, so the error can name the field (core.errors.validation_details).
            raise PydanticCustomError(code, message, {"at": tuple(reversed(path))})
        return value
