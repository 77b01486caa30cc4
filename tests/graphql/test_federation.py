"""The subgraph a gateway composes: `_service { sdl }` and `_entities`
resolving LandingPage, Template and User by key, owner-scoped; automatic
persisted queries; and the committed schema.graphql matching the code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx

from landform.graphql.schema import schema_sdl
from tests.analytics.conftest import publish_page
from tests.graphql.conftest import codes, gql

ENTITIES = """query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    __typename
    ... on LandingPage { id title slug }
    ... on Template { id name }
    ... on User { id email }
  }
}"""


async def test_service_sdl_is_a_federation_2_subgraph(client: httpx.AsyncClient) -> None:
    result = await gql(client, "{ _service { sdl } }")
    sdl = result["data"]["_service"]["sdl"]
    assert '@link(url: "https://specs.apollo.dev/federation/v2' in sdl
    for entity in ("LandingPage", "Template", "User"):
        assert f'type {entity} @key(fields: "id")' in sdl


async def test_entities_resolve_by_key_for_their_owner_only(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    page = await publish_page(client, ada, "federated", "Federated")
    ada_id = (await client.get("/auth/me", headers=ada)).json()["id"]
    template_id = (await client.get("/templates")).json()[0]["id"]
    representations = [
        {"__typename": "LandingPage", "id": page["id"]},
        {"__typename": "Template", "id": template_id},
        {"__typename": "User", "id": ada_id},
    ]
    mine = await gql(client, ENTITIES, {"representations": representations}, headers=ada)
    assert mine["data"]["_entities"] == [
        {"__typename": "LandingPage", "id": page["id"], "title": "Federated", "slug": "federated"},
        {"__typename": "Template", "id": template_id, "name": mine["data"]["_entities"][1]["name"]},
        {"__typename": "User", "id": ada_id, "email": "ada@example.com"},
    ]
    theirs = await gql(client, ENTITIES, {"representations": representations}, headers=bob)
    entities = theirs["data"]["_entities"]
    assert entities[0] is None and entities[2] is None, (
        "another user's page and account stay hidden"
    )
    assert entities[1]["__typename"] == "Template"  # the catalogue is public


async def test_malformed_representations_are_the_callers_error(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """Each bad representation is its own entity's error, with the code of
    a bad request; the good ones beside it still resolve."""
    template_id = (await client.get("/templates")).json()[0]["id"]
    representations: list[Any] = [
        {"__typename": "Nope", "id": "x"},
        {"id": "x"},
        "a string",
        {"__typename": "LandingPage"},
        {"__typename": "LandingPage", "id": 5},
        {"__typename": "Template", "id": template_id},
    ]
    result = await gql(client, ENTITIES, {"representations": representations}, headers=ada)
    entities = result["data"]["_entities"]
    assert entities[:5] == [None] * 5 and entities[5]["id"] == template_id
    assert codes(result) == ["graphql_validation_failed"] * 5
    assert [error["path"] for error in result["errors"]] == [["_entities", i] for i in range(5)]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def test_automatic_persisted_queries(client: httpx.AsyncClient, ada: dict[str, str]) -> None:
    query = "query Mine { me { email } }"
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256(query)}}
    unknown = (await client.post("/graphql", json={"extensions": extensions}, headers=ada)).json()
    assert codes(unknown) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert unknown["errors"][0]["message"] == "PersistedQueryNotFound"
    registered = await gql(client, query, headers=ada, extensions=extensions)
    assert registered["data"]["me"]["email"] == "ada@example.com"
    by_hash = (await client.post("/graphql", json={"extensions": extensions}, headers=ada)).json()
    assert by_hash == registered
    as_get = await client.get(
        "/graphql",
        params={"extensions": json.dumps(extensions)},
        headers={**ada, "Accept": "application/json"},
    )
    assert as_get.json() == registered
    # curl and most clients send Accept: */*; a GET that asks something is
    # answered, and only a browser opening /graphql gets GraphiQL.
    as_curl = await client.get(
        "/graphql", params={"extensions": json.dumps(extensions)}, headers={**ada, "Accept": "*/*"}
    )
    assert as_curl.json() == registered
    browser = await client.get("/graphql", headers={"Accept": "text/html,*/*;q=0.8"})
    assert browser.headers["content-type"].startswith("text/html")

    wrong_hash = {"persistedQuery": {"version": 1, "sha256Hash": sha256("something else")}}
    mismatch = await gql(client, query, headers=ada, extensions=wrong_hash)
    assert codes(mismatch) == ["BAD_PERSISTED_QUERY"]
    for bad in (
        {"version": 2, "sha256Hash": sha256(query)},
        {"version": 1, "sha256Hash": "xyz"},
        "nope",
    ):
        refused = (
            await client.post("/graphql", json={"extensions": {"persistedQuery": bad}}, headers=ada)
        ).json()
        assert codes(refused) == ["BAD_PERSISTED_QUERY"], bad


async def test_persisted_queries_are_shared_through_redis(
    settings: Any, tmp_path: Path, redis: Any
) -> None:
    """Two apps (two replicas) on one Redis: what one learnt, the other knows."""
    from tests.conftest import two_replicas

    query = "{ templates { id } }"
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256(query)}}
    async with two_replicas(settings, tmp_path) as (_first, _second, a, b):
        assert "data" in await gql(a, query, extensions=extensions)
        by_hash = (await b.post("/graphql", json={"extensions": extensions})).json()
        assert by_hash["data"]["templates"]


def test_committed_schema_matches_the_code() -> None:
    committed = (Path(__file__).parents[2] / "schema.graphql").read_text()
    assert committed == schema_sdl(), (
        "schema.graphql is stale: run `landform graphql schema --output schema.graphql`"
    )
