"""Abuse limits: each refused with its own code before anything runs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from landform.app import create_app
from landform.settings import Settings
from tests.conftest import PASSWORD, assert_error, register
from tests.graphql.conftest import codes, gql


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "graphql_max_depth": 4,
            "graphql_max_aliases": 3,
            "graphql_max_tokens": 200,
            "graphql_max_cost": 150,
            "graphql_max_batch": 6,
            "login_max_failures": 3,
        }
    )


async def test_depth_is_limited_through_fragments(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    fine = await gql(client, "{ landingPages { nodes { owner { email } } } }", headers=ada)
    assert "errors" not in fine
    deep = await gql(
        client,
        """query Deep { ...Pages }
        fragment Pages on Query { landingPages { edges { node { latestVersion { number } } } } }""",
        headers=ada,
    )
    assert "data" not in deep  # refused before it ran
    assert codes(deep) == ["query_too_deep"]
    assert "Deep is 5 levels deep" in deep["errors"][0]["message"]


async def test_aliases_count_inside_fragments(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    three = await gql(client, "{ a: me { id } b: me { id } c: me { id } }", headers=ada)
    assert set(three["data"]) == {"a", "b", "c"}
    through_fragments = await gql(
        client,
        """{ a: me { id } ...Two }
        fragment Two on Query { b: me { id } ...One }
        fragment One on Query { c: me { id } d: me { id } }""",
        headers=ada,
    )
    assert "data" not in through_fragments  # refused before it ran
    assert codes(through_fragments) == ["too_many_aliases"]
    assert through_fragments["errors"][0]["message"].startswith("4 aliases")


async def test_fragments_that_double_the_selection_are_refused_before_walking_it(
    client: httpx.AsyncClient,
) -> None:
    """Each fragment spreads the one before it twice: 14 of them select 2^14
    fields within this test's 200 tokens (at the default 2,000, 150 of them
    could). Counted fragment by fragment, it is refused at once (spread out,
    29 held the event loop for minutes)."""
    doubling = " ".join(
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 15)
    )
    query = f"query {{ ...F14 }} fragment F0 on Query {{ __typename }} {doubling}"
    result = await gql(client, query)
    assert "data" not in result  # refused before it ran
    assert codes(result) == ["query_too_large"]
    assert "selects 16,384 fields" in result["errors"][0]["message"]
    # Spread a few times, fragments are as welcome as ever.
    small = "query { ...F3 } fragment F0 on Query { __typename } " + " ".join(
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 4)
    )
    assert (await gql(client, small))["data"] == {"__typename": "Query"}


async def test_tokens_are_limited_while_parsing(client: httpx.AsyncClient) -> None:
    long = "{ " + " ".join("templates { id name }" for _ in range(60)) + " }"
    result = await gql(client, long)
    assert "data" not in result  # refused before it ran
    assert codes(result) == ["too_many_tokens"]


async def test_cost_counts_page_sizes_and_variables(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    query = "query($n: Int!) { landingPages(first: $n) { nodes { latestVersion { number } analytics { views } } } }"
    # 1 + n × (1 + 1 + 2): the connection, and per node the list entry,
    # the version and the summary; 20 pages cost 81, 50 cost 201.
    cheap = await gql(client, query, {"n": 20}, headers=ada)
    assert "errors" not in cheap
    costly = await gql(client, query, {"n": 50}, headers=ada)
    assert "data" not in costly  # refused before it ran
    assert codes(costly) == ["query_too_costly"]
    assert costly["errors"][0]["extensions"]["cost"] == 201
    assert costly["errors"][0]["extensions"]["max_cost"] == 150
    # Reports cost more than fields: 50 + 10 + 10 + 50 + 50.
    heavy = await gql(
        client,
        '{ customQuery(query: {metrics: ["views"]}) dashboard { pages } pageAnalytics(id: "x") { interval } x: customQuery(query: {}) y: customQuery(query: {}) }',
        headers=ada,
    )
    assert codes(heavy) == ["query_too_costly"]
    assert heavy["errors"][0]["extensions"]["cost"] == 170


async def test_nothing_runs_when_a_limit_refuses(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """A refused mutation document creates nothing."""
    mutation = (
        "mutation { "
        + " ".join(
            f'p{n}: createLandingPage(input: {{title: "Page {n}"}}) {{ id }}' for n in range(4)
        )
        + " }"
    )
    result = await gql(client, mutation, headers=ada)
    assert codes(result) == ["too_many_aliases"]
    listed = await client.get("/landing-pages", headers=ada)
    assert listed.json()["items"] == []


async def test_batches_are_bounded_and_run_in_order(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    batch = [
        {
            "query": 'mutation { createLandingPage(input: {title: "First", slug: "first"}) { slug } }'
        },
        {"query": "{ landingPages { nodes { slug } } }"},
    ]
    response = await client.post("/graphql", json=batch, headers=ada)
    assert response.status_code == 200
    first, second = response.json()
    assert first["data"]["createLandingPage"]["slug"] == "first"
    assert second["data"]["landingPages"]["nodes"] == [{"slug": "first"}]

    too_many = await client.post("/graphql", json=[{"query": "{ templates { id } }"}] * 7)
    error = assert_error(too_many, 400, "bad_graphql_request")
    assert "Too many operations" in error["message"]


async def test_a_batch_shares_one_cost_allowance(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """Each operation within the limit (custom queries cost 50: two aliases
    make 100 of the 150 allowed), but not six of them in one request."""
    two = '{ a: customQuery(query: {metrics: ["views"]}) b: customQuery(query: {metrics: ["views"]}) }'
    alone = (await client.post("/graphql", json={"query": two}, headers=ada)).json()
    assert "errors" not in alone, alone
    answers = (await client.post("/graphql", json=[{"query": two}] * 6, headers=ada)).json()
    assert "errors" not in answers[0]
    for refused in answers[1:]:
        assert "data" not in refused
        assert codes(refused) == ["query_too_costly"]
        assert "batch" in refused["errors"][0]["message"]
    # Cheap operations still share a batch.
    cheap = [{"query": "{ templates { id } }"}] * 6
    assert all("errors" not in each for each in (await client.post("/graphql", json=cheap)).json())


async def test_logins_in_a_batch_or_behind_aliases_count_one_by_one(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "target@example.com")
    attempt = 'mutation { login(email: "target@example.com", password: "guess-%d-guess") { accessToken } }'
    batch = [{"query": attempt % n} for n in range(5)]
    results = (await client.post("/graphql", json=batch)).json()
    assert [codes(result) for result in results] == [["invalid_credentials"]] * 3 + [
        ["login_throttled"]
    ] * 2

    await register(client, "other@example.com")
    aliased = (
        "mutation { "
        + " ".join(
            f'a{n}: login(email: "other@example.com", password: "guess-{n}-guess") {{ accessToken }}'
            for n in range(3)
        )
        + " }"
    )
    elsewhere = {"X-Forwarded-For": "203.0.113.9"}  # not the address throttled above
    result = await gql(client, aliased, headers=elsewhere)
    assert codes(result) == ["invalid_credentials"] * 3
    right = await gql(
        client,
        f'mutation {{ login(email: "other@example.com", password: "{PASSWORD}") {{ accessToken }} }}',
        headers=elsewhere,
    )
    assert codes(right) == ["login_throttled"], (
        "even the right password waits once the throttle is on"
    )


async def test_transport_errors_use_the_api_error_shape(client: httpx.AsyncClient) -> None:
    bad_json = await client.post(
        "/graphql", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    # The parser's reason says where the body went wrong.
    assert "line 1 column 2" in assert_error(bad_json, 400, "bad_graphql_request")["message"]
    lone_surrogate = await client.post(
        "/graphql",
        content=b'{"query": "{ me { id } }", "variables": {"x": "\\ud800"}}',
        headers={"Content-Type": "application/json"},
    )
    assert "surrogate" in assert_error(lone_surrogate, 400, "bad_graphql_request")["message"]
    bad_variables = await client.get(
        "/graphql",
        params={"query": "{ templates { id } }", "variables": "{not json"},
        headers={"Accept": "application/json"},
    )
    assert "`variables`" in assert_error(bad_variables, 400, "bad_graphql_request")["message"]
    no_query = await client.post("/graphql", json={"variables": {}})
    assert_error(no_query, 400, "bad_graphql_request")
    wrong_type = await client.post(
        "/graphql", content=b"query { me { id } }", headers={"Content-Type": "text/plain"}
    )
    assert_error(wrong_type, 400, "bad_graphql_request")
    mutation_by_get = await client.get(
        "/graphql", params={"query": 'mutation { refresh(refreshToken: "x") { accessToken } }'}
    )
    assert mutation_by_get.status_code in (400, 405)
    assert mutation_by_get.json()["error"]["code"]
    huge = await client.post(
        "/graphql", content=b" " * 2_000_000, headers={"Content-Type": "application/json"}
    )
    assert_error(huge, 413)
    deep = "[" * 100_000 + "]" * 100_000
    for hostile in (
        deep.encode(),
        (
            '{"query": "query($v: JSON!) { customQuery(query: $v) }", "variables": {"v": '
            + deep
            + "}}"
        ).encode(),
        b'"just a string"',
        b"[1, 2]",
        b"[]",
        b'[{"query": 5}]',
        b'[{"query": "{ templates { id } }", "variables": [1]}]',
        b'[{"query": "{ templates { id } }", "extensions": 3}]',
        b'{"query": "{ templates { id } }", "variables": "x"}',
    ):
        refused = await client.post(
            "/graphql", content=hostile, headers={"Content-Type": "application/json"}
        )
        assert_error(refused, 400, "bad_graphql_request")
    syntax = await gql(client, "{ templates { id ")
    assert codes(syntax) == ["graphql_parse_failed"]
    unknown = await gql(client, "{ templates { nope } }")
    assert codes(unknown) == ["graphql_validation_failed"]
    wrong_argument = await gql(
        client, "query($n: Int!) { landingPages(first: $n) { nodes { id } } }", {"n": "ten"}
    )
    assert codes(wrong_argument) == ["graphql_validation_failed"]
    assert "$n" in wrong_argument["errors"][0]["message"]


async def test_introspection_is_off_in_production(settings: Settings, tmp_path: Any) -> None:
    introspection = "{ __schema { queryType { name } } }"
    for env, allowed in (("development", True), ("production", False)):
        app = create_app(settings.model_copy(update={"env": env}))
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                result = await gql(client, introspection)
                ide = await client.get("/graphql", headers={"Accept": "text/html"})
        if allowed:
            assert result["data"]["__schema"]["queryType"]["name"] == "Query"
            assert ide.status_code == 200 and "graphiql" in ide.text.lower()
        else:
            assert "data" not in result  # refused before it ran
            assert set(codes(result)) == {"graphql_validation_failed"}
            assert "introspection" in result["errors"][0]["message"].lower()
            assert ide.status_code == 404


async def test_cost_counts_defaults_entities_and_whole_contents(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = await client.post("/landing-pages", json={"title": "Big"}, headers=ada)
    page_id = page.json()["id"]
    selection = "nodes { latestVersion { number } analytics { views } }"
    # `first` left out is the connection's default, 20: 1 + 20 × (1 + 1 + 2).
    fine = await gql(client, f"{{ landingPages {{ {selection} }} }}", headers=ada)
    assert "errors" not in fine
    # A variable's default counts as its value would: 1 + 50 × 4.
    defaulted = await gql(
        client,
        f"query($n: Int! = 50) {{ landingPages(first: $n) {{ {selection} }} }}",
        headers=ada,
    )
    assert codes(defaulted) == ["query_too_costly"]
    assert defaulted["errors"][0]["extensions"]["cost"] == 201
    # A page's whole content costs 10: 1 + 20 × (1 + 10).
    contents = await gql(client, "{ landingPages { nodes { content } } }", headers=ada)
    assert contents["errors"][0]["extensions"]["cost"] == 221
    # Each entity resolved is an object, whatever it selects: 1 + n × 1.
    entities = (
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on LandingPage { id } } }"
    )
    few = [{"__typename": "LandingPage", "id": page_id}] * 100
    answered = await gql(client, entities, {"r": few}, headers=ada)
    assert [entity["id"] for entity in answered["data"]["_entities"]] == [page_id] * 100
    many = await gql(client, entities, {"r": few * 2}, headers=ada)
    assert codes(many) == ["query_too_costly"]
    assert many["errors"][0]["extensions"]["cost"] == 201
    # A number past GraphQL's Int is refused as such, not as a cost.
    query = f"query($n: Int!) {{ landingPages(first: $n) {{ {selection} }} }}"
    huge = await gql(client, query, {"n": 3_000_000_000}, headers=ada)
    assert codes(huge) == ["graphql_validation_failed"]


async def test_several_operations_need_an_operation_name(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    document = (
        'mutation A { createLandingPage(input: {title: "A"}) { id } } '
        'mutation B { createLandingPage(input: {title: "B"}) { id } }'
    )
    unnamed = await gql(client, document, headers=ada)
    assert "data" not in unnamed  # refused before it ran
    assert codes(unnamed) == ["graphql_validation_failed"]
    assert "operationName" in unnamed["errors"][0]["message"]
    listed = await client.get("/landing-pages", headers=ada)
    assert listed.json()["items"] == []
    named = await gql(client, document, headers=ada, operationName="B")
    assert "errors" not in named
    listed = await client.get("/landing-pages", headers=ada)
    assert [page["title"] for page in listed.json()["items"]] == ["B"]


async def test_json_is_read_as_the_rest_api_reads_it(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """Media types are case-insensitive (RFC 9110), and UTF-16, UTF-32 and
    a UTF-8 byte order mark are read as Python's JSON reader reads them."""
    body = '{"query": "{ me { email } }"}'
    for content_type, data in (
        ("Application/JSON", body.encode()),
        ("APPLICATION/JSON; charset=utf-8", body.encode()),
        ("application/json", body.encode("utf-16")),
        ("application/json", body.encode("utf-32-le")),
        ("application/json", body.encode("utf-8-sig")),
    ):
        response = await client.post(
            "/graphql", content=data, headers={**ada, "Content-Type": content_type}
        )
        assert response.status_code == 200, (content_type, data[:4], response.text)
        assert response.json()["data"]["me"]["email"]
