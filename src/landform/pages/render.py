"""Page generation: validated blocks → one complete HTML5 document.

Interface (stable; the service calls only this):

    render_page(RenderInput) -> RenderedPage
    render_not_found(public_url: str) -> str

Pages are rendered once, at publish time, so the output is self-contained:
one inline <style> (theme colours as CSS custom properties, system font
stacks), one inline analytics beacon <script>, no external requests except
the video frames a page embeds. The Content-Security-Policy allows exactly
those inline bytes by hash. All strings are autoescaped by Jinja2, except
rich text and raw HTML, which the block schema has already sanitized.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import regex
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from landform.pages.blocks import (
    ColumnsBlock,
    FormBlock,
    HeadingBlock,
    HeroBlock,
    PageContent,
    Theme,
    VideoBlock,
)


@dataclass(frozen=True, slots=True)
class Seo:
    meta_title: str = ""
    meta_description: str = ""
    og_image: str | None = None
    canonical_url: str | None = None
    noindex: bool = False
    language: str = "en"


@dataclass(frozen=True, slots=True)
class ImageSource:
    url: str
    width: int
    content_type: str


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What is known of an uploaded image a page shows: its size (so the
    browser reserves the space) and its resized variants (for srcset)."""

    width: int
    height: int
    variants: tuple[ImageSource, ...] = ()

    def srcset(self, content_type: str, original: str) -> str:
        widths = [f"{v.url} {v.width}w" for v in self.variants if v.content_type == content_type]
        return ", ".join([*widths, f"{original} {self.width}w"]) if widths else ""


@dataclass(frozen=True, slots=True)
class RenderInput:
    # The landing page's id, as the beacon reports it; None: no beacon (a
    # template's preview is no page, and its views are nobody's).
    page_id: str | None
    slug: str
    title: str
    seo: Seo
    content: PageContent
    public_url: str  # e.g. "https://pages.example.com" (no trailing slash)
    # Uploaded images the page shows, by their /assets/ URL.
    images: Mapping[str, ImageInfo] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderedPage:
    html: str
    # The Content-Security-Policy that fits this page: inline style and the
    # beacon script allowed by hash, frames only for the video providers used.
    csp: str


# --- templates and static assets, loaded once at import ----------------------

_THEME_DIR = Path(__file__).with_name("theme")

_env = Environment(
    loader=FileSystemLoader(_THEME_DIR),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
    auto_reload=False,
)


def _initial(name: str) -> str:
    """A name's first character as a reader sees it (a grapheme cluster):
    "É" written as E and an accent, a flag, or an emoji family, whole."""
    first = regex.match(r"\X", name.strip())
    return first.group().upper() if first else ""


def _paragraphs(text: str) -> list[list[str]]:
    """Plain text as paragraphs of lines: a blank line (spaces on it too)
    starts a paragraph, a single line break stays one."""
    return [
        [line.strip() for line in part.strip().splitlines()]
        for part in _BLANK_LINE.split(text)
        if part.strip()
    ]


_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")


def _sized_images(html: str, images: Mapping[str, ImageInfo]) -> str:
    """An HTML block's images as the page's own are shown: an upload with
    the size it is known to have (the space is kept while it loads, where
    the page had jumped), each loaded lazily unless it says otherwise.
    A size the author wrote stays; one side gives the other its proportion."""

    def sized(tag: re.Match[str]) -> str:
        attributes = dict(_ATTRIBUTE.findall(tag.group(1)))
        added = ""
        info = images.get(attributes.get("src", ""))
        width, height = attributes.get("width", ""), attributes.get("height", "")
        if info is not None and info.width and info.height:
            if not width and not height:
                added += f' width="{info.width}" height="{info.height}"'
            elif width.isdigit() and not height:
                added += f' height="{round(int(width) * info.height / info.width)}"'
            elif height.isdigit() and not width:
                added += f' width="{round(int(height) * info.width / info.height)}"'
        if "loading" not in attributes:
            added += ' loading="lazy" decoding="async"'
        return f"<img{tag.group(1)}{added}>"

    return _IMG_TAG.sub(sized, html)


