"""Upload spool files a killed worker left behind are removed when a worker
starts; those of uploads still arriving are not."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from landform.app import create_app
from landform.files.service import Upload
from landform.files.spool import SETTLE_SECONDS, remove_abandoned
from landform.settings import Settings
from tests.conftest import signed_in
from tests.files import samples


def left_behind(spool_dir: Path, name: str, age: float) -> Path:
    """A spool file as a killed worker leaves it: nobody holds it."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    path = spool_dir / name
    path.write_bytes(b"%PDF-1.4 half of an upload")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_only_files_nobody_holds_are_removed(tmp_path: Path) -> None:
    arriving = Upload(tmp_path, max_bytes=1024)
    arriving.write(b"%PDF-1.4 still coming")
    old = time.time() - 2 * SETTLE_SECONDS
    os.utime(arriving.path, (old, old))  # a slow client
    abandoned = left_behind(tmp_path, "upload-killed", age=2 * SETTLE_SECONDS)
    just_made = left_behind(tmp_path, "upload-new", age=0)  # may not be locked yet
    assert remove_abandoned(tmp_path) == 1
    assert not abandoned.exists()
    assert arriving.path.exists() and just_made.exists()
    arriving.discard()


async def test_a_starting_worker_removes_what_a_killed_one_left(settings: Settings) -> None:
    # Before: nothing ever removed these (each up to the upload size limit).
    abandoned = left_behind(settings.spool_dir, "upload-killed", age=2 * SETTLE_SECONDS)
    app = create_app(settings)
    async with LifespanManager(app):
        assert not abandoned.exists()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            ada = await signed_in(client, app, "ada@example.com")
            # Uploads still work and still leave nothing behind.
            response = await client.post(
                "/files/upload",
                files={"file": ("a.pdf", samples.pdf(), "application/pdf")},
                headers=ada,
            )
    assert response.status_code == 201, response.text
    assert list(settings.spool_dir.glob("upload-*")) == []
