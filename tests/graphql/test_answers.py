"""Kept answers (graphql.answers): a repeated query is answered without
running, and never once the caller's data changed — whoever changed it,
through REST, the graph or plain SQL, on whichever worker."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from landform.pages.models import LandingPage
from tests.analytics.conftest import publish_page, track_view
from tests.conftest import outbox_token, signed_in
from tests.files.samples import png
from tests.graphql.conftest import codes, gql
from tests.live_server import live_server, verified_login
from tests.sql_statements import counted_statements, only_stamps_read

PAGES = "{ landingPages(first: 20) { nodes { id title status } } }"


async def test_a_repeated_query_is_answered_from_the_kept_answer(
    client: httpx.AsyncClient, ada: dict[str, str], app: Any
) -> None:
    await publish_page(client, ada, "kept", "Kept")
    first = await gql(client, PAGES, headers=ada)
    with counted_statements(app) as statements:
        again = await client.post("/graphql", json={"query": PAGES}, headers=ada)
    assert again.status_code == 200
    assert again.headers["content-type"] == "application/json"
    assert again.json() == first
    # Only the two stamps were read: nothing was parsed, resolved or queried.
    assert only_stamps_read(statements), statements
    kept = app.components.cache_stats()["l1"]["graphql_answers"]
    assert kept["hits"] == 1 and kept["misses"] == 1 and kept["bytes"] > 0
    # The same document as a GET is the same question, and the same answer.
    as_get = await client.get("/graphql", params={"query": PAGES}, headers=ada)
    assert as_get.json() == first


async def test_every_change_to_the_callers_data_shows_at_once(
    client: httpx.AsyncClient, ada: dict[str, str], app: Any
) -> None:
    page = await publish_page(client, ada, "changing", "Before")
    query = """{ landingPages(first: 20) { nodes { title status } }
                 files(first: 10) { nodes { label } } apiKeys { name } }"""

    async def seen() -> dict[str, Any]:
        # Asked twice: the second is the kept answer, and must agree.
        answer = await gql(client, query, headers=ada)
        assert await gql(client, query, headers=ada) == answer
        return answer["data"]  # type: ignore[no-any-return]

    assert (await seen())["landingPages"]["nodes"] == [{"title": "Before", "status": "PUBLISHED"}]

    edited = await client.put(f"/landing-pages/{page['id']}", json={"title": "After"}, headers=ada)
    assert edited.status_code == 200, edited.text
    assert (await seen())["landingPages"]["nodes"][0]["title"] == "After"

    unpublished = await client.post(f"/landing-pages/{page['id']}/unpublish", headers=ada)
    assert unpublished.status_code == 200, unpublished.text
    assert (await seen())["landingPages"]["nodes"][0]["status"] == "DRAFT"

    uploaded = await client.post(
        "/files/upload", files={"file": ("dot.png", png(), "image/png")}, headers=ada
    )
    assert uploaded.status_code == 201, uploaded.text
    assert (await seen())["files"]["nodes"] == [{"label": uploaded.json()["label"]}]

    created = await gql(
        client, 'mutation { createApiKey(name: "ci") { apiKey { name } } }', headers=ada
    )
    assert "errors" not in created, created
    assert (await seen())["apiKeys"] == [{"name": "ci"}]

    deleted = await client.delete(f"/landing-pages/{page['id']}", headers=ada)
    assert deleted.status_code == 204, deleted.text
    assert (await seen())["landingPages"]["nodes"] == []


async def test_verification_and_a_new_role_show_at_once(
    client: httpx.AsyncClient, app: Any
) -> None:
    headers = await signed_in(client, app, "eve@example.com", verified=False)
    me = "{ me { emailVerified role } }"
    assert (await gql(client, me, headers=headers))["data"]["me"] == {
        "emailVerified": False,
        "role": "member",
    }
    token = await outbox_token(app, "eve@example.com")
    assert (await client.post("/auth/verify-email", json={"token": token})).status_code == 200
    assert (await gql(client, me, headers=headers))["data"]["me"]["emailVerified"] is True

    await app.components.auth.set_role("eve@example.com", "admin")
    assert (await gql(client, me, headers=headers))["data"]["me"]["role"] == "admin"


async def test_each_caller_has_their_own_answers(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    await publish_page(client, ada, "adas", "Ada's")
    await publish_page(client, bob, "bobs", "Bob's")
    for _ in range(2):
        adas = await gql(client, PAGES, headers=ada)
        bobs = await gql(client, PAGES, headers=bob)
        assert [n["title"] for n in adas["data"]["landingPages"]["nodes"]] == ["Ada's"]
        assert [n["title"] for n in bobs["data"]["landingPages"]["nodes"]] == ["Bob's"]
    # Variables are part of the question.
    query = "query($n: Int!) { landingPages(first: $n) { nodes { title } } }"
    await publish_page(client, ada, "adas-2", "Ada's second")
    one = await gql(client, query, {"n": 1}, headers=ada)
    two = await gql(client, query, {"n": 2}, headers=ada)
    assert len(one["data"]["landingPages"]["nodes"]) == 1
    assert len(two["data"]["landingPages"]["nodes"]) == 2


async def test_mutations_errors_and_anonymous_requests_always_run(
    client: httpx.AsyncClient, ada: dict[str, str], app: Any
) -> None:
    create = 'mutation { createLandingPage(input: {title: "Twice"}) { id } }'
    ids = {
        (await gql(client, create, headers=ada))["data"]["createLandingPage"]["id"] for _ in "ab"
    }
    assert len(ids) == 2

    missing = '{ landingPage(id: "00000000000000000000000000000000") { title } }'
    assert codes(await gql(client, missing, headers=ada)) == ["page_not_found"]
    with counted_statements(app) as statements:
        assert codes(await gql(client, missing, headers=ada)) == ["page_not_found"]
    assert not only_stamps_read(statements), "an answer with errors was kept"

    for _ in range(2):
        assert codes(await gql(client, "{ me { email } }")) == ["not_authenticated"]
    assert codes(await gql(client, "{ me { email } }", headers={"Authorization": "Bearer x"})) == [
        "invalid_access_token"
    ]


async def test_variables_nested_deeper_than_can_be_keyed_are_answered_not_kept(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """Variables 300 levels deep are read (1,024 are) but cannot be written
    back as the kept answer's key (255 can): the operation runs as any
    other, unkept, instead of a 500."""
    deep = "[" * 300 + "]" * 300
    body = f'{{"query": "{{ me {{ email }} }}", "variables": {{"unused": {deep}}}}}'
    for _ in range(2):
        answer = await client.post(
            "/graphql", content=body, headers={**ada, "Content-Type": "application/json"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"data": {"me": {"email": "ada@example.com"}}}


async def test_new_analytics_show_once_the_reports_would(
    client: httpx.AsyncClient, ada: dict[str, str], app: Any
) -> None:
    """The tests' reports may lag 0 seconds: a counted view shows at once."""
    page = await publish_page(client, ada, "counted")
    query = "{ landingPages(first: 5) { nodes { analytics { views } } } }"
    assert (await gql(client, query, headers=ada))["data"]["landingPages"]["nodes"] == [
        {"analytics": {"views": 0}}
    ]
    assert (await track_view(client, page["id"])).status_code == 202
    await app.components.ingestion.flush()
    assert (await gql(client, query, headers=ada))["data"]["landingPages"]["nodes"] == [
        {"analytics": {"views": 1}}
    ]


