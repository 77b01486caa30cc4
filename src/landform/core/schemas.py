"""The base of every input model: unknown fields are errors, and no string
anywhere in the input may hold a NUL character (PostgreSQL cannot store one
in text or JSON, and no user means one)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _reject_nul(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_nul(item)
    elif isinstance(value, dict):
        for item in value.values():
            _reject_nul(item)
    return value


class InputModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # Nested input models check their own part again; inputs are small.
        return _reject_nul(value)
