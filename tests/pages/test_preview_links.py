"""A link to a draft's preview that opens in any browser, without signing
in, until it expires: to look at a page on a phone, or to send it to
whoever signs it off. Signed, so it cannot be made for another page, nor
lengthened; a page of another account cannot have one made."""

from __future__ import annotations

import base64
import string
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from landform.core.clock import Clock, FrozenClock
from tests.conftest import assert_error
from tests.pages.test_pages import create

DRAFT = [{"type": "hero", "headline": "Not out yet"}]


@pytest.fixture
def clock() -> Clock:
    return FrozenClock()


async def test_a_preview_link_shows_the_draft_to_anyone_until_it_expires(
    client: httpx.AsyncClient, ada: dict[str, str], clock: FrozenClock
) -> None:
    page = await create(client, ada, slug="soon")
    url = f"/landing-pages/{page['id']}"
    await client.put(f"{url}/content", json={"blocks": DRAFT}, headers=ada)
    made = await client.post(f"{url}/preview-link", headers=ada)
    assert made.status_code == 201, made.text
    link = made.json()
    assert link["url"].startswith("http://testserver/preview/")
    expires = datetime.fromisoformat(link["expires_at"])
    assert expires - clock.now() == timedelta(days=1)
    path = urlsplit(link["url"]).path

    shown = await client.get(path)  # no credential: whoever has the link
    assert shown.status_code == 200 and "Not out yet" in shown.text
    assert shown.headers["x-robots-tag"] == "noindex"
    assert shown.headers["cache-control"] == "private, no-store"
    # The link is the secret: the draft's links may not carry it off.
    assert shown.headers["referrer-policy"] == "no-referrer"
    assert (await client.get("/soon")).status_code == 404  # still a draft
    # The draft as it is when opened.
    later = [{"type": "hero", "headline": "Changed since"}]
    await client.put(f"{url}/content", json={"blocks": later}, headers=ada)
    assert "Changed since" in (await client.get(path)).text

    clock.advance(24 * 3600)
    gone = await client.get(path)
    assert gone.status_code == 404 and "not valid, or has expired" in gone.text
    assert gone.headers["content-type"].startswith("text/html")


async def test_a_preview_link_cannot_be_forged_nor_made_for_anothers_page(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    page = await create(client, ada, slug="secret")
    url = f"/landing-pages/{page['id']}"
    assert_error(await client.post(f"{url}/preview-link", headers=bob), 404, "page_not_found")
    assert_error(await client.post(f"{url}/preview-link"), 401)
    made = await client.post(f"{url}/preview-link", json={"expires_in": 600}, headers=ada)
    path = urlsplit(made.json()["url"]).path
    token = path.rsplit("/", 1)[1]
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    # Base64's spare bits: another last character that decodes to the same
    # bytes is no second spelling of the link.
    alphabet = string.ascii_letters + string.digits + "-_"
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    same_bytes = [
        token[:-1] + c
        for c in alphabet
        if c != token[-1]
        and base64.urlsafe_b64decode(token[:-1] + c + "=" * (-len(token) % 4)) == raw
    ]
    for forged in (flipped, *same_bytes, token[:20], "x" * 400, "%00", "not-base64!"):
        answer = await client.get(f"/preview/{forged}")
        assert answer.status_code == 404, forged
        assert "Launch week" not in answer.text
    for wrong in (59, 8 * 24 * 3600, "600", 1.5):
        refused = await client.post(f"{url}/preview-link", json={"expires_in": wrong}, headers=ada)
        assert_error(refused, 422, "validation_failed")
    # A deleted page's link shows nothing.
    assert (await client.get(path)).status_code == 200
    await client.delete(url, headers=ada)
    assert "was deleted" in (await client.get(path)).text
