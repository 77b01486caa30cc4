from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal
from xml.sax.saxutils import escape as xml_escape

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse

from landform.auth.deps import PrincipalDep
from landform.core.conditional import etag_matches
from landform.core.errors import DomainError, paths_renamed
from landform.core.pagination import CURSOR_IN_QUERY
from landform.pages.blocks import block_json_schema
from landform.pages.errors import PreviewLinkInvalid, StaleVersionPrecondition
from landform.pages.models import LandingPage
from landform.pages.render import RenderedPage
from landform.pages.schemas import (
    VERSION_MAX,
    ContentUpdate,
    PageCreate,
    PageDetail,
    PageList,
    PageSummary,
    PageUpdate,
    PreviewLink,
    PreviewLinkIn,
    Seo,
    VersionDetail,
    VersionedWrite,
    VersionList,
    VersionSummary,
)
from landform.pages.service import ExpectedVersion, PageService

router = APIRouter(tags=["landing pages"])


async def page_service(request: Request) -> PageService:
    service: PageService = request.app.state.pages
    return service


PageServiceDep = Annotated[PageService, Depends(page_service)]
IfMatch = Annotated[
    str | None,
    Header(
        description='The page version this write is based on, e.g. "3" (from ETag); '
        'a list of versions (any of them), or "*" (any)'
    ),
]
# What a write that names the version it is based on can be told.
VERSIONED_WRITE: dict[int | str, dict[str, Any]] = {
    409: {"description": "`version_conflict`: the body's `version` is not the current one"},
    412: {"description": "`version_conflict`: the If-Match version is not the current one"},
}


def expected_version(if_match: str | None, body_version: int | None) -> ExpectedVersion | None:
    if if_match is not None and if_match.strip() != "*":  # "*": any version (RFC 9110)
        tags = [tag.strip() for tag in if_match.split(",")]
        # If-Match compares strongly (RFC 9110 13.1.1): a weak tag matches
        # nothing, so a list of weak tags alone fails whatever the version.
        strong = [tag for tag in tags if not tag.startswith("W/")]
        for tag in tags:
            _if_match_version(tag)  # each one well formed all the same
        if not strong:
            raise StaleVersionPrecondition(
                f"If-Match names only weak entity tags ({tags[0]}), which never match: "
                'send the ETag as GET gave it, e.g. "3"'
            )
        versions = [_if_match_version(tag) for tag in strong]
        if body_version is not None and body_version not in versions:
            raise DomainError(
                f"If-Match names version {versions[0]} and the body version {body_version}: "
                "send one of them",
                code="invalid_if_match",
            )
        return ExpectedVersion(versions[0], "if_match", frozenset(versions[1:]))
    if body_version is not None:
        return ExpectedVersion(body_version, "body")
    return None


def _if_match_version(tag: str) -> int:
    quoted = tag.strip().removeprefix("W/")
    # An entity tag is quoted (RFC 9110 8.8.3): a bare 3 is no "3".
    raw = quoted[1:-1] if len(quoted) >= 2 and quoted[0] == quoted[-1] == '"' else ""
    # The length first: Python refuses to read a number of over 4,300 digits.
    if not (
        raw.isascii()
        and raw.isdigit()
        and len(raw) <= len(str(VERSION_MAX))
        and 1 <= int(raw) <= VERSION_MAX
    ):
        raise DomainError(
            'If-Match must be a page version such as "3", as sent in the ETag header '
            '(or a list of them, or "*")',
            code="invalid_if_match",
        )
    return int(raw)


def summary(service: PageService, page: LandingPage) -> PageSummary:
    return PageSummary(
        id=page.id,
        title=page.title,
        slug=page.slug,
        status=page.status,
        version=page.version,
        published_version=page.live_version,
        has_unpublished_changes=page.has_unpublished_changes,
        template_id=page.template_id,
        url=service.public_link(page.slug),
        created_at=page.created_at,
        updated_at=page.updated_at,
        published_at=page.live_since,
    )


def detail(service: PageService, page: LandingPage, response: Response) -> PageDetail:
    response.headers["ETag"] = f'"{page.version}"'
    return PageDetail(
        **summary(service, page).model_dump(),
        seo=Seo.model_validate(page.seo),
        content=page.content,
    )


@router.post(
    "/landing-pages",
    status_code=201,
    response_model=PageDetail,
    responses={
        404: {"description": "`template_not_found`"},
        409: {"description": "`slug_taken`"},
    },
)
async def create_page(
    body: PageCreate, principal: PrincipalDep, service: PageServiceDep, response: Response
) -> PageDetail:
    """A new draft, empty or starting with a copy of a template's blocks."""
    page = await service.create(principal.user_id, body)
    response.headers["Location"] = f"/landing-pages/{page.id}"
    return detail(service, page, response)


