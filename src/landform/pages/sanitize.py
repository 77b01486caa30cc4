"""User-authored HTML, made safe with nh3 (ammonia).

Two allowlists: rich text (inline formatting, lists, links) and raw HTML
(adds layout elements and images). Neither allows script, style, event
handlers, forms, frames, or URLs other than http(s), mailto, tel and
relative ones, so ``javascript:`` and ``data:`` never survive."""

from __future__ import annotations

import nh3

_URL_SCHEMES = {"http", "https", "mailto", "tel"}

_RICH_TEXT_TAGS = {
    "p",
    "br",
    "strong",
    "b",
    "em",
    "i",
    "u",
    "s",
    "mark",
    "small",
    "sub",
    "sup",
    "a",
    "ul",
    "ol",
    "li",
    "blockquote",
    "code",
    "pre",
    "h2",
    "h3",
    "h4",
    "span",
}
_RAW_HTML_TAGS = _RICH_TEXT_TAGS | {
    "div",
    "section",
    "article",
    "aside",
    "header",
    "footer",
    "figure",
    "figcaption",
    "h1",
    "h5",
    "h6",
    "hr",
    "img",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "caption",
    "dl",
    "dt",
    "dd",
    "abbr",
    "cite",
    "q",
    "time",
}
_COMMON_ATTRS = {"title", "lang", "dir"}
_RICH_TEXT_ATTRS = {"a": {"href", "title"}, "*": _COMMON_ATTRS}
_RAW_HTML_ATTRS = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "loading"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
    "*": _COMMON_ATTRS | {"class", "id"},
}


def clean_rich_text(html: str) -> str:
    return nh3.clean(
        html,
        tags=_RICH_TEXT_TAGS,
        attributes=_RICH_TEXT_ATTRS,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


def clean_raw_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=_RAW_HTML_TAGS,
        attributes=_RAW_HTML_ATTRS,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
