"""Uploads, hostile files, listing, deletion and asset serving over HTTP."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from landform.files import service as files_service
from tests.conftest import assert_error, outbox_token, signed_in
from tests.files import samples
from tests.files.conftest import stored_objects


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    name: str = "file.bin",
    content_type: str = "application/octet-stream",
) -> httpx.Response:
    return await client.post(
        "/files/upload", files={"file": (name, data, content_type)}, headers=headers
    )


VALID = [
    ("photo.png", samples.png(), "image/png", (64, 48)),
    ("anim.gif", samples.animated_gif(), "image/gif", (32, 32)),
    ("pic.webp", samples.image("WEBP"), "image/webp", (64, 48)),
    ("pic.avif", samples.image("AVIF"), "image/avif", (64, 48)),
    ("anim.avif", samples.animated("AVIF"), "image/avif", (32, 32)),
    ("anim.webp", samples.animated("WEBP"), "image/webp", (32, 32)),
    ("favicon.ico", samples.image("ICO", (32, 32)), "image/x-icon", (32, 32)),
    ("logo.svg", samples.svg(), "image/svg+xml", (10, 10)),
    ("brochure.pdf", samples.pdf(), "application/pdf", None),
    (
        "compressed.pdf",
        samples.pdf_with_object_stream(b"5 0 << /Type /Annot /Subtype /Text >>"),
        "application/pdf",
        None,
    ),
    (
        "filter-in-a-list.pdf",
        samples.pdf_with_object_stream(b"5 0 << /Type /Annot >>", filters=b"[ /FlateDecode ]"),
        "application/pdf",
        None,
    ),
    (
        "long-dictionary.pdf",
        samples.pdf_with_object_stream(
            b"5 0 << /Type /Annot >>", between=b"/Note (" + b"x" * 10_000 + b" obj stream)"
        ),
        "application/pdf",
        None,
    ),
    (
        "gradient.svg",
        samples.svg(
            '<defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient>'
            '</defs><rect fill="url(#g)" style="stroke: url( \'#g\' )" width="5" height="5"/>'
        ),
        "image/svg+xml",
        (10, 10),
    ),
    ("clip.mp4", samples.mp4(), "video/mp4", None),
    ("clip.webm", samples.webm(), "video/webm", None),
]


@pytest.mark.parametrize(("name", "data", "mime", "dimensions"), VALID)
async def test_every_allowed_kind_uploads_and_serves(
    client: httpx.AsyncClient,
    ada: dict[str, str],
    name: str,
    data: bytes,
    mime: str,
    dimensions: tuple[int, int] | None,
) -> None:
    # The client's claim is ignored in favour of the bytes (octet-stream is no claim).
    response = await upload(client, ada, data, name)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["content_type"] == mime and body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["label"] == name
    assert body["url"] == f"/assets/{body['sha256']}.{body['url'].rsplit('.', 1)[1]}"
    if dimensions:
        assert (body["width"], body["height"]) == dimensions
    served = await client.get(body["url"])
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"] == mime
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert served.headers["x-content-type-options"] == "nosniff"
    if mime in ("image/svg+xml", "application/pdf"):
        csp = served.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "sandbox" in csp and "script" not in csp


@pytest.mark.parametrize(
    ("name", "data", "claimed"), samples.HOSTILE, ids=[h[0] for h in samples.HOSTILE]
)
async def test_hostile_files_are_refused(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], name: str, data: bytes, claimed: str
) -> None:
    response = await upload(client, ada, data, f"{name}.bin", claimed)
    error = assert_error(response, 415)
    assert error["code"] in (
        "unsupported_file_type",
        "file_type_mismatch",
        "unsafe_file",
        "image_dimensions_too_large",
        "corrupt_file",
    )
    # Nothing was kept: no record, no stored bytes, no spool file left behind.
    assert (await client.get("/files", headers=ada)).json()["items"] == []
    assert stored_objects(app) == []
    assert not list(app.components.settings.spool_dir.iterdir())


@pytest.mark.parametrize(
    ("fmt", "extension"), [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("AVIF", "avif")]
)
async def test_where_a_photo_was_taken_is_removed_whatever_its_kind(
    client: httpx.AsyncClient, ada: dict[str, str], fmt: str, extension: str
) -> None:
    original = samples.photo_with_gps(fmt)
    with Image.open(io.BytesIO(original)) as picture:
        assert picture.getexif()[0x010F] == "SpyCam Inc."
    mime = f"image/{'jpeg' if fmt == 'JPEG' else extension}"
    body = (await upload(client, ada, original, f"holiday.{extension}", mime)).json()
    stored = (await client.get(body["url"])).content
    assert b"SpyCam" not in stored and b"secret comment" not in stored and b"Exif" not in stored
    with Image.open(io.BytesIO(stored)) as picture:
        assert picture.size == (80, 60)
        assert not picture.getexif() and "xmp" not in picture.info
        picture.load()  # still a whole image
    assert body["sha256"] == hashlib.sha256(stored).hexdigest() and body["size"] == len(stored)


@pytest.mark.parametrize(("fmt", "extension"), [("PNG", "png"), ("WEBP", "webp")])
async def test_a_turned_photo_is_stored_upright_as_browsers_showed_it(
    client: httpx.AsyncClient, ada: dict[str, str], fmt: str, extension: str
) -> None:
    original = samples.photo_with_gps(fmt, orientation=6)  # turned 90° clockwise
    body = (await upload(client, ada, original, f"turned.{extension}", f"image/{extension}")).json()
    stored = (await client.get(body["url"])).content
    with Image.open(io.BytesIO(stored)) as picture:
        assert picture.size == (60, 80) and not picture.getexif()
        # The yellow corner, top left before, is top right once turned.
        assert picture.convert("RGB").getpixel((55, 2))[2] < 100
    assert (body["width"], body["height"]) == (60, 80)


async def test_file_name_is_a_label_only(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    body = (
        await upload(client, ada, samples.png(), "../../etc/passwd\x00.png", "image/png")
    ).json()
    label = body["label"]
    assert label.startswith("passwd") and "/" not in label and ".." not in label
    assert "passwd" not in body["url"]
    assert stored_objects(app) == [f"{body['sha256']}.png"]


def part(disposition: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart body of one part with this Content-Disposition."""
    body = (
        b"--b\r\nContent-Disposition: " + disposition.encode() + b"\r\n"
        b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--b--\r\n"
    )
    return body, {"Content-Type": "multipart/form-data; boundary=b"}


