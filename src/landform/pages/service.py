"""Landing pages: drafts, optimistic versioning, slugs, publishing immutable
rendered versions, restoring, and deleting. Owner-scoped throughout: another
user's page does not exist (404)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import brotli  # type: ignore[import-untyped]
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from landform.auth import repository as auth_repo
from landform.auth.errors import EmailNotVerified
from landform.auth.service import refuse_if_closed
from landform.core.change_log import record_change
from landform.core.clock import Clock
from landform.core.db import Database, hold_until_commit
from landform.core.errors import ValidationFailed
from landform.core.ids import new_id
from landform.core.pagination import Page, clamp_limit, decode_cursor, page_of
from landform.files import repository as file_repo
from landform.files.models import VersionAsset
from landform.files.service import bytes_lock
from landform.pages import repository as repo
from landform.pages.asset_urls import assets_shown, assets_that_cannot_be
from landform.pages.blocks import PageContent
from landform.pages.errors import (
    InvalidSlug,
    PageErrorCode,
    PageNotFound,
    PreviewLinkInvalid,
    SlugTaken,
    StaleVersion,
    StaleVersionPrecondition,
    UnknownAsset,
    VersionNotFound,
)
from landform.pages.models import LandingPage, PageVersion
from landform.pages.preview_links import PreviewGrant, PreviewLinks
from landform.pages.render import ImageInfo, ImageSource, RenderedPage, RenderInput, render_page
from landform.pages.render import Seo as RenderSeo
from landform.pages.schemas import ContentUpdate, PageCreate, PageUpdate, Seo, og_image_problem
from landform.pages.slugs import RESERVED, slug_problem, slugify
from landform.templates.service import TemplateCatalogue

# Brotli holds the GIL. Quality 11 takes ~57 ms for a 40 KB page and would
# stall every request of the worker meanwhile; quality 5 takes ~0.7 ms and is
# 14 % larger (10.4 KB against 9.1 KB), still smaller than gzip -9 (10.9 KB).
BROTLI_QUALITY = 5

# Rendering and compressing take milliseconds of CPU; beyond this size they
# move off the event loop so other requests keep flowing.
_OFFLOAD_BYTES = 64 * 1024

# Creations racing for the same title each pick a free slug; all but one
# find it taken at commit and pick again (each retry sees the winners).
SLUG_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class PublicChange:
    """What visitors see at ``slugs`` changed: ``event`` is published,
    unpublished, moved (a new slug) or deleted."""

    event: str
    page_id: uuid.UUID
    owner_id: uuid.UUID
    slugs: tuple[str, ...]
    # The change log's entries for it (the process that made the change
    # need not act on them again).
    logged: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ExpectedVersion:
    """The version a write is based on, and where the client said it (an
    If-Match list may name several: any of them will do)."""

    value: int
    source: Literal["if_match", "body"]
    or_any_of: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Rendered:
    html: bytes
    html_gzip: bytes
    html_br: bytes
    etag: str
    csp: str


def render_version(
    page_id: uuid.UUID,
    slug: str,
    title: str,
    seo: dict[str, Any],
    content: dict[str, Any],
    public_url: str,
    images: dict[str, ImageInfo] | None = None,
) -> Rendered:
    """Render a page to its final bytes: HTML, gzip and brotli, strong ETag."""
    parsed = PageContent.model_validate(content)
    seo_model = Seo.model_validate(seo)
    page = render_page(
        RenderInput(
            page_id=str(page_id),
            slug=slug,
            title=title,
            seo=RenderSeo(**seo_model.model_dump()),
            content=parsed,
            public_url=public_url.rstrip("/"),
            images=images or {},
        )
    )
    html = page.html.encode("utf-8")
    return Rendered(
        html=html,
        html_gzip=gzip.compress(html, compresslevel=9, mtime=0),
        html_br=brotli.compress(html, quality=BROTLI_QUALITY, mode=brotli.MODE_TEXT),
        etag='"' + hashlib.sha256(html).hexdigest()[:40] + '"',
        csp=page.csp,
    )


class PageService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        templates: TemplateCatalogue,
        public_url: str,
        on_public_change: Callable[[PublicChange], None] | None = None,
        on_rendered: Callable[[int], None] | None = None,
        preview_links: PreviewLinks | None = None,
        versions_kept: int = 100,
    ) -> None:
        self.db = db
        self.versions_kept = versions_kept
        self.preview_links = preview_links
        self.clock = clock
        self.templates = templates
        self.public_url = public_url.rstrip("/")
        # Called after a commit that changed what a slug serves, so this
        # process drops its copy at once (others learn it from the change
        # log) and CDNs are told to purge.
        self.on_public_change = on_public_change or (lambda _change: None)
        # Told how long each publish's render took (µs): page generation.
        self.on_rendered = on_rendered or (lambda _micros: None)

    def public_link(self, slug: str) -> str:
        return f"{self.public_url}/{slug}"

    # Reading

    async def get(self, owner: uuid.UUID, page_id: uuid.UUID) -> LandingPage:
        async with self.db.read(actor=owner) as session:
            page = await repo.owned_page(session, owner, page_id)
        if page is None:
            raise PageNotFound("no such landing page")
        return page

    async def get_many(
        self, owner: uuid.UUID, page_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, LandingPage]:
        """Those of ``page_ids`` the owner has (others are simply absent)."""
        async with self.db.read(actor=owner) as session:
            pages = await repo.owned_pages(session, owner, page_ids)
        return {page.id: page for page in pages}

    async def list_pages(
        self,
        owner: uuid.UUID,
        *,
        status: str | None = None,
        search: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[LandingPage]:
        size = clamp_limit(limit)
        before = decode_cursor(cursor)
        async with self.db.read(actor=owner) as session:
            rows = await repo.list_owned(
                session, owner, status=status, search=search, before_id=before, limit=size + 1
            )
        return page_of(rows, size)

    async def versions(
        self, owner: uuid.UUID, page_id: uuid.UUID, before: int | None = None, limit: int = 50
    ) -> tuple[LandingPage, list[Any], int | None]:
        """The page, a page of its versions (newest first, numbered below
        ``before``), and the ``before`` of the next page (None: no more)."""
        async with self.db.read(actor=owner) as session:
            page = await repo.owned_page(session, owner, page_id)
            if page is None:
                raise PageNotFound("no such landing page")
            rows = await repo.versions_of(session, page_id, before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return page, rows, rows[-1].number if more else None

    async def version(
        self, owner: uuid.UUID, page_id: uuid.UUID, number: int
    ) -> tuple[LandingPage, PageVersion]:
        async with self.db.read(actor=owner) as session:
            page = await repo.owned_page(session, owner, page_id)
            if page is None:
                raise PageNotFound("no such landing page")
            version = await repo.version(session, page_id, number)
            if version is None:
                raise VersionNotFound(f"this page has no version {number}")
            return page, version

    async def preview_link(
        self, owner: uuid.UUID, page_id: uuid.UUID, seconds: int
    ) -> tuple[str, datetime]:
        """A link to the draft's preview that opens in any browser, without
        signing in, for ``seconds``; and when it stops working."""
        assert self.preview_links is not None, "built without a secret key"
        async with self.db.read(actor=owner) as session:
            if await repo.owned_page(session, owner, page_id) is None:
                raise PageNotFound("no such landing page")
        expires = self.clock.now() + timedelta(seconds=seconds)
        grant = PreviewGrant(page_id, owner, int(expires.timestamp()))
        return f"{self.public_url}/preview/{self.preview_links.token(grant)}", expires

    async def shared_preview(self, token: str) -> RenderedPage:
        """The draft a preview link names, as it is now."""
        now = int(self.clock.now().timestamp())
        grant = self.preview_links.grant(token, now) if self.preview_links else None
        if grant is None:
            raise PreviewLinkInvalid("this preview link is not valid, or has expired")
        try:
            return await self.preview(grant.owner, grant.page_id)
        except PageNotFound:
            raise PreviewLinkInvalid("the page of this preview link was deleted") from None

    async def preview(
        self, owner: uuid.UUID, page_id: uuid.UUID, number: int | None = None
    ) -> RenderedPage:
        """The draft (or version ``number``) as visitors would see it, at the
        page's slug: never indexed, and with no beacon (the owner looking is
        no visit)."""
        async with self.db.read(actor=owner) as session:
            page = await repo.owned_page(session, owner, page_id)
            if page is None:
                raise PageNotFound("no such landing page")
            source: LandingPage | PageVersion = page
            if number is not None:
                version = await repo.version(session, page_id, number)
                if version is None:
                    raise VersionNotFound(f"this page has no version {number}")
                source = version
            images = await _images(session, source.content, source.seo)
        seo = Seo.model_validate({**source.seo, "noindex": True})
        shown = RenderInput(
            page_id=None,
            slug=page.slug,
            title=source.title,
            seo=RenderSeo(**seo.model_dump()),
            content=PageContent.model_validate(source.content),
            public_url=self.public_url.rstrip("/"),
            images=images,
        )
        if len(str(source.content)) > _OFFLOAD_BYTES:
            return await asyncio.to_thread(render_page, shown)
        return render_page(shown)

    async def versions_of_many(
        self, owner: uuid.UUID, page_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[Any]]:
        """``versions`` of many of the owner's pages at once, newest first."""
        found: dict[uuid.UUID, list[Any]] = {page_id: [] for page_id in page_ids}
        async with self.db.read(actor=owner) as session:
            for row in await repo.owned_versions_of_pages(session, owner, page_ids):
                found[row.page_id].append(row)
        return found

    async def sitemap_entries(self, limit: int = 50_000) -> list[tuple[str, Any]]:
        """Published, indexable pages, newest first. A page whose canonical
        URL is another address is a copy of that one: a sitemap lists only
        canonical addresses."""
        async with self.db.read(scan=True) as session:
            rows = await repo.indexable_published(session, limit)
        return [
            (r.slug, r.published_at)
            for r in rows
            if (r.seo or {}).get("canonical_url") in (None, self.public_link(r.slug))
        ]

    # Writing

    async def create(self, owner: uuid.UUID, data: PageCreate) -> LandingPage:
        content = (
            self.templates.get(data.template_id).content_json()
            if data.template_id
            else PageContent().model_dump(mode="json")
        )
        # A slug the caller chose and someone else took is theirs to change;
        # one made from the title is ours: take the next free one instead.
        for attempt in range(1, SLUG_ATTEMPTS + 1):
            try:
                return await self._insert(owner, data, content)
            except IntegrityError as exc:
                await refuse_if_closed(self.db, owner, exc)
                if data.slug is not None or attempt == SLUG_ATTEMPTS:
                    raise SlugTaken("that slug was just taken; choose another") from exc
        raise AssertionError("unreachable")

    async def _insert(
        self, owner: uuid.UUID, data: PageCreate, content: dict[str, Any]
    ) -> LandingPage:
        now = self.clock.now()
        async with self.db.write(actor=owner) as session:
            if data.slug is not None:
                slug = _checked_slug(data.slug)
                if await repo.slug_taken(session, slug):
                    raise SlugTaken(f"the slug '{slug}' is already in use")
                await _refuse_anothers_former_address(session, slug, owner)
            else:
                slug = await _free_slug(session, slugify(data.title))
            # A moved page's former address keeps sending its visitors on
            # while this is a draft: it takes the address when published.
            page = LandingPage(
                owner_id=owner,
                title=data.title,
                slug=slug,
                status="draft",
                version=1,
                content=content,
                seo=Seo().model_dump(mode="json"),
                template_id=data.template_id,
                created_at=now,
                updated_at=now,
            )
            session.add(page)
        return page

    def _address_taken(self, moved: tuple[uuid.UUID, uuid.UUID], slug: str, seq: int) -> None:
        """A former address of a moved page is another page's now."""
        page_id, owner = moved
        self.on_public_change(PublicChange("moved", page_id, owner, (slug,), (seq,)))

    async def update(
        self,
        owner: uuid.UUID,
        page_id: uuid.UUID,
        data: PageUpdate,
        expected: ExpectedVersion | None,
    ) -> LandingPage:
        changes = data.model_dump(exclude_unset=True, exclude={"version"})
        old_slug: str | None = None
        taken: tuple[uuid.UUID, uuid.UUID] | None = None
        try:
            async with self.db.write(actor=owner) as session:
                page = await self._writable(session, owner, page_id, expected)
                before = (page.title, page.slug, page.seo)
                live_and_in_sync = not page.has_unpublished_changes
                if "title" in changes and data.title is not None:
                    page.title = data.title
                if "slug" in changes and data.slug is not None:
                    slug = _checked_slug(data.slug)
                    if slug != page.slug:
                        if await repo.slug_taken(session, slug, except_id=page.id):
                            raise SlugTaken(f"the slug '{slug}' is already in use")
                        await _refuse_anothers_former_address(session, slug, owner)
                        old_slug, page.slug = page.slug, slug
                        if page.status == "published":  # it serves there now
                            taken = await repo.take_redirect(session, slug)
                            if taken is not None:
                                taken_entry = record_change(session, slug, self.clock.now())
                if "seo" in changes and data.seo is not None:
                    # SEO fields left out stay too: a new meta title keeps
                    # the page's noindex and canonical URL.
                    sent = data.seo.model_dump(mode="json", exclude_unset=True)
                    page.seo = {**page.seo, **sent}
                # An edit that changes nothing (an empty body, the same title)
                # is no new version and leaves nothing unpublished.
                if (page.title, page.slug, page.seo) != before:
                    self._touch(page)
                    if old_slug is None:
                        await self._in_sync_if_live(session, page)
                if old_slug is not None and page.status == "published":
                    # The live page moves with its slug: the old URL stops
                    # serving now, and the live bytes name the new one (its
                    # canonical link and og:url).
                    await self._move_live(session, page, owner)
                    if live_and_in_sync and (page.title, page.seo) == (before[0], before[2]):
                        # The move was the whole edit, and it is live.
                        page.published_from_version = page.version
                    now = self.clock.now()
                    # Links to the old address (ads, mail, print) follow it,
                    # as do those to its earlier ones: all lead here now.
                    await repo.redirect_slug(session, old_slug, page.id, now)
                    earlier = await repo.redirects_to(session, page.id)
                    slugs = (old_slug, page.slug, *(s for s in earlier if s != old_slug))
                    logged = _record_changes(session, slugs, now)
                elif old_slug is not None and page.published_number is not None:
                    # Down for now, but live there before: its links follow
                    # it once it is published again.
                    await repo.redirect_slug(session, old_slug, page.id, self.clock.now())
        except IntegrityError as exc:
            raise SlugTaken("that slug was just taken; choose another") from exc
        if old_slug is not None and page.status == "published":
            seqs = tuple(entry.seq for entry in logged)
            self.on_public_change(PublicChange("moved", page.id, owner, slugs, seqs))
        if taken is not None:
            self._address_taken(taken, page.slug, taken_entry.seq)
        return page

    async def update_content(
        self,
        owner: uuid.UUID,
        page_id: uuid.UUID,
        data: ContentUpdate,
        expected: ExpectedVersion | None,
    ) -> LandingPage:
        async with self.db.write(actor=owner) as session:
            page = await self._writable(session, owner, page_id, expected)
            # Theme fields left out stay as they are, as SEO fields do: a
            # new mode keeps the page's accent colour and font.
            theme = {
                **page.content.get("theme", {}),
                **(data.theme.model_dump(mode="json", exclude_unset=True) if data.theme else {}),
            }
            content = PageContent.model_validate(
                {"theme": theme, "blocks": data.blocks}
            ).model_dump(mode="json")
            # Saving what is there (an editor's autosave) is no new version,
            # as an update that changes nothing is not.
            if content != page.content:
                page.content = content
                self._touch(page)
                await self._in_sync_if_live(session, page)
        return page

    async def _in_sync_if_live(self, session: AsyncSession, page: LandingPage) -> None:
        """An edit that undid the edits since the publish, by hand, leaves
        nothing to publish, as a restore of the live version does."""
        if page.status == "published" and await self._is_live(session, page):
            page.published_from_version = page.version

    async def delete(
        self, owner: uuid.UUID, page_id: uuid.UUID, expected: ExpectedVersion | None
    ) -> None:
        async with self.db.write(actor=owner) as session:
            page = await self._writable(session, owner, page_id, expected)
            was_public = page.status == "published"
            slugs = (page.slug, *await repo.redirects_to(session, page.id))
            await repo.delete_page(session, page.id)
            if was_public:
                logged = _record_changes(session, slugs, self.clock.now())
        if was_public:
            seqs = tuple(entry.seq for entry in logged)
            self.on_public_change(PublicChange("deleted", page_id, owner, slugs, seqs))

    async def delete_all(self, owner: uuid.UUID) -> list[uuid.UUID]:
        """Delete every page of ``owner`` (their account is closing), each
        as ``delete`` would: live ones leave every worker's memory and the
        CDN. Returns their ids."""
        async with self.db.read_primary() as session:
            page_ids = await repo.owned_page_ids(session, owner)
        for page_id in page_ids:
            with contextlib.suppress(PageNotFound):  # gone meanwhile
                await self.delete(owner, page_id, None)
        return page_ids

    async def publish(
        self, owner: uuid.UUID, page_id: uuid.UUID, expected: ExpectedVersion | None
    ) -> LandingPage:
        """Render the draft to an immutable version and make it the live one.

        Rendering happens outside the transaction; the write then checks that
        the draft did not change meanwhile, so the version published is
        exactly the one rendered."""
        # From the primary: publishing what a lagging replica holds would
        # only end in a version conflict.
        async with self.db.read_primary() as session:
            draft = await repo.owned_page(session, owner, page_id)
            if draft is None:
                raise PageNotFound("no such landing page")
            if _published_just_now(draft, expected):
                return draft
            _check_expected(draft, expected)
            if not await auth_repo.is_email_verified(session, owner):
                raise EmailNotVerified("verify your email address before publishing")
            if not draft.has_unpublished_changes:
                return draft  # live as it is: a version of the same again is no news
            # Saved before such an image was refused: it is refused going live.
            problem = og_image_problem(draft.seo.get("og_image"))
            if problem:
                raise ValidationFailed(
                    f"seo.og_image: {problem}",
                    details=[{"path": "seo.og_image", "message": problem}],
                )
            images = await _images(session, draft.content, draft.seo)
        rendered = await self._render(
            draft.id, draft.slug, draft.title, draft.seo, draft.content, images
        )
        now = self.clock.now()
        async with self.db.write(actor=owner) as session:
            page = await self._writable(session, owner, page_id, None)
            if page.version != draft.version:
                if (
                    _published_fields(page) == _published_fields(draft)
                    and page.status == "published"
                    and page.published_from_version == page.version
                ):
                    # Another publish of this very draft got there first (a
                    # double click): that is what was asked for, also when
                    # both named the version (checked above) they published.
                    return page
                details = {"current_version": page.version}
                message = "the page changed while it was being published; publish again"
                if expected is not None and expected.source == "if_match":
                    raise StaleVersionPrecondition(message, details=details)
                raise StaleVersion(message, details=details)
            shown = await self._own_assets(session, owner, page)
            number = await _add_version(
                session, page, page, rendered, shown, owner, now, self.versions_kept
            )
            page.status = "published"
            page.published_number = number
            page.published_at = now
            self._touch(page, now)  # the same instant: its last change was this
            page.published_from_version = page.version
            # The address is this page's now, if it still sent the visitors
            # of a page that moved away on to it.
            taken = await repo.take_redirect(session, page.slug)
            # Its former addresses send visitors on again (if it was down).
            slugs = (page.slug, *await repo.redirects_to(session, page.id))
            logged = _record_changes(session, slugs, now)
        seqs = tuple(entry.seq for entry in logged)
        self.on_public_change(PublicChange("published", page.id, owner, slugs, seqs))
        if taken is not None and taken[0] != page.id:
            self._address_taken(taken, page.slug, logged[0].seq)
        return page

    async def unpublish(
        self, owner: uuid.UUID, page_id: uuid.UUID, expected: ExpectedVersion | None
    ) -> LandingPage:
        async with self.db.write(actor=owner) as session:
            page = await self._writable(session, owner, page_id, expected)
            was_public = page.status == "published"
            if was_public:
                page.status = "draft"
                self._touch(page)
                # Its former addresses stop sending visitors on with it.
                slugs = (page.slug, *await repo.redirects_to(session, page.id))
                logged = _record_changes(session, slugs, self.clock.now())
        if was_public:
            seqs = tuple(entry.seq for entry in logged)
            self.on_public_change(PublicChange("unpublished", page.id, owner, slugs, seqs))
        return page

    async def refresh_images(self, storage_key: str) -> int:
        """The live pages that show this upload, rendered again now that its
        resized copies exist (``files/variants.py`` says so): a page
        published right after the upload went live without them. Its live
        version's bytes are replaced (what it shows is the same, only how
        the image is offered changes), so no new version. How many changed."""
        async with self.db.read_primary() as session:
            live = await file_repo.live_pages_showing(session, None, storage_key)
        changed = 0
        for page_id, _slug in live:
            changed += await self._refresh_live_bytes(page_id)
        return changed

    async def _refresh_live_bytes(self, page_id: uuid.UUID) -> int:
        async with self.db.read_primary() as session:
            page = await session.get(LandingPage, page_id)
            if page is None or page.status != "published" or page.published_number is None:
                return 0
            version = await repo.version(session, page_id, page.published_number)
            if version is None:
                return 0
            images = await _images(session, version.content, version.seo)
        rendered = await self._render(
            page_id, version.slug, version.title, version.seo, version.content, images
        )
        if rendered.etag == version.etag:
            return 0
        async with self.db.write() as session:
            page = await session.get(LandingPage, page_id)
            current = await repo.version(session, page_id, version.number)
            if (
                page is None
                or page.status != "published"
                or page.published_number != version.number
                or current is None
                or current.etag != version.etag
            ):
                return 0  # published, moved or taken down meanwhile: that is newer
            current.html, current.html_gzip, current.html_br = (
                rendered.html,
                rendered.html_gzip,
                rendered.html_br,
            )
            current.etag, current.csp = rendered.etag, rendered.csp
            entry = record_change(session, page.slug, self.clock.now())
        self.on_public_change(
            PublicChange("published", page.id, page.owner_id, (page.slug,), (entry.seq,))
        )
        return 1

    async def restore(
        self, owner: uuid.UUID, page_id: uuid.UUID, number: int, expected: ExpectedVersion | None
    ) -> LandingPage:
        """Copy a published version's content, title and SEO into the draft.
        What visitors see changes only with the next publish."""
        async with self.db.write(actor=owner) as session:
            page = await self._writable(session, owner, page_id, expected)
            version = await repo.version(session, page.id, number)
            if version is None:
                raise VersionNotFound(f"this page has no version {number}")
            restored = (version.title, version.content, version.seo)
            # The draft as it is already (say, the live version restored
            # right after publishing): no new version, nothing unpublished.
            if (page.title, page.content, page.seo) != restored:
                page.title, page.content, page.seo = restored
                self._touch(page)
                # Edits undone by restoring what is live: nothing is left
                # to publish (a publish would copy the live version).
                await self._in_sync_if_live(session, page)
        return page

    @staticmethod
    async def _is_live(session: AsyncSession, page: LandingPage) -> bool:
        """The draft is what visitors see now."""
        if page.live_version is None:
            return False
        live = await repo.version(session, page.id, page.live_version)
        return live is not None and (live.title, live.slug, live.content, live.seo) == (
            page.title,
            page.slug,
            page.content,
            page.seo,
        )

    # Helpers

    async def _writable(
        self, session: Any, owner: uuid.UUID, page_id: uuid.UUID, expected: ExpectedVersion | None
    ) -> LandingPage:
        page = await repo.owned_page(session, owner, page_id, for_update=True)
        if page is None:
            raise PageNotFound("no such landing page")
        _check_expected(page, expected)
        return page

    async def _own_assets(
        self, session: AsyncSession, owner: uuid.UUID, page: LandingPage
    ) -> list[str]:
        """The uploads a page to be published shows, each one of the owner's
        own files (another account's URL, or a file deleted since, would
        leave the live page with a hole nobody is told about). Held against
        deletes until the page is live: a delete then sees it in use."""
        shown = sorted(assets_shown(page.content, page.seo))
        for key in shown:  # in order, so two publishes never wait on each other
            await hold_until_commit(session, bytes_lock(key))
        missing = set(shown) - await file_repo.owned_keys(session, owner, shown)
        no_upload = assets_that_cannot_be(page.content, page.seo, self.public_url)
        if missing or no_upload:
            urls = [f"/assets/{key}" for key in sorted(missing)] + sorted(no_upload)
            copies = any("-w" in key for key in missing)
            raise UnknownAsset(
                f"the page shows {', '.join(urls)}, which is none of your files: "
                "upload it, or take it out of the page, then publish"
                + (
                    " (a URL ending -w<width> is a resized copy: use the file's own URL, "
                    "and the page offers the copies by itself)"
                    if copies
                    else ""
                ),
                details={"assets": urls},
            )
        return shown

    def _touch(self, page: LandingPage, now: datetime | None = None) -> None:
        page.version += 1
        page.updated_at = now or self.clock.now()

    async def _move_live(self, session: AsyncSession, page: LandingPage, actor: uuid.UUID) -> None:
        """A new live version at the page's (new) slug: what it shows is the
        live version's, only where it says it lives (its canonical link and
        og:url) changes. The one it replaces keeps its slug, as history."""
        assert page.published_number is not None
        live = await repo.version(session, page.id, page.published_number)
        assert live is not None
        images = await _images(session, live.content, live.seo)
        rendered = await self._render(
            page.id, page.slug, live.title, live.seo, live.content, images
        )
        # The files it shows stay held by it (a file in use is not deleted).
        shown = sorted(assets_shown(live.content, live.seo))
        number = await _add_version(
            session, page, live, rendered, shown, actor, self.clock.now(), self.versions_kept
        )
        page.published_number = number

    async def _render(
        self,
        page_id: uuid.UUID,
        slug: str,
        title: str,
        seo: dict[str, Any],
        content: dict[str, Any],
        images: dict[str, ImageInfo],
    ) -> Rendered:
        args = (page_id, slug, title, seo, content, self.public_url, images)
        started = time.perf_counter_ns()
        if len(str(content)) > _OFFLOAD_BYTES:
            rendered = await asyncio.to_thread(render_version, *args)
        else:
            rendered = render_version(*args)
        self.on_rendered((time.perf_counter_ns() - started) // 1000)
        return rendered


async def _images(
    session: AsyncSession, content: dict[str, Any], seo: dict[str, Any]
) -> dict[str, ImageInfo]:
    """What the renderer knows of the uploads a page shows: dimensions and
    resized variants, by /assets/ URL."""
    facts = await file_repo.image_facts(session, assets_shown(content, seo))
    return {
        f"/assets/{key}": ImageInfo(
            width,
            height,
            tuple(ImageSource(f"/assets/{v}", w, mime) for v, w, mime in variants),
        )
        for key, (width, height, variants) in facts.items()
    }


def _published_fields(page: LandingPage) -> tuple[Any, ...]:
    """What a published version is made of."""
    return (page.title, page.slug, page.content, page.seo)


async def _add_version(
    session: AsyncSession,
    page: LandingPage,
    source: LandingPage | PageVersion,
    rendered: Rendered,
    shown: list[str],
    actor: uuid.UUID,
    now: datetime,
    kept: int,
) -> int:
    """The page's next immutable version: ``source``'s title, SEO and content,
    at the page's slug, with its bytes and the files it shows. Its number.
    Versions older than the newest ``kept`` are deleted: each holds its
    content and rendered bytes, and a page published over and over must not
    fill the disk."""
    number = await repo.last_version_number(session, page.id) + 1
    version = PageVersion(
        id=new_id(),
        page_id=page.id,
        number=number,
        title=source.title,
        slug=page.slug,
        content=source.content,
        seo=source.seo,
        html=rendered.html,
        html_gzip=rendered.html_gzip,
        html_br=rendered.html_br,
        etag=rendered.etag,
        csp=rendered.csp,
        created_by=actor,
        created_at=now,
    )
    session.add(version)
    await session.flush()
    session.add_all(VersionAsset(version_id=version.id, storage_key=key) for key in shown)
    await repo.forget_versions_before(session, page.id, number - kept + 1)
    return number


def _published_just_now(page: LandingPage, expected: ExpectedVersion | None) -> bool:
    """A publish that named the version the page's last change published (a
    second click, a retry whose answer was lost): done already (RFC 9110
    13.1.1), not a conflict. Publishing moves the version on by one."""
    return (
        expected is not None
        and page.status == "published"
        and page.published_from_version == page.version
        and page.updated_at == page.published_at
        and page.version - 1 in (expected.value, *expected.or_any_of)
    )


def _check_expected(page: LandingPage, expected: ExpectedVersion | None) -> None:
    if expected is None or page.version in (expected.value, *expected.or_any_of):
        return
    message = (
        f"this edit is based on version {expected.value}, but the page is at version "
        f"{page.version}; reload it and apply your change again"
    )
    details = {"current_version": page.version, "expected_version": expected.value}
    if expected.source == "if_match":
        raise StaleVersionPrecondition(message, details=details)
    raise StaleVersion(message, details=details)


def _record_changes(session: Any, slugs: tuple[str, ...], now: datetime) -> list[Any]:
    """Every worker learns that what these addresses show changed: the
    change log's entries (their ``seq`` known once committed)."""
    return [record_change(session, slug, now) for slug in slugs]


def _checked_slug(slug: str) -> str:
    problem = slug_problem(slug)
    if problem:
        code = PageErrorCode.SLUG_RESERVED if slug in RESERVED else PageErrorCode.SLUG_INVALID
        raise InvalidSlug(problem, code=code, details=[{"path": "slug", "message": problem}])
    return slug


async def _free_slug(session: Any, base: str) -> str:
    taken = await repo.slugs_like(session, base)
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def _refuse_anothers_former_address(
    session: AsyncSession, slug: str, owner: uuid.UUID
) -> None:
    """A live page's former address stays its owner's while it sends
    visitors on: another account publishing there would take every link
    already shared (ads, mail, print) to a page of its own."""
    sends_to = await repo.redirect_owner(session, slug)
    if sends_to is not None and sends_to != owner:
        raise SlugTaken(
            f"the address '{slug}' is a former address of another account's page, whose links "
            "it keeps; choose another"
        )
