"""What a marketer's longest content does to a published page on a phone,
in real Chromium: nothing scrolls sideways, the page name ends in an
ellipsis instead of being sliced, and a long header button leaves it room."""

from __future__ import annotations

from landform.pages.render import render_page
from tests.browser import chromium
from tests.pages.test_render import make_input

PHONE = {"width": 390, "height": 844}
LONG_LINK = "https://shop.example.com/spring?utm_source=newsletter&utm_campaign=" + "x" * 80


def long_page() -> str:
    blocks = [
        {"type": "hero", "headline": "Pneumonoultramicroscopicsilicovolcanoconiosis" * 2,
         "cta_label": "Book your free 30-minute strategy call with our team today",
         "cta_url": "#cta"},
        {"type": "features", "items": [
            {"title": "A" * 60, "text": "B" * 120} for _ in range(6)]},
        {"type": "rich_text", "html": f'<p>Read more at <a href="{LONG_LINK}">{LONG_LINK}</a></p>'},
        {"type": "html", "html": "<table><tr>" + "".join(
            f"<td>Column heading {n}</td>" for n in range(8)) + "</tr></table>"},
        {"type": "testimonial", "quote": "C" * 90, "author": "D" * 70},
        {"type": "cta", "id": "cta", "label": "E" * 60, "url": "#cta", "note": "F" * 80},
    ]  # fmt: skip
    title = "Spring launch 2025 campaign for the whole European market"
    return render_page(make_input(blocks, title=title)).html


def test_a_page_of_long_content_fits_a_phone() -> None:
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)
        page.set_content(long_page())
        measured = page.evaluate(
            """() => {
              const brand = document.querySelector('.site-header .brand-name');
              const button = document.querySelector('.site-header .btn');
              return {
                scrollWidth: document.documentElement.scrollWidth,
                innerWidth: window.innerWidth,
                brandShown: brand.getBoundingClientRect().width,
                brandCut: brand.scrollWidth > brand.clientWidth,
                brandEllipsis: getComputedStyle(brand).textOverflow,
                buttonRight: button.getBoundingClientRect().right,
                table: document.querySelector('main table').getBoundingClientRect().right,
              };
            }"""
        )
    assert measured["scrollWidth"] <= measured["innerWidth"], measured
    assert measured["brandCut"] and measured["brandEllipsis"] == "ellipsis", measured
    assert measured["brandShown"] >= 80, measured  # the name keeps room beside the button
    assert measured["buttonRight"] <= measured["innerWidth"], measured
    assert measured["table"] <= measured["innerWidth"], measured  # it scrolls in its box
