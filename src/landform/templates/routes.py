from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse

from landform.templates.schemas import TemplateDetail, TemplateSummary
from landform.templates.service import Template, TemplateCatalogue

router = APIRouter(tags=["templates"])


async def catalogue(request: Request) -> TemplateCatalogue:
    templates: TemplateCatalogue = request.app.state.templates
    return templates


CatalogueDep = Annotated[TemplateCatalogue, Depends(catalogue)]


async def cacheable(request: Request, response: Response) -> None:
    """Templates ship with the release: browsers and CDNs may keep them."""
    max_age = request.app.state.settings.cache_ttl_templates
    response.headers["Cache-Control"] = f"public, max-age={max_age}"


Cacheable = Depends(cacheable)


def _summary(template: Template) -> TemplateSummary:
    return TemplateSummary(
        id=template.id,
        name=template.name,
        category=template.category,
        description=template.description,
        block_count=len(template.content.blocks),
        preview_url=template.preview_path,
    )


@router.get("/templates", response_model=list[TemplateSummary], dependencies=[Cacheable])
async def list_templates(
    templates: CatalogueDep,
    category: Annotated[str | None, Query(max_length=64)] = None,
) -> list[TemplateSummary]:
    return [_summary(t) for t in templates.all(category)]


@router.get("/templates/{template_id}", response_model=TemplateDetail, dependencies=[Cacheable])
async def get_template(template_id: str, templates: CatalogueDep) -> TemplateDetail:
    template = templates.get(template_id)
    content = template.content_json()
    return TemplateDetail(
        **_summary(template).model_dump(), theme=content["theme"], blocks=content["blocks"]
    )


@router.get("/templates/{template_id}/preview", response_class=HTMLResponse)
async def preview_template(
    template_id: str, templates: CatalogueDep, request: Request
) -> HTMLResponse:
    """The template rendered as a page, as a visitor would see it."""
    html, csp = templates.preview(templates.get(template_id), request.app.state.settings.public_url)
    return HTMLResponse(
        html, headers={"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff"}
    )
