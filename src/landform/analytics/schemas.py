"""Pydantic I/O of the analytics domain: tracking payloads and reports."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

Utm = Annotated[str, Field(max_length=200)]


class _Tracked(BaseModel):
    """Not an ``InputModel``: the tracker refuses NUL characters in the raw
    body (``tracker.parse_beacon``) instead of walking the parsed input,
    which cost a sixth of the beacon handler's own time. Unknown fields are
    errors all the same."""

    model_config = ConfigDict(extra="forbid")

    # A client may name its event (a random UUID) so that resending it after
    # a failed request can never count it twice.
    id: uuid.UUID | None = None
    page_id: uuid.UUID | None = None
    slug: str | None = Field(default=None, min_length=1, max_length=64)
    path: str = Field(default="/", max_length=512)

    @model_validator(mode="after")
    def _one_page(self) -> _Tracked:
        if (self.page_id is None) == (self.slug is None):
            raise ValueError("give exactly one of page_id and slug")
        return self


class _Visit(_Tracked):
    """Where the page load came from. Views and conversions both carry it:
    whichever of a visitor's events is counted first sets their entry
    attributes for the day."""

    referrer: str = Field(default="", max_length=2048)
    utm_source: Utm = ""
    utm_medium: Utm = ""
    utm_campaign: Utm = ""
    utm_term: Utm = ""
    utm_content: Utm = ""
    # Strict: ``true`` or ``"400"`` is a broken beacon, not a width.
    screen_width: Annotated[int, Strict()] | None = Field(default=None, ge=0, le=100_000)


class ViewIn(_Visit):
    """The beacon's page view."""


class EventIn(_Visit):
    """A conversion: a call-to-action click, a form submission, or any named
    goal the page reports."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    value: Annotated[float, Strict()] | None = Field(
        default=None, ge=-1e12, le=1e12, allow_inf_nan=False
    )
    label: str = Field(default="", max_length=120)