@pytest.mark.parametrize("settings_update", [{"analytics_report_max_lag": 60}], indirect=True)
async def test_analytics_may_lag_as_much_as_the_reports_may(
    client: httpx.AsyncClient, ada: dict[str, str], app: Any
) -> None:
    page = await publish_page(client, ada, "lagging")
    query = "{ landingPages(first: 5) { nodes { title analytics { views } } } }"
    before = await gql(client, query, headers=ada)
    assert (await track_view(client, page["id"])).status_code == 202
    await app.components.ingestion.flush()
    # Within the lag, the kept answer stands...
    assert await gql(client, query, headers=ada) == before
    # ...but never past a content change (the totals themselves may lag as
    # the reports' do).
    edited = await client.put(f"/landing-pages/{page['id']}", json={"title": "New"}, headers=ada)
    assert edited.status_code == 200
    after = (await gql(client, query, headers=ada))["data"]["landingPages"]["nodes"]
    assert after[0]["title"] == "New"


@pytest.mark.parametrize("settings_update", [{"graphql_answer_cache_seconds": 0}], indirect=True)
async def test_keeping_answers_can_be_turned_off(
    client: httpx.AsyncClient, ada: dict[str, str], app: Any
) -> None:
    await gql(client, PAGES, headers=ada)
    with counted_statements(app) as statements:
        await gql(client, PAGES, headers=ada)
    assert not only_stamps_read(statements)


def test_an_edit_on_one_worker_shows_on_every_worker(tmp_path: Path) -> None:
    """No message tells the other worker: the stamp it reads is the database's."""
    with live_server(tmp_path, workers=2) as base:
        token = verified_login(base, tmp_path, "ada@example.com")
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=auth) as api:
            page = api.post("/landing-pages", json={"title": "v0", "slug": "everywhere"}).json()
        for round_ in range(1, 9):
            # New connections, so both workers answer, and both keep answers.
            for _ in range(4):
                with httpx.Client(base_url=base, headers=auth) as fresh:
                    answer = fresh.post("/graphql", json={"query": PAGES}).json()
                titles = [node["title"] for node in answer["data"]["landingPages"]["nodes"]]
                assert titles == [f"v{round_ - 1}"]
            with httpx.Client(base_url=base, headers=auth) as api:
                edited = api.put(f"/landing-pages/{page['id']}", json={"title": f"v{round_}"})
                assert edited.status_code == 200, edited.text


async def test_a_persisted_query_is_learnt_even_when_its_answer_is_kept(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """Registering a hash (query and hash together) always runs, so the
    hash alone works once the kept answer is gone."""
    digest = hashlib.sha256(PAGES.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    await gql(client, PAGES, headers=ada)  # kept
    await gql(client, PAGES, headers=ada, extensions=persisted)
    await publish_page(client, ada, "moved-on", "Moved on")  # the kept answer is stale now
    by_hash = (await client.post("/graphql", json={"extensions": persisted}, headers=ada)).json()
    assert "errors" not in by_hash, by_hash
    assert [n["title"] for n in by_hash["data"]["landingPages"]["nodes"]] == ["Moved on"]


async def test_a_change_made_outside_the_api_shows_too(
    client: httpx.AsyncClient, ada: dict[str, str], app: Any
) -> None:
    """The stamps are moved by the database itself (triggers), so an edit by
    any means — here plain SQL, as an operator's script would — counts."""
    await publish_page(client, ada, "direct", "Before")
    assert (await gql(client, PAGES, headers=ada))["data"]["landingPages"]["nodes"][0][
        "title"
    ] == "Before"
    async with app.components.db.write() as session:
        await session.execute(update(LandingPage).values(title="Edited in SQL"))
    nodes = (await gql(client, PAGES, headers=ada))["data"]["landingPages"]["nodes"]
    assert nodes[0]["title"] == "Edited in SQL"