@router.get("/landing-pages", response_model=PageList)
async def list_pages(
    principal: PrincipalDep,
    service: PageServiceDep,
    status: Literal["draft", "published"] | None = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=r"^[^\x00]*$", description="Search in titles")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
) -> PageList:
    with paths_renamed(CURSOR_IN_QUERY):
        page = await service.list_pages(
            principal.user_id, status=status, search=q, cursor=cursor, limit=limit
        )
    return PageList(items=[summary(service, p) for p in page.items], next_cursor=page.next_cursor)


@router.get(
    "/landing-pages/{page_id}",
    response_model=PageDetail,
    responses={304: {"description": "If-None-Match names the current version"}},
)
async def get_page(
    page_id: uuid.UUID,
    principal: PrincipalDep,
    service: PageServiceDep,
    response: Response,
    if_none_match: Annotated[
        str | None,
        Header(description='The version held, e.g. "3" (from ETag): 304 if it is current'),
    ] = None,
) -> PageDetail | Response:
    page = await service.get(principal.user_id, page_id)
    etag = f'"{page.version}"'
    if if_none_match is not None and etag_matches(if_none_match.encode("latin-1"), etag.encode()):
        # An editor polling for changes (RFC 9110 13.1.2) gets no body back.
        return Response(status_code=304, headers={"ETag": etag})
    return detail(service, page, response)


