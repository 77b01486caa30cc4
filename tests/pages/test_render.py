"""Page generation: built-in templates, document head, escaping, CSP hashes,
the analytics beacon, video frames and the 404 page."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import landform
from landform.pages.blocks import ColumnsBlock, PageContent, start_seconds
from landform.pages.render import (
    NOT_FOUND_CSP,
    ImageInfo,
    RenderedPage,
    RenderInput,
    Seo,
    _minify_js,
    contrast_ratio,
    js_string,
    readable_on,
    render_not_found,
    render_page,
)

TEMPLATE_DIR = Path(landform.__file__).parent / "templates" / "data"
TEMPLATE_FILES = sorted(TEMPLATE_DIR.glob("*.json"))
REQUIRED_TEMPLATES = {
    "saas-launch",
    "webinar-signup",
    "ebook-download",
    "mobile-app",
    "event",
    "product-promo",
    "coming-soon",
    "agency-services",
}
PUBLIC_URL = "https://pages.example.com"


def make_input(
    blocks: list[dict[str, Any]] | None = None,
    *,
    theme: dict[str, Any] | None = None,
    seo: Seo | None = None,
    page_id: str = "0190b0c0-1111-7000-8000-000000000001",
    title: str = "Acme launch",
) -> RenderInput:
    content = PageContent.model_validate(
        {
            "theme": theme or {},
            "blocks": blocks
            if blocks is not None
            else [{"type": "hero", "headline": "Hello", "cta_label": "Go", "cta_url": "#go"}],
        }
    )
    return RenderInput(
        page_id=page_id,
        slug="acme",
        title=title,
        seo=seo or Seo(),
        content=content,
        public_url=PUBLIC_URL,
    )


class _Doc(HTMLParser):
    """Collects what the tests look at: tags with attributes, inline code."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "title":
            self._in = "title"

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a
            for t, a in self.tags
            if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def meta(self, key: str) -> str | None:
        for _, a in self.tags:
            if _ == "meta" and (a.get("name") == key or a.get("property") == key):
                return a.get("content")
        return None


def parse(html: str) -> _Doc:
    doc = _Doc()
    doc.feed(html)
    return doc


def inline(html: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S)


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def csp_directives(csp: str) -> dict[str, str]:
    out = {}
    for part in csp.split(";"):
        name, _, value = part.strip().partition(" ")
        out[name] = value
    return out


# --- built-in templates ------------------------------------------------------------


def test_required_templates_exist() -> None:
    ids = {p.stem for p in TEMPLATE_FILES}
    assert ids >= REQUIRED_TEMPLATES
    assert len(ids) >= 8


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.stem)
def test_template_validates_and_renders(path: Path) -> None:
    data = json.loads(path.read_text("utf-8"))
    assert set(data) == {"id", "name", "category", "description", "theme", "blocks"}
    assert data["id"] == path.stem
    assert data["name"] and data["category"] and data["description"]
    content = PageContent.model_validate({"theme": data["theme"], "blocks": data["blocks"]})

    types = {b.type for b in content.blocks}
    assert {"hero", "cta", "faq"} <= types
    assert len(types) >= 5
    text = json.dumps(data).lower()
    assert "lorem" not in text and "ipsum" not in text
    # No external images: nothing the page would fetch from another host.
    leaves: list[Any] = []
    for block in content.blocks:
        if isinstance(block, ColumnsBlock):
            leaves += [leaf for column in block.columns for leaf in column.blocks]
        else:
            leaves.append(block)
    for leaf in leaves:
        for field in ("image_url", "avatar_url") + (("url",) if leaf.type == "image" else ()):
            assert not str(getattr(leaf, field, None) or "").startswith(("http:", "https:"))
    # Links lead within the page or to a placeholder to replace: a path on
    # this host (/signup, /register) is another account's page, or a
    # reserved word's JSON 404.
    links = re.findall(r'"(?:url|cta_url|secondary_url)": "([^"]*)"', json.dumps(data))
    assert links
    for link in links:
        assert link.startswith(("#", "mailto:", "https://")), link

    page = render_page(
        RenderInput(
            page_id=f"tpl-{data['id']}",
            slug=data["id"],
            title=data["name"],
            seo=Seo(),
            content=content,
            public_url=PUBLIC_URL,
        )
    )
    assert page.html.startswith("<!doctype html>")
    doc = parse(page.html)
    assert len(doc.find("h1")) == 1
    assert doc.find("header") and doc.find("main") and doc.find("footer")
    assert doc.find("a", data_lf_cta=content.blocks[0].cta_label)  # type: ignore[union-attr]
    for img in doc.find("img"):
        assert img.get("alt") is not None


