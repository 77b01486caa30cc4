"""The page theme as Chromium draws it: form fields that show where to type
and where the focus is whatever the accent, and pages written right to left
laid out that way."""

from __future__ import annotations

import re
from typing import Any

from landform.pages.render import Seo, contrast_ratio, render_page
from tests.browser import chromium
from tests.pages.test_render import make_input

FORM = {
    "type": "form",
    "action": "https://lists.example.com/subscribe",
    "fields": [{"name": "EMAIL", "label": "Email", "type": "email", "placeholder": "you@mail"}],
    "submit_label": "Join",
}


def hex_of(css_colour: str) -> str:
    """#rrggbb of a computed ``rgb(r, g, b)`` (opaque: what the theme sets)."""
    found = re.fullmatch(r"rgba?\((\d+), (\d+), (\d+)(?:, 1)?\)", css_colour)
    assert found, css_colour
    return "#" + "".join(f"{int(channel):02x}" for channel in found.groups())


def test_a_focused_fields_ring_and_every_fields_edge_stand_out_from_the_page() -> None:
    """The ring was the raw accent (1.0:1 for white on a light page, 1.08:1
    for black on a dark one) and the edge the page's hairline (1.24:1):
    both need 3:1 against what is around them (WCAG 1.4.11, 2.4.7), and a
    placeholder 4.5:1 as text (the dark page's default grey was 4.21:1)."""
    themes = [
        ("#ffffff", "light"),
        ("#ffe600", "light"),
        ("#4f46e5", "light"),
        ("#000000", "dark"),
        ("#ffe600", "dark"),
    ]
    with chromium() as browser:
        page = browser.new_page()
        for accent, mode in themes:
            html = render_page(make_input([FORM], theme={"accent": accent, "mode": mode})).html
            page.set_content(html)
            page.focus("input[name=EMAIL]")
            seen: dict[str, Any] = page.evaluate(
                """() => {
                  const input = document.querySelector('input[name=EMAIL]');
                  const style = getComputedStyle(input);
                  return {
                    focused: input.matches(':focus-visible'),
                    outline: style.outlineColor,
                    outlineStyle: style.outlineStyle,
                    border: style.borderTopColor,
                    field: style.backgroundColor,
                    card: getComputedStyle(document.querySelector('.lead-form')).backgroundColor,
                    page: getComputedStyle(document.body).backgroundColor,
                    placeholder: getComputedStyle(input, '::placeholder').color,
                  };
                }"""
            )
            assert seen["focused"] and seen["outlineStyle"] == "solid", (accent, mode, seen)
            around = [hex_of(seen["card"]), hex_of(seen["page"])]
            for name in ("outline", "border"):
                for colour in around:
                    ratio = contrast_ratio(hex_of(seen[name]), colour)
                    assert ratio >= 3.0, (accent, mode, name, colour, ratio)
            placeholder = contrast_ratio(hex_of(seen["placeholder"]), hex_of(seen["field"]))
            assert placeholder >= 4.5, (accent, mode, placeholder)


RTL_BLOCKS = [
    {"type": "hero", "headline": "مرحبا", "cta_label": "ابدأ", "cta_url": "#plans"},
    {"type": "rich_text", "html": "<blockquote><p>اقتباس</p></blockquote><ul><li>بند</li></ul>"},
    {"type": "pricing", "id": "plans", "plans": [
        {"name": "أساسي", "price": "10", "features": ["ميزة"]}]},
    {"type": "testimonial", "quote": "رائع", "author": "علي", "role": "مدير"},
]  # fmt: skip


def laid_out(language: str) -> dict[str, Any]:
    html = render_page(make_input(RTL_BLOCKS, seo=Seo(language=language))).html
    with chromium() as browser:
        page = browser.new_page()
        page.set_content(html)
        measured: dict[str, Any] = page.evaluate(
            """() => {
              const quote = getComputedStyle(document.querySelector('.prose blockquote'));
              const item = document.querySelector('.checks li');
              const tick = item.getBoundingClientRect();
              const mark = getComputedStyle(item, '::before');
              const list = getComputedStyle(document.querySelector('.prose ul'));
              const caption = getComputedStyle(document.querySelector('.quote figcaption'));
              const button = document.querySelector('.hero .btn-primary');
              return {
                quoteLeft: quote.borderLeftWidth, quoteRight: quote.borderRightWidth,
                listStart: list.paddingInlineStart, listRight: list.paddingRight,
                itemRight: getComputedStyle(item).paddingRight,
                // Where the check mark sits in its item: 0 from the side it starts at.
                markRight: mark.right, markLeft: parseFloat(mark.left), itemWidth: tick.width,
                arrow: getComputedStyle(button, '::after').content,
                caption: caption.textAlign,
              };
            }"""
        )
    return measured


def test_a_page_written_right_to_left_is_laid_out_right_to_left() -> None:
    """The theme's physical sides (border-left, padding-left, left: 0) kept
    an Arabic page's quote bar, list indent and check marks on the left,
    and its buttons' arrows pointing back."""
    rtl = laid_out("ar")
    assert (rtl["quoteRight"], rtl["quoteLeft"]) == ("3px", "0px"), rtl
    assert rtl["listRight"] != "0px", rtl
    assert rtl["itemRight"] == "28px" and rtl["markRight"] == "0px", rtl
    assert rtl["markLeft"] > rtl["itemWidth"] / 2, rtl  # right of the text
    assert rtl["arrow"] == '"←"', rtl
    assert rtl["caption"] == "start", rtl
    ltr = laid_out("en")
    assert (ltr["quoteLeft"], ltr["quoteRight"]) == ("3px", "0px"), ltr
    assert ltr["markLeft"] == 0 and ltr["arrow"] == '"→"', ltr
