"""Upload spool files and variant work folders a killed worker left behind
are removed when a worker starts, and periodically after; those of work
still going on are not."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from landform.app import create_app
from landform.files import variants
from landform.files.service import Upload
from landform.files.spool import (
    SETTLE_SECONDS,
    WORK_PREFIX,
    SpoolSweeper,
    remove_abandoned,
    work_folder,
)
from landform.settings import Settings
from tests.conftest import signed_in
from tests.files import samples
from tests.files.conftest import stored_objects


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


def age(path: Path, seconds: float = 2 * SETTLE_SECONDS) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def abandoned_folder(spool_dir: Path, name: str = f"{WORK_PREFIX}killed") -> Path:
    """A variant work folder as a killed worker leaves it: nobody holds it."""
    folder = spool_dir / name
    folder.mkdir(parents=True)
    (folder / "original").write_bytes(b"\x89PNG" + b"\x00" * 1024)
    (folder / "640.webp").write_bytes(b"RIFF")
    age(folder)
    return folder


def test_only_work_folders_nobody_holds_are_removed(tmp_path: Path) -> None:
    abandoned = abandoned_folder(tmp_path)
    fresh = tmp_path / f"{WORK_PREFIX}new"  # may not be locked yet
    fresh.mkdir()
    with work_folder(tmp_path) as working:
        (working / "original").write_bytes(b"in use")
        age(working)  # slow work
        assert remove_abandoned(tmp_path) == 1
        assert not abandoned.exists()
        assert (working / "original").exists() and fresh.exists()
    assert not working.exists()  # and the work, once done, leaves nothing


def test_a_killed_workers_folder_is_let_go_by_the_kernel(tmp_path: Path) -> None:
    # A process killed inside work_folder: no clean-up ran, the lock went with it.
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from landform.files.spool import work_folder\n"
        "with work_folder(Path(sys.argv[1])) as folder:\n"
        "    (folder / 'original').write_bytes(b'x' * 4096)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    died = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    assert died.returncode == -9
    (left,) = tmp_path.glob(f"{WORK_PREFIX}*")
    assert (left / "original").exists()
    age(left)
    assert remove_abandoned(tmp_path) == 1
    assert list(tmp_path.iterdir()) == []


async def test_the_spool_is_swept_periodically(tmp_path: Path) -> None:
    sweeper = SpoolSweeper(tmp_path, interval=0.05)
    await sweeper.start()
    try:
        # Left after the start-up sweep (a replica stopped for good, say).
        abandoned = abandoned_folder(tmp_path)
        upload = left_behind(tmp_path, "upload-killed", age=2 * SETTLE_SECONDS)
        for _ in range(200):
            if not abandoned.exists() and not upload.exists():
                break
            await asyncio.sleep(0.05)
        assert not abandoned.exists() and not upload.exists()
    finally:
        await sweeper.stop()


async def test_variants_are_made_in_a_held_work_folder(
    client: httpx.AsyncClient,
    app: Any,
    ada: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spool_dir = app.components.settings.spool_dir
    assert remove_abandoned(spool_dir) == 0
    seen: list[Path] = []
    make = variants.make_variants

    def make_while_swept(original: Path, out_dir: Path) -> list[variants.MadeVariant]:
        seen.append(out_dir)
        age(out_dir)  # however long the work takes, a sweep leaves it alone
        assert remove_abandoned(spool_dir) == 0
        return make(original, out_dir)

    monkeypatch.setattr(variants, "make_variants", make_while_swept)
    response = await client.post(
        "/files/upload",
        files={"file": ("photo.png", samples.png((1200, 600)), "image/png")},
        headers=ada,
    )
    assert response.status_code == 201, response.text
    await asyncio.wait_for(app.components.variants.idle.wait(), timeout=60)
    (folder,) = seen
    assert folder.parent == spool_dir and folder.name.startswith(WORK_PREFIX)
    assert any("-w640." in name for name in stored_objects(app))  # the work went on
    assert list(spool_dir.iterdir()) == []
