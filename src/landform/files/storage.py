"""Where file bytes live, behind one small interface. The local folder is the
embedded default; an S3-compatible store is the scale-out choice. Keys are
content-addressed (``<sha256>.<ext>``) and never come from user input."""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from landform.settings import Settings

# <sha256>.<ext> for an original, <sha256>-w<width>.<ext> for a resized variant.
KEY = r"[0-9a-f]{64}(?:-w[0-9]{2,4})?\.[a-z0-9]{2,5}"
KEY_PATTERN = re.compile(f"^{KEY}$")


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class Storage(Protocol):
    async def put(self, key: str, source: Path, content_type: str) -> None:
        """Store the file at ``source`` under ``key`` (``source`` may be consumed)."""

    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int | None: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes from ``start`` to ``end`` (exclusive), in chunks."""
        ...

    async def delete(self, key: str) -> None: ...

    async def check(self) -> None:
        """Raise when the storage cannot be reached (the readiness probe)."""

    def local_path(self, key: str) -> Path | None:
        """A path the server can send from directly (zero-copy), if there is one."""

    def signed_url(self, key: str) -> str | None:
        """A URL to redirect visitors to instead of sending the bytes, if any."""


def make_storage(settings: Settings) -> Storage:
    if settings.storage_url.startswith("s3://"):
        from landform.files.s3 import S3Storage

        return S3Storage(settings)
    if settings.storage_url:
        raise ValueError("LANDFORM_STORAGE_URL must be empty (local folder) or s3://bucket/prefix")
    return LocalStorage(settings.files_dir)


class LocalStorage:
    CHUNK = 256 * 1024

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key

    def _reachable(self) -> None:
        """Raise when the folder is gone or is no folder (a volume that did
        not mount, say): that is storage out of reach, not a missing file,
        and nothing is to be written in its place."""
        if not self.root.is_dir():
            raise NotADirectoryError(
                errno.ENOTDIR, "the file store is missing or is not a folder", str(self.root)
            )

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def signed_url(self, key: str) -> str | None:
        return None

    async def put(self, key: str, source: Path, content_type: str) -> None:
        target = self._path(key)

        def _move() -> None:
            self._reachable()
            target.parent.mkdir(exist_ok=True)
            # One partial name per put: keys are content addresses, so two
            # uploads of the same bytes may be stored at the same moment.
            partial = target.with_name(f"{target.name}.{uuid.uuid4().hex}.partial")
            shutil.move(source, partial)
            with open(partial, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(partial, target)  # readers see the whole file or none

        await asyncio.to_thread(_move)

    async def check(self) -> None:
        await asyncio.to_thread(self._reachable)

    async def exists(self, key: str) -> bool:
        path = self._path(key)

        def _exists() -> bool:
            self._reachable()
            return path.is_file()

        return await asyncio.to_thread(_exists)

    async def size(self, key: str) -> int | None:
        path = self._path(key)

        def _size() -> int | None:
            try:
                return path.stat().st_size
            except FileNotFoundError:
                self._reachable()
                return None

        return await asyncio.to_thread(_size)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(key)
        handle = await asyncio.to_thread(open, path, "rb")
        try:
            await asyncio.to_thread(handle.seek, start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                size = self.CHUNK if remaining is None else min(self.CHUNK, remaining)
                chunk = await asyncio.to_thread(handle.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, key: str) -> None:
        path = self._path(key)

        def _delete() -> None:
            # A folder that is gone is storage out of reach, not a file
            # deleted already: its bytes would be public again when it is back.
            self._reachable()
            path.unlink(missing_ok=True)

        await asyncio.to_thread(_delete)
