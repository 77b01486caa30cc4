"""DataLoaders: each relation a resolver follows (a page's versions, owner
and analytics summary, a page by id) is gathered over the whole response
and fetched with one statement, so a list of 50 pages costs what a list of
5 does. Templates need none: the catalogue is in memory."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader

from landform.auth.models import User
from landform.auth.service import Principal
from landform.pages.models import LandingPage

if TYPE_CHECKING:
    from landform.graphql.context import Services

SummaryKey = tuple[uuid.UUID, datetime | None, datetime | None]


class Loaders:
    def __init__(self, services: Services, principal: Callable[[], Awaitable[Principal]]) -> None:
        self.services = services
        self.principal = principal
        self.page = DataLoader[uuid.UUID, LandingPage | None](self._pages)
        self.versions = DataLoader[uuid.UUID, list[Any]](self._versions)
        self.user = DataLoader[uuid.UUID, User | None](self._users)
        self.summary = DataLoader[SummaryKey, dict[str, Any]](self._summaries)

    async def _owner(self) -> uuid.UUID:
        return (await self.principal()).user_id

    async def _pages(self, ids: Sequence[uuid.UUID]) -> list[LandingPage | None]:
        found = await self.services.pages.get_many(await self._owner(), list(ids))
        return [found.get(page_id) for page_id in ids]

    async def _versions(self, page_ids: Sequence[uuid.UUID]) -> list[list[Any]]:
        found = await self.services.pages.versions_of_many(await self._owner(), list(page_ids))
        return [found.get(page_id, []) for page_id in page_ids]

    async def _users(self, ids: Sequence[uuid.UUID]) -> list[User | None]:
        found = await self.services.auth.visible_users(await self.principal(), list(ids))
        return [found.get(user_id) for user_id in ids]

    async def _summaries(self, keys: Sequence[SummaryKey]) -> list[dict[str, Any]]:
        owner = await self._owner()
        by_range: dict[tuple[datetime | None, datetime | None], list[uuid.UUID]] = defaultdict(list)
        for page_id, start, end in keys:
            by_range[(start, end)].append(page_id)
        found: dict[SummaryKey, dict[str, Any]] = {}
        for (start, end), page_ids in by_range.items():
            summaries = await self.services.analytics.page_summaries(owner, page_ids, start, end)
            for page_id, summary in summaries.items():
                found[(page_id, start, end)] = summary
        return [found[key] for key in keys]