# --- the document head -----------------------------------------------------------


def test_head_has_title_meta_canonical_og_and_twitter() -> None:
    seo = Seo(
        meta_title="Acme — ship faster",
        meta_description="The fastest way to ship.",
        og_image="/assets/og.png",
    )
    doc = parse(render_page(make_input(seo=seo)).html)
    assert doc.find("html", lang="en")
    assert doc.find("meta", charset="utf-8")
    assert doc.find("meta", name="viewport")
    assert doc.title == "Acme — ship faster"
    assert doc.meta("description") == "The fastest way to ship."
    assert doc.find("link", rel="canonical", href=f"{PUBLIC_URL}/acme")
    assert doc.meta("og:title") == "Acme — ship faster"
    assert doc.meta("og:description") == "The fastest way to ship."
    assert doc.meta("og:type") == "website"
    assert doc.meta("og:url") == f"{PUBLIC_URL}/acme"
    assert doc.meta("og:image") == f"{PUBLIC_URL}/assets/og.png"
    assert doc.meta("twitter:card") == "summary_large_image"
    assert doc.meta("twitter:title") == "Acme — ship faster"
    assert doc.meta("twitter:image") == f"{PUBLIC_URL}/assets/og.png"
    assert doc.meta("robots") is None


def test_head_falls_back_to_title_and_explicit_canonical() -> None:
    seo = Seo(canonical_url="https://acme.example/launch")
    doc = parse(render_page(make_input(seo=seo, title="Acme & Co")).html)
    assert doc.title == "Acme & Co"
    assert doc.find("link", rel="canonical", href="https://acme.example/launch")
    assert doc.meta("og:url") == "https://acme.example/launch"
    assert doc.meta("og:image") is None
    assert doc.meta("twitter:card") == "summary"


def test_noindex() -> None:
    doc = parse(render_page(make_input(seo=Seo(noindex=True))).html)
    assert doc.meta("robots") == "noindex"


# --- escaping --------------------------------------------------------------------


def test_user_strings_are_escaped() -> None:
    evil = "<script>alert(1)</script>"
    blocks = [
        {"type": "hero", "headline": evil, "subheadline": '"><img src=x onerror=alert(1)>'},
        {"type": "features", "title": evil, "items": [{"title": evil, "icon": "<b>"}]},
        {"type": "faq", "items": [{"question": evil, "answer": evil}]},
        {"type": "cta", "label": 'Go" onclick="alert(1)', "url": "/go"},
    ]
    html = render_page(make_input(blocks, title=evil, seo=Seo(meta_description=evil))).html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert 'onclick="alert(1)' not in html
    assert html.count("<script>") == 1  # only the beacon


def test_rich_text_and_html_are_inserted_sanitized() -> None:
    blocks = [
        {"type": "rich_text", "html": "<p>Hi <strong>there</strong><script>x()</script></p>"},
        {
            "type": "html",
            "html": '<div class="box"><h5>Raw</h5><iframe src="https://e.x"></iframe></div>',
        },
    ]
    html = render_page(make_input(blocks)).html
    assert "<p>Hi <strong>there</strong></p>" in html
    assert '<div class="box"><h5>Raw</h5></div>' in html
    assert "x()" not in html and "<iframe" not in html


