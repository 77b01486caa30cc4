"""Content stamps: a counter per account, moved by every write made on the
account's behalf (``Database.write(actor=…)``), in the write's own
transaction. An answer computed from an account's data and kept with the
stamp it read first is current exactly while the stamp has not moved, on
every worker and replica, with no message to miss: the stamp is in the
database the answer came from. (Analytics has a stamp of its own, moved by
ingestion: ``analytics_stamps``.)"""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Uuid, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from landform.core.db import Base, upsert_into


class OwnerStamp(Base):
    __tablename__ = "owner_stamps"

    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    stamp: Mapped[int] = mapped_column(BigInteger)


async def bump(session: AsyncSession, owner_id: uuid.UUID) -> None:
    """The owner's data changed in this transaction."""
    statement = upsert_into(session, OwnerStamp).values(owner_id=owner_id, stamp=1)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["owner_id"], set_={"stamp": OwnerStamp.stamp + 1}
        )
    )


async def current(session: AsyncSession, owner_id: uuid.UUID) -> int:
    stamp = await session.scalar(select(OwnerStamp.stamp).where(OwnerStamp.owner_id == owner_id))
    return int(stamp or 0)
