"""Content stamps: a counter per account, moved by database triggers on
every change to the rows an account's answers are made of (its pages,
files and API keys, and its own user row; migration 0007 lists them), in
the changing transaction. So an answer computed from an account's data and
kept with the stamp read *before* computing it is current exactly while the
stamp has not moved — on every worker and replica, whatever made the change
(the API, the command line, a restore), with no message to miss and no
extra statement in the writes. (Analytics has a stamp of its own, moved by
ingestion: ``analytics_stamps``.)"""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Uuid, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from landform.core.db import Base


class OwnerStamp(Base):
    __tablename__ = "owner_stamps"

    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    stamp: Mapped[int] = mapped_column(BigInteger)


async def current(session: AsyncSession, owner_id: uuid.UUID) -> int:
    stamp = await session.scalar(select(OwnerStamp.stamp).where(OwnerStamp.owner_id == owner_id))
    return int(stamp or 0)
