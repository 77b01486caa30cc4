"""SVG uploads: nothing that could run, fetch or navigate gets in, judged on
URLs as a browser cleans them; ordinary drawings (gradients, <use>, styles,
editor metadata) still do."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import assert_error
from tests.files import samples
from tests.files.conftest import stored_objects

XHTML = 'xmlns:h="http://www.w3.org/1999/xhtml"'

# name, body inside <svg>
HOSTILE = [
    # Characters a browser's URL parser drops (C0 controls and spaces at the
    # ends, tabs and newlines anywhere): the cleaned URL is what counts.
    ("href-tab-javascript", '<a href="java&#x9;script:alert(1)"><text>x</text></a>'),
    ("href-newline-javascript", '<a xlink:href="&#xA;javascript:alert(1)"><text>x</text></a>'),
    ("href-leading-tab-external", '<use href="&#x9;https://evil.example/s.svg#x"/>'),
    # Not stripped by the URL parser (a Python strip() would): a relative
    # URL, fetched from wherever the SVG is shown.
    ("href-nbsp-before-fragment", '<image href="&#xA0;#a" width="5" height="5"/>'),
    ("href-line-separator-before-fragment", '<use href="&#x2028;#a"/>'),
    ("href-empty", '<image href="" width="5" height="5"/>'),
    ("fill-url-nbsp-before-fragment", '<rect fill="url(\'&#xA0;#a\')" width="5" height="5"/>'),
    ("style-url-escaped-nbsp", '<style>rect { fill: url("\\a0 #a") }</style><rect/>'),
    ("style-url-unclosed", "<style>rect { fill: url(https://evil.example/x</style><rect/>"),
    # Read in time linear in its length (a backtracking regex took minutes).
    ("fill-url-unclosed-long-spaces", '<rect fill="url(' + " " * 20_000 + '"/>'),
    ("style-url-split-by-comment", "<style>rect { fill: u<!-- -->rl(//evil.example/x) }</style>"),
    ("style-image-set", "<rect style=\"fill: image-set('https://evil.example/x.png' 1x)\"/>"),
    ("style-escaped-tab-javascript", '<rect style="fill: url(java\\9 script:alert(1))"/>'),
    # URL attributes other than href.
    ("xml-base-tab-javascript", '<a xml:base="java&#x9;script:alert(1)//" href="#x"><text/></a>'),
    ("form-action-tab-javascript", '<form action="java&#x9;script:alert(1)"><button/></form>'),
    # Elements that navigate, fetch or re-point URLs (some break out of an
    # inlined SVG into the page: meta, img).
    ("meta-refresh", '<meta http-equiv="refresh" content="0;url=https://evil.example/"/>'),
    ("xhtml-meta-refresh", f'<h:meta {XHTML} http-equiv="refresh" content="0;url=/x"/>'),
    ("img", '<img src="https://evil.example/pixel.png"/>'),
    ("xhtml-img-fragment-src", f'<h:img {XHTML} src="#a"/>'),
    ("base", '<base href="#a"/>'),
    ("link-stylesheet", '<link rel="stylesheet" href="https://evil.example/x.css"/>'),
    ("xhtml-iframe", f'<h:iframe {XHTML} src="https://evil.example/"/>'),
]

DRAWING = (
    '<defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient>'
    '<clipPath id="c"><circle cx="5" cy="5" r="4"/></clipPath>'
    '<marker id="m"><path d="M0 0L2 1"/></marker><circle id="dot" r="1"/></defs>'
)
BENIGN = [
    ("gradient-url-fragment", DRAWING + '<rect fill="url(#g)" width="5" height="5"/>'),
    (
        "url-fragments-spaced-and-quoted",
        DRAWING + "<rect style=\"fill: url( '#g' ); stroke: URL(  &quot;#g&quot;  )\" "
        'clip-path="url(#c)" marker-end="url(#m)" mask="url( #g )" width="5" height="5"/>',
    ),
    ("fill-url-fragment-long-spaces", DRAWING + '<rect fill="url(' + " " * 20_000 + '#g )"/>'),
    ("use-href-fragment", DRAWING + '<use href="#dot" x="2"/><use xlink:href="#dot" x="4"/>'),
    ("anchor-to-fragment", DRAWING + '<a href="#dot"><text>jump</text></a>'),
    (
        "style-sheet",
        DRAWING + "<style><![CDATA[ .a { fill: #123456; stroke: url(#g) } /* note */ "
        'text { font: 2px sans-serif } ]]></style><rect class="a" width="5" height="5"/>',
    ),
    (
        "editor-metadata",
        '<metadata><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:cc="http://creativecommons.org/ns#" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<cc:Work rdf:about=""><dc:format>image/svg+xml</dc:format>'
        '<dc:type rdf:resource="http://purl.org/dc/dcmitype/StillImage"/></cc:Work></rdf:RDF>'
        '</metadata><sodipodi:namedview xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/'
        'sodipodi-0.dtd" pagecolor="#ffffff"/><rect width="5" height="5"/>',
    ),
]


async def upload(client: httpx.AsyncClient, headers: dict[str, str], data: bytes) -> httpx.Response:
    return await client.post(
        "/files/upload", files={"file": ("image.svg", data, "image/svg+xml")}, headers=headers
    )


@pytest.mark.parametrize(("name", "body"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_svg_that_could_run_fetch_or_navigate_is_refused(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], name: str, body: str
) -> None:
    response = await upload(client, ada, samples.svg(body))
    assert_error(response, 415, "unsafe_file")
    assert (await client.get("/files", headers=ada)).json()["items"] == []
    assert stored_objects(app) == []
    assert not list(app.components.settings.spool_dir.iterdir())


@pytest.mark.parametrize(("name", "body"), BENIGN, ids=[b[0] for b in BENIGN])
async def test_ordinary_svg_is_accepted_as_sent(
    client: httpx.AsyncClient, ada: dict[str, str], name: str, body: str
) -> None:
    data = samples.svg(body)
    response = await upload(client, ada, data)
    assert response.status_code == 201, response.text
    file = response.json()
    assert (file["content_type"], file["width"], file["height"]) == ("image/svg+xml", 10, 10)
    assert (await client.get(file["url"])).content == data
