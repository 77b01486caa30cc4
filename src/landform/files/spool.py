"""Upload spool files whose worker is gone.

An upload streams into ``DATA_DIR/spool/upload-*`` and the file is removed
when the request ends, whatever happened (``UploadSession``). A worker
killed mid-upload (``kill -9``, the OOM killer, a drain past the grace
period) removes nothing: its half file would stay for good, and up to
``LANDFORM_MAX_UPLOAD_BYTES`` each they fill the disk. So each upload holds
an exclusive ``flock`` on its file while it is open (the kernel lets go
when the process dies), and every worker, as it starts (a killed worker's
replacement included), removes the files nobody holds."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "upload-"
# A file made this recently may not be locked yet (mkstemp, then flock).
SETTLE_SECONDS = 60.0


def hold(fd: int) -> None:
    """Mark the open spool file ``fd`` as this process's."""
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def remove_abandoned(spool_dir: Path) -> int:
    """Remove the upload files no live process holds; how many went."""
    removed = 0
    settled = time.time() - SETTLE_SECONDS
    for path in spool_dir.glob(f"{PREFIX}*"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # its upload just ended
        try:
            if os.fstat(fd).st_mtime > settled:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # an upload in progress
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        finally:
            os.close(fd)
    if removed:
        log.info("files: removed %d upload spool files left by stopped workers", removed)
    return removed
