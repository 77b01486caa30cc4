"""The server a load test is sent to, checked as a URL before anything is
sent: a mistyped ``--host`` (or a fixture's host) is one line on the
terminal and exit 2, not a traceback from deep in the HTTP client."""

from __future__ import annotations

import httpx


class BadHost(ValueError):
    """Why a text is no base URL to send a load test to."""


def base_url(text: str) -> str:
    """``text`` as the base of every request the harness sends (no trailing
    slash), or a ``BadHost`` that says what is wrong with it."""
    example = "e.g. http://127.0.0.1:8000"
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise BadHost(f"{text!r} is not a URL ({exc}; {example})") from exc
    if url.scheme not in ("http", "https"):
        raise BadHost(f"{text!r} is not an http:// or https:// URL ({example})")
    # httpx takes a space in a host name, percent-encoded; no server has one.
    if not url.host or "%" in url.host or any(c.isspace() for c in text):
        raise BadHost(f"{text!r} names no host ({example})")
    if url.port is not None and not 1 <= url.port <= 65535:
        raise BadHost(f"{text!r}: port {url.port} is not between 1 and 65535")
    if url.query or url.fragment:
        # Every path is added to the end of it: a query would end up mid-URL.
        raise BadHost(f"{text!r} has a query or fragment: give the server's address only")
    return text.rstrip("/")
