"""Which uploads a page's content names, read as a browser reads its URLs:
what publishing checks are the owner's files, holds against deletion, and
hands the renderer the sizes of."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from landform.files.storage import KEY as STORAGE_KEY


def assets_shown(content: dict[str, Any], seo: dict[str, Any]) -> set[str]:
    """The storage keys of the assets a page shows: any URL in it that a
    browser resolves to /assets/<key>, from the page at /<slug>, and the
    server reads as such. So each piece of text is read as browsers read a
    URL (WHATWG): tabs and line breaks dropped, ``\\`` a ``/``, percent-escapes
    decoded, ``.`` and ``..`` segments resolved, a relative ``assets/…``
    taken from the root; and empty segments dropped, as the server does.
    Generous on purpose: text that merely looks like such a URL counts too,
    and at worst a publish is refused naming it."""
    return {key for text in _strings([content, seo]) for key in _keys_in(text)}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _keys_in(text: str) -> list[str]:
    text = unquote(_DROPPED_IN_URLS.sub("", text).replace("\\", "/"))
    keys = []
    for token in _URL_ENDS.split(text):
        keys += _ASSET_PATH.findall("/" + "/".join(_resolved(token)))
    return keys


_DROPPED_IN_URLS = re.compile("[\t\n\r]")
# Where a URL in a piece of text (HTML included) ends: it holds none of these.
_URL_ENDS = re.compile("[\\s\"'<>`]+")
# An upload's URL, or one of its resized copies' (``<sha>-w640.webp``): a
# copy is no file of the owner's, so a page that names one is refused (it
# could be another account's, and goes when its original is deleted). In
# capitals, it is named too: no file's, and a hole in the live page.
_ASSET_PATH = re.compile(f"/assets/({STORAGE_KEY})", re.IGNORECASE)


def assets_that_cannot_be(
    content: dict[str, Any], seo: dict[str, Any], public_url: str
) -> set[str]:
    """Addresses under /assets/ on the page's own site (a path, or a whole
    address there) that name no upload at all: not shaped as one's storage
    key (/assets/logo.png), so a hole in the live page (404) whoever's it
    would be. Read as ``assets_shown`` reads URLs, as generously."""
    own_host = (urlsplit(public_url).hostname or "").lower()
    found = set()
    for text in _strings([content, seo]):
        text = unquote(_DROPPED_IN_URLS.sub("", text).replace("\\", "/"))
        for token in _URL_ENDS.split(text):
            try:
                parts = urlsplit(token)
            except ValueError:  # http://[::1 in prose: no address at all
                continue
            if parts.scheme and parts.scheme.lower() not in ("http", "https"):
                continue  # mailto:, data:, … (and "note:" in prose) are no address here
            if (parts.scheme or parts.netloc) and (parts.hostname or "").lower() != own_host:
                continue  # another site's /assets/ is its own business
            path = _resolved(parts.path)
            if len(path) >= 2 and path[0] == "assets" and not _KEY_NAME.fullmatch(path[1]):
                found.add("/" + "/".join(path))
    return found


def _resolved(path: str) -> list[str]:
    """A path's segments as a browser resolves it from /<slug>, with empty
    segments dropped as the server does."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    return segments


# A name the storage-key check (``_ASSET_PATH``) judges already.
_KEY_NAME = re.compile(STORAGE_KEY, re.IGNORECASE)
