"""Conditional requests, shared by the hot paths that answer them."""

from __future__ import annotations


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """Whether an If-None-Match header value names ``etag`` (weak comparison, as
    RFC 9110 asks for If-None-Match; ``*`` matches anything)."""
    if if_none_match.strip() == b"*":
        return True
    return any(tag.strip().removeprefix(b"W/") == etag for tag in if_none_match.split(b","))


def etag_matches_strongly(header: bytes, etag: bytes) -> bool:
    """Whether an If-Match (or, one tag, If-Range) value names ``etag``
    under the strong comparison RFC 9110 asks there: a weak tag, or a date
    where no Last-Modified was sent, matches nothing; ``*`` anything."""
    if header.strip() == b"*":
        return True
    return any(
        tag.strip() == etag for tag in header.split(b",") if not tag.strip().startswith(b"W/")
    )
