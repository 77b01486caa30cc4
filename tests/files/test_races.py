"""Uploads and deletes at the same moment: the quota holds, no one's bytes
are lost, and a deleted image leaves no public copies behind. Each test
forces the interleaving that used to go wrong, on both storage backends."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx

from landform.files import variants
from tests.conftest import assert_error
from tests.files import samples
from tests.files.conftest import stored_objects
from tests.files.test_files import upload


async def test_parallel_uploads_cannot_pass_the_quota_together(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    pictures = [samples.png((40 + n, 40)) for n in range(8)]
    quota = sum(len(p) for p in pictures[:3]) + 10
    app.components.settings.storage_quota_bytes = quota
    answers = await asyncio.gather(
        *(upload(client, ada, picture, f"{n}.png") for n, picture in enumerate(pictures))
    )
    stored = [a for a in answers if a.status_code == 201]
    assert 1 <= len(stored) <= 3
    for refused in (a for a in answers if a.status_code != 201):
        assert_error(refused, 413, "storage_quota_exceeded")
    assert sum(a.json()["size"] for a in stored) <= quota
    listed = (await client.get("/files", headers=ada)).json()["items"]
    assert sorted(f["id"] for f in listed) == sorted(a.json()["id"] for a in stored)


async def test_a_delete_racing_an_upload_of_the_same_bytes_loses_nothing(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], bob: dict[str, str]
) -> None:
    """Ada deletes the only copy of some bytes just as Bob's upload of the
    same bytes has found them stored (so it would not store them again)."""
    picture = samples.png((70, 30))
    mine = (await upload(client, ada, picture)).json()
    key = mine["url"].rsplit("/", 1)[1]
    storage = app.components.storage
    looked = storage.exists
    deleting: list[asyncio.Task[httpx.Response]] = []

    async def exists_then_delete(stored_key: str) -> bool:
        found: bool = await looked(stored_key)
        if key == stored_key and not deleting:
            deleting.append(asyncio.create_task(client.delete(f"/files/{mine['id']}", headers=ada)))
            await asyncio.sleep(0.3)  # all the time the delete needs, if it need not wait
        return found

    storage.exists = exists_then_delete
    try:
        theirs = await upload(client, bob, picture)
        deleted = await deleting[0]
    finally:
        storage.exists = looked
    assert theirs.status_code == 201 and deleted.status_code == 204
    served = await client.get(theirs.json()["url"])
    assert served.status_code == 200 and served.content == picture
    assert key in stored_objects(app)


async def test_an_upload_puts_back_bytes_its_record_lost(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    """Should bytes go missing under a record (a delete whose commit failed
    after it removed them), uploading them again repairs the file."""
    picture = samples.png((71, 30))
    first = (await upload(client, ada, picture)).json()
    await app.components.storage.delete(first["url"].rsplit("/", 1)[1])
    assert (await client.get(first["url"])).status_code == 404
    again = await upload(client, ada, picture)
    assert again.status_code == 201 and again.json()["id"] == first["id"]
    assert (await client.get(first["url"])).content == picture


async def test_variants_finished_after_their_original_was_deleted_are_removed(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], monkeypatch: Any
) -> None:
    made, go_on = threading.Event(), threading.Event()
    make = variants.make_variants

    def make_then_wait(original: Any, out_dir: Any) -> Any:
        result = make(original, out_dir)
        made.set()
        go_on.wait(30)
        return result

    monkeypatch.setattr(variants, "make_variants", make_then_wait)
    file = (await upload(client, ada, samples.png((800, 400)))).json()
    assert await asyncio.to_thread(made.wait, 30)
    assert (await client.delete(f"/files/{file['id']}", headers=ada)).status_code == 204
    go_on.set()
    await asyncio.wait_for(app.components.variants.idle.wait(), timeout=60)
    assert stored_objects(app) == []
    assert (await client.get(f"/assets/{file['sha256']}-w320.webp")).status_code == 404