# --- CSP and the beacon ------------------------------------------------------------


def test_csp_hashes_match_the_emitted_inline_style_and_script() -> None:
    page = render_page(make_input())
    styles, scripts = inline(page.html, "style"), inline(page.html, "script")
    assert len(styles) == 1 and len(scripts) == 1
    d = csp_directives(page.csp)
    assert d["default-src"] == "'none'"
    assert d["style-src"] == sha256_source(styles[0])
    assert d["script-src"] == sha256_source(scripts[0])
    assert d["img-src"] == "'self' https: data:"
    assert d["connect-src"] == "'self'"
    assert d["base-uri"] == "'none'"
    assert d["form-action"] == "'self'"
    assert d["frame-ancestors"] == "'self'"
    assert "style=" not in page.html  # inline style attributes would be blocked


def test_csp_hashes_follow_theme_and_page_id() -> None:
    light = render_page(make_input())
    dark = render_page(make_input(theme={"accent": "#22c55e", "mode": "dark"}, page_id="other"))
    assert csp_directives(light.csp)["style-src"] != csp_directives(dark.csp)["style-src"]
    assert csp_directives(light.csp)["script-src"] != csp_directives(dark.csp)["script-src"]
    style = inline(dark.html, "style")[0]
    assert "color-scheme:dark" in style and "--accent:#22c55e" in style
    assert csp_directives(dark.csp)["style-src"] == sha256_source(style)


def test_beacon_embeds_json_escaped_page_id() -> None:
    page_id = '</script><script>alert("x")&'
    page = render_page(make_input(page_id=page_id))
    script = inline(page.html, "script")[0]
    assert js_string(page_id) in script
    assert '\\u003c/script\\u003e\\u003cscript\\u003ealert(\\"x\\")\\u0026' in script
    assert "</script><script>alert" not in page.html
    assert json.loads(js_string(page_id)) == page_id
    for needle in (
        "/analytics/track-view",
        "/analytics/track-event",
        "sendBeacon",
        "keepalive",
        "cta_click",
        "data-lf-cta",
        "utm_source",
        "utm_content",
        "screen.width",
        "referrer",
    ):
        assert needle in script
    assert "cookie" not in script and "localStorage" not in script


def test_ctas_carry_data_lf_cta() -> None:
    blocks = [
        {
            "type": "hero",
            "headline": "H",
            "cta_label": "Start",
            "cta_url": "/start",
            "secondary_label": "Learn",
            "secondary_url": "#more",
        },
        {"type": "cta", "label": "Buy now", "url": "/buy"},
        {
            "type": "pricing",
            "plans": [{"name": "Pro", "price": "$9", "cta_label": "Choose Pro", "cta_url": "/p"}],
        },
    ]
    doc = parse(render_page(make_input(blocks)).html)
    labels = {a["data-lf-cta"] for _, a in doc.tags if "data-lf-cta" in a}
    assert {"Start", "Learn", "Buy now", "Choose Pro"} <= labels


# --- video -------------------------------------------------------------------------


