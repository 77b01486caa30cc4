from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


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


class FileList(BaseModel):
    items: list[FilePublic]
    next_cursor: str | None
