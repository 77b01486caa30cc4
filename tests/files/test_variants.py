"""Responsive images: variants made in the background, used by published pages."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
from PIL import Image

from tests.files import samples
from tests.files.conftest import stored_objects


async def upload(client: httpx.AsyncClient, headers: dict[str, str], data: bytes) -> dict[str, Any]:
    response = await client.post(
        "/files/upload", files={"file": ("photo.png", data, "image/png")}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def settled(app: Any) -> None:
    await asyncio.wait_for(app.components.variants.idle.wait(), timeout=60)


async def test_variants_at_smaller_widths_never_upscaled(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    file = await upload(client, ada, samples.png((1200, 600)))
    await settled(app)
    sha = file["sha256"]
    objects = stored_objects(app)
    widths = sorted({int(name.split("-w")[1].split(".")[0]) for name in objects if "-w" in name})
    assert widths == [320, 640, 1024]  # 1600 would be an upscale
    for width in widths:
        served = await client.get(f"/assets/{sha}-w{width}.webp")
        assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
        with Image.open(io.BytesIO(served.content)) as picture:
            assert picture.size == (width, width // 2)
    # A small image gets none.
    await upload(client, ada, samples.png((200, 100)))
    await settled(app)
    assert len([n for n in stored_objects(app) if "-w" in n]) == len(
        [n for n in objects if "-w" in n]
    )


async def test_published_page_uses_picture_srcset_and_dimensions(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    file = await upload(client, ada, samples.png((1200, 600)))
    plain = await upload(client, ada, samples.png((100, 50)))
    await settled(app)
    page = (
        await client.post("/landing-pages", json={"title": "P", "slug": "pics"}, headers=ada)
    ).json()
    blocks = [
        {"type": "hero", "headline": "H", "image_url": file["url"], "image_alt": "Hero"},
        {"type": "hero", "headline": "H2", "image_url": file["url"], "align": "left"},
        {"type": "image", "url": file["url"], "alt": "Wide"},
        {"type": "image", "url": plain["url"], "alt": "Small"},
        {"type": "image", "url": file["url"], "alt": "Half", "width": 600},
        {"type": "image", "url": file["url"], "alt": "Tall", "height": 100},
        {"type": "columns", "columns": [
            {"blocks": [{"type": "image", "url": file["url"], "alt": "In a column"}]},
            {"blocks": [{"type": "rich_text", "html": "<p>Beside it</p>"}]},
            {"blocks": [{"type": "rich_text", "html": "<p>And here</p>"}]},
        ]},
    ]  # fmt: skip
    await client.put(f"/landing-pages/{page['id']}/content", json={"blocks": blocks}, headers=ada)
    await client.post(f"/landing-pages/{page['id']}/publish", headers=ada)
    html = (await client.get("/pics")).text
    sha = file["sha256"]
    assert html.count("<picture>") == 6
    # The browser picks a variant by the width it will be shown at: a
    # centred hero spans the page, one beside its copy half of it.
    assert 'sizes="(min-width: 1140px) 1070px, 100vw"' in html
    assert 'sizes="(min-width: 900px) 50vw, 100vw"' in html
    # One of three columns: a third of the page (it downloaded the page-wide copy).
    assert 'sizes="(min-width: 1140px) 356px, (min-width: 900px) 33vw, 100vw"' in html
    assert f"/assets/{sha}-w320.webp 320w" in html and f"{file['url']} 1200w" in html
    assert 'type="image/webp"' in html
    assert f'src="{file["url"]}" alt="Wide" width="1200" height="600" loading="lazy"' in html
    assert 'alt="Hero" width="1200" height="600" fetchpriority="high"' in html
    # One side given, the other follows the image's proportions (1200×600).
    assert 'alt="Half" width="600" height="300"' in html
    assert 'alt="Tall" width="200" height="100"' in html
    # No variants yet (or ever): the original, still with its dimensions.
    assert f'src="{plain["url"]}" alt="Small" width="100" height="50" loading="lazy"' in html


async def test_missing_variants_are_made_after_a_restart(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    """The queue is in memory; the database is the record. A worker that
    starts finds originals still without variants and makes them."""
    maker = app.components.variants
    await maker.stop()  # as if the worker died with work queued
    file = await upload(client, ada, samples.png((700, 700)))
    assert [n for n in stored_objects(app) if "-w" in n] == []
    assert await maker.missing() == [file["url"].rsplit("/", 1)[1]]
    await maker.start()  # the next start picks it up
    await settled(app)
    assert sorted(n for n in stored_objects(app) if n.endswith(".webp")) == [
        f"{file['sha256']}-w320.webp",
        f"{file['sha256']}-w640.webp",
    ]
    assert await maker.missing() == []


async def test_deleting_the_original_deletes_its_variants(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    file = await upload(client, ada, samples.png((800, 400)))
    await settled(app)
    assert any("-w" in n for n in stored_objects(app))
    assert (await client.delete(f"/files/{file['id']}", headers=ada)).status_code == 204
    assert stored_objects(app) == []
    assert (await client.get(f"/assets/{file['sha256']}-w320.webp")).status_code == 404


def animated(fmt: str, size: tuple[int, int] = (800, 400), count: int = 3) -> bytes:
    frames = [Image.new("RGB", size, (80 * i, 0, 0)) for i in range(count)]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:])
    return buffer.getvalue()


async def test_animated_images_are_uploaded_and_kept_moving(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    """An animated WebP or PNG (APNG) gets no resized copies: a copy is of
    its first frame, and a page offering them showed a still picture. An
    APNG was refused outright ("not PNG"), though it is one."""
    urls = []
    for fmt, mime, name in (("WEBP", "image/webp", "a.webp"), ("PNG", "image/png", "a.png")):
        data = animated(fmt)
        with Image.open(io.BytesIO(data)) as check:
            assert check.n_frames == 3
        response = await client.post(
            "/files/upload", files={"file": (name, data, mime)}, headers=ada
        )
        assert response.status_code == 201, response.text
        assert response.json()["content_type"] == mime
        urls.append(response.json()["url"])
    await settled(app)
    assert [name for name in stored_objects(app) if "-w" in name] == []
    page = (
        await client.post("/landing-pages", json={"title": "A", "slug": "moving"}, headers=ada)
    ).json()
    blocks = [{"type": "image", "url": url, "alt": "moving"} for url in urls]
    await client.put(f"/landing-pages/{page['id']}/content", json={"blocks": blocks}, headers=ada)
    assert (await client.post(f"/landing-pages/{page['id']}/publish", headers=ada)).is_success
    html = (await client.get("/moving")).text
    assert "<picture>" not in html
    for url in urls:
        assert f'src="{url}"' in html


async def test_a_page_published_before_its_images_copies_exist_offers_them_once_made(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    """Upload, then publish at once (the usual way): the copies come
    seconds later, and the live page offers them then, without a new
    version or another publish."""
    maker = app.components.variants
    await maker.stop()  # the copies are not made yet
    file = await upload(client, ada, samples.png((1200, 600)))
    page = (
        await client.post("/landing-pages", json={"title": "P", "slug": "early"}, headers=ada)
    ).json()
    blocks = [{"type": "image", "url": file["url"], "alt": "Wide"}]
    await client.put(f"/landing-pages/{page['id']}/content", json={"blocks": blocks}, headers=ada)
    await client.post(f"/landing-pages/{page['id']}/publish", headers=ada)
    before = await client.get("/early")
    assert "<picture>" not in before.text
    await maker.start()
    await settled(app)
    after = await client.get("/early")
    assert after.text.count("<picture>") == 1
    assert f"/assets/{file['sha256']}-w320.webp 320w" in after.text
    assert after.headers["etag"] != before.headers["etag"]
    state = (await client.get(f"/landing-pages/{page['id']}", headers=ada)).json()
    assert (state["published_version"], state["has_unpublished_changes"]) == (1, False)
    versions = (await client.get(f"/landing-pages/{page['id']}/versions", headers=ada)).json()
    assert [v["number"] for v in versions["items"]] == [1]


async def test_avatars_and_images_in_html_are_offered_small_and_keep_their_space(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    """A testimonial's 48 px avatar had been the original (a photo of
    megabytes), and an upload shown by an HTML block, or
    another site's image in a hero, had no size: the page jumped as it came."""
    file = await upload(client, ada, samples.png((1200, 600)))
    await settled(app)
    page = (
        await client.post("/landing-pages", json={"title": "P", "slug": "faces"}, headers=ada)
    ).json()
    blocks = [
        {"type": "testimonial", "quote": "Great", "author": "Ada", "avatar_url": file["url"]},
        {"type": "html", "html": f'<p><img src="{file["url"]}" alt="Inline"></p>'},
        {"type": "html", "html": f'<img src="{file["url"]}" alt="Narrow" width="300">'},
        {"type": "hero", "headline": "H", "image_url": "https://cdn.example.com/a.png",
         "image_width": 800, "image_height": 400},
    ]  # fmt: skip
    saved = await client.put(
        f"/landing-pages/{page['id']}/content", json={"blocks": blocks}, headers=ada
    )
    assert saved.is_success, saved.text
    assert (await client.post(f"/landing-pages/{page['id']}/publish", headers=ada)).is_success
    html = (await client.get("/faces")).text
    sha = file["sha256"]
    avatar = html.split('<figure class="quote">')[1].split("</figure>")[0]
    assert f"/assets/{sha}-w320.webp 320w" in avatar and 'sizes="48px"' in avatar
    assert 'class="avatar"' in avatar and 'width="48" height="48"' in avatar
    assert 'alt="Inline" width="1200" height="600" loading="lazy"' in html
    assert 'alt="Narrow" width="300" height="150" loading="lazy"' in html
    assert 'src="https://cdn.example.com/a.png" alt="" width="800" height="400"' in html
