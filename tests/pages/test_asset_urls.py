"""Which addresses under /assets/ a page names that no upload can be."""

from __future__ import annotations

from landform.pages.asset_urls import assets_that_cannot_be

SITE = "https://pages.example.com"
KEY = "a" * 64 + ".png"


def named(*texts: str) -> set[str]:
    content = {"blocks": [{"type": "html", "html": text} for text in texts]}
    return assets_that_cannot_be(content, {"og_image": None}, SITE)


def test_only_the_pages_own_site_and_only_names_no_upload_has() -> None:
    assert named(
        '<img src="/assets/logo.png">',
        '<a href="https://PAGES.example.com/assets/deck.pdf#p2">deck</a>',
        '<img src="a/../../assets/photo.webp">',
        "/assets/%6Cogo2.png?v=1",
    ) == {"/assets/logo.png", "/assets/deck.pdf", "/assets/photo.webp", "/assets/logo2.png"}
    # Another site's, an upload's own name (judged by whose it is, elsewhere),
    # the folder itself, and what is no address: none of them.
    assert not named(
        '<img src="https://cdn.example.com/assets/logo.png">',
        f'<img src="/assets/{KEY}"> <img src="{SITE}/assets/{KEY.upper()}">',
        "Uploads live under /assets/ on the server.",
        "mailto:me@example.com/assets/x data:image/png;base64,/assets/x",
        "http://[::1/assets/x.png",
    )