def test_frame_src_only_for_videos_used() -> None:
    no_video = render_page(make_input())
    assert "frame-src" not in no_video.csp
    assert "<iframe" not in no_video.html

    blocks = [
        {"type": "hero", "headline": "H"},
        {"type": "video", "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "title": "Demo"},
        {
            "type": "columns",
            "columns": [
                {
                    "blocks": [
                        {"type": "video", "url": "https://youtu.be/abc?t=1m30s", "title": "Again"}
                    ]
                },
                {"blocks": [{"type": "video", "url": "https://vimeo.com/123", "title": "Vim"}]},
            ],
        },
    ]
    page: RenderedPage = render_page(make_input(blocks))
    frames = csp_directives(page.csp)["frame-src"].split()
    assert frames == ["https://www.youtube-nocookie.com", "https://player.vimeo.com"]
    doc = parse(page.html)
    iframes = doc.find("iframe")
    assert len(iframes) == 3
    first = iframes[0]
    assert first["src"] == "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"
    assert first["title"] == "Demo"
    assert first["loading"] == "lazy"
    assert first.get("referrerpolicy")
    # A link that starts part-way (t=1m30s) starts there embedded too.
    assert iframes[1]["src"] == "https://www.youtube-nocookie.com/embed/abc?start=90"
    # A player's own "copy at current time" puts it in the fragment.
    assert start_seconds("https://youtu.be/abc#t=75") == 75
    assert start_seconds("https://www.youtube.com/watch?v=abc&t=1h2m3s") == 3723
    assert start_seconds("https://youtu.be/abc?t=soon") == 0


@pytest.mark.parametrize(
    ("link", "embedded"),
    [
        # An unlisted video's share link, and its player address: the hash plays it.
        ("https://vimeo.com/123456789/abcdef1234", "https://player.vimeo.com/video/123456789?h=abcdef1234"),
        ("https://player.vimeo.com/video/123456789?h=abcdef1234&badge=0", "https://player.vimeo.com/video/123456789?h=abcdef1234"),
        ("https://vimeo.com/123456789", "https://player.vimeo.com/video/123456789"),
        ("https://vimeo.com/channels/staffpicks/222", "https://player.vimeo.com/video/222"),
        ("https://vimeo.com/showcase/9876543/video/111", "https://player.vimeo.com/video/111"),
        # A showcase plays as a showcase, not as a video of its number.
        ("https://vimeo.com/showcase/9876543", "https://vimeo.com/showcase/9876543/embed"),
    ],
)  # fmt: skip
def test_vimeo_links_embed_what_they_show(link: str, embedded: str) -> None:
    page = render_page(make_input([{"type": "video", "url": link, "title": "V"}]))
    assert parse(page.html).find("iframe")[0]["src"] == embedded
    origin = embedded.split("/", 3)[:3]
    assert csp_directives(page.csp)["frame-src"] == "/".join(origin)


@pytest.mark.parametrize(
    ("link", "said"),
    [
        ("https://vimeo.com/channels/staffpicks", "shows many videos, not one"),
        ("https://vimeo.com/groups/motion", "shows many videos, not one"),
        ("https://vimeo.com/showcase/latest", "showcase id"),
        ("https://vimeo.com/123/abc-def", "letters and digits"),
    ],
)
def test_vimeo_links_to_no_single_video_are_refused_saying_why(link: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        PageContent.model_validate({"blocks": [{"type": "video", "url": link, "title": "V"}]})


# --- structure and accessibility ----------------------------------------------------


def test_one_h1_and_heading_levels() -> None:
    blocks = [
        {"type": "hero", "headline": "First"},
        {"type": "hero", "headline": "Second"},
        {"type": "heading", "text": "Sub", "level": 3},
        {"type": "faq", "items": [{"question": "Q?", "answer": "A."}]},
    ]
    html = render_page(make_input(blocks)).html
    assert re.findall(r"<h1[^>]*>(.*?)</h1>", html) == ["First"]
    assert '<h2 class="hero-title">Second</h2>' in html
    assert "<h3 " in html and ">Sub</h3>" in html
    assert "<details>" in html and "<summary>Q?</summary>" in html


def test_level_one_headings_beside_the_pages_h1_are_h2() -> None:
    """One h1 per page: the hero's headline, or without a hero the first
    level-1 heading; any other level-1 heading is an h2 (styled as asked)."""
    with_hero = [
        {"type": "heading", "text": "Before", "level": 1},
        {"type": "hero", "headline": "Hero"},
        {"type": "heading", "text": "After", "level": 1},
    ]
    html = render_page(make_input(with_hero)).html
    assert re.findall(r"<h1[^>]*>(.*?)</h1>", html) == ["Hero"]
    assert re.findall(r"<h2 class=\"heading[^>]*>(.*?)</h2>", html) == ["Before", "After"]
    headings_only = [
        {"type": "heading", "text": "Title", "level": 1},
        {"type": "heading", "text": "Again", "level": 1},
        {"type": "heading", "text": "Sub", "level": 3},
    ]
    html = render_page(make_input(headings_only)).html
    assert re.findall(r"<h1[^>]*>(.*?)</h1>", html) == ["Title"]
    assert ">Again</h2>" in html and ">Sub</h3>" in html and 'class="sr-only"' not in html


def test_faq_answers_keep_their_line_breaks() -> None:
    answer = "Line one\nLine two\r\nLine three\n \t\nA new paragraph"
    blocks = [{"type": "faq", "items": [{"question": "Q?", "answer": answer}]}]
    html = render_page(make_input(blocks)).html
    assert (
        '<div class="answer"><p>Line one<br>Line two<br>Line three</p><p>A new paragraph</p></div>'
    ) in html


def test_page_without_hero_still_has_one_h1() -> None:
    html = render_page(make_input([{"type": "rich_text", "html": "<p>x</p>"}])).html
    assert len(re.findall(r"<h1[\s>]", html)) == 1


def test_accent_text_colour_is_readable() -> None:
    assert readable_on("#ffffff") != "#ffffff"
    assert readable_on("#4f46e5") == "#ffffff"
    assert readable_on("#facc15") != "#ffffff"
    for accent in ("#4f46e5", "#facc15", "#22c55e", "#0e7490", "#000000", "#ffffff"):
        assert contrast_ratio(readable_on(accent), accent) >= 4.5
        style = inline(render_page(make_input(theme={"accent": accent})).html, "style")[0]
        ink = re.search(r"--accent-ink:(#[0-9a-f]{6})", style)
        assert ink and contrast_ratio(ink.group(1), "#ffffff") >= 4.5


def test_an_accent_close_to_the_background_gets_an_edge_that_stands_out() -> None:
    """A white accent on a light page (or black on a dark one) made buttons
    and badges vanish into the page: they get an edge of 3:1 (WCAG 1.4.11);
    an accent that stands out on its own keeps none."""
    for accent, mode in (("#ffffff", "light"), ("#fdfdfd", "light"), ("#000000", "dark")):
        page = render_page(make_input(theme={"accent": accent, "mode": mode}))
        style = inline(page.html, "style")[0]
        edge = re.search(r"--accent-edge:(#[0-9a-f]{6})", style)
        assert edge, (accent, mode)
        background = "#ffffff" if mode == "light" else "#0b0d14"
        assert contrast_ratio(edge.group(1), background) >= 3.0
    style = inline(render_page(make_input(theme={"accent": "#4f46e5"})).html, "style")[0]
    assert "--accent-edge:transparent" in style
    assert (
        ".btn-primary{background:var(--accent);color:var(--on-accent);border-color:var(--accent-edge)"
        in style
    )


def test_form_fields_show_their_edge_and_focus_whatever_the_accent() -> None:
    """A field's hairline edge was 1.2:1 against the page, and its focus
    ring the raw accent (1.0:1 for white on a light page): both need 3:1
    (WCAG 1.4.11), as the page's other focus rings have."""
    for mode, page_colours in (("light", ("#ffffff",)), ("dark", ("#0b0d14", "#161a26"))):
        style = inline(render_page(make_input(theme={"mode": mode})).html, "style")[0]
        edge = re.search(r"--field-border:(#[0-9a-f]{6})", style)
        assert edge, mode
        for colour in page_colours:
            assert contrast_ratio(edge.group(1), colour) >= 3.0, (mode, colour)
    assert (
        ".field input,.field textarea{" in style and "border:1px solid var(--field-border)" in style
    )
    assert "textarea:focus-visible{outline:2px solid var(--accent-ink)" in style
    assert ".field ::placeholder{color:var(--muted);opacity:1}" in style


def test_the_beacon_ships_without_its_comments() -> None:
    """Whole-line comments were most of its bytes; a // inside a line (in a
    string, as a URL) is code and stays."""
    script = inline(render_page(make_input()).html, "script")[0]
    assert not any(line.lstrip().startswith("//") for line in script.splitlines())
    assert len(script) < 2200
    assert _minify_js('  // why\n  var u = "https://x//y"; // kept\n') == (
        'var u = "https://x//y"; // kept'
    )


def test_an_upload_by_its_whole_address_keeps_its_size() -> None:
    """An image block given an upload's whole address on the page's site
    (with only a width) rendered no height: the size is known either way."""
    path = "/assets/" + "e" * 64 + ".png"
    known = dataclasses.replace(
        make_input([{"type": "image", "url": PUBLIC_URL + path, "alt": "Whole", "width": 600}]),
        images={path: ImageInfo(1200, 600)},
    )
    [image] = parse(render_page(known).html).find("img", alt="Whole")
    assert (image["width"], image["height"]) == ("600", "300")


def test_no_external_resources() -> None:
    html = render_page(make_input()).html
    assert "@import" not in html and "@font-face" not in html
    assert not re.search(r'<link[^>]+rel="(stylesheet|preload|preconnect|dns-prefetch)"', html)
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"url\(", inline(html, "style")[0])


# --- 404 ---------------------------------------------------------------------------


def test_not_found_page() -> None:
    html = render_not_found(PUBLIC_URL)
    doc = parse(html)
    assert html.startswith("<!doctype html>")
    assert doc.meta("robots") == "noindex"
    assert not doc.find("a")  # "/" is no page of its own: no link there
    assert len(doc.find("h1")) == 1
    assert "pages.example.com" in html
    styles = inline(html, "style")
    assert len(styles) == 1 and "<script" not in html
    assert csp_directives(NOT_FOUND_CSP)["style-src"] == sha256_source(styles[0])


@pytest.mark.parametrize(
    ("author", "initial"),
    [
        ("ada Lovelace", "A"),
        ("E\u0301milie Durand", "E\u0301"),  # an accent written as its own code point
        (
            "\U0001f468\u200d\U0001f469\u200d\U0001f467 The Parkers",
            "\U0001f468\u200d\U0001f469\u200d\U0001f467",
        ),
        ("\U0001f1eb\U0001f1f7 Équipe", "\U0001f1eb\U0001f1f7"),  # a flag: two code points
    ],
)
def test_testimonial_initial_is_the_first_character_a_reader_sees(
    author: str, initial: str
) -> None:
    block = {"type": "testimonial", "quote": "Worth it.", "author": author}
    html = render_page(make_input([block])).html
    assert f'<span class="avatar initials" aria-hidden="true">{initial}</span>' in html


@pytest.mark.parametrize(
    "accent", ["#ea580c", "#db2777", "#b45309", "#ef4444", "#facc15", "#4f46e5", "#777777"]
)
def test_a_banners_text_reads_on_both_ends_of_its_gradient(accent: str) -> None:
    """WCAG AA (4.5:1) for the call-to-action banner's text and its button,
    on the light end of the gradient as on the dark one: white on the
    accent's own orange read at 3.2:1."""
    style = inline(render_page(make_input(theme={"accent": accent})).html, "style")[0]
    colours = dict(re.findall(r"--([a-z-]+):(#[0-9a-f]{6})", style))
    text = colours["on-banner"]
    for end in ("banner-from", "banner-to"):
        assert contrast_ratio(text, colours[end]) >= 4.5, (accent, end, colours[end])
    assert re.search(
        r"\.banner-primary\{background:linear-gradient\(135deg,var\(--banner-from\),var\(--banner-to\)\);color:var\(--on-banner\)",
        style,
    )
    assert ".banner-primary .lead,.banner-primary .note{color:inherit}" in style  # not faded


@pytest.mark.parametrize(("title", "level"), [("What you get", 3), (None, 2)])
def test_feature_titles_skip_no_heading_level(title: str | None, level: int) -> None:
    """Under the hero's h1, a features block without a title of its own
    holds the next level: h1 then h3 skipped one (the coming-soon template)."""
    block = {"type": "features", "items": [{"title": "Fast", "text": "Pages in milliseconds"}]}
    if title:
        block["title"] = title
    hero = {"type": "hero", "headline": "Soon", "cta_label": "Go", "cta_url": "#go"}
    html = render_page(make_input([hero, block])).html
    assert f'<h{level} class="feature-title">Fast</h{level}>' in html
    levels = [int(n) for n in re.findall(r"<h([1-6])[\s>]", html)]
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), levels


