"""The template catalogue. Built-in templates ship as JSON data files next to
this module and are validated against the block schema when loaded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from landform.pages.blocks import PageContent, check_block_ids
from landform.pages.render import RenderInput, Seo, render_page
from landform.templates.errors import TemplateNotFound

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    name: str
    category: str
    description: str
    content: PageContent

    def content_json(self) -> dict[str, Any]:
        return self.content.model_dump(mode="json")

    @property
    def preview_path(self) -> str:
        return f"/templates/{self.id}/preview"


class TemplateCatalogue:
    def __init__(self, templates: list[Template]) -> None:
        self._by_id = {t.id: t for t in templates}
        self._previews: dict[str, tuple[str, str]] = {}

    @classmethod
    def load(cls, folder: Path = DATA_DIR) -> TemplateCatalogue:
        templates = []
        for path in sorted(folder.glob("*.json")):
            raw = json.loads(path.read_text(encoding="utf-8"))
            content = PageContent.model_validate(
                {"theme": raw.get("theme", {}), "blocks": raw["blocks"]}
            )
            # A page made from it must be writable back as it is.
            check_block_ids(content.blocks)
            templates.append(
                Template(
                    id=raw["id"],
                    name=raw["name"],
                    category=raw["category"],
                    description=raw["description"],
                    content=content,
                )
            )
        return cls(templates)

    def all(self, category: str | None = None) -> list[Template]:
        items = sorted(self._by_id.values(), key=lambda t: t.name)
        return [t for t in items if category is None or t.category == category]

    def preview(self, template: Template, public_url: str) -> tuple[str, str]:
        """(HTML, CSP) of the template rendered as a page; cached, templates never change."""
        cached = self._previews.get(template.id)
        if cached is None:
            page = render_page(
                RenderInput(
                    page_id=None,  # no beacon: a preview's views are nobody's
                    slug=template.id,
                    title=template.name,
                    # Its own address, not the public page one could claim
                    # at the template's id.
                    seo=Seo(
                        meta_description=template.description,
                        noindex=True,
                        canonical_url=public_url.rstrip("/") + template.preview_path,
                    ),
                    content=template.content,
                    public_url=public_url.rstrip("/"),
                )
            )
            cached = self._previews[template.id] = (page.html, page.csp)
        return cached

    def find(self, template_id: str) -> Template | None:
        return self._by_id.get(template_id)

    def get(self, template_id: str) -> Template:
        template = self._by_id.get(template_id)
        if template is None:
            # Named back, but not at any length (the id is the caller's input).
            shown = template_id if len(template_id) <= 80 else f"{template_id[:80]}…"
            raise TemplateNotFound(f"no template {shown!r}")
        return template
