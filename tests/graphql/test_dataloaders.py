"""No N+1: a list of pages with their latest version, owner, template and
analytics summary costs the same number of SQL statements for 5 pages as
for 50."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from landform.pages.schemas import PageCreate
from tests.analytics.conftest import track
from tests.graphql.conftest import gql
from tests.sql_statements import counted_statements

QUERY = """{
  landingPages(first: 50) {
    nodes {
      title status
      latestVersion { number isLive }
      versions { number }
      owner { email }
      template { name }
      analytics { views visitors }
    }
  }
}"""


async def make_pages(
    app: Any, client: httpx.AsyncClient, headers: dict[str, str], count: int
) -> None:
    me = (await client.get("/auth/me", headers=headers)).json()
    pages = app.components.pages
    owner = uuid.UUID(me["id"])
    for n in range(count):
        page = await pages.create(owner, PageCreate(title=f"Page {n}", template_id="saas-launch"))
        await pages.publish(owner, page.id, None)
        if n % 2 == 0:
            await track(
                client,
                "/analytics/track-view",
                {"page_id": str(page.id)},
                address=f"198.51.100.{n + 1}",
            )
    await app.components.ingestion.flush()


async def test_fifty_pages_cost_the_statements_of_five(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str], app: Any
) -> None:
    await make_pages(app, client, ada, 5)
    await make_pages(app, client, bob, 50)

    with counted_statements(app) as few:
        small = await gql(client, QUERY, headers=ada)
    with counted_statements(app) as many:
        large = await gql(client, QUERY, headers=bob)

    assert "errors" not in small and "errors" not in large
    nodes = large["data"]["landingPages"]["nodes"]
    assert len(nodes) == 50 and len(small["data"]["landingPages"]["nodes"]) == 5
    assert all(node["latestVersion"] == {"number": 1, "isLive": True} for node in nodes)
    assert all(node["owner"] == {"email": "bob@example.com"} for node in nodes)
    assert sum(node["analytics"]["views"] for node in nodes) == 25
    assert len(many) == len(few), (few, many)
    # The data stamps a kept answer is checked against (graphql.answers),
    # then the list, the versions, the owner, the analytics stamp and totals.
    assert len(many) <= 8, many
