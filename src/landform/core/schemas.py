"""The base of every input model: unknown fields are errors, and no string
anywhere in the input may hold a NUL character (PostgreSQL cannot store one
in text or JSON, and no user means one)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError


def _has_nul(value: Any) -> bool:
    # Loops, not any(): a generator per list or dict cost a third more.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list | tuple):
        return False
    for item in value:  # noqa: SIM110  (the loop is the point, above)
        if _has_nul(item):
            return True
    return False


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
        # The plain walk first: paths are built only for the rare refusal
        # (building them always doubled the check's cost on a 30-block page).
        at = _nul_at(value) if _has_nul(value) else None
        if at is not None:
            # The error's location is the model's; ``at`` says where inside
            # it, so the error can name the field (core.errors.validation_details).
            raise PydanticCustomError(
                "nul_character", "text must not contain NUL characters", {"at": at}
            )
        return value
