"""Landing pages over HTTP: drafts, versions, slugs, publishing, owner scoping."""

from __future__ import annotations

import asyncio
import gzip
import uuid
from typing import Any

import brotli
import httpx
import pytest

from landform.pages import repository
from landform.pages.models import LandingPage
from tests.conftest import assert_error, signed_in


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("title", "Launch week")
    response = await client.post("/landing-pages", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


HERO = {"type": "hero", "headline": "Ship faster", "subheadline": "The best launch of the year"}


async def test_create_from_template_copies_its_blocks(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    template = (await client.get("/templates/saas-launch")).json()
    page = await create(client, ada, title="My SaaS", template_id="saas-launch")
    assert page["slug"] == "my-saas"
    assert page["status"] == "draft" and page["version"] == 1
    assert page["template_id"] == "saas-launch"
    assert page["content"]["blocks"] == template["blocks"]
    assert page["url"] == "http://testserver/my-saas"


async def test_unknown_template_is_404(client: httpx.AsyncClient, ada: dict[str, str]) -> None:
    response = await client.post(
        "/landing-pages", json={"title": "x", "template_id": "nope"}, headers=ada
    )
    assert_error(response, 404, "template_not_found")
    empty = await client.post("/landing-pages", json={"title": "x", "template_id": ""}, headers=ada)
    assert assert_error(empty, 422, "validation_failed")["details"][0]["path"] == "template_id"


async def test_slug_made_from_title_is_unique(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    first = await create(client, ada, title="Spring Sale!")
    second = await create(client, ada, title="Spring sale")
    third = await create(client, ada, title="Ünïcode Spring — Sale")
    assert [first["slug"], second["slug"], third["slug"]] == [
        "spring-sale",
        "spring-sale-2",
        "unicode-spring-sale",
    ]
    # Letters NFKD does not take apart are spelled out, not dropped.
    for title, slug in (
        ("Große Straße für Sie", "grosse-strasse-fur-sie"),
        ("Smørrebrød & Æble", "smorrebrod-aeble"),
        ("Łódź Œuvre", "lodz-oeuvre"),
        # Other scripts are spelled out too (every such title had been "page").
        ("Привет мир", "privet-mir"),
        ("Ελληνικά νέα", "ellinika-nea"),
        ("日本語のページ", "ribenyunopeji"),
        # A symbol is no word of the title.
        ("Launch 🚀 day", "launch-day"),
    ):
        assert (await create(client, ada, title=title))["slug"] == slug


async def test_a_slug_made_from_the_title_and_taken_meanwhile_is_made_again(
    client: httpx.AsyncClient, ada: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers creating "Race title" at once both see the slug free; the
    one that commits second is given the next one, not a 409 about a slug
    it never chose."""
    first = await create(client, ada, title="Race title")
    slugs_like = repository.slugs_like
    calls = 0

    async def stale_once(session: Any, base: str) -> set[str]:
        nonlocal calls
        calls += 1
        return set() if calls == 1 else await slugs_like(session, base)

    monkeypatch.setattr(repository, "slugs_like", stale_once)
    second = await create(client, ada, title="Race title")
    assert (first["slug"], second["slug"], calls) == ("race-title", "race-title-2", 2)

    chosen = await client.post(
        "/landing-pages", json={"title": "Mine", "slug": "race-title"}, headers=ada
    )
    assert_error(chosen, 409, "slug_taken")


@pytest.mark.parametrize(
    "slug", ["pricing", "about", "contact", "signup", "blog", "terms", "privacy", "home", "help"]
)
async def test_the_words_a_marketing_site_is_made_of_are_free_slugs(
    client: httpx.AsyncClient, ada: dict[str, str], slug: str
) -> None:
    page = await client.post("/landing-pages", json={"title": "x", "slug": slug}, headers=ada)
    assert page.status_code == 201, page.text
    missing = await client.get(f"/{slug}")  # not published yet: the visitor's 404 page
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    await client.post(f"/landing-pages/{page.json()['id']}/publish", headers=ada)
    assert (await client.get(f"/{slug}")).status_code == 200


@pytest.mark.parametrize(
    "slug",
    [
        "auth",
        "landing-pages",
        "templates",
        "assets",
        "analytics",
        "graphql",
        "metrics",
        "healthz",
        "docs",
        "openapi.json",
        "robots.txt",
        "sitemap.xml",
        "admin",
        "api",
        "static",
        "ws",
        "ops",
    ],
)
async def test_reserved_slugs_are_refused(
    client: httpx.AsyncClient, ada: dict[str, str], slug: str
) -> None:
    response = await client.post("/landing-pages", json={"title": "x", "slug": slug}, headers=ada)
    error = assert_error(response, 422, "slug_reserved")
    assert error["details"][0]["path"] == "slug"
    assert "is reserved for Landform's own paths" in error["message"]


@pytest.mark.parametrize(
    "slug",
    [
        "",
        "UPPER",
        "has space",
        "-lead",
        "trail-",
        "a" * 65,
        "dots.dots",
        "ünï",
        "../etc",
        "a/b",
        "<script>",
    ],
)
async def test_malformed_slugs_are_refused(
    client: httpx.AsyncClient, ada: dict[str, str], slug: str
) -> None:
    response = await client.post("/landing-pages", json={"title": "x", "slug": slug}, headers=ada)
    assert_error(response, 422, "slug_invalid")


async def test_duplicate_slug_is_409_even_across_users(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    await create(client, ada, slug="launch")
    response = await client.post(
        "/landing-pages", json={"title": "x", "slug": "launch"}, headers=bob
    )
    assert_error(response, 409, "slug_taken")
    other = await create(client, bob, slug="other")
    moved = await client.put(f"/landing-pages/{other['id']}", json={"slug": "launch"}, headers=bob)
    assert_error(moved, 409, "slug_taken")


async def test_update_title_slug_and_seo(client: httpx.AsyncClient, ada: dict[str, str]) -> None:
    page = await create(client, ada)
    response = await client.put(
        f"/landing-pages/{page['id']}",
        json={
            "title": "New title",
            "slug": "new-slug",
            "seo": {
                "meta_title": "Meta",
                "meta_description": "Desc",
                "og_image": "https://cdn.example.com/og.png",
                "canonical_url": "https://example.com/launch",
                "noindex": True,
            },
        },
        headers=ada,
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["title"], body["slug"], body["version"]) == ("New title", "new-slug", 2)
    assert body["seo"]["noindex"] is True and body["seo"]["meta_title"] == "Meta"
    assert response.headers["ETag"] == '"2"'


async def test_seo_fields_left_out_stay_as_they_are(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada)
    url = f"/landing-pages/{page['id']}"
    first = {"noindex": True, "meta_description": "Desc", "canonical_url": "https://example.com/c"}
    await client.put(url, json={"seo": first}, headers=ada)
    response = await client.put(url, json={"seo": {"meta_title": "New title"}}, headers=ada)
    assert response.status_code == 200, response.text
    expected = {**first, "meta_title": "New title", "og_image": None, "language": "en"}
    assert response.json()["seo"] == expected
    cleared = await client.put(url, json={"seo": {"canonical_url": None}}, headers=ada)
    assert cleared.json()["seo"]["canonical_url"] is None
    assert cleared.json()["seo"]["noindex"] is True


async def test_seo_urls_are_validated(client: httpx.AsyncClient, ada: dict[str, str]) -> None:
    page = await create(client, ada)
    response = await client.put(
        f"/landing-pages/{page['id']}",
        json={"seo": {"og_image": "javascript:alert(1)"}},
        headers=ada,
    )
    error = assert_error(response, 422, "validation_failed")
    assert error["details"][0]["path"] == "seo.og_image"
    # null for what a page always has: refused, not taken for "unchanged".
    for name in ("title", "slug", "seo"):
        error = assert_error(
            await client.put(f"/landing-pages/{page['id']}", json={name: None}, headers=ada), 422
        )
        assert error["details"][0]["path"] == name
        assert "may not be null" in error["message"]
    # ... and the published schema does not offer it (generated clients would).
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["PageUpdate"]
    for name in ("title", "slug", "seo"):
        assert "null" not in str(schema["properties"][name]), schema["properties"][name]
    # No object where one belongs: said in JSON's words, not pydantic's.
    for body in ({"seo": "x"}, {"seo": [1]}):
        error = assert_error(
            await client.put(f"/landing-pages/{page['id']}", json=body, headers=ada), 422
        )
        assert error["details"] == [{"path": "seo", "message": "Input should be a JSON object"}]
    # A canonical address is a whole one: search engines take no other.
    # An upload that is no image, in an image's place: said at once.
    pdf = "/assets/" + "a" * 64 + ".pdf"
    answer = await client.put(
        f"/landing-pages/{page['id']}", json={"seo": {"og_image": pdf}}, headers=ada
    )
    error = assert_error(answer, 422, "validation_failed")
    assert error["details"][0]["path"] == "seo.og_image"
    assert "is a document upload, not an image" in error["message"]
    blocks = [{"type": "image", "url": "/assets/" + "b" * 64 + ".mp4", "alt": "v"}]
    error = assert_error(
        await client.put(
            f"/landing-pages/{page['id']}/content", json={"blocks": blocks}, headers=ada
        ),
        422,
    )
    assert error["details"][0]["path"] == "blocks[0].url"
    assert "is a video upload, not an image" in error["message"]
    for canonical in ("/other-page", "mailto:a@b.c", "tel:123", "#frag"):
        refused = await client.put(
            f"/landing-pages/{page['id']}", json={"seo": {"canonical_url": canonical}}, headers=ada
        )
        error = assert_error(refused, 422, "validation_failed")
        assert error["details"][0]["path"] == "seo.canonical_url", canonical


async def test_an_svg_is_no_link_preview_image(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    """Social networks show no SVG preview: an og:image that is one (an
    uploaded SVG's name ends .svg too) is refused when saved, and a draft
    that holds one from before is refused when published, naming it."""
    page = await create(client, ada)
    url = f"/landing-pages/{page['id']}"
    for svg in ("/assets/" + "c" * 64 + ".svg", "https://cdn.example.com/card.SVG?v=1"):
        answer = await client.put(url, json={"seo": {"og_image": svg}}, headers=ada)
        error = assert_error(answer, 422, "validation_failed")
        assert error["details"][0]["path"] == "seo.og_image", svg
        assert "PNG, JPEG, WebP or GIF" in error["details"][0]["message"]
    assert (await client.get(url, headers=ada)).json()["seo"]["og_image"] is None
    png = {"seo": {"og_image": "https://cdn.example.com/card.png"}}
    assert (await client.put(url, json=png, headers=ada)).is_success
    # Saved before the rule: it still reads, and is refused going live.
    async with app.components.db.write() as session:
        stored = await session.get(LandingPage, uuid.UUID(page["id"]))
        stored.seo = {**stored.seo, "og_image": "https://cdn.example.com/card.svg"}
        stored.version += 1
    assert (await client.get(url, headers=ada)).is_success
    error = assert_error(await client.post(f"{url}/publish", headers=ada), 422)
    assert error["details"] == [{"path": "seo.og_image", "message": error["details"][0]["message"]}]
    assert "PNG, JPEG, WebP or GIF" in error["message"]


async def test_content_validation_names_the_path(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada)
    blocks = [
        HERO,
        {"type": "heading", "text": "Why"},
        {"type": "spacer"},
        {"type": "features", "items": [{"title": "Fast"}, {"title": ""}]},
    ]
    response = await client.put(
        f"/landing-pages/{page['id']}/content", json={"blocks": blocks}, headers=ada
    )
    error = assert_error(response, 422, "validation_failed")
    assert error["details"][0]["path"] == "blocks[3].items[1].title"

    unknown = await client.put(
        f"/landing-pages/{page['id']}/content",
        json={"blocks": [{"type": "marquee", "text": "x"}]},
        headers=ada,
    )
    assert_error(unknown, 422)

    nested = await client.put(
        f"/landing-pages/{page['id']}/content",
        json={
            "blocks": [
                {
                    "type": "columns",
                    "columns": [
                        {"blocks": [{"type": "cta", "label": "Go", "url": "javascript:x"}]},
                        {"blocks": []},
                    ],
                }
            ]
        },
        headers=ada,
    )
    error = assert_error(nested, 422)
    assert error["details"][0]["path"] == "blocks[0].columns[0].blocks[0].url"
    # A number or a yes/no is one, not a string or another type standing in
    # for it (as everywhere else in the API: versions, widths, limits).
    image = {"type": "image", "url": "https://e.com/a.png", "alt": "a"}
    plan = {"name": "P", "price": "1"}
    for body, path in [
        ({"blocks": [{"type": "heading", "text": "h", "level": True}]}, "blocks[0].level"),
        ({"blocks": [{**image, "width": "10"}]}, "blocks[0].width"),
        ({"blocks": [{**image, "height": True}]}, "blocks[0].height"),
        (
            {"blocks": [{"type": "pricing", "plans": [{**plan, "highlighted": 1}]}]},
            "blocks[0].plans[0].highlighted",
        ),
        ({"blocks": [], "schema_version": True}, "schema_version"),
        # A pricing plan's "features" is a field, not the features block's tag.
        (
            {"blocks": [{"type": "pricing", "plans": [{**plan, "features": ["f", "x" * 501]}]}]},
            "blocks[0].plans[0].features[1]",
        ),
        (
            {"blocks": [{"type": "pricing", "plans": [{**plan, "features": ["f"] * 31}]}]},
            "blocks[0].plans[0].features",
        ),
        # Read by browsers as "//evil.com": another site, not a path.
        (
            {"blocks": [{"type": "cta", "label": "Go", "url": "/\\evil.com"}]},
            "blocks[0].url",
        ),
        # A video's refused address names the field, not the whole block.
        (
            {"blocks": [{"type": "video", "url": "https://dailymotion.com/v/1", "title": "t"}]},
            "blocks[0].url",
        ),
    ]:
        lax = await client.put(f"/landing-pages/{page['id']}/content", json=body, headers=ada)
        error = assert_error(lax, 422, "validation_failed")
        assert [d["path"] for d in error["details"]] == [path], body
    seo = await client.put(
        f"/landing-pages/{page['id']}", json={"seo": {"noindex": "yes"}}, headers=ada
    )
    assert [d["path"] for d in assert_error(seo, 422)["details"]] == ["seo.noindex"]
    # Nothing was written.
    current = (await client.get(f"/landing-pages/{page['id']}", headers=ada)).json()
    assert current["version"] == 1 and current["content"]["blocks"] == []


@pytest.mark.parametrize(
    ("blocks", "path", "said"),
    [
        (
            [{"type": "cta", "id": "signup", "label": "A", "url": "#signup"}] * 2,
            "blocks[1].id",
            "already another element's id",
        ),
        (
            [
                {"type": "heading", "text": "Plans", "id": "plans"},
                {
                    "type": "columns",
                    "columns": [
                        {"blocks": []},
                        {"blocks": [{"type": "heading", "text": "Again", "id": "plans"}]},
                    ],
                },
            ],
            "blocks[1].columns[1].blocks[0].id",
            "already another element's id",
        ),
        ([{"type": "heading", "text": "Top", "id": "main"}], "blocks[0].id", "the page's own"),
        # Ids in an HTML block's elements are the page's too.
        ([{"type": "html", "html": "<div id='main'>x</div>"}], "blocks[0].html", "the page's own"),
        (
            [
                {"type": "cta", "id": "signup", "label": "A", "url": "#signup"},
                {"type": "html", "html": '<p id="signup">Sign up below</p>'},
            ],
            "blocks[1].html",
            "already another element's id",
        ),
    ],
)
async def test_a_block_id_is_an_anchor_used_once(
    client: httpx.AsyncClient,
    ada: dict[str, str],
    blocks: list[dict[str, Any]],
    path: str,
    said: str,
) -> None:
    page = await create(client, ada)
    response = await client.put(
        f"/landing-pages/{page['id']}/content", json={"blocks": blocks}, headers=ada
    )
    detail = assert_error(response, 422, "validation_failed")["details"][0]
    assert detail["path"] == path and said in detail["message"]


async def test_video_only_from_allowed_providers(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada)
    ok = await client.put(
        f"/landing-pages/{page['id']}/content",
        json={
            "blocks": [
                {
                    "type": "video",
                    "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
                    "title": "Demo",
                }
            ]
        },
        headers=ada,
    )
    assert ok.status_code == 200
    bad = await client.put(
        f"/landing-pages/{page['id']}/content",
        json={
            "blocks": [
                {"type": "video", "url": "https://evil.example.com/embed/1", "title": "Demo"}
            ]
        },
        headers=ada,
    )
    error = assert_error(bad, 422)
    assert "provider" in error["message"]


async def test_stale_writes_overwrite_nothing(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    page = await create(client, ada)
    url = f"/landing-pages/{page['id']}"
    assert (
        await client.put(f"{url}/content", json={"blocks": [HERO], "version": 1}, headers=ada)
    ).status_code == 200

    stale_body = await client.put(f"{url}/content", json={"blocks": [], "version": 1}, headers=ada)
    error = assert_error(stale_body, 409, "version_conflict")
    assert error["details"]["current_version"] == 2

    stale_header = await client.put(
        url, json={"title": "Overwrite"}, headers={**ada, "If-Match": '"1"'}
    )
    assert_error(stale_header, 412, "version_conflict")

    bad_header = await client.put(url, json={"title": "x"}, headers={**ada, "If-Match": "banana"})
    assert_error(bad_header, 400, "invalid_if_match")
    # Numbers no version can be (the database's are 32-bit), and other types.
    # 4,301 digits: more than Python reads as a number at all.
    longest = f'"{"9" * 4301}"'
    for header in ('"9999999999999999999999999"', longest, '"0"', '"²"'.encode("latin-1")):
        for write in (
            client.put(url, json={"title": "x"}, headers={**ada, "If-Match": header}),
            client.post(f"{url}/publish", headers={**ada, "If-Match": header}),
            client.delete(url, headers={**ada, "If-Match": header}),
        ):
            assert_error(await write, 400, "invalid_if_match")
    # Two versions that disagree: neither is taken on trust.
    current_version = (await client.get(url, headers=ada)).json()["version"]
    both = await client.put(
        url,
        json={"title": "x", "version": 1},
        headers={**ada, "If-Match": f'"{current_version}"'},
    )
    assert "send one of them" in assert_error(both, 400, "invalid_if_match")["message"]
    for version in (2**70, -(2**63) - 1, 0, 2**31, "2", True):
        for write in (
            client.put(url, json={"title": "x", "version": version}, headers=ada),
            client.put(f"{url}/content", json={"blocks": [], "version": version}, headers=ada),
            client.post(f"{url}/unpublish", json={"version": version}, headers=ada),
        ):
            error = assert_error(await write, 422, "validation_failed")
            assert error["details"][0]["path"] == "version"

    stale_delete = await client.delete(url, headers={**ada, "If-Match": '"1"'})
    assert_error(stale_delete, 412)
    # RFC 9110's other forms: a list (any of them), and "*" (any version).
    stale_list = await client.put(
        url, json={"title": "x"}, headers={**ada, "If-Match": '"1", W/"3"'}
    )
    assert_error(stale_list, 412, "version_conflict")
    assert_error(
        await client.put(url, json={"title": "x"}, headers={**ada, "If-Match": '"1", banana'}),
        400,
        "invalid_if_match",
    )

    current = (await client.get(url, headers=ada)).json()
    assert (
        current["title"] == "Launch week"
        and current["content"]["blocks"][0]["headline"] == "Ship faster"
    )
    fresh = await client.put(url, json={"title": "Fresh"}, headers={**ada, "If-Match": '"1", "2"'})
    assert fresh.status_code == 200 and fresh.json()["version"] == 3
    # If-Match compares strongly: a weak tag matches nothing, even the
    # current version's (RFC 9110 13.1.1).
    for weak in ('W/"3"', '"9", W/"3"'):
        refused = await client.put(url, json={"title": "Weak"}, headers={**ada, "If-Match": weak})
        assert_error(refused, 412, "version_conflict")
    assert (await client.get(url, headers=ada)).json()["title"] == "Fresh"
    # An entity tag is quoted: a bare number is no tag at all.
    bare = await client.put(url, json={"title": "Bare"}, headers={**ada, "If-Match": "3"})
    assert_error(bare, 400, "invalid_if_match")
    # An editor polling with the version it holds gets no body back while
    # it is current (compared weakly, as If-None-Match is), the page when not.
    for held in ('"3"', 'W/"3"', '"1", "3"', "*"):
        unchanged = await client.get(url, headers={**ada, "If-None-Match": held})
        assert unchanged.status_code == 304 and unchanged.content == b"", held
        assert unchanged.headers["etag"] == '"3"'
    changed = await client.get(url, headers={**ada, "If-None-Match": '"2"'})
    assert changed.status_code == 200 and changed.json()["version"] == 3
    # Another account's page is invisible, validator or not.
    assert_error(await client.get(url, headers={**bob, "If-None-Match": "*"}), 404)
    anything = await client.put(url, json={"title": "Any"}, headers={**ada, "If-Match": "*"})
    assert anything.status_code == 200 and anything.json()["version"] == 4


async def test_list_paginates_filters_and_searches(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    for i in range(5):
        await create(client, ada, title=f"Ada page {i}")
    await create(client, ada, title="Summer 100% off_sale")
    await create(client, bob, title="Bob page")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/landing-pages", params=params, headers=ada)).json()
        seen += [p["title"] for p in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 6 and len(set(seen)) == 6 and "Bob page" not in seen
    assert seen[0] == "Summer 100% off_sale"  # newest first

    found = (await client.get("/landing-pages", params={"q": "100%"}, headers=ada)).json()["items"]
    assert [p["title"] for p in found] == ["Summer 100% off_sale"]
    await create(client, ada, title="Über uns — ÉTÉ")
    for query in ("über", "ÜBER", "été"):  # letters beyond ASCII, on SQLite too
        found = (await client.get("/landing-pages", params={"q": query}, headers=ada)).json()
        assert [p["title"] for p in found["items"]] == ["Über uns — ÉTÉ"], query
    assert (
        (await client.get("/landing-pages", params={"q": "_"}, headers=ada))
        .json()["items"][0]["title"]
        .startswith("Summer")
    )
    assert (await client.get("/landing-pages", params={"status": "published"}, headers=ada)).json()[
        "items"
    ] == []
    assert (
        len(
            (await client.get("/landing-pages", params={"status": "draft"}, headers=ada)).json()[
                "items"
            ]
        )
        == 7
    )

    bad_cursor = assert_error(
        await client.get("/landing-pages", params={"cursor": "!!!"}, headers=ada),
        422,
        "invalid_cursor",
    )
    assert bad_cursor["details"][0]["path"] == "query.cursor"  # as query errors are named
    assert_error(await client.get("/landing-pages", params={"limit": 1000}, headers=ada), 422)
    assert_error(await client.get("/landing-pages", params={"status": "deleted"}, headers=ada), 422)


async def test_unverified_user_builds_drafts_but_cannot_publish(
    client: httpx.AsyncClient, app: Any
) -> None:
    headers = await signed_in(client, app, "new@example.com", verified=False)
    page = await create(client, headers)
    ok = await client.put(
        f"/landing-pages/{page['id']}/content", json={"blocks": [HERO]}, headers=headers
    )
    assert ok.status_code == 200
    response = await client.post(f"/landing-pages/{page['id']}/publish", headers=headers)
    assert_error(response, 403, "email_not_verified")
    assert (await client.get(f"/{page['slug']}")).status_code == 404


async def test_publish_serves_rendered_page_and_drafts_stay_private(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada, slug="launch")
    url = f"/landing-pages/{page['id']}"
    assert (await client.get("/launch")).status_code == 404
    await client.put(f"{url}/content", json={"blocks": [HERO]}, headers=ada)
    published = await client.post(f"{url}/publish", headers=ada)
    assert published.status_code == 200
    body = published.json()
    assert body["status"] == "published" and body["published_version"] == 1
    assert body["has_unpublished_changes"] is False

    public = await client.get("/launch")
    assert public.status_code == 200
    assert public.headers["content-type"] == "text/html; charset=utf-8"
    assert "Ship faster" in public.text and public.text.lower().startswith("<!doctype html>")

    # Editing the draft changes nothing for visitors until the next publish.
    edited = await client.put(
        f"{url}/content", json={"blocks": [{**HERO, "headline": "Draft only"}]}, headers=ada
    )
    assert edited.json()["has_unpublished_changes"] is True
    again = await client.get("/launch")
    assert "Ship faster" in again.text and "Draft only" not in again.text

    await client.post(f"{url}/publish", headers=ada)
    assert "Draft only" in (await client.get("/launch")).text


async def test_public_page_headers_etag_and_encodings(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada, slug="launch", template_id="saas-launch")
    await client.post(f"/landing-pages/{page['id']}/publish", headers=ada)

    plain = await client.get("/launch", headers={"Accept-Encoding": "identity"})
    etag = plain.headers["etag"]
    # Weak: one tag for the three encodings of the same document.
    assert etag.startswith('W/"')
    assert "content-encoding" not in plain.headers
    cache = plain.headers["cache-control"]
    assert "max-age=" in cache and "s-maxage=" in cache and "stale-while-revalidate=" in cache
    assert "stale-if-error=" in cache
    owner = (await client.get("/auth/me", headers=ada)).json()["id"]
    # A CDN can purge by page or by owner (Surrogate-Key; Cloudflare's Cache-Tag).
    assert plain.headers["surrogate-key"] == f"page-{page['id']} owner-{owner}"
    assert plain.headers["cache-tag"] == f"page-{page['id']},owner-{owner}"
    assert plain.headers["vary"] == "Accept-Encoding"
    assert plain.headers["x-content-type-options"] == "nosniff"
    assert plain.headers["referrer-policy"]
    csp = plain.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp

    gz = await client.get("/launch", headers={"Accept-Encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip"
    assert gz.content == plain.content  # httpx decodes; same document
    raw_gz = await client.send(
        client.build_request("GET", "/launch", headers={"Accept-Encoding": "gzip"}), stream=True
    )
    compressed = b"".join([chunk async for chunk in raw_gz.aiter_raw()])
    assert int(raw_gz.headers["content-length"]) == len(compressed) < len(plain.content)
    assert gzip.decompress(compressed) == plain.content

    br = await client.send(
        client.build_request("GET", "/launch", headers={"Accept-Encoding": "gzip, br"}), stream=True
    )
    assert br.headers["content-encoding"] == "br"
    compressed = b"".join([chunk async for chunk in br.aiter_raw()])
    assert brotli.decompress(compressed) == plain.content
    assert br.headers["etag"] == etag

    refused = await client.get("/launch", headers={"Accept-Encoding": "br;q=0, gzip"})
    assert refused.headers["content-encoding"] == "gzip"

    not_modified = await client.get("/launch", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    strong_form = await client.get("/launch", headers={"If-None-Match": etag.removeprefix("W/")})
    assert strong_form.status_code == 304
    other = await client.get("/launch", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200

    head = await client.head("/launch", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == plain.headers["content-length"]


async def test_unknown_and_unpublished_slugs_get_a_real_404_page(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    response = await client.get("/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower() and "noindex" in response.text

    page = await create(client, ada, slug="gone")
    url = f"/landing-pages/{page['id']}"
    published = (await client.post(f"{url}/publish", headers=ada)).json()
    assert published["published_at"] is not None
    assert (await client.get("/gone")).status_code == 200
    unpublished = await client.post(f"{url}/unpublish", headers=ada)
    # Not live: no live version, and no time it went live.
    assert unpublished.json()["status"] == "draft"
    assert unpublished.json()["published_version"] is None
    assert unpublished.json()["published_at"] is None
    listed = (await client.get("/landing-pages", headers=ada)).json()["items"]
    assert [(p["id"], p["published_at"]) for p in listed] == [(page["id"], None)]
    assert (await client.get("/gone")).status_code == 404


@pytest.mark.parametrize(
    ("loose", "canonical"),
    [
        ("/Spring-Launch", "/spring-launch"),
        ("/spring-launch/", "/spring-launch"),
        ("/SPRING-LAUNCH/?utm_source=flyer", "/spring-launch?utm_source=flyer"),
    ],
)
async def test_a_page_url_written_loosely_redirects_to_the_page(
    client: httpx.AsyncClient, ada: dict[str, str], loose: str, canonical: str
) -> None:
    page = await create(client, ada, slug="spring-launch")
    await client.post(f"/landing-pages/{page['id']}/publish", headers=ada)
    for method in ("GET", "HEAD"):
        moved = await client.request(method, loose)
        assert moved.status_code == 301
        assert moved.headers["location"] == canonical
    assert (await client.get(loose, follow_redirects=True)).status_code == 200


async def test_only_page_urls_are_redirected(client: httpx.AsyncClient) -> None:
    """API paths keep their own answers; a path no page could have is a 404."""
    for path in ("/Templates", "/a/b/", "/-x-/", "/caf%C3%A9/"):
        answer = await client.get(path)
        assert answer.status_code == 404, path
        assert_error(answer, 404)


async def test_a_browser_at_an_address_no_page_could_have_gets_the_404_page(
    client: httpx.AsyncClient,
) -> None:
    """A mistyped link a visitor follows (``/spring_sale``, ``/spring/sale``)
    shows the visitors' 404 page, not the API's JSON; a script asking for
    JSON, and the API's own paths, keep the error shape."""
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("/spring_sale", "/spring/sale", "/spring.html", "//spring"):
        page = await client.get(path, headers=browser)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html"), path
        assert "<html" in page.text and "content-security-policy" in page.headers
        assert_error(await client.get(path), 404)
    for api_path in ("/landing-pages/x/y/z", "/ops/nothing", "/auth/nothing"):
        assert_error(await client.get(api_path, headers=browser), 404)


async def test_versions_and_restore(client: httpx.AsyncClient, ada: dict[str, str]) -> None:
    page = await create(client, ada, slug="versions")
    url = f"/landing-pages/{page['id']}"
    await client.put(
        f"{url}/content", json={"blocks": [{**HERO, "headline": "First"}]}, headers=ada
    )
    await client.post(f"{url}/publish", headers=ada)
    await client.put(
        f"{url}/content", json={"blocks": [{**HERO, "headline": "Second"}]}, headers=ada
    )
    await client.post(f"{url}/publish", headers=ada)

    versions = (await client.get(f"{url}/versions", headers=ada)).json()["items"]
    assert [(v["number"], v["is_live"]) for v in versions] == [(2, True), (1, False)]

    restored = await client.post(f"{url}/versions/1/restore", headers=ada)
    assert restored.status_code == 200
    assert restored.json()["content"]["blocks"][0]["headline"] == "First"
    assert "Second" in (await client.get("/versions")).text  # not live until published
    await client.post(f"{url}/publish", headers=ada)
    assert "First" in (await client.get("/versions")).text
    assert len((await client.get(f"{url}/versions", headers=ada)).json()["items"]) == 3

    assert_error(
        await client.post(f"{url}/versions/99/restore", headers=ada), 404, "version_not_found"
    )
    assert_error(await client.post(f"{url}/versions/0/restore", headers=ada), 422)
    # Numbers past any version, as reading one: no such version (not a 422).
    assert_error(
        await client.post(f"{url}/versions/2000000/restore", headers=ada), 404, "version_not_found"
    )
    # Edits undone by restoring the live version: nothing left to publish.
    live = (await client.get(url, headers=ada)).json()
    edited = (await client.put(url, json={"title": "Edited"}, headers=ada)).json()
    assert edited["has_unpublished_changes"] is True
    undone = (await client.post(f"{url}/versions/3/restore", headers=ada)).json()
    assert (undone["title"], undone["has_unpublished_changes"]) == (live["title"], False)
    republished = (await client.post(f"{url}/publish", headers=ada)).json()
    assert republished["published_version"] == 3  # no copy of it as version 4
    # The live version restored over a draft that is already it: no change,
    # no new version, nothing left to publish.
    live = (await client.get(url, headers=ada)).json()
    assert live["has_unpublished_changes"] is False
    again = (await client.post(f"{url}/versions/3/restore", headers=ada)).json()
    assert (again["version"], again["has_unpublished_changes"]) == (live["version"], False)


async def test_slug_change_moves_the_live_page(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada, slug="old-name")
    url = f"/landing-pages/{page['id']}"
    await client.post(f"{url}/publish", headers=ada)
    assert (await client.get("/old-name")).status_code == 200
    before = await client.get("/old-name")
    await client.put(url, json={"slug": "new-name", "title": "Draft title"}, headers=ada)
    old = await client.get("/old-name")  # sent on (links already out keep working)
    assert (old.status_code, old.headers["location"]) == (301, "/new-name")
    moved = await client.get("/new-name")
    assert moved.status_code == 200
    # It says where it now lives (canonical link, og:url) and shows what
    # was live, not the draft's new title; its ETag changed with its bytes.
    assert 'rel="canonical" href="http://testserver/new-name"' in moved.text
    assert "/old-name" not in moved.text and "Draft title" not in moved.text
    assert moved.headers["etag"] != before.headers["etag"]
    # A new live version; the one it replaces keeps where it was, as history.
    versions = (await client.get(f"{url}/versions", headers=ada)).json()["items"]
    assert sorted((v["number"], v["slug"]) for v in versions) == [(1, "old-name"), (2, "new-name")]
    current = (await client.get(url, headers=ada)).json()
    assert current["published_version"] == 2
    assert current["has_unpublished_changes"] is True  # the new title is not live


async def test_a_live_pages_old_address_sends_visitors_on_until_it_is_taken(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    """Links already out (ads, mail, print) keep working after a move: a
    301 to where the page lives now, query (UTM) kept, no chains; gone once
    another page of its owner takes the address (another account's may
    not), or while the page is down."""
    page = await create(client, ada, slug="spring")
    url = f"/landing-pages/{page['id']}"
    await client.post(f"{url}/publish", headers=ada)
    await client.put(url, json={"slug": "spring-sale"}, headers=ada)
    moved = await client.get("/spring?utm_source=mail")
    assert moved.status_code == 301
    assert moved.headers["location"] == "/spring-sale?utm_source=mail"
    # Kept no longer than the page (a move undone must not loop a browser).
    assert moved.headers["cache-control"] == "public, max-age=60, s-maxage=300"
    assert (await client.head("/spring")).status_code == 301
    # Moved again: both old addresses lead straight to the newest.
    await client.put(url, json={"slug": "spring-2026"}, headers=ada)
    for old in ("/spring", "/spring-sale"):
        assert (await client.get(old)).headers["location"] == "/spring-2026"
    # A made-up slug for a new page leaves the old addresses be.
    auto = (await client.post("/landing-pages", json={"title": "Spring"}, headers=ada)).json()
    assert auto["slug"] not in ("spring", "spring-sale")
    # Down: nowhere to send anyone; up again: sent on again.
    await client.post(f"{url}/unpublish", headers=ada)
    assert (await client.get("/spring")).status_code == 404
    await client.post(f"{url}/publish", headers=ada)
    assert (await client.get("/spring")).status_code == 301
    # Moved while down (its last live address too): all lead to it once up.
    await client.post(f"{url}/unpublish", headers=ada)
    await client.put(url, json={"slug": "spring-2027"}, headers=ada)
    await client.post(f"{url}/publish", headers=ada)
    for old in ("/spring", "/spring-sale", "/spring-2026"):
        assert (await client.get(old)).headers["location"] == "/spring-2027", old
    await client.put(url, json={"slug": "spring-2026"}, headers=ada)  # back, as before
    # Another account may not take an old address: it would take every
    # link ada shared to a page of its own (by a new page or a move).
    theirs = await client.post(
        "/landing-pages", json={"title": "Bob's", "slug": "spring"}, headers=bob
    )
    assert "another account's page" in assert_error(theirs, 409, "slug_taken")["message"]
    bobs = (await client.post("/landing-pages", json={"title": "Bob's"}, headers=bob)).json()
    moved_in = await client.put(
        f"/landing-pages/{bobs['id']}", json={"slug": "spring"}, headers=bob
    )
    assert_error(moved_in, 409, "slug_taken")
    # Ada's own new page may. Not live yet: the address goes on sending
    # visitors on, and a draft deleted takes nothing with it.
    mine = await client.post(
        "/landing-pages", json={"title": "Ada's other", "slug": "spring"}, headers=ada
    )
    assert mine.status_code == 201, mine.text
    assert (await client.get("/spring")).headers["location"] == "/spring-2026"
    await client.delete(f"/landing-pages/{mine.json()['id']}", headers=ada)
    assert (await client.get("/spring")).headers["location"] == "/spring-2026"
    mine = await client.post(
        "/landing-pages", json={"title": "Ada's other", "slug": "spring"}, headers=ada
    )
    await client.post(f"/landing-pages/{mine.json()['id']}/publish", headers=ada)
    assert "Ada&#39;s other" in (await client.get("/spring")).text
    # Moving back to an old address takes it too; deleting ends the rest.
    await client.put(url, json={"slug": "spring-sale"}, headers=ada)
    assert (await client.get("/spring-sale")).status_code == 200
    assert (await client.get("/spring-2026")).headers["location"] == "/spring-sale"
    await client.delete(url, headers=ada)
    for old in ("/spring-sale", "/spring-2026"):
        assert (await client.get(old)).status_code == 404


async def test_a_slug_move_alone_leaves_nothing_unpublished(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada, slug="here")
    url = f"/landing-pages/{page['id']}"
    await client.post(f"{url}/publish", headers=ada)
    moved = (await client.put(url, json={"slug": "there"}, headers=ada)).json()
    assert moved["has_unpublished_changes"] is False
    assert (await client.get("/there")).status_code == 200
    back = (await client.post(f"{url}/versions/1/restore", headers=ada)).json()
    assert back["slug"] == "there"  # a restore brings back content, not an old address


async def test_edits_undone_by_hand_leave_nothing_to_publish(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """As a restore of the live version does: the draft is what is live
    again, so nothing is unpublished, and a publish adds no copy of it."""
    page = await create(client, ada, slug="undo")
    url = f"/landing-pages/{page['id']}"
    live = (await client.post(f"{url}/publish", headers=ada)).json()
    blocks = (await client.get(url, headers=ada)).json()["content"]["blocks"]
    changed = [{"type": "hero", "headline": "Something else"}]
    edited = (await client.put(f"{url}/content", json={"blocks": changed}, headers=ada)).json()
    assert edited["has_unpublished_changes"] is True
    undone = (await client.put(f"{url}/content", json={"blocks": blocks}, headers=ada)).json()
    assert undone["has_unpublished_changes"] is False
    republished = (await client.post(f"{url}/publish", headers=ada)).json()
    assert republished["published_version"] == live["published_version"]
    # The title too.
    await client.put(url, json={"title": "Other"}, headers=ada)
    back = (await client.put(url, json={"title": page["title"]}, headers=ada)).json()
    assert back["has_unpublished_changes"] is False


async def test_delete_removes_the_page_and_its_public_url(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada, slug="bye")
    url = f"/landing-pages/{page['id']}"
    await client.post(f"{url}/publish", headers=ada)
    assert (await client.get("/bye")).status_code == 200
    assert (await client.delete(url, headers=ada)).status_code == 204
    assert (await client.get("/bye")).status_code == 404
    assert_error(await client.get(url, headers=ada), 404, "page_not_found")
    # The slug is free again.
    await create(client, ada, slug="bye")


async def test_other_users_pages_are_invisible_on_every_route(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    page = await create(client, ada, slug="adas-page", template_id="event")
    url = f"/landing-pages/{page['id']}"
    await client.post(f"{url}/publish", headers=ada)
    attempts = [
        ("GET", url, None),
        ("PUT", url, {"title": "pwned"}),
        ("PUT", f"{url}/content", {"blocks": []}),
        ("DELETE", url, None),
        ("POST", f"{url}/publish", None),
        ("POST", f"{url}/unpublish", None),
        ("GET", f"{url}/versions", None),
        ("POST", f"{url}/versions/1/restore", None),
    ]
    for method, path, body in attempts:
        response = await client.request(method, path, json=body, headers=bob)
        assert_error(response, 404, "page_not_found")
        anonymous = await client.request(method, path, json=body)
        assert anonymous.status_code == 401, (method, path)
    listed = (await client.get("/landing-pages", headers=bob)).json()["items"]
    assert listed == []
    # Nothing changed for Ada or for visitors.
    mine = (await client.get(url, headers=ada)).json()
    assert (
        mine["title"] == "Launch week"
        and mine["status"] == "published"
        and mine["version"] == page["version"] + 1
    )
    assert (await client.get("/adas-page")).status_code == 200


async def test_malformed_ids_and_bodies(client: httpx.AsyncClient, ada: dict[str, str]) -> None:
    assert_error(await client.get("/landing-pages/not-a-uuid", headers=ada), 422)
    assert_error(await client.post("/landing-pages", json={"title": ""}, headers=ada), 422)
    assert_error(
        await client.post("/landing-pages", json={"title": "x", "owner_id": "y"}, headers=ada), 422
    )
    assert_error(await client.post("/landing-pages", json={"title": "x" * 201}, headers=ada), 422)
    assert_error(
        await client.post(
            "/landing-pages", content=b"{", headers={**ada, "Content-Type": "application/json"}
        ),
        422,
    )
    page = await create(client, ada)
    too_many = {"blocks": [{"type": "spacer"}] * 201}
    assert_error(
        await client.put(f"/landing-pages/{page['id']}/content", json=too_many, headers=ada), 422
    )


async def test_robots_and_sitemap_list_indexable_published_pages(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    visible = await create(client, ada, slug="visible")
    hidden = await create(client, ada, slug="hidden")
    await create(client, ada, slug="draft-only")
    await client.put(f"/landing-pages/{hidden['id']}", json={"seo": {"noindex": True}}, headers=ada)
    for page in (visible, hidden):
        await client.post(f"/landing-pages/{page['id']}/publish", headers=ada)
    sitemap = await client.get("/sitemap.xml")
    assert sitemap.status_code == 200 and sitemap.headers["content-type"].startswith(
        "application/xml"
    )
    assert "http://testserver/visible" in sitemap.text
    assert "hidden" not in sitemap.text and "draft-only" not in sitemap.text
    # The newest, noindex, does not take the place of one that is listed.
    [(slug, _at)] = await app.components.pages.sitemap_entries(limit=1)
    assert slug == "visible"
    # A page that names another address as canonical is that one's copy.
    copy = await create(client, ada, slug="copy")
    elsewhere = {"seo": {"canonical_url": "https://www.example.com/real-page"}}
    await client.put(f"/landing-pages/{copy['id']}", json=elsewhere, headers=ada)
    itself = await create(client, ada, slug="itself")
    own = {"seo": {"canonical_url": "http://testserver/itself"}}
    await client.put(f"/landing-pages/{itself['id']}", json=own, headers=ada)
    for page in (copy, itself):
        assert (await client.post(f"/landing-pages/{page['id']}/publish", headers=ada)).is_success
    listed = (await client.get("/sitemap.xml")).text
    assert "http://testserver/itself" in listed and "http://testserver/copy" not in listed
    robots = await client.get("/robots.txt")
    assert "Sitemap: http://testserver/sitemap.xml" in robots.text
    # Crawlers and monitors ask with HEAD too.
    for path, answer in (("/robots.txt", robots), ("/sitemap.xml", sitemap)):
        head = await client.head(path)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == answer.headers["content-type"]
    hidden_page = await client.get("/hidden")
    assert '<meta name="robots" content="noindex' in hidden_page.text


async def test_blocks_schema_and_templates(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/blocks/schema")).json()
    text = str(schema)
    for block in (
        "hero",
        "heading",
        "rich_text",
        "image",
        "features",
        "testimonial",
        "pricing",
        "cta",
        "faq",
        "columns",
        "spacer",
        "video",
        "html",
        "form",
    ):
        assert f"'{block}'" in text, block
    templates = (await client.get("/templates")).json()
    assert len(templates) >= 8
    assert {"id", "name", "category", "description", "preview_url"} <= set(templates[0])
    preview = await client.get(templates[0]["preview_url"])
    assert preview.status_code == 200 and "<!doctype html>" in preview.text.lower()
    # No beacon (a preview's views are nobody's), and its canonical address
    # is its own, not the page someone could publish at the template's id.
    assert "<script" not in preview.text
    assert "script-src 'none'" in preview.headers["content-security-policy"]
    own = f'rel="canonical" href="http://testserver{templates[0]["preview_url"]}"'
    assert own in preview.text
    assert_error(await client.get("/templates/nope"), 404, "template_not_found")


async def test_nul_characters_are_refused_everywhere(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """PostgreSQL cannot store NUL in text or JSON: it must be a 422, not a crash."""
    page = await create(client, ada)
    # Each refusal names the field that held the NUL.
    attempts = [
        ("POST", "/landing-pages", {"title": "a\x00b"}, "title"),
        ("PUT", f"/landing-pages/{page['id']}", {"seo": {"meta_title": "x\x00"}}, "seo.meta_title"),
        (
            "PUT",
            f"/landing-pages/{page['id']}/content",
            {"blocks": [{**HERO, "headline": "\x00"}]},
            "blocks[0].headline",
        ),
        (
            "PUT",
            f"/landing-pages/{page['id']}/content",
            {
                "blocks": [
                    {
                        "type": "pricing",
                        "plans": [{"name": "P", "price": "1", "features": ["a\x00"]}],
                    }
                ]
            },
            "blocks[0].plans[0].features[0]",
        ),
        ("POST", "/auth/api-keys", {"name": "key\x00"}, "name"),
        ("POST", "/auth/login", {"email": "a\x00@example.com", "password": "x"}, "email"),
    ]
    for method, path, body, field in attempts:
        response = await client.request(method, path, json=body, headers=ada)
        error = assert_error(response, 422)
        assert [d["path"] for d in error["details"]] == [field], (path, error)
    assert_error(await client.get("/landing-pages", params={"q": "a\x00"}, headers=ada), 422)
    assert (await client.get(f"/landing-pages/{page['id']}", headers=ada)).json()["version"] == 1


async def test_control_characters_and_noncharacters_are_refused_naming_the_field(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """They would be parse errors in the published HTML, and ESC sequences
    reach logs and terminals: a 422 naming the field and the character.
    Tabs and line breaks are text; a password is opaque, held to NUL only."""
    page = await create(client, ada)
    url = f"/landing-pages/{page['id']}"
    attempts = [
        ("POST", "/landing-pages", {"title": "bell\x07"}, "title", "U+0007"),
        ("PUT", url, {"seo": {"meta_title": "esc\x1b[31m"}}, "seo.meta_title", "U+001B"),
        ("PUT", f"{url}/content", {"blocks": [{**HERO, "headline": "a\x85"}]},
         "blocks[0].headline", "U+0085"),
        ("PUT", f"{url}/content", {"blocks": [{**HERO, "headline": "\ufffe"}]},
         "blocks[0].headline", "U+FFFE"),
        ("PUT", f"{url}/content", {"blocks": [{"type": "html", "html": "<p>\x7f</p>"}]},
         "blocks[0].html", "U+007F"),
    ]  # fmt: skip
    for method, path, body, field, character in attempts:
        response = await client.request(method, path, json=body, headers=ada)
        error = assert_error(response, 422)
        assert [d["path"] for d in error["details"]] == [field], (path, error)
        assert character in error["message"], error
    assert (await client.get(url, headers=ada)).json()["version"] == 1
    fine = await client.put(url, json={"title": "Tab\there, line\nbreak\r\n 👍"}, headers=ada)
    assert fine.status_code == 200, fine.text
    registered = await client.post(
        "/auth/register", json={"email": "opaque@example.com", "password": "odd\x1bpass word"}
    )
    assert registered.status_code == 201, registered.text


async def test_lone_surrogates_are_refused_not_a_crash(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """``"\\ud800"`` is valid JSON but no Unicode text: it cannot be stored,
    hashed or even quoted back. A 422 naming the field, in a value or a key."""
    page = await create(client, ada)
    json_headers = {**ada, "Content-Type": "application/json"}
    attempts = [
        ("POST", "/landing-pages", b'{"title": "a\\ud800b"}', "title"),
        ("PUT", f"/landing-pages/{page['id']}", b'{"seo": {"meta_title": "\\udc00"}}', "seo"),
        (
            "POST",
            "/analytics/custom-query",
            b'{"metrics": ["views"], "filters": [{"dimension": "browser", "op": "eq",'
            b' "value": "\\ud800"}]}',
            "filters[0].value",
        ),
        # In a key: reported at its object.
        ("POST", "/analytics/custom-query", b'{"metrics": ["views"], "\\ud800": 1}', ""),
    ]
    for method, path, body, field in attempts:
        response = await client.request(method, path, content=body, headers=json_headers)
        error = assert_error(response, 422)
        paths = [d["path"] for d in error["details"]]
        assert any(found.startswith(field) for found in paths), (path, error)
    assert (await client.get(f"/landing-pages/{page['id']}", headers=ada)).json()["version"] == 1


async def test_an_edit_that_changes_nothing_is_no_new_version(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    created = await client.post(
        "/landing-pages", json={"title": "Calm", "slug": "calm"}, headers=ada
    )
    url = f"/landing-pages/{created.json()['id']}"
    published = (await client.post(f"{url}/publish", headers=ada)).json()
    assert published["has_unpublished_changes"] is False
    for body in ({}, {"title": "Calm"}, {"title": "Calm", "slug": "calm"}):
        same = await client.put(url, json=body, headers=ada)
        assert same.status_code == 200, same.text
        assert same.json()["version"] == published["version"], body
        assert same.json()["has_unpublished_changes"] is False, body
    # The same content saved again (an editor's autosave): no new version.
    content = (await client.get(url, headers=ada)).json()["content"]
    saved = await client.put(f"{url}/content", json=content, headers=ada)
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == published["version"]
    assert saved.json()["has_unpublished_changes"] is False
    changed = (await client.put(url, json={"title": "Calmer"}, headers=ada)).json()
    assert changed["version"] == published["version"] + 1
    assert changed["has_unpublished_changes"] is True


async def test_publishing_twice_at_once_is_no_conflict(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """A double click on Publish (no version stated): every click is told
    the page is live, none gets a conflict; a click that lands while
    another publishes the same draft adds no version of its own."""
    created = await client.post(
        "/landing-pages", json={"title": "Twice", "slug": "twice"}, headers=ada
    )
    url = f"/landing-pages/{created.json()['id']}"
    clicks = await asyncio.gather(*(client.post(f"{url}/publish", headers=ada) for _ in range(5)))
    assert [a.status_code for a in clicks] == [200] * 5, [a.text for a in clicks]
    versions = (await client.get(f"{url}/versions", headers=ada)).json()["items"]
    # One version per publish that rendered a draft no other publish had made live.
    assert len(versions) == len({a.json()["version"] for a in clicks})
    assert (await client.get("/twice")).status_code == 200
    # Clicks that state the version (in the body or If-Match) are told the
    # same once one of them made that version live (RFC 9110 13.1.1: the
    # change asked for has succeeded), and add one version between them.
    for stating in ("body", "if_match"):
        current = (await client.put(url, json={"title": f"By {stating}"}, headers=ada)).json()
        before = (await client.get(f"{url}/versions", headers=ada)).json()["items"]
        stated = await asyncio.gather(
            *(
                client.post(
                    f"{url}/publish",
                    json={"version": current["version"]} if stating == "body" else None,
                    headers={**ada, "If-Match": f'"{current["version"]}"'}
                    if stating == "if_match"
                    else ada,
                )
                for _ in range(3)
            )
        )
        assert [a.status_code for a in stated] == [200] * 3, [a.text for a in stated]
        after = (await client.get(f"{url}/versions", headers=ada)).json()["items"]
        assert len(after) == len(before) + 1
        assert after[0]["title"] == f"By {stating}"
    # One after the other (a click, then another a moment later, or a retry
    # whose answer was lost): the second is told it is done, too.
    for stating in ("body", "if_match"):
        current = (await client.put(url, json={"title": f"Then {stating}"}, headers=ada)).json()
        number = current["version"]
        for _ in range(2):
            again = await client.post(
                f"{url}/publish",
                json={"version": number} if stating == "body" else None,
                headers={**ada, "If-Match": f'"{number}"'} if stating == "if_match" else ada,
            )
            assert again.status_code == 200, again.text
            assert again.json()["version"] == number + 1
    # A version that is not the live one's is still held to: 409 in the
    # body, 412 as a precondition.
    live = (await client.get(url, headers=ada)).json()["version"]
    stale = await client.post(f"{url}/publish", json={"version": live - 2}, headers=ada)
    assert_error(stale, 409, "version_conflict")
    stale = await client.post(f"{url}/publish", headers={**ada, "If-Match": f'"{live - 2}"'})
    assert_error(stale, 412)
    # Nor when the page changed after that publish (here, a slug move).
    moved = (await client.put(url, json={"slug": "twice-moved"}, headers=ada)).json()
    assert moved["has_unpublished_changes"] is False
    stale = await client.post(f"{url}/publish", json={"version": live - 1}, headers=ada)
    assert_error(stale, 409, "version_conflict")


async def test_the_owner_previews_the_draft_and_reads_and_previews_versions(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    page = await create(client, ada, slug="preview-me")
    url = f"/landing-pages/{page['id']}"
    live = [{"type": "hero", "headline": "What visitors see"}]
    await client.put(f"{url}/content", json={"blocks": live}, headers=ada)
    await client.post(f"{url}/publish", headers=ada)
    draft = [{"type": "hero", "headline": "Not live yet"}]
    await client.put(f"{url}/content", json={"blocks": draft}, headers=ada)

    preview = await client.get(f"{url}/preview", headers=ada)
    assert preview.status_code == 200 and "Not live yet" in preview.text
    assert "What visitors see" not in preview.text
    assert "<script" not in preview.text  # the owner looking is no visit
    assert preview.headers["cache-control"] == "private, no-store"
    assert preview.headers["x-robots-tag"] == "noindex"
    assert "script-src 'none'" in preview.headers["content-security-policy"]
    assert "What visitors see" in (await client.get("/preview-me")).text

    version = await client.get(f"{url}/versions/1", headers=ada)
    assert version.status_code == 200
    body = version.json()
    assert (body["number"], body["slug"], body["is_live"]) == (1, "preview-me", True)
    assert body["content"]["blocks"][0]["headline"] == "What visitors see"
    shown = await client.get(f"{url}/versions/1/preview", headers=ada)
    assert "What visitors see" in shown.text and "Not live yet" not in shown.text

    assert_error(await client.get(f"{url}/versions/2", headers=ada), 404, "version_not_found")
    assert_error(await client.get(f"{url}/versions/2/preview", headers=ada), 404)
    for path in ("preview", "versions/1", "versions/1/preview"):
        assert_error(await client.get(f"{url}/{path}", headers=bob), 404)
        assert_error(await client.get(f"{url}/{path}"), 401)


async def test_versions_come_newest_first_a_page_at_a_time(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada, slug="many-versions")
    url = f"/landing-pages/{page['id']}"
    for n in range(5):
        await client.put(url, json={"title": f"Take {n}"}, headers=ada)
        assert (await client.post(f"{url}/publish", headers=ada)).status_code == 200
    seen: list[int] = []
    query = "?limit=2"
    while True:
        answer = (await client.get(f"{url}/versions{query}", headers=ada)).json()
        seen += [v["number"] for v in answer["items"]]
        if answer["next_before"] is None:
            break
        query = f"?limit=2&before={answer['next_before']}"
    assert seen == [5, 4, 3, 2, 1]
    for bad in ("?limit=0", "?limit=101", "?before=0", "?before=x"):
        assert_error(await client.get(f"{url}/versions{bad}", headers=ada), 422)


async def test_publishing_what_is_live_already_adds_no_version(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada, slug="live-once")
    url = f"/landing-pages/{page['id']}"
    first = (await client.post(f"{url}/publish", headers=ada)).json()
    again = await client.post(f"{url}/publish", headers=ada)
    assert again.status_code == 200
    assert again.json()["published_version"] == first["published_version"] == 1
    assert again.json()["version"] == first["version"]
    versions = (await client.get(f"{url}/versions", headers=ada)).json()["items"]
    assert len(versions) == 1


async def test_content_read_can_be_written_back_as_it_is(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada, slug="round-trip")
    url = f"/landing-pages/{page['id']}"
    blocks = [{"type": "hero", "headline": "Once"}]
    await client.put(f"{url}/content", json={"blocks": blocks}, headers=ada)
    read = (await client.get(url, headers=ada)).json()
    assert read["content"]["schema_version"] == 1
    written = await client.put(f"{url}/content", json=read["content"], headers=ada)
    assert written.status_code == 200, written.text
    assert written.json()["content"] == read["content"]
    future = {**read["content"], "schema_version": 2}
    refused = await client.put(f"{url}/content", json=future, headers=ada)
    assert assert_error(refused, 422)["details"][0]["path"] == "schema_version"


@pytest.mark.parametrize(
    ("block", "length"),
    [
        ({"type": "rich_text", "html": "<p>" + "R&D " * 12_000 + "</p>"}, 50_000),
        ({"type": "rich_text", "html": "<" * 50_000}, 50_000),
        ({"type": "html", "html": "<table>" * 10_000}, 100_000),
    ],
)
async def test_html_that_cleaning_lengthens_past_its_limit_is_refused_when_saved(
    client: httpx.AsyncClient, ada: dict[str, str], block: dict[str, str], length: int
) -> None:
    """Within the limit as sent, over it once escaped: refused at once, not
    stored to fail (a 500) when published."""
    assert len(block["html"]) <= length
    page = await create(client, ada)
    url = f"/landing-pages/{page['id']}"
    refused = await client.put(f"{url}/content", json={"blocks": [block]}, headers=ada)
    error = assert_error(refused, 422, "validation_failed")
    assert error["details"][0]["path"] == "blocks[0].html"
    assert "once made safe" in error["details"][0]["message"]

    fits = {"type": "rich_text", "html": "<p>" + "R&D " * 6_000 + "</p>"}  # 48,007 once escaped
    saved = await client.put(f"{url}/content", json={"blocks": [fits]}, headers=ada)
    assert saved.status_code == 200, saved.text
    published = await client.post(f"{url}/publish", headers=ada)
    assert published.status_code == 200, published.text
    again = await client.put(f"{url}/content", json=saved.json()["content"], headers=ada)
    assert again.status_code == 200, again.text


async def test_a_body_of_many_mistakes_is_answered_briefly(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    # 30,000 unknown keys (under the 1 MiB body limit): the first mistakes,
    # and how many more, not an answer several times the body's size.
    many = {f"k{i}": 1 for i in range(30_000)}
    refused = await client.post("/landing-pages", json={"title": "T", **many}, headers=ada)
    error = assert_error(refused, 422, "validation_failed")
    assert len(error["details"]) == 21 and error["details"][0]["path"] == "k0"
    assert error["details"][-1]["message"] == "and 29980 more errors not listed"
    assert len(refused.content) < 5_000
    # One key of 900 kB: named, cut short.
    page = await create(client, ada)
    key = "x" * 900_000
    refused = await client.put(f"/landing-pages/{page['id']}", json={key: 1}, headers=ada)
    error = assert_error(refused, 422, "validation_failed")
    assert error["details"][0]["path"].startswith("xxx") and len(refused.content) < 1_000
    assert (await client.get(f"/landing-pages/{page['id']}", headers=ada)).json()["version"] == 1


async def test_a_page_says_its_language(client: httpx.AsyncClient, ada: dict[str, str]) -> None:
    """Screen readers pronounce a page, and browsers offer to translate it,
    by its <html lang>: every page said "en"."""
    page = await create(client, ada, title="Über uns", slug="ueber-uns")
    url = f"/landing-pages/{page['id']}"
    assert (await client.get(url, headers=ada)).json()["seo"]["language"] == "en"
    for wrong in ("deutsch!", "d", "de_DE", "x" * 40):
        refused = await client.put(url, json={"seo": {"language": wrong}}, headers=ada)
        error = assert_error(refused, 422, "validation_failed")
        assert error["details"][0]["path"] == "seo.language", wrong
    said = await client.put(url, json={"seo": {"language": "de-CH"}}, headers=ada)
    assert said.status_code == 200 and said.json()["seo"]["language"] == "de-CH"
    assert (await client.post(f"{url}/publish", headers=ada)).status_code == 200
    assert '<html lang="de-CH">' in (await client.get("/ueber-uns")).text
    # A language written right to left runs the page that way (punctuation,
    # layout); a script subtag says it where the language is written in both.
    for language, direction in (
        ("he", ' dir="rtl"'),
        ("ar-EG", ' dir="rtl"'),
        ("az-Arab", ' dir="rtl"'),
        ("ks-Deva", ""),
        ("fr", ""),
    ):
        await client.put(url, json={"seo": {"language": language}}, headers=ada)
        await client.post(f"{url}/publish", headers=ada)
        live = (await client.get("/ueber-uns")).text
        assert f'<html lang="{language}"{direction}>' in live, language


async def test_theme_fields_left_out_of_a_content_save_keep_their_values(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada, slug="themed")
    url = f"/landing-pages/{page['id']}/content"
    full = {"accent": "#ff8800", "mode": "dark", "font": "serif"}
    saved = await client.put(url, json={"blocks": [], "theme": full}, headers=ada)
    assert saved.status_code == 200, saved.text
    partial = await client.put(url, json={"blocks": [], "theme": {"mode": "light"}}, headers=ada)
    assert partial.status_code == 200, partial.text
    assert partial.json()["content"]["theme"] == {**full, "mode": "light"}
    # No theme at all keeps it whole; a bad field is refused and changes nothing.
    kept = await client.put(url, json={"blocks": []}, headers=ada)
    assert kept.json()["content"]["theme"] == {**full, "mode": "light"}
    assert kept.json()["version"] == partial.json()["version"]
    bad = await client.put(url, json={"blocks": [], "theme": {"accent": "red"}}, headers=ada)
    assert_error(bad, 422)
    after = (await client.get(f"/landing-pages/{page['id']}", headers=ada)).json()
    assert after["content"]["theme"] == {**full, "mode": "light"}


async def test_a_pages_url_answers_other_methods_with_405(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada, slug="read-only")
    await client.post(f"/landing-pages/{page['id']}/publish", headers=ada)
    for method, path in (("POST", "/read-only"), ("PUT", "/read-only"), ("DELETE", "/no-page")):
        refused = await client.request(method, path, content=b"email=a%40b.c")
        assert_error(refused, 405, "method_not_allowed")
        assert refused.headers["allow"] == "GET, HEAD"
    assert (await client.get("/read-only")).status_code == 200
    # The API's own paths are no page's.
    created = await client.post("/landing-pages", json={"title": "x"}, headers=ada)
    assert created.status_code == 201


async def test_a_form_block_is_checked_field_by_field(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada, slug="form-checks")
    url = f"/landing-pages/{page['id']}/content"
    form = {
        "type": "form",
        "action": "https://lists.example.com/subscribe",
        "submit_label": "Join",
        "fields": [{"name": "EMAIL", "label": "Email", "type": "email", "required": True}],
    }
    saved = await client.put(url, json={"blocks": [form]}, headers=ada)
    assert saved.status_code == 200, saved.text
    assert saved.json()["content"]["blocks"][0]["hidden"] == {}
    field = form["fields"][0]  # type: ignore[index]
    refused = [
        ({"action": "http://lists.example.com/subscribe"}, "blocks[0].action", "https://"),
        ({"action": "javascript:alert(1)"}, "blocks[0].action", "URL must be"),
        ({"action": "https://me:pw@lists.example.com/"}, "blocks[0].action", "password"),
        ({"action": "/local"}, "blocks[0].action", "https://"),
        # Only a host: nothing else rides along (it once went into the CSP).
        ({"action": "https://a.com;frame-ancestors"}, "blocks[0].action", "name a host"),
        ({"action": "https://a.com,b.com/x"}, "blocks[0].action", "name a host"),
        ({"action": "https://*.example.com/x"}, "blocks[0].action", "name a host"),
        ({"action": "https://a.com:99999/x"}, "blocks[0].action", "name a host"),
        ({"action": "https://a..com/x"}, "blocks[0].action", "name a host"),
        ({"fields": []}, "blocks[0].fields", ""),
        ({"fields": [field] * 13}, "blocks[0].fields", ""),
        ({"fields": [field, field]}, "blocks[0].fields[1].name", "names another field"),
        ({"hidden": {"EMAIL": "x"}}, "blocks[0].fields[0].name", "names another field"),
        ({"fields": [{**field, "name": "bad name"}]}, "blocks[0].fields[0].name", ""),
        ({"fields": [{**field, "type": "password"}]}, "blocks[0].fields[0].type", ""),
        ({"hidden": {"<x>": "1"}}, "blocks[0].hidden.<x>.[key]", ""),
        ({"submit_label": " "}, "blocks[0].submit_label", ""),
    ]
    for change, path, words in refused:
        response = await client.put(url, json={"blocks": [{**form, **change}]}, headers=ada)
        error = assert_error(response, 422)
        assert path in [d["path"] for d in error["details"]], (change, error)
        assert words in str(error), (change, error)
    assert (await client.get(f"/landing-pages/{page['id']}", headers=ada)).json()["version"] == 2
