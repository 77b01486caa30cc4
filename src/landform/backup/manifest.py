"""The manifest: what a backup holds, and the checksums that prove it.

Written last, so a backup folder without one is an unfinished backup. Every
other file of the backup is listed with its size and SHA-256; a restore
checks them all before it touches anything."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from landform.backup.errors import BackupInvalid

FORMAT = "landform-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
CHUNK = 1024 * 1024


@dataclass(slots=True)
class StoredObject:
    """A file-store object the database refers to, and how to put it back."""

    key: str
    content_type: str


@dataclass(slots=True)
class Manifest:
    created_at: str  # ISO 8601, UTC: when the database snapshot was taken
    database: str  # "sqlite" or "postgresql"
    revision: str  # the database's Alembic revision
    landform_version: str
    server_version: str  # SQLite's or PostgreSQL's, for the record
    counts: dict[str, int]  # rows per table in the snapshot
    objects: list[StoredObject]
    # Objects the snapshot refers to that were deleted before they could be
    # copied (a file deleted while the backup ran): their rows come back
    # without bytes, and the restore says so.
    missing_objects: list[str]
    pending_events: int  # accepted analytics events not yet in the snapshot
    checksums: dict[str, tuple[int, str]] = field(default_factory=dict)  # path: (size, sha256)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def write(self, folder: Path) -> None:
        data = asdict(self)
        path = folder / MANIFEST_NAME
        partial = path.with_suffix(".partial")
        with open(partial, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST_NAME
        if not folder.is_dir():
            raise BackupInvalid(f"{folder} is not a folder", code="backup_not_found")
        try:
            data: Any = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise BackupInvalid(
                f"{path} is missing: not a Landform backup, or an unfinished one",
                code="manifest_missing",
            ) from exc
        except ValueError as exc:
            raise BackupInvalid(
                f"{path} is not valid JSON: {exc}", code="manifest_invalid"
            ) from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BackupInvalid(
                f"{path} is not a Landform backup manifest", code="manifest_invalid"
            )
        if data.get("format_version") != FORMAT_VERSION:
            raise BackupInvalid(
                f"backup format version {data.get('format_version')!r} is not one this Landform "
                f"reads (it reads {FORMAT_VERSION})",
                code="manifest_invalid",
            )
        try:
            data["objects"] = [StoredObject(**item) for item in data["objects"]]
            data["checksums"] = {
                name: (int(size), str(digest)) for name, (size, digest) in data["checksums"].items()
            }
            return cls(**data)
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupInvalid(f"{path} is damaged: {exc}", code="manifest_invalid") from exc

    def verify(self, folder: Path) -> None:
        """Every listed file is there with its size and checksum, and nothing
        the restore reads is unlisted."""
        problems = []
        for name, (size, digest) in sorted(self.checksums.items()):
            path = folder / name
            if not _inside(folder, path):
                problems.append(f"{name}: outside the backup folder")
            elif not path.is_file():
                problems.append(f"{name}: missing")
            elif path.stat().st_size != size:
                problems.append(f"{name}: {path.stat().st_size} bytes, the manifest says {size}")
            elif sha256_of(path) != digest:
                problems.append(f"{name}: checksum does not match")
        expected = {object_path(o.key) for o in self.objects if o.key not in self.missing_objects}
        unlisted = sorted(expected - set(self.checksums))
        problems += [f"{name}: in the manifest's objects but has no checksum" for name in unlisted]
        if problems:
            raise BackupInvalid(
                f"the backup does not match its manifest ({len(problems)} problem(s)): "
                + "; ".join(problems[:5]),
                code="checksum_mismatch",
                details=problems,
            )


def object_path(key: str) -> str:
    """Where an object sits inside the backup folder (the local store's layout)."""
    return f"files/{key[:2]}/{key}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _inside(folder: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())
