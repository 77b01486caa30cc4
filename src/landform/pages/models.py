from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from landform.core.db import Base
from landform.core.ids import new_id
from landform.core.types import JSONDocument, UTCDateTime


class LandingPage(Base):
    """The editable draft of a page, and a pointer to what is published.

    ``version`` counts every write, for optimistic concurrency;
    ``published_number`` names the immutable ``PageVersion`` visitors see."""

    __tablename__ = "landing_pages"
    __table_args__ = (Index("ix_landing_pages_owner_id_id", "owner_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    content: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    seo: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    template_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    published_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The draft version that was last published, to tell whether the draft
    # has changes visitors do not see yet.
    published_from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def live_version(self) -> int | None:
        """The version visitors see, if the page is published."""
        return self.published_number if self.status == "published" else None

    @property
    def live_since(self) -> datetime | None:
        """When the version visitors see was published, if the page is
        published (an unpublished page shows no publish time: its versions
        keep theirs)."""
        return self.published_at if self.status == "published" else None

    @property
    def has_unpublished_changes(self) -> bool:
        return self.status != "published" or self.published_from_version != self.version


class PageVersion(Base):
    """An immutable published version: the content and its rendered bytes."""

    __tablename__ = "page_versions"
    __table_args__ = (UniqueConstraint("page_id", "number", name="uq_page_versions_page_number"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    page_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("landing_pages.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    seo: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    html: Mapped[bytes] = mapped_column(LargeBinary)
    html_gzip: Mapped[bytes] = mapped_column(LargeBinary)
    html_br: Mapped[bytes] = mapped_column(LargeBinary)
    etag: Mapped[str] = mapped_column(String(64))
    csp: Mapped[str] = mapped_column(String(2000))
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PageRemovalStamp(Base):
    """A counter per account, moved by a database trigger (migration 0010)
    when one of its pages is deleted: which pages an analytics answer may
    count. An answer kept with the stamp read before computing it counts
    the right pages while the stamp stays. New pages (no traffic yet) and
    edits leave it, and what answers show of pages (titles, slugs, the
    count) is read afresh for each answer: a marketer at work creates and
    edits pages all the time, and a stamp moved by those (the account's
    content stamp, ``core.owner_stamps``) left the report cache nearly
    useless for them."""

    __tablename__ = "page_removal_stamps"

    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    stamp: Mapped[int] = mapped_column(BigInteger)


class SlugRedirect(Base):
    """A live page's former address: its visitors (links in ads, mail and
    print) are sent on to where the page lives now, with a 301, until
    another page takes the address or the page goes."""

    __tablename__ = "slug_redirects"

    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    page_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("landing_pages.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
