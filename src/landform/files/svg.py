"""SVG that could run script, fetch or navigate is refused.

Assets are served with a CSP that blocks script, so this is defence in
depth: an SVG opened from another origin, or inlined into a page by its
author, must be inert by its content alone. Nothing outside the file may
be referred to: URL attributes and CSS ``url()`` may only point at an
element of the same file (``#id``), judged on the URL as a browser reads
it, after the WHATWG URL parser's cleaning (leading and trailing C0
controls and spaces stripped, tabs and newlines removed anywhere: to a
browser ``&#x9;java&#xA;script:`` is ``javascript:``)."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml

from landform.files.errors import FileErrorCode, refuse

MAX_SVG_BYTES = 2 * 1024 * 1024

# By local name, whatever their namespace: an HTML parser that meets an SVG
# inlined into a page ignores prefixes, and lets some of these (meta, img,
# embed) break out of the SVG into the page itself.
_FORBIDDEN_ELEMENTS = {
    # run script or show other documents
    "script",
    "foreignobject",
    "iframe",
    "frame",
    "frameset",
    "embed",
    "object",
    "applet",
    "portal",
    "handler",
    "listener",
    # fetch media
    "audio",
    "video",
    "img",
    # navigate (meta refresh), or change where every other URL points (base)
    "meta",
    "base",
    "link",
    # send data somewhere
    "form",
    "input",
    "button",
    # change attributes after the checks (e.g. an href to javascript:)
    "set",
    "animate",
    "animatemotion",
    "animatetransform",
}
# Attributes a browser reads as a URL to fetch or go to (SVG's href and
# xlink:href, xml:base, and the HTML ones an inlined SVG would carry).
_URL_ATTRIBUTES = {
    "href",
    "src",
    "srcset",
    "base",
    "action",
    "formaction",
    "background",
    "poster",
    "data",
    "codebase",
    "ping",
    "lowsrc",
    "dynsrc",
    "longdesc",
    "manifest",
    "icon",
}
_DANGEROUS_VALUE = re.compile(r"javascript:|vbscript:|data:text/html|expression\s*\(|@import", re.I)
# CSS that loads what it names: url(…) (checked argument by argument) and
# functions that take a plain string as a URL.
_CSS_URL = re.compile(r"url\(", re.I)
# Possessive throughout, and an unquoted URL holds no white space (as in
# CSS): with overlapping lazy and greedy runs of spaces, ``url(`` and a few
# thousand spaces took the regex engine a minute (cubic backtracking).
_CSS_URL_ARGUMENT = re.compile(
    r"url\([ \t\n\r\f]*+(?:\"([^\"]*+)\"|'([^']*+)'|([^\"'()\s]*+))[ \t\n\r\f]*+\)", re.I
)
_CSS_STRING_URLS = re.compile(r"image-set\s*\(|\bsrc\s*\(", re.I)
# A CSS escape (``\70`` or ``\p``) spells a character so that a plain-text
# search misses it (``@im\port``, ``u\rl(``): undone before the checks.
_CSS_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\n\r\f]?|(.))", re.S)
# Stylesheets a processing instruction asks for (the parser drops these).
_STYLESHEET_PI = re.compile(rb"<\?xml-stylesheet", re.I)
# What the URL parser strips from both ends, and removes anywhere.
_URL_EDGES = "".join(chr(c) for c in range(0x21))
_URL_REMOVED = re.compile(r"[\t\n\r]")
_C0 = re.compile(r"[\x00-\x1f]")


def inspect_svg(raw: bytes) -> tuple[int | None, int | None]:
    """Refuse ``raw`` unless it is an SVG image that cannot run, fetch or
    navigate; its width and height in pixels, where it says them."""
    if len(raw) > MAX_SVG_BYTES:
        raise refuse(f"SVG files may be at most {MAX_SVG_BYTES // 1024 // 1024} MiB")
    if _STYLESHEET_PI.search(raw):
        raise refuse("SVG that asks for a stylesheet (<?xml-stylesheet?>) is refused")
    try:
        root = parse_xml(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise refuse("SVG with a DOCTYPE or entities is refused") from exc
    except Exception as exc:  # ParseError and friends
        raise refuse("the SVG is not well-formed XML", FileErrorCode.CORRUPT_FILE) from exc
    if _local(root.tag) != "svg":
        raise refuse("the file is XML but not an SVG image", FileErrorCode.TYPE_MISMATCH)
    for element in root.iter():
        _check_element(element)
    return _length(root.get("width")), _length(root.get("height"))


def _check_element(element: Element) -> None:
    name = _local(element.tag)
    if name in _FORBIDDEN_ELEMENTS:
        raise refuse(f"SVG with <{name}> is refused: it could run script, load or navigate")
    for attribute, value in element.attrib.items():
        attr = _local(attribute)
        if attr.startswith("on"):
            raise refuse(f"SVG with an event handler ({attr}) is refused")
        if attr in _URL_ATTRIBUTES and not clean_url(value).startswith("#"):
            raise refuse(f"SVG that refers to anything outside itself ({attr}) is refused")
        # Any attribute: presentation attributes (fill, filter, mask,
        # clip-path, marker-*, cursor) take url() as style does.
        if loads_or_runs(value):
            raise refuse(f"SVG with a dangerous {attr} value is refused")
    # All the text inside, as the style sheet is the text between the tags
    # (comments and CDATA sections do not split it for the browser).
    if name == "style" and loads_or_runs("".join(element.itertext())):
        raise refuse("SVG whose style loads anything outside itself is refused")


def clean_url(value: str) -> str:
    """``value`` as the WHATWG URL parser reads it, before it parses it."""
    return _URL_REMOVED.sub("", value.strip(_URL_EDGES))


def loads_or_runs(css: str) -> bool:
    """Whether CSS (a style attribute, a <style>, a presentation attribute
    such as ``fill="url(…)"``, or any other attribute's value) runs script
    or loads anything outside the file."""
    text = _css_text(css)
    # Control characters out, as a URL's cleaning takes some of them out
    # (``java\9 script:``): stricter than a browser, never laxer.
    if _DANGEROUS_VALUE.search(_C0.sub("", text)) or _CSS_STRING_URLS.search(text):
        return True
    arguments = _CSS_URL_ARGUMENT.findall(text)
    if len(arguments) != len(_CSS_URL.findall(text)):
        return True  # a url( whose argument cannot be read: no telling where it points
    return any(not clean_url("".join(groups)).startswith("#") for groups in arguments)


def _css_text(value: str) -> str:
    def char(match: re.Match[str]) -> str:
        code = match.group(1)
        if code is None:
            return match.group(2)
        number = int(code, 16)
        return chr(number) if 0 < number <= 0x10FFFF else "\ufffd"

    return _CSS_ESCAPE.sub(char, value)


def _local(tag: str | Element) -> str:
    text = tag if isinstance(tag, str) else str(tag)
    return text.rsplit("}", 1)[-1].lower()


def _length(value: str | None) -> int | None:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(px)?\s*", value or "")
    return round(float(match.group(1))) if match else None
