"""File-store objects in and out of a backup, through the storage interface
(so a local folder and an S3-compatible store work alike). Keys come from
the database snapshot, not from listing the store: the backup holds exactly
the objects its rows refer to, whatever the store can or cannot list."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from landform.backup.manifest import StoredObject, object_path, sha256_of
from landform.files.storage import Storage

PARALLEL = 8


async def copy_out(
    storage: Storage, objects: Sequence[StoredObject], folder: Path
) -> tuple[dict[str, tuple[int, str]], list[str]]:
    """Copy each object into ``folder``; returns their checksums by backup
    path, and the keys that were gone (deleted after the snapshot)."""
    checksums: dict[str, tuple[int, str]] = {}
    missing: list[str] = []
    gate = asyncio.Semaphore(PARALLEL)

    async def one(item: StoredObject) -> None:
        async with gate:
            name = object_path(item.key)
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not await storage.exists(item.key):
                missing.append(item.key)
                return
            digest = hashlib.sha256()
            size = 0
            handle = await asyncio.to_thread(open, target, "wb")
            try:
                async for chunk in storage.read(item.key):
                    digest.update(chunk)
                    size += len(chunk)
                    await asyncio.to_thread(handle.write, chunk)
                await asyncio.to_thread(_durable, handle)
            finally:
                await asyncio.to_thread(handle.close)
            checksums[name] = (size, digest.hexdigest())

    await asyncio.gather(*(one(item) for item in objects))
    return checksums, sorted(missing)


async def copy_in(
    storage: Storage,
    objects: Sequence[StoredObject],
    folder: Path,
    missing: Sequence[str],
    staging: Path,
) -> int:
    """Put each object back; one already there with the same size is kept
    (keys are content addresses). ``staging``: a writable folder for the
    copies ``put`` consumes (the backup may be read-only). Returns how many
    were written."""
    gone = set(missing)
    written = 0
    gate = asyncio.Semaphore(PARALLEL)

    async def one(item: StoredObject) -> None:
        nonlocal written
        if item.key in gone:
            return
        async with gate:
            source = folder / object_path(item.key)
            if await storage.size(item.key) == (await asyncio.to_thread(source.stat)).st_size:
                return
            # ``put`` may move its source away: hand it a copy.
            staged = await asyncio.to_thread(_staged_copy, source, staging)
            try:
                await storage.put(item.key, staged, item.content_type)
            finally:
                await asyncio.to_thread(staged.unlink, True)
            written += 1

    await asyncio.gather(*(one(item) for item in objects))
    return written


def _durable(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _staged_copy(source: Path, staging: Path) -> Path:
    fd, name = tempfile.mkstemp(dir=staging, prefix=".restore-")
    with open(source, "rb") as reader, os.fdopen(fd, "wb") as writer:
        while chunk := reader.read(1024 * 1024):
            writer.write(chunk)
    return Path(name)


def checksum(path: Path, folder: Path) -> tuple[str, tuple[int, str]]:
    """The manifest entry of a file of the backup, once it is on disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
    return path.relative_to(folder).as_posix(), (path.stat().st_size, sha256_of(path))