async def test_file_names_read_as_browsers_and_curl_send_them(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """Browsers send '"', CR and LF in a file name as %22, %0D and %0A; some
    clients send RFC 5987's filename*=; curl -F 'file=<x' sends no name."""
    cases = [
        ('form-data; name="file"; filename="q%22uote.png"', 'q"uote.png'),
        ('form-data; name="file"; filename="new%0D%0Aline.png"', "newline.png"),
        ('form-data; name="file"; filename="100%25 sure.png"', "100%25 sure.png"),
        ("form-data; name=\"file\"; filename*=UTF-8''%E2%82%AC%20rates.png", "€ rates.png"),
        ('form-data; name="file"', "upload"),
        # Both: the RFC 5987 form is the one meant (RFC 6266 4.3).
        ('form-data; name="file"; filename="old.png"; filename*=UTF-8\'\'real.png', "real.png"),
        ("form-data; name=\"file\"; filename*=UTF-8''%FF%FE.png", "upload"),  # not UTF-8
    ]
    for number, (disposition, label) in enumerate(cases):
        content, headers = part(disposition, samples.png((10 + number, 10)))
        response = await client.post("/files/upload", content=content, headers={**ada, **headers})
        assert response.status_code == 201, (disposition, response.text)
        assert response.json()["label"] == label, disposition
    empty, headers = part('form-data; name="file"; filename="empty.png"', b"")
    refused = await client.post("/files/upload", content=empty, headers={**ada, **headers})
    assert assert_error(refused, 400, "no_file")["message"].startswith("the file is empty")
    other, headers = part('form-data; name="photo"; filename="a.png"', samples.png())
    refused = await client.post("/files/upload", content=other, headers={**ada, **headers})
    assert "in a field 'file'" in assert_error(refused, 400, "no_file")["message"]


async def test_same_bytes_twice_are_stored_once(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], bob: dict[str, str]
) -> None:
    first = (await upload(client, ada, samples.png(), "a.png")).json()
    again = (await upload(client, ada, samples.png(), "b.png")).json()
    assert again["id"] == first["id"]
    other = (await upload(client, bob, samples.png(), "c.png")).json()
    assert other["id"] != first["id"] and other["url"] == first["url"]
    assert len(stored_objects(app)) == 1


