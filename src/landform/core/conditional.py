"""Conditional requests, shared by the hot paths that answer them."""

from __future__ import annotations


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """Whether an If-None-Match header value names ``etag`` (weak comparison, as
    RFC 9110 asks for If-None-Match; ``*`` matches anything)."""
    if if_none_match.strip() == b"*":
        return True
    return any(tag.strip().removeprefix(b"W/") == etag for tag in if_none_match.split(b","))
