"""A corpus of XSS vectors put into rich text and raw HTML blocks (and into
plain text fields), published, and fetched as a visitor: the served page may
carry no script other than Landform's own beacon, no event handler, and no
``javascript:`` or ``data:`` URL."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from tests.conftest import signed_in

VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "<img src=javascript:alert(1)>",
    "<img src=`javascript:alert(1)`>",
    '<img """><script>alert(1)</script>">',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<body onload=alert(1)>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt:alert(1)">click</a>',
    '<a href="jav&#x09;ascript:alert(1)">click</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<div style="width: expression(alert(1))">x</div>',
    "<style>@import 'javascript:alert(1)';</style>",
    "<link rel=stylesheet href=javascript:alert(1)>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<form action="javascript:alert(1)"><button>x</button></form>',
    "<input onfocus=alert(1) autofocus>",
    "<details open ontoggle=alert(1)>",
    '<video><source onerror="alert(1)"></video>',
    "<audio src=x onerror=alert(1)>",
    "<marquee onstart=alert(1)>x</marquee>",
    '<p onmouseover="alert(1)">hover</p>',
    '<table background="javascript:alert(1)"></table>',
    "<!--<script>alert(1)</script>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<template><script>alert(1)</script></template>",
    "<x onclick=alert(1)>x</x>",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "<isindex action=javascript:alert(1) type=image>",
]
assert len(VECTORS) >= 30


class Inspector(HTMLParser):
    """Collects what could run: scripts, event handlers, dangerous URLs."""

    URL_ATTRS = {
        "href",
        "src",
        "action",
        "formaction",
        "data",
        "background",
        "poster",
        "srcdoc",
        "xlink:href",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.handlers: list[tuple[str, str]] = []
        self.bad_urls: list[tuple[str, str]] = []
        self.forbidden_tags: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        if tag in {
            "iframe",
            "object",
            "embed",
            "base",
            "form",
            "meta",
            "link",
            "svg",
            "math",
            "style",
        }:
            self.forbidden_tags.append(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, name))
            if name in self.URL_ATTRS and value is not None:
                compact = re.sub(r"[\s\x00-\x1f]", "", value).lower()
                if compact.startswith(("javascript:", "vbscript:", "data:text")):
                    self.bad_urls.append((tag, value))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def user_part(html: str) -> str:
    """The page's <main>: what user content is rendered into."""
    start, end = html.index("<main"), html.rindex("</main>")
    return html[start:end]


@pytest.fixture
async def publisher(client: httpx.AsyncClient, app: Any) -> Any:
    headers = await signed_in(client, app, "xss@example.com")

    async def publish(blocks: list[dict[str, Any]], slug: str) -> str:
        page = (
            await client.post(
                "/landing-pages", json={"title": "XSS", "slug": slug}, headers=headers
            )
        ).json()
        response = await client.put(
            f"/landing-pages/{page['id']}/content", json={"blocks": blocks}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert (
            await client.post(f"/landing-pages/{page['id']}/publish", headers=headers)
        ).status_code == 200
        served = await client.get(f"/{slug}")
        assert served.status_code == 200
        return served.text

    return publish


async def test_no_vector_survives_in_rich_text_or_raw_html(publisher: Any) -> None:
    blocks = []
    for vector in VECTORS:
        blocks.append({"type": "rich_text", "html": f"<p>before</p>{vector}<p>after</p>"})
        blocks.append({"type": "html", "html": f"<div>{vector}</div>"})
    html = await publisher(blocks, "xss-html")

    inspector = Inspector()
    inspector.feed(html)
    # Exactly one script on the whole page: Landform's beacon, outside <main>.
    assert len(inspector.scripts) == 1
    assert "track-view" in inspector.scripts[0]
    assert "alert" not in inspector.scripts[0]

    main = Inspector()
    main.feed(user_part(html))
    assert main.scripts == []
    assert main.handlers == []
    assert main.bad_urls == []
    assert main.forbidden_tags == []
    assert "before" in html and "after" in html  # the harmless content stays


async def test_vectors_in_plain_text_fields_are_escaped(publisher: Any) -> None:
    blocks: list[dict[str, Any]] = []
    for vector in VECTORS[:20]:
        blocks.append({"type": "heading", "text": vector})
        blocks.append({"type": "testimonial", "quote": vector, "author": vector})
        blocks.append({"type": "faq", "items": [{"question": vector, "answer": vector}]})
    html = await publisher(blocks, "xss-text")
    main = Inspector()
    main.feed(user_part(html))
    assert main.scripts == [] and main.handlers == [] and main.bad_urls == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:x",
        "//evil.example/x",
        "http://",
    ],
)
async def test_dangerous_urls_are_refused_on_write(
    client: httpx.AsyncClient, app: Any, url: str
) -> None:
    headers = await signed_in(client, app, "urls@example.com")
    page = (await client.post("/landing-pages", json={"title": "U"}, headers=headers)).json()
    for block in (
        {"type": "cta", "label": "Go", "url": url},
        {"type": "image", "url": url, "alt": "x"},
        {"type": "hero", "headline": "H", "cta_label": "Go", "cta_url": url},
    ):
        response = await client.put(
            f"/landing-pages/{page['id']}/content", json={"blocks": [block]}, headers=headers
        )
        assert response.status_code == 422, (block, response.text)
        assert response.json()["error"]["details"][0]["path"].startswith("blocks[0].")


def test_the_inspector_catches_what_it_looks_for() -> None:
    inspector = Inspector()
    inspector.feed(
        '<script>x</script><img src=x onerror=y><a href=" JaVa script:1">x</a><iframe></iframe>'
    )
    assert inspector.scripts == ["x"]
    assert inspector.handlers == [("img", "onerror")]
    assert inspector.bad_urls == [("a", " JaVa script:1")]
    assert inspector.forbidden_tags == ["iframe"]