def test_a_form_block_renders_labelled_fields_and_opens_the_csp_to_its_service() -> None:
    evil = '"><script>alert(1)</script>'
    form = {
        "type": "form", "id": "signup", "title": evil, "text": "Monthly news",
        "action": "https://lists.example.com/subscribe/post?u=abc&id=123",
        "submit_label": "Join", "note": "No spam",
        "fields": [
            {"name": "EMAIL", "label": "Email", "type": "email", "required": True,
             "placeholder": "you@example.com"},
            {"name": "PHONE", "label": "Phone", "type": "tel"},
            {"name": "MSG", "label": evil, "type": "textarea"},
        ],
        "hidden": {"list[id]": evil},
    }  # fmt: skip
    other = {**form, "id": None, "action": "https://forms.example.org/f/x", "hidden": {}}
    page = render_page(make_input([form, other, {**form, "id": "again"}]))
    html = page.html
    assert "<script>alert" not in html
    assert (
        '<form method="post" action="https://lists.example.com/subscribe/post?u=abc&amp;id=123"'
        ' data-lf-form="signup">'
    ) in html
    assert '<form method="post" action="https://forms.example.org/f/x" data-lf-form="form">' in html
    assert (
        '<input type="email" name="EMAIL" autocomplete="email" placeholder="you@example.com"'
        in html
    )
    assert '<input type="tel" name="PHONE" autocomplete="tel">' in html
    assert "required>" in html and '<textarea name="MSG" rows="4" maxlength="5000">' in html
    assert '<input type="hidden" name="list[id]" value="&#34;&gt;&lt;script&gt;' in html
    # Inputs inside their labels: no element ids that three forms would share.
    assert html.count('<label class="field">') == 9 and 'name="EMAIL" id=' not in html
    # Forms post to their services, which may send the visitor on to a
    # thank-you page on another host (CSP holds redirects too): any https.
    assert csp_directives(page.csp)["form-action"] == "'self' https:"
    assert csp_directives(render_page(make_input()).csp)["form-action"] == "'self'"


def test_http_images_in_html_are_asked_for_over_https() -> None:
    """The CSP blocks http: images (img-src 'self' https: data:): an
    http:// image in an HTML block was a hole in the live page. It is asked
    for over https, as browsers upgrade mixed content; links stay as written."""
    html = (
        '<p><img src="http://cdn.example.com/a.png" alt="a">'
        '<IMG alt="b" SRC="HTTP://cdn.example.com/b.png">'
        '<a href="http://example.com/">http://example.com/</a>'
        '<img src="/assets/x.png" alt="c"></p>'
    )
    content = PageContent.model_validate({"blocks": [{"type": "html", "html": html}]})
    cleaned = content.model_dump(mode="json")["blocks"][0]["html"]
    assert re.findall(r'src="([^"]*)"', cleaned) == [
        "https://cdn.example.com/a.png",
        "https://cdn.example.com/b.png",
        "/assets/x.png",
    ]
    assert '<a href="http://example.com/"' in cleaned
    # Validated again (a republish renders what was stored): the same.
    again = PageContent.model_validate(content.model_dump(mode="json"))
    assert again.model_dump(mode="json")["blocks"][0]["html"] == cleaned
