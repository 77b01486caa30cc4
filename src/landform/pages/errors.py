from __future__ import annotations

from enum import StrEnum

from landform.core.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed


class PageErrorCode(StrEnum):
    PAGE_NOT_FOUND = "page_not_found"
    VERSION_NOT_FOUND = "version_not_found"
    SLUG_TAKEN = "slug_taken"
    SLUG_INVALID = "slug_invalid"
    SLUG_RESERVED = "slug_reserved"
    VERSION_CONFLICT = "version_conflict"
    NOT_PUBLISHED = "not_published"
    UNKNOWN_ASSET = "unknown_asset"
    PREVIEW_LINK_INVALID = "preview_link_invalid"


class PageNotFound(NotFound):
    code = PageErrorCode.PAGE_NOT_FOUND


class PreviewLinkInvalid(NotFound):
    """Not a preview link of this server's, or one past its time."""

    code = PageErrorCode.PREVIEW_LINK_INVALID


class VersionNotFound(NotFound):
    code = PageErrorCode.VERSION_NOT_FOUND


class SlugTaken(Conflict):
    code = PageErrorCode.SLUG_TAKEN


class InvalidSlug(ValidationFailed):
    code = PageErrorCode.SLUG_INVALID


class StaleVersion(Conflict):
    """The write was based on a version that is no longer current (body field)."""

    code = PageErrorCode.VERSION_CONFLICT


class StaleVersionPrecondition(PreconditionFailed):
    """The write's If-Match named a version that is no longer current."""

    code = PageErrorCode.VERSION_CONFLICT


class UnknownAsset(ValidationFailed):
    """A page to be published shows an upload that is not one of its owner's files."""

    code = PageErrorCode.UNKNOWN_ASSET
