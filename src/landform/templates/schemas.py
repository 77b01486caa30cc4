from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class TemplateSummary(BaseModel):
    id: str
    name: str
    category: str
    description: str
    block_count: int
    preview_url: str


class TemplateDetail(TemplateSummary):
    theme: dict[str, Any]
    blocks: list[dict[str, Any]]
