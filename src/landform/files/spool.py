"""Spool files and work folders whose worker is gone.

An upload streams into ``DATA_DIR/spool/upload-*`` and the file is removed
when the request ends, whatever happened (``UploadSession``); image
variants are made in a ``DATA_DIR/spool/variants-*`` folder (the original,
up to ``LANDFORM_MAX_UPLOAD_BYTES``, and its resized copies) removed when
they are stored. A worker killed mid-work (``kill -9``, the OOM killer, a
drain past the grace period) removes nothing: what it left would stay for
good and fill the disk. So each upload file and work folder is held with
an exclusive ``flock`` while it is in use (the kernel lets go when the
process dies), and the workers remove those nobody holds: each as it
starts (a killed worker's replacement included), and every
``SWEEP_INTERVAL`` seconds after (a replica gone for good has no
replacement to do it)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from landform.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

PREFIX = "upload-"
WORK_PREFIX = "variants-"
# A file or folder made this recently may not be locked yet (mkstemp or
# mkdtemp, then flock).
SETTLE_SECONDS = 60.0
SWEEP_INTERVAL = 600.0


def hold(fd: int) -> None:
    """Mark the open spool file or folder ``fd`` as this process's."""
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


@contextlib.contextmanager
def work_folder(spool_dir: Path) -> Iterator[Path]:
    """A folder for one piece of work's files, held while it is in use and
    removed with everything in it at the end."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=spool_dir, prefix=WORK_PREFIX))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        hold(fd)
        yield path
    finally:
        # Removed while still held, so a sweep never sees it half gone.
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def remove_abandoned(spool_dir: Path) -> int:
    """Remove the upload files and work folders no live process holds; how
    many went."""
    removed = 0
    settled = time.time() - SETTLE_SECONDS
    for path in [*spool_dir.glob(f"{PREFIX}*"), *spool_dir.glob(f"{WORK_PREFIX}*")]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # its work just ended
        try:
            status = os.fstat(fd)
            if status.st_mtime > settled:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # in use
            if stat.S_ISDIR(status.st_mode):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        finally:
            os.close(fd)
    if removed:
        log.info("files: removed %d spool files and folders left by stopped workers", removed)
    return removed


class SpoolSweeper:
    """Removes what stopped workers left in the spool: at start, and then
    every ``interval`` seconds."""

    def __init__(self, spool_dir: Path, interval: float = SWEEP_INTERVAL) -> None:
        self.spool_dir = spool_dir
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.sweep()
        self._task = asyncio.create_task(self._run(), name="spool-sweeper")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def sweep(self) -> None:
        if self.spool_dir.is_dir():
            await asyncio.to_thread(remove_abandoned, self.spool_dir)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except OSError as exc:  # a full or failing disk: try again next time
                log.warning("files: could not sweep the spool: %s", exc)
