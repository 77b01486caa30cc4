"""All SQL of the files domain."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from landform.files.models import AssetVariant, StoredFile, VersionAsset
from landform.pages.models import LandingPage, PageVersion


async def owned_file(
    session: AsyncSession, owner_id: uuid.UUID, file_id: uuid.UUID
) -> StoredFile | None:
    return await session.scalar(
        select(StoredFile).where(StoredFile.id == file_id, StoredFile.owner_id == owner_id)
    )


async def by_sha256(session: AsyncSession, owner_id: uuid.UUID, sha256: str) -> StoredFile | None:
    return await session.scalar(
        select(StoredFile).where(StoredFile.owner_id == owner_id, StoredFile.sha256 == sha256)
    )


async def owned_keys(session: AsyncSession, owner_id: uuid.UUID, keys: list[str]) -> set[str]:
    """Which of these storage keys the owner has a file of."""
    if not keys:
        return set()
    found = await session.scalars(
        select(StoredFile.storage_key).where(
            StoredFile.owner_id == owner_id, StoredFile.storage_key.in_(keys)
        )
    )
    return set(found.all())


async def usage(session: AsyncSession, owner_id: uuid.UUID) -> tuple[int, int]:
    """(bytes, files) of the owner's uploads."""
    row = (
        await session.execute(
            select(func.coalesce(func.sum(StoredFile.size), 0), func.count()).where(
                StoredFile.owner_id == owner_id
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def used_bytes(session: AsyncSession, owner_id: uuid.UUID) -> int:
    return (await usage(session, owner_id))[0]


async def list_owned(
    session: AsyncSession,
    owner_id: uuid.UUID,
    *,
    category: str | None,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[StoredFile]:
    query = select(StoredFile).where(StoredFile.owner_id == owner_id)
    if category:
        query = query.where(StoredFile.category == category)
    if before_id is not None:
        query = query.where(StoredFile.id < before_id)
    return list((await session.scalars(query.order_by(StoredFile.id.desc()).limit(limit))).all())


async def owned_file_ids(session: AsyncSession, owner_id: uuid.UUID) -> list[uuid.UUID]:
    query = select(StoredFile.id).where(StoredFile.owner_id == owner_id)
    return list((await session.scalars(query)).all())


async def others_using_key(session: AsyncSession, storage_key: str, except_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(StoredFile)
        .where(StoredFile.storage_key == storage_key, StoredFile.id != except_id)
    )
    return int(count or 0)


async def live_pages_showing(
    session: AsyncSession, owner_id: uuid.UUID | None, storage_key: str
) -> list[tuple[uuid.UUID, str]]:
    """The owner's (None: anyone's) published pages whose live version
    shows this asset."""
    query = (
        select(LandingPage.id, LandingPage.slug)
        .join(PageVersion, PageVersion.page_id == LandingPage.id)
        .join(VersionAsset, VersionAsset.version_id == PageVersion.id)
        .where(
            LandingPage.status == "published",
            PageVersion.number == LandingPage.published_number,
            VersionAsset.storage_key == storage_key,
        )
    )
    if owner_id is not None:
        query = query.where(LandingPage.owner_id == owner_id)
    rows = await session.execute(query)
    return [(r[0], r[1]) for r in rows.all()]


async def delete_file(session: AsyncSession, file_id: uuid.UUID) -> bool:
    """False when there was no such row (deleted meanwhile)."""
    result = await session.execute(delete(StoredFile).where(StoredFile.id == file_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def image_facts(
    session: AsyncSession, keys: set[str]
) -> dict[str, tuple[int, int, list[tuple[str, int, str]]]]:
    """For these storage keys: (width, height, [(variant key, width, type)])."""
    if not keys:
        return {}
    sizes = await session.execute(
        select(StoredFile.storage_key, StoredFile.width, StoredFile.height)
        .where(StoredFile.storage_key.in_(keys), StoredFile.width.is_not(None))
        .distinct()
    )
    facts: dict[str, tuple[int, int, list[tuple[str, int, str]]]] = {
        key: (int(width or 0), int(height or 0), []) for key, width, height in sizes.all()
    }
    variants = await session.execute(
        select(
            AssetVariant.source_key,
            AssetVariant.storage_key,
            AssetVariant.width,
            AssetVariant.content_type,
        )
        .where(AssetVariant.source_key.in_(list(facts)))
        .order_by(AssetVariant.width)
    )
    for source, key, width, mime in variants.all():
        facts[source][2].append((key, int(width), mime))
    return facts


async def take_variants(session: AsyncSession, source_key: str) -> list[str]:
    """Forget an original's variants; their storage keys, to delete the bytes."""
    keys = await session.scalars(
        select(AssetVariant.storage_key).where(AssetVariant.source_key == source_key)
    )
    taken = list(keys.all())
    await session.execute(delete(AssetVariant).where(AssetVariant.source_key == source_key))
    return taken
