from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from landform.core.db import Base
from landform.core.ids import new_id
from landform.core.types import UTCDateTime


class StoredFile(Base):
    """A user's file. The bytes live in storage under a content-addressed key
    (sha256 + extension), so the same bytes are stored once however often
    they are uploaded; this row is the user's claim on them."""

    __tablename__ = "files"
    __table_args__ = (
        UniqueConstraint("owner_id", "sha256", name="uq_files_owner_sha256"),
        Index("ix_files_owner_id_id", "owner_id", "id"),
        Index("ix_files_storage_key", "storage_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(80))
    content_type: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The client's file name: a label shown to the user, never part of a path.
    label: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VersionAsset(Base):
    """Which assets a published page version shows, so a file in use by a
    live page is not deleted from under it."""

    __tablename__ = "page_version_assets"

    version_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("page_versions.id", ondelete="CASCADE"), primary_key=True
    )
    storage_key: Mapped[str] = mapped_column(String(80), primary_key=True, index=True)


class AssetVariant(Base):
    """A resized copy of a raster original (same content address plus width),
    made in the background for responsive images."""

    __tablename__ = "asset_variants"

    source_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    width: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_type: Mapped[str] = mapped_column(String(100), primary_key=True)
    storage_key: Mapped[str] = mapped_column(String(100))
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
