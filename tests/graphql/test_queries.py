"""Every query, through HTTP, against the same services as REST."""

from __future__ import annotations

from typing import Any

import httpx

from tests.analytics.conftest import publish_page, track
from tests.files.samples import png
from tests.graphql.conftest import codes, gql

PAGE_FIELDS = """
  id title slug status version publishedVersion hasUnpublishedChanges url templateId
  createdAt updatedAt publishedAt seo content
"""


async def test_me_needs_a_credential_and_names_the_caller(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    anonymous = await gql(client, "{ me { email } }")
    assert anonymous["data"] is None
    assert codes(anonymous) == ["not_authenticated"]
    me = await gql(client, "{ me { id email role emailVerified createdAt } }", headers=ada)
    assert me["data"]["me"]["email"] == "ada@example.com"
    assert me["data"]["me"]["emailVerified"] is True
    rest = (await client.get("/auth/me", headers=ada)).json()
    assert me["data"]["me"]["id"] == rest["id"]


async def test_a_page_reads_as_in_rest_and_another_users_page_is_not_found(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    page = await publish_page(client, ada, "graph-page", "Graph page")
    query = f"query($id: ID!) {{ landingPage(id: $id) {{ {PAGE_FIELDS} }} }}"
    mine = await gql(client, query, {"id": page["id"]}, headers=ada)
    rest = (await client.get(f"/landing-pages/{page['id']}", headers=ada)).json()
    node = mine["data"]["landingPage"]
    assert node["id"] == rest["id"]
    assert node["status"] == "PUBLISHED"
    assert node["publishedVersion"] == rest["published_version"]
    assert node["hasUnpublishedChanges"] == rest["has_unpublished_changes"]
    assert node["url"] == rest["url"]
    assert node["content"] == rest["content"]
    assert node["seo"] == rest["seo"]

    for headers, page_id in ((bob, page["id"]), (ada, "not-an-id"), (ada, "0" * 32)):
        theirs = await gql(client, query, {"id": page_id}, headers=headers)
        assert theirs["data"] == {"landingPage": None}
        assert codes(theirs) == ["page_not_found"]
        assert theirs["errors"][0]["path"] == ["landingPage"]


async def test_landing_pages_is_a_cursor_connection_with_rest_filters(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    ids = []
    for n in range(5):
        response = await client.post(
            "/landing-pages", json={"title": f"Offer {n}", "slug": f"offer-{n}"}, headers=ada
        )
        ids.append(response.json()["id"])
    await client.post(f"/landing-pages/{ids[0]}/publish", headers=ada)
    await client.post("/landing-pages", json={"title": "Bob's", "slug": "bobs"}, headers=bob)
    query = """query($after: String, $status: PageStatus, $search: String) {
      landingPages(first: 2, after: $after, status: $status, search: $search) {
        edges { cursor node { id title } } nodes { id } pageInfo { hasNextPage endCursor }
      }
    }"""
    seen: list[str] = []
    after = None
    while True:
        result = await gql(client, query, {"after": after}, headers=ada)
        connection = result["data"]["landingPages"]
        assert [e["node"]["id"] for e in connection["edges"]] == [
            n["id"] for n in connection["nodes"]
        ]
        seen += [edge["node"]["id"] for edge in connection["edges"]]
        # The last page's too: a client keeps it to ask later for more.
        assert connection["pageInfo"]["endCursor"] == connection["edges"][-1]["cursor"]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == list(reversed(ids))  # newest first, all of ada's and only hers
    later = await gql(client, query, {"after": after}, headers=ada)
    last = later["data"]["landingPages"]
    more = await gql(client, query, {"after": last["pageInfo"]["endCursor"]}, headers=ada)
    assert more["data"]["landingPages"] == {
        "edges": [],
        "nodes": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }

    published = await gql(client, query, {"status": "PUBLISHED"}, headers=ada)
    assert [n["id"] for n in published["data"]["landingPages"]["nodes"]] == [ids[0]]
    searched = await gql(client, query, {"search": "offer 3"}, headers=ada)
    assert [n["id"] for n in searched["data"]["landingPages"]["nodes"]] == [ids[3]]

    too_many = await gql(client, "{ landingPages(first: 101) { nodes { id } } }", headers=ada)
    assert codes(too_many) == ["validation_failed"]  # as REST answers ?limit=101
    assert too_many["errors"][0]["extensions"]["details"][0]["path"] == "first"
    bad_cursor = await gql(client, query, {"after": "!!"}, headers=ada)
    assert codes(bad_cursor) == ["invalid_cursor"]
    assert bad_cursor["errors"][0]["extensions"]["details"][0]["path"] == "after"
    for search, said in [("a\x00b", "must not contain NUL characters"), ("x" * 201, "at most 200")]:
        refused = await gql(client, query, {"search": search}, headers=ada)
        assert codes(refused) == ["validation_failed"]
        (detail,) = refused["errors"][0]["extensions"]["details"]
        assert detail["path"] == "search" and said in detail["message"], detail


async def test_templates_from_the_catalogue(client: httpx.AsyncClient) -> None:
    result = await gql(client, "{ templates { id name category blockCount previewUrl } }")
    rest = (await client.get("/templates")).json()
    assert [t["id"] for t in result["data"]["templates"]] == [t["id"] for t in rest]
    first = rest[0]
    one = await gql(
        client,
        "query($id: ID!) { template(id: $id) { id name blocks theme } }",
        {"id": first["id"]},
    )
    detail = (await client.get(f"/templates/{first['id']}")).json()
    assert one["data"]["template"]["blocks"] == detail["blocks"]
    missing = await gql(client, '{ template(id: "no-such") { id } }')
    assert missing["data"] == {"template": None}
    assert codes(missing) == ["template_not_found"]


async def test_files_are_the_callers_own(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    uploaded = await client.post(
        "/files/upload", files={"file": ("dot.png", png(), "image/png")}, headers=ada
    )
    assert uploaded.status_code == 201, uploaded.text
    query = "{ files(first: 10) { nodes { id url contentType size width label } } }"
    mine = await gql(client, query, headers=ada)
    assert [f["id"] for f in mine["data"]["files"]["nodes"]] == [uploaded.json()["id"]]
    assert mine["data"]["files"]["nodes"][0]["url"] == uploaded.json()["url"]
    theirs = await gql(client, query, headers=bob)
    assert theirs["data"]["files"]["nodes"] == []
    # A category there is none of is refused, as REST refuses it.
    for category, found in (("image", 1), ("document", 0), ("bogus", None)):
        listed = await gql(
            client,
            "query($c: String) { files(category: $c) { nodes { id } } }",
            {"c": category},
            headers=ada,
        )
        if found is None:
            assert codes(listed) == ["validation_failed"]
            assert listed["errors"][0]["extensions"]["details"][0]["path"] == "category"
        else:
            assert len(listed["data"]["files"]["nodes"]) == found


async def test_page_analytics_dashboard_and_custom_query_match_rest(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str], app: Any
) -> None:
    page = await publish_page(client, ada, "measured")
    for address in ("198.51.100.1", "198.51.100.2"):
        assert (
            await track(client, "/analytics/track-view", {"page_id": page["id"]}, address=address)
        ).status_code == 202
    await app.components.ingestion.flush()
    report = await gql(
        client,
        """query($id: ID!) { pageAnalytics(id: $id, interval: DAY) {
            page { id slug } from to interval
            totals { views visitors conversions conversionRate botViews }
            series { time views visitors } devices { value views } browsers { value visitors }
        } }""",
        {"id": page["id"]},
        headers=ada,
    )
    rest = (await client.get(f"/analytics/pages/{page['id']}?interval=day", headers=ada)).json()
    data = report["data"]["pageAnalytics"]
    assert data["page"] == {"id": page["id"], "slug": "measured"}
    assert data["totals"]["views"] == rest["totals"]["views"] == 2
    assert data["totals"]["visitors"] == rest["totals"]["visitors"] == 2
    assert [p["time"] for p in data["series"]] == [p["time"] for p in rest["series"]]
    assert data["browsers"][0]["value"] == rest["browsers"][0]["value"]
    assert (data["from"], data["to"], data["interval"]) == (rest["from"], rest["to"], "DAY")

    hidden = await gql(
        client, "query($id: ID!) { pageAnalytics(id: $id) { totals { views } } }",
        {"id": page["id"]}, headers=bob,
    )  # fmt: skip
    assert hidden["data"] == {"pageAnalytics": None}
    assert codes(hidden) == ["page_not_found"]

    # An offset that carries `to` past year 9999: refused like in REST, not a crash.
    beyond = await gql(
        client,
        '{ dashboard(range: {to: "9999-12-31T23:59:59-05:00"}) { totals { views } } }',
        headers=ada,
    )
    assert codes(beyond) == ["validation_failed"]
    # A bad bound is named where the caller wrote it: in the range argument.
    assert beyond["errors"][0]["extensions"]["details"][0]["path"] == "range.to"
    too_old = await gql(
        client,
        'query($id: ID!) { pageAnalytics(id: $id, range: {from: "1960-11-20", to: "2026-11-21"}) '
        "{ totals { views } } }",
        {"id": page["id"]},
        headers=ada,
    )
    assert codes(too_old) == ["validation_failed"]
    assert too_old["errors"][0]["extensions"]["details"][0]["path"] == "range.from"
    backwards = await gql(
        client,
        'query($id: ID!) { landingPage(id: $id) { analytics(range: {from: "2026-11-21", '
        'to: "2026-11-01"}) { views } } }',
        {"id": page["id"]},
        headers=ada,
    )
    assert codes(backwards) == ["validation_failed"]
    assert backwards["errors"][0]["extensions"]["details"][0]["path"] == "range.from"
    # Not a date at all: said as REST says it, in no words of Python's.
    for garbage in ("garbage", "2026-13-45"):
        refused = await gql(
            client, f'{{ dashboard(range: {{from: "{garbage}"}}) {{ pages }} }}', headers=ada
        )
        assert "ISO 8601" in refused["errors"][0]["message"], garbage
        assert "int()" not in refused["errors"][0]["message"]

    dashboard = await gql(
        client,
        "{ dashboard { totals { views visitors } change { views } topPages { id title views } pages visitorsLast5Minutes } }",
        headers=ada,
    )
    rest_dashboard = (await client.get("/analytics/dashboard", headers=ada)).json()
    assert dashboard["data"]["dashboard"]["totals"]["views"] == rest_dashboard["totals"]["views"]
    assert dashboard["data"]["dashboard"]["topPages"][0]["id"] == page["id"]
    assert dashboard["data"]["dashboard"]["visitorsLast5Minutes"] == 2

    query = {"metrics": ["views", "visitors"], "dimensions": ["page"]}
    custom = await gql(
        client, "query($q: JSON!) { customQuery(query: $q) }", {"q": query}, headers=ada
    )
    rest_custom = await client.post("/analytics/custom-query", json=query, headers=ada)
    assert custom["data"]["customQuery"]["rows"] == rest_custom.json()["rows"]
    invalid = await gql(client, 'query { customQuery(query: {metrics: ["nope"]}) }', headers=ada)
    assert invalid["data"] is None
    assert codes(invalid) == [rest_error_code(await client.post(
        "/analytics/custom-query", json={"metrics": ["nope"]}, headers=ada
    ))]  # fmt: skip
    assert invalid["errors"][0]["extensions"]["details"][0]["path"] == "query.metrics[0]"


def rest_error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def test_api_keys_are_listed_without_secrets(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    created = await client.post("/auth/api-keys", json={"name": "ci"}, headers=ada)
    result = await gql(client, "{ apiKeys { id name prefix revokedAt } }", headers=ada)
    assert result["data"]["apiKeys"] == [
        {
            "id": created.json()["id"],
            "name": "ci",
            "prefix": created.json()["prefix"],
            "revokedAt": None,
        }
    ]


async def test_the_engines_own_refusals_carry_a_code_not_internal_error(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    # A nullable variable, null, for an argument that may not be null.
    nulled = await gql(
        client,
        "query($n: Int) { landingPages(first: $n) { nodes { id } } }",
        {"n": None},
        headers=ada,
    )
    assert codes(nulled) == ["graphql_validation_failed"]
    assert "not to be None" in nulled["errors"][0]["message"]
    # A subscription asked over plain HTTP: told where to ask.
    for headers in (ada, {}):
        asked = await gql(client, "subscription { liveViews { at } }", headers=headers)
        assert codes(asked) == ["subscription_needs_websocket"]
