"""Responsive images: resized WebP (and AVIF) copies of raster originals at a
few widths, never upscaled, made in the background, off the request path.

The queue lives in the worker that took the upload. It is not the only
record of the work: the database says which originals still lack variants,
and every worker looks at start, so work cut off by a restart is picked up
again (with or without Redis)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, features
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from landform.core.db import Database, hold_until_commit
from landform.core.failure_log import FailureLog
from landform.core.housekeeping import mark_housekeeping
from landform.core.tasks import cancel_and_wait
from landform.files import spool
from landform.files.models import AssetVariant, StoredFile
from landform.files.service import bytes_lock
from landform.files.storage import Storage

log = logging.getLogger(__name__)

WIDTHS = (320, 640, 1024, 1600)
# GIFs and icons stay as they are; so does any animated image (WebP, AVIF,
# APNG: a copy is made of its first frame, and a browser offered it showed a
# still picture).
RESIZABLE = ("image/png", "image/jpeg", "image/webp", "image/avif")
FORMATS = [("image/webp", "webp", {"quality": 80, "method": 4})]
if features.check("avif"):
    FORMATS.append(("image/avif", "avif", {"quality": 55, "speed": 8}))


@dataclass(frozen=True, slots=True)
class MadeVariant:
    width: int
    height: int
    content_type: str
    extension: str
    path: Path


def make_variants(original: Path, out_dir: Path) -> list[MadeVariant]:
    """Resize ``original`` to every width in WIDTHS smaller than itself."""
    made: list[MadeVariant] = []
    with Image.open(original) as source:
        if getattr(source, "n_frames", 1) > 1:
            return made
        image = ImageOps.exif_transpose(source)
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        for width in WIDTHS:
            if width >= image.width:
                break
            height = max(1, round(image.height * width / image.width))
            resized = image.resize((width, height), Image.Resampling.LANCZOS)
            for mime, extension, options in FORMATS:
                path = out_dir / f"{width}.{extension}"
                resized.save(path, extension.upper(), **options)
                made.append(MadeVariant(width, height, mime, extension, path))
    return made


class VariantMaker:
    def __init__(
        self,
        db: Database,
        storage: Storage,
        spool_dir: Path,
        on_made: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        self.db = db
        self.storage = storage
        self.spool_dir = spool_dir
        # Told the original's key once its copies are stored: live pages
        # that show it are rendered again to offer them.
        self.on_made = on_made
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._backfill: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()
        self.idle.set()

    def enqueue(self, source_key: str) -> None:
        self.idle.clear()
        self.queue.put_nowait(source_key)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="image-variants")
        self.idle.clear()  # until the backfill has queued what it found
        self._backfill = asyncio.create_task(self._find_missing(), name="image-variants-backfill")

    async def stop(self) -> None:
        await cancel_and_wait(self._task, self._backfill)

    async def _find_missing(self, retry_after: float = 5.0) -> None:
        """Queue what an earlier run left undone, once the database answers
        (a server starts without it, not ready until it does)."""
        mark_housekeeping()
        failures = FailureLog(log, "looking for missing image variants")
        while True:
            try:
                missing = await self.missing()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures.failed(exc)
                await asyncio.sleep(retry_after)
                continue
            failures.succeeded()
            for key in missing:
                self.enqueue(key)
            if self.queue.empty():
                self.idle.set()
            return

    async def missing(self) -> list[str]:
        """Originals that can have variants and have none yet."""
        async with self.db.read_primary() as session:
            done = select(AssetVariant.source_key).distinct()
            rows = await session.scalars(
                select(StoredFile.storage_key)
                .where(
                    StoredFile.content_type.in_(RESIZABLE),
                    StoredFile.width > WIDTHS[0],
                    StoredFile.storage_key.not_in(done),
                )
                .distinct()
            )
            return list(rows.all())

    async def _run(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.make(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not make image variants of %s", key)
            finally:
                if self.queue.empty() and (self._backfill is None or self._backfill.done()):
                    self.idle.set()

    async def make(self, source_key: str) -> None:
        # Held while in use: a worker killed mid-work leaves it behind, and
        # the spool sweep removes it (files/spool.py).
        with spool.work_folder(self.spool_dir) as work:
            original = work / "original"
            with original.open("wb") as handle:
                async for chunk in self.storage.read(source_key):
                    await asyncio.to_thread(handle.write, chunk)
            made = await asyncio.to_thread(make_variants, original, work)
            sha = source_key.split(".", 1)[0]
            rows = []
            for variant in made:
                key = f"{sha}-w{variant.width}.{variant.extension}"
                size = variant.path.stat().st_size
                await self.storage.put(key, variant.path, variant.content_type)
                rows.append(
                    AssetVariant(
                        source_key=source_key,
                        width=variant.width,
                        content_type=variant.content_type,
                        storage_key=key,
                        height=variant.height,
                        size=size,
                    )
                )
        if not rows:
            return
        try:
            async with self.db.write() as session:
                # Taking turns with deletes of the original: one that came
                # first left no record, and its variants must not stay public.
                await hold_until_commit(session, bytes_lock(source_key))
                if not await session.scalar(
                    select(StoredFile.id).where(StoredFile.storage_key == source_key).limit(1)
                ):
                    for row in rows:
                        await self.storage.delete(row.storage_key)
                    return
                session.add_all(rows)
        except IntegrityError:
            return  # another worker made them too (the same bytes, the same keys), and tells
        if self.on_made is not None:
            try:
                await self.on_made(source_key)
            except Exception:
                log.exception(
                    "made the copies of %s; the pages showing it were not redone", source_key
                )
