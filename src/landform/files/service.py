"""Files: receive an upload as a stream, know it by its bytes, neutralise or
refuse what is hostile, store it once under a content-addressed key, and
list and delete a user's files."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from sqlalchemy.exc import IntegrityError

from landform.auth import repository as auth_repo
from landform.auth.errors import AccountClosed, EmailNotVerified
from landform.auth.service import refuse_if_closed
from landform.core.change_log import record_change
from landform.core.clock import Clock
from landform.core.db import Database, hold_until_commit
from landform.core.errors import ValidationFailed
from landform.core.pagination import Page, clamp_limit, decode_cursor, page_of
from landform.core.storage_full import storage_full
from landform.files import repository as repo
from landform.files import spool
from landform.files.errors import (
    BadUpload,
    FileErrorCode,
    FileInUse,
    FileNotFound,
    FileTooLarge,
    QuotaExceeded,
    StorageUnavailable,
    UnsupportedFile,
)
from landform.files.inspect import inspect_file
from landform.files.kinds import ALLOWED, CATEGORIES, Kind, detect, normalise_mime
from landform.files.models import StoredFile
from landform.files.storage import Storage
from landform.settings import Settings

log = logging.getLogger(__name__)

SNIFF_BYTES = 4096
LABEL_MAX = 255


def asset_url(storage_key: str) -> str:
    return f"/assets/{storage_key}"


class Upload:
    """One upload on its way in: bytes go to a spool file (never all in
    memory), hashed and counted as they come; the size limit and the type
    check cut the upload off as soon as they fail."""

    def __init__(self, spool_dir: Path, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=spool_dir, prefix=spool.PREFIX)
        spool.hold(fd)
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self.label = ""
        self.claimed_type = ""
        self.kind: Kind | None = None
        self._head = b""
        self.received_file = False

    def start_file(self, filename: str, content_type: str) -> None:
        if self.received_file:
            raise BadUpload("send one file per upload, in the form field 'file'")
        self.received_file = True
        # A label only: path parts and control characters go.
        name = filename.replace("\\", "/").rsplit("/", 1)[-1]
        self.label = "".join(ch for ch in name if ch.isprintable())[:LABEL_MAX] or "upload"
        self.claimed_type = normalise_mime(content_type or "")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise FileTooLarge.over(self.max_bytes)
        if self.kind is None and len(self._head) < SNIFF_BYTES:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
            if len(self._head) >= SNIFF_BYTES:
                self._identify()
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> None:
        self._file.close()
        if not self.received_file:
            raise BadUpload("no file: send multipart/form-data with the file in a field 'file'")
        if self.size == 0:
            raise BadUpload("the file is empty (0 bytes): send one with content")
        if self.kind is None:
            self._identify()

    def _identify(self) -> None:
        kind = detect(self._head)
        if kind is None:
            allowed = ", ".join(sorted(k.extension.upper() for k in ALLOWED.values()))
            raise UnsupportedFile(f"this type of file is not accepted; allowed: {allowed}")
        claimed = self.claimed_type
        if claimed and claimed != "application/octet-stream" and claimed != kind.mime:
            raise UnsupportedFile(
                f"the file says it is {claimed}, but its bytes are {kind.mime}",
                code=FileErrorCode.TYPE_MISMATCH,
            )
        self.kind = kind

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        try:
            if not self._file.closed:
                # On a full disk this fails too (the buffer cannot be
                # flushed): the file is thrown away all the same.
                self._file.close()
        except OSError:
            pass
        finally:
            self.path.unlink(missing_ok=True)


class FileService:
    def __init__(
        self,
        db: Database,
        storage: Storage,
        settings: Settings,
        clock: Clock,
        on_public_change: Callable[[str], None] | None = None,
        on_stored: Callable[[StoredFile], None] | None = None,
    ) -> None:
        self.db = db
        self.storage = storage
        self.settings = settings
        self.clock = clock
        # Told the asset URL whose bytes went, so this process forgets them at
        # once (other processes learn it from the change log).
        self.on_public_change = on_public_change or (lambda _url: None)
        # Told of every newly stored file (to make its image variants).
        self.on_stored = on_stored or (lambda _file: None)

    async def check_uploader(self, owner: uuid.UUID) -> None:
        """Refuse an account whose address is unconfirmed, before its bytes
        are read: an asset is public the moment it is stored, so uploading
        is publishing, and that waits for a confirmed address."""
        async with self.db.read(actor=owner) as session:
            user = await auth_repo.user_by_id(session, owner)
        if user is None:
            raise AccountClosed()
        if user.email_verified_at is None:
            raise EmailNotVerified("verify your email address before uploading files")

    def begin_upload(self) -> UploadSession:
        return UploadSession(Upload(self.settings.spool_dir, self.settings.max_upload_bytes))

    async def store(self, owner: uuid.UUID, upload: Upload) -> StoredFile:
        """Inspect a finished upload and keep it (or the user's existing copy)."""
        upload.finish()
        kind = upload.kind
        assert kind is not None
        inspection = await asyncio.to_thread(
            inspect_file,
            upload.path,
            kind,
            self.settings.max_image_pixels,
            self.settings.max_image_frames,
        )
        sha256, size = upload.sha256, upload.size
        if inspection.rewritten:
            sha256, size = await asyncio.to_thread(_digest, upload.path)
        key = f"{sha256}.{kind.extension}"
        record = StoredFile(
            owner_id=owner,
            sha256=sha256,
            storage_key=key,
            content_type=kind.mime,
            category=kind.category,
            size=size,
            width=inspection.width,
            height=inspection.height,
            label=upload.label,
            created_at=self.clock.now(),
        )
        try:
            async with self.db.write(actor=owner) as session:
                # One store per owner at a time, so parallel uploads cannot each
                # pass the quota check; and one store or delete of these bytes,
                # so a delete never removes bytes a new record is about to need.
                await hold_until_commit(session, f"files/owner/{owner}")
                await hold_until_commit(session, bytes_lock(key))
                existing = await repo.by_sha256(session, owner, sha256)
                if existing is None:
                    used = await repo.used_bytes(session, owner)
                    quota = self.settings.storage_quota_bytes
                    if used + size > quota:
                        raise QuotaExceeded(
                            f"this file would take your storage past its {quota:,}-byte quota "
                            f"({used:,} bytes used)",
                            details={"quota": quota, "used": used, "size": size},
                        )
                    session.add(record)
                    await session.flush()
                # Also when the record exists: bytes a failed delete took come back.
                with storage_reached("nothing was stored"):
                    if not await self.storage.exists(key):
                        await self.storage.put(key, upload.path, kind.mime)
        except IntegrityError as exc:
            await refuse_if_closed(self.db, owner, exc)
            raise
        if existing is not None:
            return existing
        self.on_stored(record)
        return record

    async def usage(self, owner: uuid.UUID) -> tuple[int, int, int]:
        """(bytes used, the quota, files) of the owner's storage."""
        async with self.db.read(actor=owner) as session:
            used, files = await repo.usage(session, owner)
        return used, self.settings.storage_quota_bytes, files

    async def get(self, owner: uuid.UUID, file_id: uuid.UUID) -> StoredFile:
        async with self.db.read(actor=owner) as session:
            record = await repo.owned_file(session, owner, file_id)
        if record is None:
            raise FileNotFound("no such file")
        return record

    async def list_files(
        self,
        owner: uuid.UUID,
        *,
        category: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[StoredFile]:
        if category is not None and category not in CATEGORIES:
            problem = f"must be one of {', '.join(CATEGORIES)}"
            raise ValidationFailed(
                f"`category` {problem}", details=[{"path": "category", "message": problem}]
            )
        size = clamp_limit(limit)
        async with self.db.read(actor=owner) as session:
            rows = await repo.list_owned(
                session, owner, category=category, before_id=decode_cursor(cursor), limit=size + 1
            )
        return page_of(rows, size)

    async def delete_all(self, owner: uuid.UUID) -> None:
        """Delete every file of ``owner`` (their account is closing, their
        pages gone first), each as ``delete`` would: bytes another user has
        too stay."""
        async with self.db.read_primary() as session:
            file_ids = await repo.owned_file_ids(session, owner)
        for file_id in file_ids:
            with contextlib.suppress(FileNotFound):  # gone meanwhile
                await self.delete(owner, file_id)

    async def delete(self, owner: uuid.UUID, file_id: uuid.UUID) -> None:
        """Delete a file, unless a live published page shows it (409 naming
        those pages: unpublish or republish them without it first). The bytes
        go when no other user's file has the same content."""
        async with self.db.write(actor=owner) as session:
            record = await repo.owned_file(session, owner, file_id)
            if record is None:
                raise FileNotFound("no such file")
            # Before the check: a publish showing these bytes holds this
            # lock until its page is live, so it is seen here.
            await hold_until_commit(session, bytes_lock(record.storage_key))
            # A delete of the same file that held the lock first has won: one
            # answer says deleted, the others that it is gone. (Refused as in
            # use below, this delete is rolled back.)
            if not await repo.delete_file(session, record.id):
                raise FileNotFound("no such file")
            pages = await repo.live_pages_showing(session, owner, record.storage_key)
            if pages:
                slugs = ", ".join(f"/{slug}" for _, slug in pages)
                raise FileInUse(
                    f"this file is shown by published pages ({slugs}); publish them without "
                    "it, or unpublish them, first",
                    details={"pages": [{"id": str(i), "slug": s} for i, s in pages]},
                )
            shared = await repo.others_using_key(session, record.storage_key, record.id)
            key = record.storage_key
            gone: list[str] = []
            if not shared:
                gone = [key, *await repo.take_variants(session, key)]
                # Every worker drops what it holds of these bytes.
                for each in gone:
                    record_change(session, asset_url(each), self.clock.now())
                # Under the lock, so an upload of the same bytes waits and
                # puts them back. (Should the commit fail after this, the
                # record's next upload puts them back too: see store.)
                with storage_reached("the file was not deleted"):
                    for each in gone:
                        await self.storage.delete(each)
        for each in gone:
            self.on_public_change(asset_url(each))


@contextlib.contextmanager
def storage_reached(kept: str) -> Iterator[None]:
    """Storage that cannot be reached is a 503 ``storage_unavailable`` that
    says what was ``kept`` (the transaction around it rolls back), not a
    500; a full one stays the 507 it is (core/storage_full.py)."""
    try:
        yield
    except Exception as exc:
        if storage_full(exc):
            raise
        log.exception("file storage cannot be reached")
        raise StorageUnavailable(f"file storage cannot be reached; {kept}: retry shortly") from exc


def bytes_lock(storage_key: str) -> str:
    """The name writers of these bytes, and of their variants, take turns on."""
    return f"files/bytes/{storage_key}"


class UploadSession:
    """``async with service.begin_upload() as upload:`` — the spool file is
    removed whatever happens."""

    def __init__(self, upload: Upload) -> None:
        self.upload = upload

    async def __aenter__(self) -> Upload:
        return self.upload

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.upload.discard)


def _digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
