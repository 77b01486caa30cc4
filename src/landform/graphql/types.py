"""The graph's object types. Each is built from a domain object; fields
that follow a relation resolve through the request's DataLoaders."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy
import strawberry
from strawberry.scalars import JSON

from landform.core.errors import paths_renamed
from landform.core.pagination import encode_cursor
from landform.files.schemas import FilePublic
from landform.graphql.context import Context
from landform.pages.errors import PageNotFound, VersionNotFound
from landform.pages.models import LandingPage as PageModel
from landform.pages.schemas import VERSION_MAX

if TYPE_CHECKING:
    from landform.auth.models import ApiKey as ApiKeyModel
    from landform.auth.models import User as UserModel
    from landform.files.models import StoredFile
    from landform.templates.service import Template as TemplateModel

Info = strawberry.Info[Context, None]


@strawberry.enum(description="Whether visitors can see the page at its slug.")
class PageStatus(enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"


@strawberry.enum
class Interval(enum.Enum):
    HOUR = "hour"
    DAY = "day"


@strawberry.input(description="A time range in UTC: `from` inclusive, `to` exclusive.")
class DateRange:
    start: datetime | None = strawberry.field(default=None, name="from")
    end: datetime | None = strawberry.field(default=None, name="to")


# What the services name a bad bound, as the graph's caller sent it.
RANGE_PATHS = {"from": "range.from", "to": "range.to"}


@strawberry.federation.type(keys=["id"], description="An account (only your own is visible).")
class User:
    id: strawberry.ID
    email: str
    role: str
    email_verified: bool
    created_at: datetime

    @classmethod
    def of(cls, user: UserModel) -> User:
        return cls(
            id=strawberry.ID(str(user.id)),
            email=user.email,
            role=user.role,
            email_verified=user.email_verified_at is not None,
            created_at=user.created_at,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> User | None:
        user = await info.context.loaders.user.load(parse_id(id))
        return cls.of(user) if user is not None else None


@strawberry.federation.type(keys=["id"], description="A template from the built-in catalogue.")
class Template:
    id: strawberry.ID
    name: str
    category: str
    description: str
    block_count: int
    preview_url: str
    theme: JSON
    blocks: JSON

    @classmethod
    def of(cls, template: TemplateModel) -> Template:
        content = template.content_json()
        return cls(
            id=strawberry.ID(template.id),
            name=template.name,
            category=template.category,
            description=template.description,
            block_count=len(template.content.blocks),
            preview_url=template.preview_path,
            theme=JSON(content["theme"]),
            blocks=JSON(content["blocks"]),
        )

    @classmethod
    def resolve_reference(cls, info: Info, id: strawberry.ID) -> Template | None:
        template = info.context.services.templates.find(str(id))
        return cls.of(template) if template is not None else None


@strawberry.type(description="An immutable published version of a page.")
class PageVersion:
    number: int
    title: str
    slug: str
    created_at: datetime
    is_live: bool


@strawberry.type(description="A published version whole: what it showed, to read before a restore.")
class PageVersionDetail(PageVersion):
    content: JSON
    seo: JSON


@strawberry.type(description="Totals over a range; visitors are daily unique visitors.")
class AnalyticsSummary:
    views: int
    visitors: int
    conversions: int
    conversion_rate: float

    @classmethod
    def of(cls, metrics: dict[str, Any]) -> AnalyticsSummary:
        return cls(
            views=metrics["views"],
            visitors=metrics["visitors"],
            conversions=metrics["conversions"],
            conversion_rate=metrics["conversion_rate"],
        )


@strawberry.federation.type(keys=["id"], description="A landing page: its draft and what is live.")
class LandingPage:
    id: strawberry.ID
    title: str
    slug: str
    status: PageStatus
    version: int = strawberry.field(description="Counts every write; send it back to write safely.")
    published_version: int | None
    has_unpublished_changes: bool
    url: str
    template_id: str | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    page_id: strawberry.Private[uuid.UUID]
    owner_id: strawberry.Private[uuid.UUID]
    model: strawberry.Private[PageModel]

    @classmethod
    def of(cls, page: PageModel, url: str) -> LandingPage:
        return cls(
            id=strawberry.ID(str(page.id)),
            title=page.title,
            slug=page.slug,
            status=PageStatus(page.status),
            version=page.version,
            published_version=page.live_version,
            has_unpublished_changes=page.has_unpublished_changes,
            url=url,
            template_id=page.template_id,
            created_at=page.created_at,
            updated_at=page.updated_at,
            published_at=page.live_since,
            page_id=page.id,
            owner_id=page.owner_id,
            model=page,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> LandingPage | None:
        page = await info.context.loaders.page.load(parse_id(id))
        return page_of(info, page) if page is not None else None

    @strawberry.field(description="Theme and blocks (schema: GET /blocks/schema).")
    async def content(self, info: Info) -> JSON:
        return JSON((await self._whole(info)).content)

    @strawberry.field
    async def seo(self, info: Info) -> JSON:
        return JSON((await self._whole(info)).seo)

    async def _whole(self, info: Info) -> PageModel:
        """The page with its content: a listed page comes without (lists
        leave it out), and is then loaded, with the others, in one go."""
        if not {"content", "seo"} & sqlalchemy.inspect(self.model).unloaded:
            return self.model
        page = await info.context.loaders.page.load(self.page_id)
        if page is None:
            raise PageNotFound("no such landing page")
        return page

    @strawberry.field(description="Published versions, newest first.")
    async def versions(self, info: Info) -> list[PageVersion]:
        rows = await info.context.loaders.versions.load(self.page_id)
        return [self._version(row) for row in rows]

    @strawberry.field(
        description="Published version `number` with its content and SEO; null if none."
    )
    async def version_detail(self, info: Info, number: int) -> PageVersionDetail | None:
        if not 1 <= number <= VERSION_MAX:
            return None
        try:
            _page, row = await info.context.services.pages.version(
                await info.context.owner(), self.page_id, number
            )
        except VersionNotFound:
            return None
        return PageVersionDetail(
            **vars(self._version(row)), content=JSON(row.content), seo=JSON(row.seo)
        )

    @strawberry.field(description="The newest published version, if any.")
    async def latest_version(self, info: Info) -> PageVersion | None:
        rows = await info.context.loaders.versions.load(self.page_id)
        return self._version(rows[0]) if rows else None

    @strawberry.field
    async def owner(self, info: Info) -> User | None:
        user = await info.context.loaders.user.load(self.owner_id)
        return User.of(user) if user is not None else None

    @strawberry.field(description="The template the page started from.")
    def template(self, info: Info) -> Template | None:
        if self.template_id is None:
            return None
        template = info.context.services.templates.find(self.template_id)
        return Template.of(template) if template is not None else None

    @strawberry.field(description="Totals over a range (default: the last 7 days).")
    async def analytics(self, info: Info, range: DateRange | None = None) -> AnalyticsSummary:
        key = (self.page_id, range.start if range else None, range.end if range else None)
        with paths_renamed(RANGE_PATHS):
            return AnalyticsSummary.of(await info.context.loaders.summary.load(key))

    def _version(self, row: Any) -> PageVersion:
        return PageVersion(
            number=row.number,
            title=row.title,
            slug=row.slug,
            created_at=row.created_at,
            is_live=row.number == self.published_version,
        )


def page_of(info: Info, page: PageModel) -> LandingPage:
    return LandingPage.of(page, info.context.services.pages.public_link(page.slug))


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None = strawberry.field(
        description="The last edge's cursor (null when there are none): `after` for the next page"
    )

    @classmethod
    def of(cls, cursors: list[str], has_next_page: bool) -> PageInfo:
        # On the last page too, so a client can come back later for what
        # was added after it (Relay's connections spec).
        return cls(has_next_page=has_next_page, end_cursor=cursors[-1] if cursors else None)


@strawberry.type
class LandingPageEdge:
    cursor: str
    node: LandingPage


@strawberry.type(description="Newest first; pass `pageInfo.endCursor` as `after` for more.")
class LandingPageConnection:
    edges: list[LandingPageEdge]
    page_info: PageInfo

    @strawberry.field(description="The edges' nodes, for clients that need no cursors.")
    def nodes(self) -> list[LandingPage]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="An uploaded file. Uploads are REST-only: POST /files/upload.")
class File:
    id: strawberry.ID
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
    def of(cls, record: StoredFile) -> File:
        public = FilePublic.of(record).model_dump()
        return cls(**{**public, "id": strawberry.ID(str(public["id"]))})


@strawberry.type
class FileEdge:
    cursor: str
    node: File


@strawberry.type
class FileConnection:
    edges: list[FileEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[File]:
        return [edge.node for edge in self.edges]


@strawberry.type
class ApiKey:
    id: strawberry.ID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKeyModel) -> ApiKey:
        return cls(
            id=strawberry.ID(str(key.id)),
            name=key.name,
            prefix=key.prefix,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


@strawberry.type(description="A new API key; `key` is shown this once.")
class CreatedApiKey:
    api_key: ApiKey
    key: str


@strawberry.type
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


@strawberry.type
class Metrics:
    views: int
    visitors: int
    conversions: int
    conversion_rate: float


@strawberry.type
class Totals(Metrics):
    bot_views: int


@strawberry.type
class SeriesPoint(Metrics):
    time: str


@strawberry.type
class Breakdown(Metrics):
    value: str


@strawberry.type(description="A page's report, as GET /analytics/pages/{id} gives it.")
class PageAnalytics:
    page: LandingPage
    start: str = strawberry.field(name="from")
    end: str = strawberry.field(name="to")
    interval: Interval
    totals: Totals
    series: list[SeriesPoint]
    top_referrers: list[Breakdown]
    utm_sources: list[Breakdown]
    utm_mediums: list[Breakdown]
    utm_campaigns: list[Breakdown]
    devices: list[Breakdown]
    browsers: list[Breakdown]
    operating_systems: list[Breakdown]
    countries: list[Breakdown]


@strawberry.type
class MetricsChange:
    views: float | None
    visitors: float | None
    conversions: float | None
    conversion_rate: float | None


@strawberry.type
class TopPage(Metrics):
    id: strawberry.ID
    title: str
    slug: str


@strawberry.type(description="Across all your pages, as GET /analytics/dashboard gives it.")
class Dashboard:
    start: str = strawberry.field(name="from")
    end: str = strawberry.field(name="to")
    totals: Metrics
    previous_totals: Metrics
    change: MetricsChange
    top_pages: list[TopPage]
    visitors_last_5_minutes: int
    pages: int


@strawberry.type(description="Live counts, once a second.")
class LiveViews:
    at: int
    views_per_second: JSON = strawberry.field(description="Views per page id in the last second.")
    total_views_per_second: int
    current_visitors: int = strawberry.field(description="Distinct visitors, last 5 minutes.")
    note: str | None = strawberry.field(
        default=None,
        description="Set while the counts are partial: with Redis away, only the views "
        "this machine's workers took.",
    )


def parse_id(value: strawberry.ID | str) -> uuid.UUID:
    """A page, user or file id; one that is not an id names nothing (so
    not found, as any id that is not yours)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return uuid.UUID(int=0)


def cursor_of(object_id: uuid.UUID) -> str:
    return encode_cursor(object_id)
