from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from landform.files.models import StoredFile
from landform.files.service import asset_url


class FilePublic(BaseModel):
    id: uuid.UUID
    url: str
    content_type: str
    category: str
    size: int
    sha256: str
    width: int | None
    height: int | None
    label: str
    created_at: datetime

    @classmethod
    def of(cls, record: StoredFile) -> FilePublic:
        return cls(
            id=record.id,
            url=asset_url(record.storage_key),
            content_type=record.content_type,
            category=record.category,
            size=record.size,
            sha256=record.sha256,
            width=record.width,
            height=record.height,
            label=record.label,
            created_at=record.created_at,
        )


class FileList(BaseModel):
    items: list[FilePublic]
    next_cursor: str | None


class StorageUsage(BaseModel):
    used_bytes: int = Field(description="What your files take (each distinct upload once)")
    quota_bytes: int = Field(description="LANDFORM_STORAGE_QUOTA_BYTES: uploads past it are 413")
    files: int
