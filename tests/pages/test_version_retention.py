"""A page keeps its newest LANDFORM_PAGE_VERSIONS_KEPT published versions:
each holds its content and its rendered bytes, and a page published over
and over would otherwise grow the database without end."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import assert_error
from tests.pages.test_pages import HERO, create


@pytest.fixture
def settings_update() -> dict[str, Any]:
    return {"page_versions_kept": 3}


async def test_only_the_newest_versions_are_kept(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await create(client, ada, slug="kept")
    url = f"/landing-pages/{page['id']}"
    for n in range(1, 6):
        saved = await client.put(
            f"{url}/content", json={"blocks": [{**HERO, "headline": f"Take {n}"}]}, headers=ada
        )
        assert saved.status_code == 200
        assert (await client.post(f"{url}/publish", headers=ada)).status_code == 200
    versions = (await client.get(f"{url}/versions", headers=ada)).json()["items"]
    assert [(v["number"], v["is_live"]) for v in versions] == [(5, True), (4, False), (3, False)]
    assert_error(await client.get(f"{url}/versions/2", headers=ada), 404, "version_not_found")
    assert "Take 5" in (await client.get("/kept")).text
    # What is kept still restores, and numbers go on from the newest.
    restored = await client.post(f"{url}/versions/3/restore", headers=ada)
    assert restored.json()["content"]["blocks"][0]["headline"] == "Take 3"
    assert (await client.post(f"{url}/publish", headers=ada)).json()["published_version"] == 6
    numbers = [
        v["number"] for v in (await client.get(f"{url}/versions", headers=ada)).json()["items"]
    ]
    assert numbers == [6, 5, 4]
