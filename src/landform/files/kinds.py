"""The allowlist of file types, recognised from their bytes alone.

Binary formats are told by their magic numbers (the ``filetype`` library);
SVG, being text, by parsing it. The client's name and Content-Type are never
trusted: at most they are checked against what the bytes say."""

from __future__ import annotations

from dataclasses import dataclass

import filetype

CATEGORIES = ("image", "video", "document")


@dataclass(frozen=True, slots=True)
class Kind:
    mime: str
    extension: str
    category: str  # one of CATEGORIES

    @property
    def is_raster(self) -> bool:
        return self.category == "image" and self.mime != "image/svg+xml"


ALLOWED: dict[str, Kind] = {
    k.mime: k
    for k in (
        Kind("image/png", "png", "image"),
        Kind("image/jpeg", "jpg", "image"),
        Kind("image/gif", "gif", "image"),
        Kind("image/webp", "webp", "image"),
        Kind("image/avif", "avif", "image"),
        Kind("image/x-icon", "ico", "image"),
        Kind("image/svg+xml", "svg", "image"),
        Kind("application/pdf", "pdf", "document"),
        Kind("video/mp4", "mp4", "video"),
        Kind("video/webm", "webm", "video"),
    )
}
BY_EXTENSION = {k.extension: k for k in ALLOWED.values()}

# What filetype calls some of them, and the client spellings we accept as
# the same claim.
_ALIASES = {
    "image/vnd.microsoft.icon": "image/x-icon",
    "image/ico": "image/x-icon",
    "image/jpg": "image/jpeg",
    # An animated PNG is a PNG (browsers that cannot animate it show its
    # first frame); filetype names it apart.
    "image/apng": "image/png",
    "image/pjpeg": "image/jpeg",
    "video/x-m4v": "video/mp4",
    "application/x-pdf": "application/pdf",
}

# SVG is XML text: allow a BOM, whitespace, an XML declaration and comments
# before the root element.
_SVG_SNIFF_BYTES = 4096


def normalise_mime(mime: str) -> str:
    mime = mime.split(";", 1)[0].strip().lower()
    return _ALIASES.get(mime, mime)


def detect(head: bytes) -> Kind | None:
    """The allowed kind these leading bytes (at least 4 KB when the file is) are, if any."""
    guess = filetype.guess(head)
    if guess is not None:
        return ALLOWED.get(normalise_mime(guess.mime))
    if head[4:8] == b"ftyp" and head[8:12] == b"avis":
        # An animated AVIF (an image sequence's brand), which filetype
        # does not know.
        return ALLOWED["image/avif"]
    if _looks_like_svg(head):
        return ALLOWED["image/svg+xml"]
    return None


def _looks_like_svg(head: bytes) -> bool:
    text = head[:_SVG_SNIFF_BYTES].lstrip(b"\xef\xbb\xbf").lstrip().lower()
    if not (text.startswith(b"<?xml") or text.startswith(b"<svg") or text.startswith(b"<!--")):
        return False
    return b"<svg" in text
