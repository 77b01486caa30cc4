"""The base of every input model: unknown fields are errors, and no string
anywhere in the input may hold a NUL character (PostgreSQL cannot store one
in text or JSON, and no user means one)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError


def _nul_at(value: Any, at: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Where in ``value`` the first string holding NUL is, or None."""
    if isinstance(value, str):
        return at if "\x00" in value else None
    items: Any = ()
    if isinstance(value, list | tuple):
        items = enumerate(value)
    elif isinstance(value, dict):
        items = value.items()
    for key, item in items:
        found = _nul_at(item, (*at, key))
        if found is not None:
            return found
    return None


class InputModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # Nested input models check their own part again; inputs are small.
        at = _nul_at(value)
        if at is not None:
            # The error's location is the model's; ``at`` says where inside
            # it, so the error can name the field (core.errors.validation_details).
            raise PydanticCustomError(
                "nul_character", "text must not contain NUL characters", {"at": at}
            )
        return value
