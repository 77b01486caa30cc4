"""All SQL of the pages domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import defer

from landform.core.unicode_case import contains_pattern, lowered
from landform.pages.models import LandingPage, PageVersion, SlugRedirect


async def owned_page(
    session: AsyncSession, owner_id: uuid.UUID, page_id: uuid.UUID, *, for_update: bool = False
) -> LandingPage | None:
    query = select(LandingPage).where(LandingPage.id == page_id, LandingPage.owner_id == owner_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def owned_pages(
    session: AsyncSession, owner_id: uuid.UUID, page_ids: list[uuid.UUID]
) -> list[LandingPage]:
    """Those of ``page_ids`` the owner has, in one statement."""
    query = select(LandingPage).where(
        LandingPage.owner_id == owner_id, LandingPage.id.in_(page_ids)
    )
    return list((await session.scalars(query)).all())


async def owned_page_ids(session: AsyncSession, owner_id: uuid.UUID) -> list[uuid.UUID]:
    query = select(LandingPage.id).where(LandingPage.owner_id == owner_id)
    return list((await session.scalars(query)).all())


async def list_owned(
    session: AsyncSession,
    owner_id: uuid.UUID,
    *,
    status: str | None,
    search: str | None,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[LandingPage]:
    # A listing shows no content: decoding every page's blocks cost a
    # 20-page list most of its time.
    query = (
        select(LandingPage)
        .options(defer(LandingPage.content), defer(LandingPage.seo))
        .where(LandingPage.owner_id == owner_id)
    )
    if status:
        query = query.where(LandingPage.status == status)
    if search:
        query = query.where(lowered(LandingPage.title).like(contains_pattern(search), escape="\\"))
    if before_id is not None:
        query = query.where(LandingPage.id < before_id)
    query = query.order_by(LandingPage.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def slug_taken(session: AsyncSession, slug: str, except_id: uuid.UUID | None = None) -> bool:
    query = select(LandingPage.id).where(LandingPage.slug == slug)
    if except_id is not None:
        query = query.where(LandingPage.id != except_id)
    return await session.scalar(query) is not None


async def redirect_owner(session: AsyncSession, slug: str) -> uuid.UUID | None:
    """Whose page ``slug`` (a former address) sends its visitors to."""
    return await session.scalar(
        select(LandingPage.owner_id)
        .join(SlugRedirect, SlugRedirect.page_id == LandingPage.id)
        .where(SlugRedirect.slug == slug)
    )


async def slugs_like(session: AsyncSession, base: str) -> set[str]:
    """Slugs starting with ``base`` that are in use: pages', and former
    addresses that still send visitors on (a slug made up for a new page
    does not take one of those; a slug chosen by hand may)."""
    rows = await session.scalars(
        select(LandingPage.slug)
        .where(LandingPage.slug.like(f"{base}%"))
        .union(select(SlugRedirect.slug).where(SlugRedirect.slug.like(f"{base}%")))
    )
    return set(rows.all())


async def redirect_slug(
    session: AsyncSession, slug: str, page_id: uuid.UUID, now: datetime
) -> None:
    """``slug`` (a live page's former address) sends its visitors to the page."""
    await session.execute(delete(SlugRedirect).where(SlugRedirect.slug == slug))
    session.add(SlugRedirect(slug=slug, page_id=page_id, created_at=now))


async def take_redirect(session: AsyncSession, slug: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """A page takes ``slug``: it no longer redirects. The page (and its
    owner) it sent visitors to, if it did."""
    found = (
        await session.execute(
            select(SlugRedirect.page_id, LandingPage.owner_id)
            .join(LandingPage, LandingPage.id == SlugRedirect.page_id)
            .where(SlugRedirect.slug == slug)
        )
    ).first()
    if found is None:
        return None
    await session.execute(delete(SlugRedirect).where(SlugRedirect.slug == slug))
    return found[0], found[1]


async def redirects_to(session: AsyncSession, page_id: uuid.UUID) -> list[str]:
    """The former addresses that send visitors to this page."""
    rows = await session.scalars(select(SlugRedirect.slug).where(SlugRedirect.page_id == page_id))
    return list(rows.all())


async def moved_to(session: AsyncSession | AsyncConnection, slug: str) -> str | None:
    """Where the published page that lived at ``slug`` lives now, if any."""
    row = await session.execute(_MOVED_TO, {"slug": slug})
    found = row.first()
    return str(found[0]) if found is not None else None


_MOVED_TO = text(
    "SELECT p.slug FROM slug_redirects r JOIN landing_pages p ON p.id = r.page_id "
    "WHERE r.slug = :slug AND p.status = 'published'"
)


async def last_version_number(session: AsyncSession, page_id: uuid.UUID) -> int:
    number = await session.scalar(
        select(func.max(PageVersion.number)).where(PageVersion.page_id == page_id)
    )
    return int(number or 0)


async def forget_versions_before(session: AsyncSession, page_id: uuid.UUID, number: int) -> None:
    """Delete the page's versions numbered below ``number`` (with what they
    hold of files: a file only they showed may be deleted then)."""
    if number > 1:
        await session.execute(
            delete(PageVersion).where(PageVersion.page_id == page_id, PageVersion.number < number)
        )


async def versions_of(
    session: AsyncSession, page_id: uuid.UUID, before: int | None = None, limit: int | None = None
) -> list[Any]:
    """Newest first; those numbered below ``before``, at most ``limit``."""
    query = (
        select(PageVersion.number, PageVersion.title, PageVersion.slug, PageVersion.created_at)
        .where(PageVersion.page_id == page_id)
        .order_by(PageVersion.number.desc())
    )
    if before is not None:
        query = query.where(PageVersion.number < before)
    if limit is not None:
        query = query.limit(limit)
    return list((await session.execute(query)).all())


async def owned_versions_of_pages(
    session: AsyncSession, owner_id: uuid.UUID, page_ids: list[uuid.UUID]
) -> list[Any]:
    """``versions_of`` for those of ``page_ids`` the owner has, in one
    statement, each row with its ``page_id``."""
    rows = await session.execute(
        select(
            PageVersion.page_id,
            PageVersion.number,
            PageVersion.title,
            PageVersion.slug,
            PageVersion.created_at,
        )
        .join(LandingPage, LandingPage.id == PageVersion.page_id)
        .where(PageVersion.page_id.in_(page_ids), LandingPage.owner_id == owner_id)
        .order_by(PageVersion.page_id, PageVersion.number.desc())
    )
    return list(rows.all())


async def version(session: AsyncSession, page_id: uuid.UUID, number: int) -> PageVersion | None:
    return await session.scalar(
        select(PageVersion).where(PageVersion.page_id == page_id, PageVersion.number == number)
    )


async def delete_page(session: AsyncSession, page_id: uuid.UUID) -> None:
    await session.execute(delete(PageVersion).where(PageVersion.page_id == page_id))
    await session.execute(delete(LandingPage).where(LandingPage.id == page_id))


# The public path's queries: plain SQL, no ORM objects, as little as it needs.

_PUBLISHED_BY_SLUG = text(
    "SELECT v.html, v.html_gzip, v.html_br, v.etag, v.csp, p.id, p.owner_id FROM landing_pages p "
    "JOIN page_versions v ON v.page_id = p.id AND v.number = p.published_number "
    "WHERE p.slug = :slug AND p.status = 'published'"
)


async def published_slugs(session: AsyncSession, page_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The slugs of those of ``page_ids`` that are published."""
    rows = await session.execute(
        select(LandingPage.id, LandingPage.slug).where(
            LandingPage.id.in_(page_ids), LandingPage.status == "published"
        )
    )
    return {row.id: row.slug for row in rows}


async def published_by_slug(session: AsyncSession | AsyncConnection, slug: str) -> Any:
    return (await session.execute(_PUBLISHED_BY_SLUG, {"slug": slug})).first()


async def indexable_published(session: AsyncSession, limit: int) -> list[Any]:
    """Published pages, newest first, but those marked noindex: filtered by
    the query, so they do not use up ``limit`` (a sitemap's 50,000)."""
    noindex = func.coalesce(PageVersion.seo["noindex"].as_boolean(), False)
    rows = await session.execute(
        select(LandingPage.slug, LandingPage.published_at, PageVersion.seo)
        .join(
            PageVersion,
            (PageVersion.page_id == LandingPage.id)
            & (PageVersion.number == LandingPage.published_number),
        )
        .where(LandingPage.status == "published", noindex.is_(False))
        .order_by(LandingPage.published_at.desc())
        .limit(limit)
    )
    return list(rows.all())


# What analytics needs to know about pages.


async def published_owner(
    connection: AsyncSession | AsyncConnection, *, page_id: uuid.UUID | None, slug: str | None
) -> Any:
    """``(id, owner_id, slug)`` of a published page given its id or slug."""
    query = select(LandingPage.id, LandingPage.owner_id, LandingPage.slug).where(
        LandingPage.status == "published"
    )
    if page_id is not None:
        query = query.where(LandingPage.id == page_id)
    else:
        query = query.where(LandingPage.slug == slug)
    return (await connection.execute(query)).first()


def owned_ids(owner_id: uuid.UUID) -> Select[uuid.UUID]:
    """The ids of every page an owner has, as SQL to embed in another
    query (an owner with thousands of pages costs no round trip of ids)."""
    return select(LandingPage.id).where(LandingPage.owner_id == owner_id)


async def owned_titles(
    session: AsyncSession, owner_id: uuid.UUID, page_ids: set[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """Those of ``page_ids`` the owner still has: id → (title, slug, status)."""
    if not page_ids:
        return {}
    rows = await session.execute(
        select(LandingPage.id, LandingPage.title, LandingPage.slug, LandingPage.status).where(
            LandingPage.owner_id == owner_id, LandingPage.id.in_(page_ids)
        )
    )
    return {row.id: row for row in rows}


async def count_owned(session: AsyncSession, owner_id: uuid.UUID) -> int:
    query = select(func.count()).select_from(LandingPage).where(LandingPage.owner_id == owner_id)
    return int(await session.scalar(query) or 0)
