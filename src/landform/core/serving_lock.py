"""Who is using a data folder: servers share it, a restore needs it alone.

Every ``landform serve`` holds a shared lock on ``DATA_DIR/run/serving.lock``
for as long as it (or any worker it forked) runs; ``landform restore`` takes
the same lock exclusively, so it refuses to replace a database and files a
running server still has open (it would go on serving, and writing into,
what the restore deleted), and a server cannot start while a restore runs.
The kernel drops a lock with its last holder, so a killed server leaves none
behind."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class DataDirBusy(Exception):
    pass


def _lock_file(data_dir: Path) -> int:
    run = data_dir / "run"
    run.mkdir(parents=True, exist_ok=True)
    return os.open(run / "serving.lock", os.O_RDWR | os.O_CREAT, 0o600)


def hold_for_serving(data_dir: Path) -> int:
    """Take the shared lock for this process and its children (the
    descriptor stays open, inherited by the workers); raise DataDirBusy
    while a restore has the folder."""
    fd = _lock_file(data_dir)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirBusy(f"a restore is replacing the data in {data_dir}") from None
    # Kept by workers started afresh (spawned) too, not only forked ones.
    os.set_inheritable(fd, True)
    return fd


@contextlib.contextmanager
def alone(data_dir: Path) -> Iterator[None]:
    """The folder to this process only, or DataDirBusy while a server runs on it."""
    fd = _lock_file(data_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirBusy(
                f"a Landform server is running on {data_dir}: stop it first"
            ) from None
        yield
    finally:
        os.close(fd)
