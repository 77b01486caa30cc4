"""One contract for every storage backend: the local folder and S3 (talking
the real S3 protocol to a local S3-compatible server)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from landform.files.storage import Storage, make_storage
from landform.settings import Settings
from tests.conftest import make_settings
from tests.files.s3_server import CREDENTIALS, moto_s3, new_bucket


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


def storage_settings(backend: str, tmp_path: Path, endpoint: str) -> Settings:
    if backend == "local":
        return make_settings(tmp_path)
    return make_settings(
        tmp_path,
        storage_url=f"s3://{new_bucket(endpoint)}/assets",
        s3_endpoint_url=endpoint,
        **CREDENTIALS,
    )


@pytest.fixture(params=["local", "s3"])
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: str
) -> AsyncIterator[Storage]:
    yield make_storage(storage_settings(request.param, tmp_path, s3_endpoint))


def sample(tmp_path: Path, data: bytes) -> tuple[str, Path]:
    path = tmp_path / "incoming"
    path.write_bytes(data)
    return f"{hashlib.sha256(data).hexdigest()}.bin", path


async def read_all(storage: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, start, end)])


async def test_put_then_read_size_exists(storage: Storage, tmp_path: Path) -> None:
    data = bytes(range(256)) * 3000  # 768 KB: several read chunks
    key, path = sample(tmp_path, data)
    assert not await storage.exists(key) and await storage.size(key) is None
    await storage.put(key, path, "application/octet-stream")
    assert await storage.exists(key)
    assert await storage.size(key) == len(data)
    assert await read_all(storage, key) == data
    await storage.check()  # reachable: no error


async def test_ranges(storage: Storage, tmp_path: Path) -> None:
    data = b"0123456789" * 1000
    key, path = sample(tmp_path, data)
    await storage.put(key, path, "application/octet-stream")
    assert await read_all(storage, key, 5, 15) == data[5:15]
    assert await read_all(storage, key, len(data) - 3) == data[-3:]
    assert await read_all(storage, key, 0, 1) == data[:1]


async def test_delete_is_idempotent(storage: Storage, tmp_path: Path) -> None:
    key, path = sample(tmp_path, b"bytes to delete")
    await storage.put(key, path, "application/octet-stream")
    await storage.delete(key)
    assert not await storage.exists(key)
    await storage.delete(key)  # a second delete is not an error


async def test_keys_must_be_content_addresses(storage: Storage, tmp_path: Path) -> None:
    _, path = sample(tmp_path, b"x")
    for bad in ("../../etc/passwd", "a/b", "x" * 64 + ".png", ""):
        with pytest.raises(ValueError):
            await storage.put(bad, path, "text/plain")


async def test_overwriting_the_same_key_keeps_one_object(storage: Storage, tmp_path: Path) -> None:
    data = b"same bytes"
    key, path = sample(tmp_path, data)
    await storage.put(key, path, "application/octet-stream")
    _, again = sample(tmp_path, data)
    await storage.put(key, again, "application/octet-stream")
    assert await read_all(storage, key) == data


async def test_the_same_bytes_stored_at_once_by_two_uploads(
    storage: Storage, tmp_path: Path
) -> None:
    """Keys are content addresses: two users uploading one image at the same
    moment put the same key concurrently, and both must succeed."""
    data = bytes(range(256)) * 400
    sources = []
    for n in range(4):
        folder = tmp_path / f"upload-{n}"
        folder.mkdir()
        key, path = sample(folder, data)
        sources.append(path)
    await asyncio.gather(*(storage.put(key, p, "image/png") for p in sources))
    assert await read_all(storage, key) == data
    local = storage.local_path(key)
    if local is not None:  # no partial file is left beside it
        assert sorted(p.name for p in local.parent.iterdir()) == [key]