# Cleaned HTML (nh3) writes every attribute as name="value", with no " inside.
_IMG_TAG = re.compile(r'<img\b((?:[^>"]|"[^"]*")*?)\s*/?>', re.IGNORECASE)
_ATTRIBUTE = re.compile(r'\s([a-zA-Z-]+)="([^"]*)"')
_env.filters["initial"] = _initial
_env.filters["paragraphs"] = _paragraphs
_env.filters["sized_images"] = _sized_images
_PAGE_TEMPLATE = _env.get_template("page.html.j2")
_NOT_FOUND_TEMPLATE = _env.get_template("not_found.html.j2")


def _minify_css(css: str) -> str:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    css = re.sub(r"\s+", " ", css)
    css = re.sub(r"\s*([{};>])\s*", r"\1", css)
    return css.replace(";}", "}").strip()


def _minify_js(js: str) -> str:
    """Whitespace trimmed and whole-line ``//`` comments dropped (they are
    for the source's readers, and were most of the bytes every page ships).
    A ``//`` after code stays: it may be inside a string, as in a URL."""
    lines = (line.strip() for line in js.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//"))


_CSS = _minify_css((_THEME_DIR / "page.css").read_text("utf-8"))
_BEACON = _minify_js((_THEME_DIR / "beacon.js").read_text("utf-8"))
_PAGE_ID_SLOT = "__LF_PAGE_ID__"
if _BEACON.count(_PAGE_ID_SLOT) != 1:  # pragma: no cover - packaging invariant
    raise RuntimeError("beacon.js must contain the page id slot exactly once")

_FONTS = {
    "sans": (
        'system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Noto Sans",'
        '"Liberation Sans",Arial,sans-serif'
    ),
    "serif": (
        '"Iowan Old Style","Palatino Linotype",Palatino,"Book Antiqua",Georgia,'
        '"Noto Serif","DejaVu Serif",serif'
    ),
    "rounded": (
        'ui-rounded,"SF Pro Rounded","Hiragino Maru Gothic ProN",Quicksand,Comfortaa,'
        'Nunito,"Varela Round","Arial Rounded MT Bold",system-ui,sans-serif'
    ),
}

_PALETTES = {
    "light": {
        "bg": "#ffffff",
        "bg-alt": "#f6f7fb",
        "surface": "#ffffff",
        "text": "#0f172a",
        "muted": "#475569",
        "border": "#e3e7ef",
        "shadow": "rgba(15,23,42,.08)",
        "header-bg": "rgba(255,255,255,.82)",
    },
    "dark": {
        "bg": "#0b0d14",
        "bg-alt": "#10131c",
        "surface": "#161a26",
        "text": "#eceef5",
        "muted": "#a4abbd",
        "border": "#272d3d",
        "shadow": "rgba(0,0,0,.45)",
        "header-bg": "rgba(11,13,20,.78)",
    },
}
_NEAR_BLACK = "#0b0d14"
_WHITE = "#ffffff"


# --- colour maths (WCAG 2.x relative luminance and contrast) ------------------


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def _luminance(hex_color: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(hex_color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _mix(a: str, b: str, weight_b: float) -> str:
    ra, rb = _rgb(a), _rgb(b)
    return _hex([x + (y - x) * weight_b for x, y in zip(ra, rb, strict=True)])


def readable_on(background: str) -> str:
    """White or near-black, whichever reads better on ``background``."""
    if contrast_ratio(_WHITE, background) >= contrast_ratio(_NEAR_BLACK, background):
        return _WHITE
    return _NEAR_BLACK


def _ink(accent: str, toward: str, against: Sequence[str], minimum: float = 4.5) -> str:
    """The accent, moved toward ``toward`` until it reads on every ``against``."""
    for step in range(21):
        candidate = _mix(accent, toward, step / 20)
        if all(contrast_ratio(candidate, bg) >= minimum for bg in against):
            return candidate
    return toward


@lru_cache(maxsize=256)
def _style(accent: str, mode: str, font: str) -> tuple[str, str]:
    """(exact inline style text, its CSP hash source) for one theme."""
    palette = _PALETTES[mode]
    soft = _mix(palette["bg"], accent, 0.12 if mode == "light" else 0.18)
    ink = _ink(accent, palette["text"], (palette["bg"], palette["surface"], soft))
    on_accent = readable_on(accent)
    deep = _mix(accent, "#000000", 0.18)
    # A call-to-action banner runs from the accent to its deep shade, and its
    # text must read on both ends (white on a light orange did not: 3.2:1).
    on_banner = readable_on(deep)
    away = "#000000" if on_banner == _WHITE else "#ffffff"
    # What is filled with the accent (a button, a badge) must stand out
    # from the page around it (WCAG 1.4.11: 3:1): an accent close to the
    # background (white on light, black on dark) gets an edge that does.
    around = (palette["bg"], palette["bg-alt"], palette["surface"])
    stands_out = all(contrast_ratio(accent, bg) >= 3.0 for bg in around)
    edge = "transparent" if stands_out else _ink(accent, palette["text"], around, 3.0)
    # A form field's edge is all that shows where to type: the palette's
    # hairline (1.2:1) is too faint for that, so it is darkened (lightened)
    # until it stands out from the page and the form's card (3:1).
    field_border = _ink(palette["border"], palette["text"], (palette["bg"], palette["surface"]), 3)
    variables = {
        **palette,
        "accent": accent,
        "accent-deep": deep,
        "accent-soft": soft,
        "accent-ink": ink,
        "on-accent": on_accent,
        "banner-from": _ink(accent, away, (on_banner,)),
        "banner-to": _ink(deep, away, (on_banner,)),
        "on-banner": on_banner,
        "accent-edge": edge,
        "field-border": field_border,
        "font": _FONTS[font],
    }
    declarations = ";".join(f"--{k}:{v}" for k, v in variables.items())
    root = ":root{color-scheme:" + mode + ";" + declarations + "}"
    text = root + _CSS
    return text, _csp_hash(text)


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def js_string(value: str) -> str:
    """A JSON string literal that is safe inside an HTML <script> element."""
    return (
        json.dumps(value, ensure_ascii=True)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


# --- page ----------------------------------------------------------------------


def _walk(blocks: Sequence[Any]) -> Iterator[Any]:
    for block in blocks:
        yield block
        if isinstance(block, ColumnsBlock):
            for column in block.columns:
                yield from column.blocks


def _absolute(url: str, public_url: str) -> str:
    return public_url + url if url.startswith("/") and not url.startswith("//") else url


def _csp(
    style_hash: str, script_hash: str | None, frame_origins: Sequence[str], forms: bool = False
) -> str:
    parts = [
        "default-src 'none'",
        "img-src 'self' https: data:",
        f"style-src {style_hash}",
        f"script-src {script_hash}" if script_hash else "script-src 'none'",
        "connect-src 'self'",
    ]
    if frame_origins:
        parts.append("frame-src " + " ".join(frame_origins))
    # A page's only forms are its form blocks (cleaned HTML holds none), and
    # their services may send the visitor on to a thank-you page elsewhere:
    # CSP holds the redirect to form-action too, so any https destination.
    form_action = "'self' https:" if forms else "'self'"
    parts += ["base-uri 'none'", f"form-action {form_action}", "frame-ancestors 'self'"]
    return "; ".join(parts)


# Languages written right to left, and scripts that are (a script subtag
# says it where a language is written in several: az-Arab, ks-Deva).
_RTL_LANGUAGES = frozenset(
    {"ar", "arc", "ckb", "dv", "fa", "he", "iw", "ks", "ps", "sd", "syr", "ug", "ur", "yi"}
)
_RTL_SCRIPTS = frozenset({"arab", "hebr", "thaa", "syrc", "nkoo", "adlm", "rohg", "mand"})


def written_right_to_left(language: str) -> bool:
    """Whether a page in ``language`` (a BCP 47 tag) reads right to left:
    its ``<html dir>``, so text, punctuation and layout run that way."""
    subtags = language.lower().split("-")
    script = next((tag for tag in subtags[1:] if len(tag) == 4 and tag.isalpha()), None)
    if script is not None:
        return script in _RTL_SCRIPTS
    return subtags[0] in _RTL_LANGUAGES


def _by_either_address(images: Mapping[str, ImageInfo], public_url: str) -> dict[str, ImageInfo]:
    """An upload is known by its path and by its whole address on the page's
    own site (https://pages.example.com/assets/…), which an author may paste."""
    return {**images, **{public_url + path: info for path, info in images.items()}}


def render_page(page: RenderInput) -> RenderedPage:
    content = page.content
    theme = content.theme
    style, style_hash = _style(theme.accent.lower(), theme.mode, theme.font)
    script = _BEACON.replace(_PAGE_ID_SLOT, js_string(page.page_id)) if page.page_id else ""
    script_hash = _csp_hash(script) if script else None

    first_hero: HeroBlock | None = None
    first_title: HeadingBlock | None = None
    frame_origins: list[str] = []
    has_form = False
    for block in _walk(content.blocks):
        if isinstance(block, HeroBlock) and first_hero is None:
            first_hero = block
        elif isinstance(block, HeadingBlock) and block.level == 1 and first_title is None:
            first_title = block
        elif isinstance(block, VideoBlock):
            parts = urlsplit(block.embed_url)
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in frame_origins:
                frame_origins.append(origin)
        elif isinstance(block, FormBlock):
            has_form = True

    seo = page.seo
    meta_title = seo.meta_title or page.title
    description = seo.meta_description or (first_hero.subheadline if first_hero else "")
    canonical = seo.canonical_url or f"{page.public_url}/{page.slug}"
    og_image = _absolute(seo.og_image, page.public_url) if seo.og_image else None
    header_cta = first_hero if first_hero and first_hero.cta_label and first_hero.cta_url else None

    html = _PAGE_TEMPLATE.render(
        title=page.title,
        meta_title=meta_title,
        description=description,
        canonical=canonical,
        og_image=og_image,
        noindex=seo.noindex,
        language=seo.language,
        right_to_left=written_right_to_left(seo.language),
        theme=theme,
        style=Markup(style),  # noqa: S704 - our own CSS, hex colours only
        script=Markup(script),  # noqa: S704 - our own JS, page id json-escaped
        blocks=content.blocks,
        # The page's one h1: its first hero's headline, else its first
        # level-1 heading, else its title (for screen readers only).
        h1_block=first_hero or first_title,
        h1_fallback=first_hero is None and first_title is None,
        header_cta=header_cta,
        images=_by_either_address(page.images, page.public_url),
    )
    return RenderedPage(html=html, csp=_csp(style_hash, script_hash, frame_origins, has_form))


# --- 404 -----------------------------------------------------------------------

_NOT_FOUND_STYLE, _NOT_FOUND_STYLE_HASH = _style(Theme().accent.lower(), Theme().mode, Theme().font)
# The CSP to send with render_not_found()'s page (no script, no frames).
NOT_FOUND_CSP = _csp(_NOT_FOUND_STYLE_HASH, None, ())


def render_not_found(public_url: str) -> str:
    host = urlsplit(public_url).netloc or public_url
    return _NOT_FOUND_TEMPLATE.render(
        style=Markup(_NOT_FOUND_STYLE),  # noqa: S704 - our own CSS
        host=host,
    )