@router.put("/landing-pages/{page_id}", response_model=PageDetail, responses=VERSIONED_WRITE)
async def update_page(
    page_id: uuid.UUID,
    body: PageUpdate,
    principal: PrincipalDep,
    service: PageServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> PageDetail:
    """Title, slug and SEO. Fields left out are unchanged."""
    expected = expected_version(if_match, body.version)
    return detail(
        service, await service.update(principal.user_id, page_id, body, expected), response
    )


@router.put(
    "/landing-pages/{page_id}/content", response_model=PageDetail, responses=VERSIONED_WRITE
)
async def update_content(
    page_id: uuid.UUID,
    body: ContentUpdate,
    principal: PrincipalDep,
    service: PageServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> PageDetail:
    """Replace the draft's blocks (and optionally its theme).
    Visitors see the change after the next publish."""
    expected = expected_version(if_match, body.version)
    page = await service.update_content(principal.user_id, page_id, body, expected)
    return detail(service, page, response)


@router.delete("/landing-pages/{page_id}", status_code=204, responses=VERSIONED_WRITE)
async def delete_page(
    page_id: uuid.UUID, principal: PrincipalDep, service: PageServiceDep, if_match: IfMatch = None
) -> Response:
    await service.delete(principal.user_id, page_id, expected_version(if_match, None))
    return Response(status_code=204)


@router.post(
    "/landing-pages/{page_id}/publish",
    response_model=PageDetail,
    responses={
        **VERSIONED_WRITE,
        403: {"description": "`email_not_verified`: verify the address before publishing"},
    },
)
async def publish_page(
    page_id: uuid.UUID,
    principal: PrincipalDep,
    service: PageServiceDep,
    response: Response,
    body: VersionedWrite | None = None,
    if_match: IfMatch = None,
) -> PageDetail:
    expected = expected_version(if_match, body.version if body else None)
    return detail(service, await service.publish(principal.user_id, page_id, expected), response)


@router.post(
    "/landing-pages/{page_id}/unpublish", response_model=PageDetail, responses=VERSIONED_WRITE
)
async def unpublish_page(
    page_id: uuid.UUID,
    principal: PrincipalDep,
    service: PageServiceDep,
    response: Response,
    body: VersionedWrite | None = None,
    if_match: IfMatch = None,
) -> PageDetail:
    expected = expected_version(if_match, body.version if body else None)
    return detail(service, await service.unpublish(principal.user_id, page_id, expected), response)


@router.get("/landing-pages/{page_id}/versions", response_model=VersionList)
async def list_versions(
    page_id: uuid.UUID,
    principal: PrincipalDep,
    service: PageServiceDep,
    before: Annotated[
        int | None, Query(ge=1, le=VERSION_MAX, description="Only versions numbered below")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> VersionList:
    """Newest first, ``limit`` at a time (``next_before`` for the next)."""
    page, rows, next_before = await service.versions(principal.user_id, page_id, before, limit)
    return VersionList(
        items=[version_summary(row, page.live_version) for row in rows],
        next_before=next_before,
    )


def version_summary(row: Any, live: int | None) -> VersionSummary:
    return VersionSummary(
        number=row.number,
        title=row.title,
        slug=row.slug,
        created_at=row.created_at,
        is_live=row.number == live,
    )


VersionNumber = Annotated[int, Path(ge=1, le=VERSION_MAX)]


@router.get("/landing-pages/{page_id}/versions/{number}", response_model=VersionDetail)
async def read_version(
    page_id: uuid.UUID, number: VersionNumber, principal: PrincipalDep, service: PageServiceDep
) -> VersionDetail:
    """A published version as it was: its title, slug, SEO and content."""
    page, version = await service.version(principal.user_id, page_id, number)
    return VersionDetail(
        **version_summary(version, page.live_version).model_dump(),
        seo=Seo.model_validate(version.seo),
        content=version.content,
    )


@router.get("/landing-pages/{page_id}/preview", response_class=HTMLResponse)
async def preview_draft(
    page_id: uuid.UUID, principal: PrincipalDep, service: PageServiceDep
) -> HTMLResponse:
    """The draft rendered as visitors would see it once published (not
    indexed, no analytics), to look at before publishing."""
    return preview_response(await service.preview(principal.user_id, page_id))


@router.post("/landing-pages/{page_id}/preview-link", status_code=201, response_model=PreviewLink)
async def create_preview_link(
    page_id: uuid.UUID,
    principal: PrincipalDep,
    service: PageServiceDep,
    body: PreviewLinkIn | None = None,
) -> PreviewLink:
    """A link to the draft's preview that opens in any browser without
    signing in (to look at on a phone, or to send for sign-off), until it
    expires (`expires_in` seconds: a day unless said, a week at most). It
    shows the draft as it is when opened."""
    seconds = (body or PreviewLinkIn()).expires_in
    url, expires_at = await service.preview_link(principal.user_id, page_id, seconds)
    return PreviewLink(url=url, expires_at=expires_at)


@router.get("/landing-pages/{page_id}/versions/{number}/preview", response_class=HTMLResponse)
async def preview_version(
    page_id: uuid.UUID, number: VersionNumber, principal: PrincipalDep, service: PageServiceDep
) -> HTMLResponse:
    """A published version rendered, to look at before restoring it."""
    return preview_response(await service.preview(principal.user_id, page_id, number))


def preview_response(page: RenderedPage) -> HTMLResponse:
    return HTMLResponse(
        page.html,
        headers={
            "Content-Security-Policy": page.csp,
            "X-Content-Type-Options": "nosniff",
            "X-Robots-Tag": "noindex",
            # The owner's draft: no shared cache keeps it, no browser reuses it.
            "Cache-Control": "private, no-store",
            # A preview link's URL is its secret: no link on the draft may
            # carry it off in a Referer.
            "Referrer-Policy": "no-referrer",
        },
    )


@router.post(
    "/landing-pages/{page_id}/versions/{number}/restore",
    response_model=PageDetail,
    responses=VERSIONED_WRITE,
)
async def restore_version(
    page_id: uuid.UUID,
    number: VersionNumber,
    principal: PrincipalDep,
    service: PageServiceDep,
    response: Response,
    body: VersionedWrite | None = None,
    if_match: IfMatch = None,
) -> PageDetail:
    """Copy a published version into the draft. Publish again to make it live."""
    expected = expected_version(if_match, body.version if body else None)
    page = await service.restore(principal.user_id, page_id, number, expected)
    return detail(service, page, response)


@router.get("/blocks/schema", tags=["blocks"])
async def blocks_schema() -> dict[str, object]:
    """The JSON Schema of a page's content (theme and blocks)."""
    return block_json_schema()


public_router = APIRouter(tags=["public"])


# A page for a browser, not the API: outside the OpenAPI document (its
# answers, a 404 included, are HTML).
@public_router.get("/preview/{token}", response_class=HTMLResponse, include_in_schema=False)
async def shared_preview(token: str, service: PageServiceDep) -> HTMLResponse:
    """A preview link's draft (``POST /landing-pages/{id}/preview-link``)."""
    try:
        page = await service.shared_preview(token)
    except PreviewLinkInvalid as exc:
        # Opened in a browser: a page a person can read, not the API's JSON.
        return HTMLResponse(
            _LINK_GONE.format(message=exc.message),
            status_code=404,
            headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex"},
        )
    return preview_response(page)


_LINK_GONE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    '<title>Preview link</title></head><body style="font:16px/1.5 system-ui,sans-serif;'
    'max-width:32rem;margin:4rem auto;padding:0 1rem"><h1>This preview is not available</h1>'
    "<p>{message}. Ask whoever sent it for a new link.</p></body></html>"
)


# HEAD too (crawlers and monitors ask so), left out of the OpenAPI document.
@public_router.head("/robots.txt", response_class=PlainTextResponse, include_in_schema=False)
@public_router.get("/robots.txt", response_class=PlainTextResponse)
async def robots(service: PageServiceDep) -> PlainTextResponse:
    body = f"User-agent: *\nAllow: /\nSitemap: {service.public_url}/sitemap.xml\n"
    return PlainTextResponse(body, headers={"Cache-Control": "public, max-age=3600"})


class XMLResponse(Response):
    media_type = "application/xml"


@public_router.head("/sitemap.xml", response_class=XMLResponse, include_in_schema=False)
@public_router.get("/sitemap.xml", response_class=XMLResponse)
async def sitemap(service: PageServiceDep) -> XMLResponse:
    """Published pages that allow indexing."""
    entries = await service.sitemap_entries()
    urls = "".join(
        f"<url><loc>{xml_escape(service.public_link(slug))}</loc>"
        f"<lastmod>{published_at.date().isoformat()}</lastmod></url>"
        for slug, published_at in entries
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>\n'
    )
    return XMLResponse(body, headers={"Cache-Control": "public, max-age=300"})