async def test_oversized_upload_is_cut_off_early(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    limit = app.components.settings.max_upload_bytes
    chunk = 64 * 1024
    sent = 0
    boundary = "lfboundary"

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode() + samples.mp4()[:64]
        for _ in range(3 * limit // chunk):
            sent += chunk
            yield b"\x00" * chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await client.post(
        "/files/upload",
        content=body(),
        headers={**ada, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    error = assert_error(response, 413, "file_too_large")
    assert error["details"] == {"limit": limit}
    # The server stopped reading soon after the limit, not at the end of the body.
    assert sent < limit + 4 * chunk, (sent, limit)


async def test_declared_oversized_upload_is_refused_before_reading(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    limit = app.components.settings.max_upload_bytes
    response = await client.post(
        "/files/upload",
        content=b"x" * 100,
        headers={
            **ada,
            "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(limit * 2),
        },
    )
    # Said as the file's limit, not the envelope's: one code for one cause.
    error = assert_error(response, 413, "file_too_large")
    assert error["details"] == {"limit": limit}
    assert f"{limit:,}-byte limit" in error["message"]


async def test_quota_has_its_own_413(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    app.components.settings.storage_quota_bytes = len(samples.png()) + 100
    empty = (await client.get("/files/usage", headers=ada)).json()
    assert empty == {"used_bytes": 0, "quota_bytes": len(samples.png()) + 100, "files": 0}
    assert (await upload(client, ada, samples.png(), "a.png")).status_code == 201
    response = await upload(client, ada, samples.png((65, 48)), "b.png")
    error = assert_error(response, 413, "storage_quota_exceeded")
    assert error["details"]["quota"] == len(samples.png()) + 100
    # What a user sees before an upload is refused, not only in the refusal.
    usage = (await client.get("/files/usage", headers=ada)).json()
    assert usage == {**empty, "used_bytes": len(samples.png()), "files": 1}
    assert_error(await client.get("/files/usage"), 401)


@pytest.mark.parametrize(
    ("content", "headers", "code"),
    [
        (b"{}", {"Content-Type": "application/json"}, "expected_multipart"),
        (
            b'--x\r\nContent-Disposition: form-data; name="other"\r\n\r\nv\r\n--x--\r\n',
            {"Content-Type": "multipart/form-data; boundary=x"},
            "no_file",
        ),
        (
            b"--x\r\nContent-Disposition: form-data; "
            b'name="file"; filename="e.png"\r\n\r\n\r\n--x--\r\n',
            {"Content-Type": "multipart/form-data; boundary=x"},
            "no_file",
        ),
        (b"garbage without boundaries", {"Content-Type": "multipart/form-data; boundary=x"}, None),
    ],
)
async def test_malformed_uploads_are_4xx(
    client: httpx.AsyncClient,
    ada: dict[str, str],
    content: bytes,
    headers: dict[str, str],
    code: str | None,
) -> None:
    response = await client.post("/files/upload", content=content, headers={**ada, **headers})
    assert 400 <= response.status_code < 500, response.text
    if code:
        assert response.json()["error"]["code"] == code


async def test_an_upload_cut_short_or_with_a_huge_name_is_refused_and_not_kept(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    multipart = {"Content-Type": "multipart/form-data; boundary=x"}
    part = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    png = samples.png()
    for cut_short in (part + png, part + png + b"\r\n", part + png + b"\r\n--x\r\n"):
        refused = await client.post(
            "/files/upload", content=cut_short, headers={**ada, **multipart}
        )
        error = assert_error(refused, 400, "malformed_multipart")
        assert "closing boundary" in error["message"]
    long_name = b'--x\r\nContent-Disposition: form-data; name="file"; filename="'
    long_name += b"a" * 8000 + b'.png"\r\n\r\n' + png + b"\r\n--x--\r\n"
    refused = await client.post("/files/upload", content=long_name, headers={**ada, **multipart})
    assert "shorter name" in assert_error(refused, 400, "malformed_multipart")["message"]
    assert (await client.get("/files", headers=ada)).json()["items"] == []
    whole = await client.post(
        "/files/upload", content=part + png + b"\r\n--x--\r\n", headers={**ada, **multipart}
    )
    assert whole.status_code == 201


async def test_upload_needs_a_user(client: httpx.AsyncClient) -> None:
    response = await upload(client, {}, samples.png())
    assert_error(response, 401)


async def test_an_unverified_account_cannot_upload(client: httpx.AsyncClient, app: Any) -> None:
    """Assets are public the moment they are stored: an address nobody has
    confirmed may no more put a file live than publish a page."""
    headers = await signed_in(client, app, "new@example.com", verified=False)
    data = samples.png((33, 21))
    refused = await upload(client, headers, data, "flyer.png", "image/png")
    assert_error(refused, 403, "email_not_verified")
    assert (await client.get("/files", headers=headers)).json()["items"] == []
    assert (await client.get(f"/assets/{hashlib.sha256(data).hexdigest()}.png")).status_code == 404
    assert stored_objects(app) == []
    token = await outbox_token(app, "new@example.com")
    assert (await client.post("/auth/verify-email", json={"token": token})).status_code == 200
    accepted = await upload(client, headers, data, "flyer.png", "image/png")
    assert accepted.status_code == 201, accepted.text


async def test_list_get_filter_and_paginate(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    ids = []
    for width in range(10, 15):
        ids.append(
            (await upload(client, ada, samples.png((width, 10)), f"{width}.png")).json()["id"]
        )
    pdf_id = (await upload(client, ada, samples.pdf(), "doc.pdf")).json()["id"]
    await upload(client, bob, samples.png((99, 10)))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/files", params=params, headers=ada)).json()
        seen += [f["id"] for f in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [pdf_id, *reversed(ids)]
    documents = (await client.get("/files", params={"category": "document"}, headers=ada)).json()
    assert [f["id"] for f in documents["items"]] == [pdf_id]
    one = (await client.get(f"/files/{ids[0]}", headers=ada)).json()
    assert one["width"] == 10
    assert_error(await client.get(f"/files/{ids[0]}", headers=bob), 404, "file_not_found")
    assert_error(await client.delete(f"/files/{ids[0]}", headers=bob), 404, "file_not_found")
    assert_error(await client.get("/files", params={"category": "exe"}, headers=ada), 422)
    bad_cursor = assert_error(
        await client.get("/files", params={"cursor": "abc"}, headers=ada), 422, "invalid_cursor"
    )
    assert bad_cursor["details"][0]["path"] == "query.cursor"


async def test_delete_removes_bytes_unless_someone_else_has_them(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    mine = (await upload(client, ada, samples.png())).json()
    theirs = (await upload(client, bob, samples.png())).json()
    assert (await client.delete(f"/files/{mine['id']}", headers=ada)).status_code == 204
    assert (await client.get(mine["url"])).status_code == 200  # Bob still has these bytes
    assert (await client.delete(f"/files/{theirs['id']}", headers=bob)).status_code == 204
    assert (await client.get(theirs["url"])).status_code == 404


async def test_deleting_one_file_at_once_many_times_deletes_it_once(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """One answer says deleted, the rest that it is gone (on PostgreSQL,
    every request that had read the file before the first delete committed
    said 204, and each deleted the bytes and told the caches again)."""
    for _ in range(3):
        file = (await upload(client, ada, samples.png())).json()
        answers = await asyncio.gather(
            *(client.delete(f"/files/{file['id']}", headers=ada) for _ in range(10))
        )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [204] + [404] * 9, statuses
        for answer in answers:
            if answer.status_code == 404:
                assert_error(answer, 404, "file_not_found")
        assert (await client.get(file["url"])).status_code == 404


async def test_file_on_a_live_page_cannot_be_deleted(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    file = (await upload(client, ada, samples.png())).json()
    page = (
        await client.post("/landing-pages", json={"title": "Shop", "slug": "shop"}, headers=ada)
    ).json()
    url = f"/landing-pages/{page['id']}"
    block = {"type": "image", "url": file["url"], "alt": "Product"}
    await client.put(f"{url}/content", json={"blocks": [block]}, headers=ada)
    await client.post(f"{url}/publish", headers=ada)
    refused = await client.delete(f"/files/{file['id']}", headers=ada)
    error = assert_error(refused, 409, "file_in_use")
    assert "/shop" in error["message"] and error["details"]["pages"][0]["slug"] == "shop"
    assert (await client.get(file["url"])).status_code == 200
    # Republished without the image, it can go.
    await client.put(f"{url}/content", json={"blocks": []}, headers=ada)
    await client.post(f"{url}/publish", headers=ada)
    assert (await client.delete(f"/files/{file['id']}", headers=ada)).status_code == 204
    assert (await client.get(file["url"])).status_code == 404


@pytest.mark.parametrize(
    "spelling",
    [
        lambda url: url.replace("/assets/", "/assets/./"),
        lambda url: url.replace("/assets/", "/assets//"),
        lambda url: "/assets/" + "".join(f"%{ord(c):02X}" for c in url.removeprefix("/assets/")),
    ],
    ids=["dot-segment", "empty-segment", "percent-escaped"],
)
async def test_a_file_shown_by_another_spelling_of_its_url_is_in_use(
    client: httpx.AsyncClient, ada: dict[str, str], spelling: Any
) -> None:
    file = (await upload(client, ada, samples.png())).json()
    page = (
        await client.post("/landing-pages", json={"title": "Odd", "slug": "odd"}, headers=ada)
    ).json()
    block = {"type": "image", "url": spelling(file["url"]), "alt": "Product"}
    url = f"/landing-pages/{page['id']}"
    assert (await client.put(f"{url}/content", json={"blocks": [block]}, headers=ada)).is_success
    assert (await client.post(f"{url}/publish", headers=ada)).status_code == 200
    assert_error(await client.delete(f"/files/{file['id']}", headers=ada), 409, "file_in_use")


@pytest.mark.parametrize(
    "spelling",
    [
        lambda url: url.replace("/assets/", "/assets/x/../"),
        lambda url: url.replace("/assets/", "/x/%2e%2e/assets/"),
        lambda url: url.replace("/assets/", "\\assets\\"),
        lambda url: url.replace("/assets/", "/as\tsets/"),
        lambda url: url.replace("/assets/", "/as\nsets/"),
        lambda url: url.removeprefix("/"),  # relative to the page at /<slug>: the root
        lambda url: url.replace("/assets/", "../assets/"),
        lambda url: "https://landform.example" + url.replace("/assets/", "/a/../assets/"),
    ],
    ids=[
        "dot-dot",
        "escaped-dot-dot",
        "backslashes",
        "tab",
        "newline",
        "relative",
        "up",
        "absolute",
    ],
)
async def test_every_spelling_a_browser_resolves_to_an_asset_is_checked(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str], spelling: Any
) -> None:
    """Browsers resolve these to /assets/<key> (WHATWG URL parsing): Bob's
    page showed Ada's upload through them, and a live page's file could be
    deleted from under it."""
    adas = (await upload(client, ada, samples.png())).json()
    shown = spelling(adas["url"])
    html = {"type": "html", "html": f'<p><img src="{shown}" alt="x"></p>'}
    text = {"type": "rich_text", "html": f'<p><a href="{shown}">the file</a></p>'}
    for blocks in ([html], [text]):
        page = (await client.post("/landing-pages", json={"title": "Hot"}, headers=bob)).json()
        url = f"/landing-pages/{page['id']}"
        saved = await client.put(f"{url}/content", json={"blocks": blocks}, headers=bob)
        assert saved.is_success, saved.text
        error = assert_error(await client.post(f"{url}/publish", headers=bob), 422, "unknown_asset")
        assert error["details"]["assets"] == [adas["url"]]
    # Ada's own page, spelling it so, holds her file against deletion.
    page = (await client.post("/landing-pages", json={"title": "Own"}, headers=ada)).json()
    url = f"/landing-pages/{page['id']}"
    assert (await client.put(f"{url}/content", json={"blocks": [html]}, headers=ada)).is_success
    assert (await client.post(f"{url}/publish", headers=ada)).status_code == 200
    assert_error(await client.delete(f"/files/{adas['id']}", headers=ada), 409, "file_in_use")


async def test_a_page_publishes_only_its_owners_uploads(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    """Bob's page showing Ada's upload (its URL copied from her page), or
    a file deleted since it was placed: refused at publish, naming the URL,
    rather than a live page that breaks when Ada deletes her file."""
    adas = (await upload(client, ada, samples.png())).json()
    mine = (await upload(client, bob, samples.png((33, 33)))).json()
    page = (
        await client.post("/landing-pages", json={"title": "Copy", "slug": "copy"}, headers=bob)
    ).json()
    url = f"/landing-pages/{page['id']}"
    for shown in ([adas["url"]], [mine["url"], adas["url"]]):
        blocks = [{"type": "image", "url": u, "alt": "x"} for u in shown]
        assert (await client.put(f"{url}/content", json={"blocks": blocks}, headers=bob)).is_success
        error = assert_error(await client.post(f"{url}/publish", headers=bob), 422, "unknown_asset")
        assert error["details"]["assets"] == [adas["url"]]
    assert (await client.get("/copy")).status_code == 404
    # The same bytes uploaded by Bob are his own file: then it publishes.
    again = (await upload(client, bob, samples.png())).json()
    assert again["url"] == adas["url"]
    assert (await client.post(f"{url}/publish", headers=bob)).status_code == 200
    # Ada may still delete hers; Bob's page keeps the bytes he has too.
    assert (await client.delete(f"/files/{adas['id']}", headers=ada)).status_code == 204
    assert (await client.get(adas["url"])).status_code == 200
    # A file deleted while a draft still shows it is refused the same way.
    await client.put(f"{url}/content", json={"blocks": []}, headers=bob)
    await client.post(f"{url}/publish", headers=bob)
    assert (await client.delete(f"/files/{mine['id']}", headers=bob)).status_code == 204
    blocks = [{"type": "image", "url": mine["url"], "alt": "gone"}]
    await client.put(f"{url}/content", json={"blocks": blocks}, headers=bob)
    assert_error(await client.post(f"{url}/publish", headers=bob), 422, "unknown_asset")


@pytest.mark.parametrize(
    ("where", "shown"),
    [
        ("hero", "/assets/5c907e84.jpg"),
        ("og_image", "/assets/nonexistent.png"),
        ("link", "http://testserver/assets/logo.png"),
        ("html", "../assets/photo.webp"),
        ("link", "/assets/brochure.pdf?v=2"),
    ],
)
async def test_an_address_under_assets_that_is_no_upload_is_refused_at_publish(
    client: httpx.AsyncClient, ada: dict[str, str], where: str, shown: str
) -> None:
    """Only storage-key-shaped names were checked: /assets/logo.png went
    live as a broken image (the asset server has nothing by that name)."""
    own = (await upload(client, ada, samples.png())).json()
    page = (await client.post("/landing-pages", json={"title": "Bad"}, headers=ada)).json()
    url = f"/landing-pages/{page['id']}"
    blocks: list[dict[str, Any]] = [{"type": "image", "url": own["url"], "alt": "fine"}]
    if where == "hero":
        blocks.append({"type": "hero", "headline": "H", "image_url": shown})
    elif where == "html":
        blocks.append({"type": "html", "html": f'<img src="{shown}" alt="x">'})
    elif where == "link":
        blocks.append({"type": "cta", "label": "Get it", "url": shown})
    else:
        seo = await client.put(url, json={"seo": {"og_image": shown}}, headers=ada)
        assert seo.is_success, seo.text
    assert (await client.put(f"{url}/content", json={"blocks": blocks}, headers=ada)).is_success
    error = assert_error(await client.post(f"{url}/publish", headers=ada), 422, "unknown_asset")
    named = "/assets/" + shown.split("/assets/")[1].split("?")[0]
    assert error["details"]["assets"] == [named]
    assert named in error["message"]


async def test_another_sites_assets_and_its_own_uploads_publish(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """Another site's /assets/ is its own; the page's uploads, by path or by
    their whole address on its site, are the owner's files."""
    own = (await upload(client, ada, samples.png())).json()
    page = (await client.post("/landing-pages", json={"title": "Good"}, headers=ada)).json()
    url = f"/landing-pages/{page['id']}"
    blocks = [
        {"type": "hero", "headline": "H", "image_url": "https://cdn.example.com/assets/x.png"},
        {"type": "html", "html": f'<img src="http://testserver{own["url"]}" alt="whole">'},
        {"type": "rich_text", "html": "<p>Files live in /assets/ on the server.</p>"},
    ]
    assert (await client.put(f"{url}/content", json={"blocks": blocks}, headers=ada)).is_success
    assert (await client.post(f"{url}/publish", headers=ada)).status_code == 200


async def test_a_page_cannot_show_a_resized_copy_by_its_url(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    """A copy's URL (``<sha>-w640.webp``) is no file of anyone's: it got
    past the check, so Bob's page showed Ada's image, and Ada's own page
    lost its image when she deleted the file (the delete did not see it)."""
    adas = (await upload(client, ada, samples.png())).json()
    copy = adas["url"].rsplit(".", 1)[0] + "-w640.webp"
    for owner in (bob, ada):
        page = (await client.post("/landing-pages", json={"title": "C"}, headers=owner)).json()
        url = f"/landing-pages/{page['id']}"
        blocks = [{"type": "image", "url": copy, "alt": "x"}]
        assert (
            await client.put(f"{url}/content", json={"blocks": blocks}, headers=owner)
        ).is_success
        error = assert_error(
            await client.post(f"{url}/publish", headers=owner), 422, "unknown_asset"
        )
        assert error["details"]["assets"] == [copy]
        assert "resized copy: use the file's own URL" in error["message"]
    assert (await client.delete(f"/files/{adas['id']}", headers=ada)).status_code == 204


async def test_asset_conditional_range_and_head(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    data = samples.pdf()
    file = (await upload(client, ada, data, "doc.pdf")).json()
    full = await client.get(file["url"])
    etag = full.headers["etag"]
    assert etag.startswith('"') and full.headers["accept-ranges"] == "bytes"
    assert (await client.get(file["url"], headers={"If-None-Match": etag})).status_code == 304

    part = await client.get(file["url"], headers={"Range": "bytes=5-14"})
    assert part.status_code == 206 and part.content == data[5:15]
    assert part.headers["content-range"] == f"bytes 5-14/{len(data)}"
    tail = await client.get(file["url"], headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    open_ended = await client.get(file["url"], headers={"Range": f"bytes={len(data) - 3}-"})
    assert open_ended.content == data[-3:]
    unsatisfiable = await client.get(file["url"], headers={"Range": f"bytes={len(data)}-"})
    assert_error(unsatisfiable, 416, "range_not_satisfiable")
    assert unsatisfiable.headers["content-range"] == f"bytes */{len(data)}"
    assert unsatisfiable.headers["cache-control"] == "no-store"
    huge = await client.get(file["url"], headers={"Range": "bytes=99999999999999999999999999-"})
    assert_error(huge, 416, "range_not_satisfiable")
    # 4,301 digits: more than Python reads as a number at all.
    endless = "9" * 4301
    assert_error(
        await client.get(file["url"], headers={"Range": f"bytes={endless}-"}),
        416,
        "range_not_satisfiable",
    )
    to_the_end = await client.get(file["url"], headers={"Range": f"bytes=5-{endless}"})
    assert to_the_end.status_code == 206 and to_the_end.content == data[5:]
    everything = await client.get(file["url"], headers={"Range": f"bytes=-{endless}"})
    assert everything.status_code == 206 and everything.content == data
    several = await client.get(file["url"], headers={"Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.content == data
    # Last before first is no range at all: ignored, not unsatisfiable.
    backwards = await client.get(file["url"], headers={"Range": "bytes=5-3"})
    assert backwards.status_code == 200 and backwards.content == data
    # If-Range: the range only of the bytes the client holds (a strong
    # match); else the whole asset (RFC 9110 13.1.5). No Last-Modified is
    # sent, so a date never matches.
    same = await client.get(file["url"], headers={"Range": "bytes=5-14", "If-Range": etag})
    assert same.status_code == 206 and same.content == data[5:15]
    for held in ('"other"', f"W/{etag}", "Thu, 01 Jan 1970 00:00:00 GMT"):
        whole = await client.get(file["url"], headers={"Range": "bytes=5-14", "If-Range": held})
        assert whole.status_code == 200 and whole.content == data, held
    # If-Match compares strongly too: another tag, or a weak one, is a 412.
    assert (await client.get(file["url"], headers={"If-Match": etag})).status_code == 200
    assert (await client.get(file["url"], headers={"If-Match": "*"})).status_code == 200
    for held in ('"other"', f"W/{etag}"):
        refused = await client.get(file["url"], headers={"If-Match": held})
        assert_error(refused, 412, "precondition_failed")
        assert refused.headers["cache-control"] == "no-store"

    head = await client.head(file["url"])
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(data))


async def test_large_asset_streams_in_full_and_by_range(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    media = bytes(range(256)) * 4096  # 1 MiB: above the in-memory size
    data = samples.mp4(media)
    file = (await upload(client, ada, data, "clip.mp4")).json()
    assert (await client.get(file["url"])).content == data
    middle = await client.get(file["url"], headers={"Range": "bytes=500000-700000"})
    assert middle.status_code == 206 and middle.content == data[500000:700001]


@pytest.mark.parametrize(
    "path",
    [
        "/assets/nope",
        "/assets/" + "0" * 64 + ".png",
        "/assets/../secret.key",
        "/assets/" + "A" * 64 + ".png",
    ],
)
async def test_unknown_assets_are_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    if path.startswith("/assets/") and ".." not in path:
        assert_error(response, 404, "asset_not_found")


async def test_s3_redirect_delivery_sends_visitors_to_a_signed_url(
    settings: Any, s3_endpoint: str
) -> None:
    if not settings.storage_url:
        pytest.skip("redirect delivery is an S3 setting")
    from asgi_lifespan import LifespanManager

    from landform.app import create_app
    from tests.conftest import signed_in as sign_in

    app = create_app(settings.model_copy(update={"s3_asset_delivery": "redirect"}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            headers = await sign_in(client, app, "ada@example.com")
            data = samples.png()
            file = (await upload(client, headers, data, "a.png")).json()
            response = await client.get(file["url"])
            assert response.status_code == 307
            location = response.headers["location"]
            assert location.startswith(s3_endpoint) and "Signature" in location
            async with httpx.AsyncClient() as outside:  # a visitor following the redirect
                assert (await outside.get(location)).content == data
            assert (await client.get("/assets/" + "0" * 64 + ".png")).status_code == 404


async def test_every_files_route_needs_a_user(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    file = (await upload(client, ada, samples.png())).json()
    for method, path in (
        ("GET", "/files"),
        ("GET", f"/files/{file['id']}"),
        ("DELETE", f"/files/{file['id']}"),
    ):
        assert_error(await client.request(method, path), 401)
        assert_error(await client.request(method, path, headers={"X-API-Key": "lf_nope"}), 401)
    assert (await client.get(f"/files/{file['id']}", headers=ada)).status_code == 200


class FullDisk:
    """A spool file on a disk that fills up after ``room`` bytes: the write
    past it fails, and so does closing while bytes are still buffered (a
    real buffered file's flush fails the same way; it closes all the same)."""

    def __init__(self, real: Any, room: int) -> None:
        self.real = real
        self.room = room
        self.stuck = False

    def write(self, chunk: bytes) -> int:
        if self.real.tell() + len(chunk) > self.room:
            self.stuck = True
            raise OSError(errno.ENOSPC, "No space left on device")
        written: int = self.real.write(chunk)
        return written

    @property
    def closed(self) -> bool:
        return bool(self.real.closed)

    def close(self) -> None:
        self.real.close()
        if self.stuck:
            raise OSError(errno.ENOSPC, "No space left on device")


def on_a_full_disk(monkeypatch: pytest.MonkeyPatch, room: int) -> None:
    real_fdopen = os.fdopen
    monkeypatch.setattr(
        files_service.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode), room)
    )


async def test_an_upload_cut_off_by_a_full_disk_leaves_no_half_file(
    client: httpx.AsyncClient, ada: dict[str, str], app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_a_full_disk(monkeypatch, room=64 * 1024)
    big = samples.pdf() + b"%" + os.urandom(256 * 1024)
    response = await upload(client, ada, big, "big.pdf", "application/pdf")
    assert_error(response, 507, "insufficient_storage")
    # Before: closing the spool file failed too (its buffer could not be
    # flushed), so the half file was never removed, filling the disk further.
    assert not list(app.components.settings.spool_dir.iterdir())
    assert stored_objects(app) == []


async def test_storage_out_of_reach_is_a_503_and_not_ready_and_keeps_nothing(
    client: httpx.AsyncClient, ada: dict[str, str], app: Any
) -> None:
    """A local folder that is gone or is no folder (a volume that did not
    mount), or a bucket that is gone: uploads are a 503 ``storage_unavailable``
    that records nothing, and /readyz says so, until it is back."""
    storage = app.components.storage
    kept = (await upload(client, ada, samples.png(), "kept.png", "image/png")).json()
    root = app.components.settings.files_dir
    away = root.with_name("files.away")
    if hasattr(storage, "bucket"):  # S3: the bucket, emptied and removed
        listed = storage.client.list_objects_v2(Bucket=storage.bucket).get("Contents", [])
        for item in listed:
            storage.client.delete_object(Bucket=storage.bucket, Key=item["Key"])
        storage.client.delete_bucket(Bucket=storage.bucket)
    else:
        root.rename(away)  # gone (a volume that did not mount) ...
        deleting = await client.delete(f"/files/{kept['id']}", headers=ada)
        assert_error(deleting, 503, "storage_unavailable")
        root.write_text("not a folder")  # ... or no folder
    refused = await upload(client, ada, samples.png((70, 50)), "new.png", "image/png")
    assert_error(refused, 503, "storage_unavailable")
    assert refused.headers["retry-after"] == "5"
    assert [f["id"] for f in (await client.get("/files", headers=ada)).json()["items"]] == [
        kept["id"]
    ]
    deleting = await client.delete(f"/files/{kept['id']}", headers=ada)
    assert_error(deleting, 503, "storage_unavailable")
    not_ready = await client.get("/readyz")
    assert assert_error(not_ready, 503, "not_ready")["message"] == "file storage cannot be reached"
    if hasattr(storage, "bucket"):
        storage.client.create_bucket(Bucket=storage.bucket)
    else:
        root.unlink()
        away.rename(root)
    assert (await client.get("/readyz")).status_code == 200
    again = await upload(client, ada, samples.png((70, 50)), "new.png", "image/png")
    assert again.status_code == 201, again.text
    assert (await client.get(again.json()["url"])).status_code == 200
    assert (await client.get(f"/files/{kept['id']}", headers=ada)).status_code == 200
