"""Animated images: frame bombs are refused before Pillow decodes (or, for
a GIF, even opens) them, and a GIF's canvas counts as its decoders grow it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from PIL import GifImagePlugin

from tests.conftest import assert_error
from tests.files import samples
from tests.files.conftest import stored_objects


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes, mime: str
) -> httpx.Response:
    return await client.post(
        "/files/upload", files={"file": ("anim.bin", data, mime)}, headers=headers
    )


async def assert_nothing_kept(client: httpx.AsyncClient, app: Any, ada: dict[str, str]) -> None:
    assert (await client.get("/files", headers=ada)).json()["items"] == []
    assert stored_objects(app) == []
    assert not list(app.components.settings.spool_dir.iterdir())


async def test_gif_frame_bomb_is_refused_before_pillow_opens_it(
    client: httpx.AsyncClient,
    app: Any,
    ada: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 300,000 frames in 4.5 MB: Pillow's count and decode of them took
    # about 20 s of CPU per upload.
    bomb = samples.gif_frames(300_000)
    assert len(bomb) < app.components.settings.max_upload_bytes

    def opened(*_args: object) -> None:
        raise AssertionError("Pillow opened the GIF")

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "_open", opened)
    error = assert_error(await upload(client, ada, bomb, "image/gif"), 415, "image_too_many_frames")
    assert error["details"] == {"limit": 1000}
    assert "1,000 frames" in error["message"]
    await assert_nothing_kept(client, app, ada)


@pytest.mark.parametrize(
    ("make", "mime"),
    [(samples.gif_frames, "image/gif"), (samples.animated_webp, "image/webp")],
    ids=["gif", "webp"],
)
async def test_frame_limit_is_a_setting(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], make: Any, mime: str
) -> None:
    app.components.settings.max_image_frames = 5
    at_limit = await upload(client, ada, make(5), mime)
    assert at_limit.status_code == 201, at_limit.text
    assert at_limit.json()["content_type"] == mime
    error = assert_error(await upload(client, ada, make(6), mime), 415, "image_too_many_frames")
    assert error["details"] == {"limit": 5}
    assert len((await client.get("/files", headers=ada)).json()["items"]) == 1


async def test_gif_frames_past_the_logical_screen_count_against_the_pixel_limit(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    app.components.settings.max_image_pixels = 10_000
    # A 1×1 screen whose second frame is 200×200: decoders grow the canvas
    # to hold it (40,000 pixels), and compose every frame on that canvas.
    grown = samples.gif_frames(1, screen=(1, 1), extra=samples.gif_frame((200, 200)))
    assert_error(await upload(client, ada, grown, "image/gif"), 415, "image_dimensions_too_large")
    await assert_nothing_kept(client, app, ada)
    # Within the screen, the same frame is fine.
    fits = samples.gif_frames(1, screen=(90, 90), extra=samples.gif_frame((90, 90)))
    response = await upload(client, ada, fits, "image/gif")
    assert response.status_code == 201, response.text
    assert (response.json()["width"], response.json()["height"]) == (90, 90)
