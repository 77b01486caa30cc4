"""With an S3-compatible store (moto's server, the real S3 protocol), a
backup copies the objects the database refers to through the storage
interface, and a restore puts them into another, empty bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from landform.backup.manifest import Manifest
from landform.backup.service import create_backup, restore_backup
from landform.files.s3 import S3Storage
from landform.settings import Settings
from tests.backup.conftest import Target
from tests.conftest import make_settings
from tests.files.s3_server import CREDENTIALS, moto_s3, new_bucket
from tests.files.samples import png


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


def on_s3(settings: Settings, endpoint: str) -> Settings:
    return settings.model_copy(
        update={
            "storage_url": f"s3://{new_bucket(endpoint)}/assets",
            "s3_endpoint_url": endpoint,
            **CREDENTIALS,
        }
    )


@pytest.fixture
def settings(settings: Settings, s3_endpoint: str) -> Settings:
    return on_s3(settings, s3_endpoint)


async def read_all(storage: S3Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key)])


async def test_objects_go_through_the_storage_interface(
    settings: Settings,
    client: httpx.AsyncClient,
    ada: dict[str, str],
    tmp_path: Path,
    s3_endpoint: str,
    restore_target: Target,
) -> None:
    uploaded: dict[str, bytes] = {}
    for size in ((64, 48), (90, 30)):
        content = png(size)
        answer = await client.post("/files/upload", files={"file": ("a.png", content)}, headers=ada)
        assert answer.status_code == 201, answer.text
        uploaded[answer.json()["url"].rsplit("/", 1)[-1]] = content

    folder = tmp_path / "backup"
    manifest = await create_backup(settings, folder)
    assert set(uploaded) <= {item.key for item in manifest.objects}
    assert Manifest.read(folder).objects == manifest.objects

    target: Any = on_s3(
        make_settings(restore_target.data_dir, database_url=restore_target.database_url),
        s3_endpoint,
    )
    result = await restore_backup(target, folder)
    assert result.objects_written == len(manifest.objects)
    storage = S3Storage(target)
    for key, content in uploaded.items():
        assert await read_all(storage, key) == content
    # Run again with --force: objects already there are kept, not rewritten.
    again = await restore_backup(target, folder, force=True)
    assert again.objects_written == 0
