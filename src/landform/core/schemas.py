"""The base of every input model: unknown fields are errors, and no string
anywhere in the input may hold a NUL character (PostgreSQL cannot store one
in text or JSON, and no user means one)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError


def _nul_at(value: Any) -> list[str | int] | None:
    """Where in ``value`` the first string holding NUL is, innermost key
    first, or None. The path is built only on the way back from a find:
    a tuple per node cost as much again as the walk itself."""
    if isinstance(value, str):
        return [] if "\x00" in value else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _nul_at(item)
        if found is not None:
            found.append(key)
            return found
    return None


class InputModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # Nested input models check their own part again; inputs are small.
        found = _nul_at(value)
        if found is not None:
            # The error's location is the model's; ``at`` says where inside
            # it, so the error can name the field (core.errors.validation_details).
            raise PydanticCustomError(
                "nul_character",
                "text must not contain NUL characters",
                {"at": tuple(reversed(found))},
            )
        return value
