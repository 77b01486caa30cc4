"""The graph's queries: thin resolvers over the services."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from landform.core.errors import ValidationFailed, paths_renamed
from landform.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, clamp_limit
from landform.graphql.errors import within_argument
from landform.graphql.types import (
    RANGE_PATHS,
    ApiKey,
    Breakdown,
    Dashboard,
    DateRange,
    File,
    FileConnection,
    FileEdge,
    Info,
    Interval,
    LandingPage,
    LandingPageConnection,
    LandingPageEdge,
    Metrics,
    MetricsChange,
    PageAnalytics,
    PageInfo,
    PageStatus,
    SeriesPoint,
    Template,
    TopPage,
    Totals,
    User,
    cursor_of,
    page_of,
    parse_id,
)
from landform.pages.errors import PageNotFound

FIRST_DESCRIPTION = f"Page size, 1..{MAX_LIMIT}."


def page_size(first: int) -> int:
    """REST's page-size rule, its error naming this argument."""
    try:
        return clamp_limit(first)
    except ValidationFailed as exc:
        exc.message = exc.message.replace("limit", "first")
        exc.details = [{**detail, "path": "first"} for detail in exc.details]
        raise


def _range(range: DateRange | None) -> tuple[Any, Any]:
    return (range.start, range.end) if range else (None, None)


# What the services name a bad cursor, as the graph's caller sent it.
_AFTER = {"cursor": "after"}


def _breakdowns(items: list[dict[str, Any]]) -> list[Breakdown]:
    return [Breakdown(**item) for item in items]


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in account.")
    async def me(self, info: Info) -> User:
        context = info.context
        return User.of(await context.services.auth.me(await context.principal()))

    @strawberry.field(description="One of your pages; null (with a not_found error) otherwise.")
    async def landing_page(self, info: Info, id: strawberry.ID) -> LandingPage | None:
        page = await info.context.services.pages.get(await info.context.owner(), parse_id(id))
        info.context.loaders.page.prime(page.id, page)
        return page_of(info, page)

    @strawberry.field(description="Your pages, newest first, filtered as GET /landing-pages.")
    async def landing_pages(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description=FIRST_DESCRIPTION)] = DEFAULT_LIMIT,
        after: str | None = None,
        status: PageStatus | None = None,
        search: Annotated[str | None, strawberry.argument(description="In titles.")] = None,
    ) -> LandingPageConnection:
        if search is not None and (len(search) > 200 or "\x00" in search):
            nul = "\x00" in search
            problem = "must not contain NUL characters" if nul else "at most 200 characters"
            raise ValidationFailed(
                f"search: {problem}", details=[{"path": "search", "message": problem}]
            )
        owner = await info.context.owner()
        with paths_renamed(_AFTER):
            result = await info.context.services.pages.list_pages(
                owner,
                status=status.value if status else None,
                search=search,
                cursor=after,
                limit=page_size(first),
            )
        edges = []
        for page in result.items:
            edges.append(LandingPageEdge(cursor=cursor_of(page.id), node=page_of(info, page)))
        return LandingPageConnection(
            edges=edges,
            page_info=PageInfo.of([e.cursor for e in edges], result.next_cursor is not None),
        )

    @strawberry.field(description="The template catalogue.")
    def templates(self, info: Info, category: str | None = None) -> list[Template]:
        return [Template.of(t) for t in info.context.services.templates.all(category)]

    @strawberry.field
    def template(self, info: Info, id: strawberry.ID) -> Template | None:
        return Template.of(info.context.services.templates.get(str(id)))

    @strawberry.field(description="Your files, newest first. Uploads are REST-only.")
    async def files(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description=FIRST_DESCRIPTION)] = DEFAULT_LIMIT,
        after: str | None = None,
        category: str | None = None,
    ) -> FileConnection:
        owner = await info.context.owner()
        with paths_renamed(_AFTER):
            result = await info.context.services.files.list_files(
                owner, category=category, cursor=after, limit=page_size(first)
            )
        edges = [FileEdge(cursor=cursor_of(f.id), node=File.of(f)) for f in result.items]
        return FileConnection(
            edges=edges,
            page_info=PageInfo.of([e.cursor for e in edges], result.next_cursor is not None),
        )

    @strawberry.field(description="Your API keys (never their secrets).")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        keys = await info.context.services.auth.list_api_keys(await info.context.principal())
        return [ApiKey.of(key) for key in keys]

    @strawberry.field(description="A page's report (default range: the last 7 days).")
    async def page_analytics(
        self,
        info: Info,
        id: strawberry.ID,
        range: DateRange | None = None,
        interval: Interval | None = None,
    ) -> PageAnalytics | None:
        owner = await info.context.owner()
        start, end = _range(range)
        with paths_renamed(RANGE_PATHS):
            report = await info.context.services.analytics.page_report(
                owner, parse_id(id), start, end, interval.value if interval else None
            )
        page = await info.context.loaders.page.load(parse_id(id))
        if page is None:  # deleted meanwhile
            raise PageNotFound("no such landing page")
        return PageAnalytics(
            page=page_of(info, page),
            start=report["from"],
            end=report["to"],
            interval=Interval(report["interval"]),
            totals=Totals(**report["totals"]),
            series=[SeriesPoint(**point) for point in report["series"]],
            top_referrers=_breakdowns(report["top_referrers"]),
            utm_sources=_breakdowns(report["utm_sources"]),
            utm_mediums=_breakdowns(report["utm_mediums"]),
            utm_campaigns=_breakdowns(report["utm_campaigns"]),
            devices=_breakdowns(report["devices"]),
            browsers=_breakdowns(report["browsers"]),
            operating_systems=_breakdowns(report["operating_systems"]),
            countries=_breakdowns(report["countries"]),
        )

    @strawberry.field(description="Across all your pages (default range: the last 30 days).")
    async def dashboard(self, info: Info, range: DateRange | None = None) -> Dashboard:
        start, end = _range(range)
        owner = await info.context.owner()
        with paths_renamed(RANGE_PATHS):
            report = await info.context.services.analytics.dashboard(owner, start, end)
        return Dashboard(
            start=report["from"],
            end=report["to"],
            totals=Metrics(**report["totals"]),
            previous_totals=Metrics(**report["previous_totals"]),
            change=MetricsChange(**report["change"]),
            top_pages=[TopPage(**page) for page in report["top_pages"]],
            visitors_last_5_minutes=report["visitors_last_5_minutes"],
            pages=report["pages"],
        )

    @strawberry.field(
        description="The custom query language of POST /analytics/custom-query "
        "(docs/custom-queries.md); the same result."
    )
    async def custom_query(self, info: Info, query: JSON) -> JSON:
        owner = await info.context.owner()
        with within_argument("query", json=True):
            return JSON(await info.context.services.analytics.custom_query(owner, query))
