from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Field,
    Strict,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from landform.core.schemas import InputModel
from landform.pages.blocks import EXACT_INT, Block, ImageUrl, Theme, Url, check_block_ids
from landform.pages.preview_links import DEFAULT_SECONDS, LONGEST_SECONDS
from landform.pages.slugs import SLUG_PATTERN

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Checked by the service (pages/slugs.py), whose refusal says what is wrong
# (reserved, its shape); the schema tells clients the shape beforehand.
SlugIn = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=200),
    WithJsonSchema({"type": "string", "pattern": SLUG_PATTERN.pattern, "maxLength": 64}),
]
# Versions are 32-bit in the database; a write names one as it was sent
# (ETag), so a string or a boolean is no version.
VERSION_MAX = 2**31 - 1
BasedOn = Annotated[
    int | None,
    Field(
        strict=True,
        ge=1,
        le=VERSION_MAX,
        description="The version this edit is based on (or send If-Match)",
    ),
]


class _In(InputModel):
    pass


# A BCP 47 language tag's shape: a language, then subtags (script, region,
# variant) of letters and digits.
LANGUAGE_TAG = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"


class Seo(_In):
    meta_title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    meta_description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
    og_image: ImageUrl | None = None
    canonical_url: Url | None = None
    noindex: Annotated[bool, Strict()] = False
    # What screen readers pronounce it as and browsers offer to translate
    # from: every page said "en" before.
    language: Annotated[
        str,
        StringConstraints(strip_whitespace=True, max_length=35, pattern=LANGUAGE_TAG),
        Field(description="The page's language, a BCP 47 tag: en, de, pt-BR, zh-Hant"),
    ] = "en"

    @field_validator("canonical_url")
    @classmethod
    def _absolute(cls, url: str | None) -> str | None:
        # Search engines and link previews take only a whole address; a
        # path, a mailto: or a #fragment was rendered as given.
        if url is not None and not re.match(r"https?://[^/?#\s]+", url):
            raise ValueError("must be a whole http(s):// address (https://example.com/page)")
        return url


class PageCreate(_In):
    title: Title
    slug: SlugIn | None = Field(default=None, description="Defaults to one made from the title")
    template_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


def _without_null(schema: dict[str, Any]) -> None:
    """The published schema of a field that may be left out but is refused
    as null (``PageUpdate._no_nulls``): it must not offer null, or clients
    generated from it send one."""
    offered = [each for each in schema.pop("anyOf", []) if each != {"type": "null"}]
    if len(offered) == 1:
        schema.update(offered[0])
    elif offered:
        schema["anyOf"] = offered
    schema.pop("default", None)


class PageUpdate(_In):
    """Fields left out stay as they are."""

    title: Title | None = Field(default=None, json_schema_extra=_without_null)
    slug: SlugIn | None = Field(default=None, json_schema_extra=_without_null)
    seo: Seo | None = Field(default=None, json_schema_extra=_without_null)
    version: BasedOn = None

    @model_validator(mode="after")
    def _no_nulls(self) -> PageUpdate:
        # A page always has a title, a slug and SEO: null cannot be set, and
        # taking it for "unchanged" hid the mistake (a 200, nothing saved).
        for name in ("title", "slug", "seo"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise PydanticCustomError(
                    "null_field",
                    "may not be null: leave it out to keep it as it is",
                    {"at": (name,)},
                )
        return self

    @model_validator(mode="after")
    def _shareable_og_image(self) -> PageUpdate:
        # Here, not on Seo: what was saved before is still read and rendered.
        problem = og_image_problem(self.seo.og_image if self.seo else None)
        if problem:
            raise PydanticCustomError("og_image_unsupported", problem, {"at": ("seo", "og_image")})
        return self


def og_image_problem(url: str | None) -> str | None:
    """Why ``url`` cannot be a page's link-preview image, if it cannot:
    social networks and chat apps show no SVG (an upload's name ends in its
    kind, so an uploaded SVG says so too)."""
    if url and urlsplit(url).path.lower().endswith((".svg", ".svgz")):
        return (
            "an SVG is not shown as a link preview by social networks: "
            "use a PNG, JPEG, WebP or GIF image"
        )
    return None


class ContentUpdate(_In):
    # As GET answers it, so content read can be written back unchanged; a
    # version of the content schema this server does not know is refused.
    schema_version: Annotated[Literal[1], EXACT_INT] | None = Field(
        default=None, description="The content schema's version, as read (optional)"
    )
    blocks: list[Block] = Field(max_length=200)
    theme: Theme | None = Field(
        default=None, description="Theme fields to change; those left out keep their values"
    )
    version: BasedOn = None

    @model_validator(mode="after")
    def _ids_are_unique(self) -> ContentUpdate:
        check_block_ids(self.blocks)
        return self


class VersionedWrite(_In):
    version: BasedOn = None


class PreviewLinkIn(_In):
    expires_in: Annotated[
        int,
        Field(strict=True, ge=60, le=LONGEST_SECONDS, description="Seconds the link works"),
    ] = DEFAULT_SECONDS


class PreviewLink(BaseModel):
    url: str
    expires_at: datetime


class PageSummary(BaseModel):
    id: uuid.UUID
    title: str
    slug: str
    status: Literal["draft", "published"]
    version: int
    published_version: int | None
    has_unpublished_changes: bool
    template_id: str | None
    url: str
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None


class PageDetail(PageSummary):
    seo: Seo
    content: dict[str, Any]


class PageList(BaseModel):
    items: list[PageSummary]
    next_cursor: str | None


class VersionSummary(BaseModel):
    number: int
    title: str
    slug: str
    created_at: datetime
    is_live: bool


class VersionDetail(VersionSummary):
    seo: Seo
    content: dict[str, Any]


class VersionList(BaseModel):
    items: list[VersionSummary]
    next_before: int | None = Field(
        default=None, description="Pass as ?before= for the next (older) versions; null: no more"
    )
