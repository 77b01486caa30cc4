"""The OpenAPI document describes the errors the API really sends: the one
error shape, under the statuses each operation can give. (tests/test_api_fuzz
checks real answers against the document.)"""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema

from tests.conftest import assert_error, signed_in

ERROR_REF = {"$ref": "#/components/schemas/Error"}


async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def error_schema(document: dict[str, Any]) -> Any:
    return document["components"]["schemas"]["Error"]


async def test_every_error_response_is_documented_in_the_one_shape(
    client: httpx.AsyncClient,
) -> None:
    document = await openapi(client)
    schemas = document["components"]["schemas"]
    # FastAPI's own validation body is never sent, so it is not offered.
    assert "HTTPValidationError" not in schemas
    assert "HTTPValidationError" not in str(document["paths"])
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert len(operations) > 30
    for operation in operations:
        responses = operation["responses"]
        errors = {s: r for s, r in responses.items() if s == "default" or int(s) >= 400}
        assert "default" in errors, operation["operationId"]
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == ERROR_REF, (operation["operationId"], status)
            assert response["description"], (operation["operationId"], status)


async def test_each_operation_lists_the_statuses_of_its_kind(client: httpx.AsyncClient) -> None:
    paths = (await openapi(client))["paths"]
    # Signed in, a path id, a JSON body, If-Match, rate limited; and its own.
    update = paths["/landing-pages/{page_id}/content"]["put"]["responses"]
    assert {"400", "401", "404", "409", "412", "413", "415", "422", "429"} <= set(update)
    assert "version_conflict" in update["412"]["description"]
    assert "If-Match" in update["400"]["description"]
    login = paths["/auth/login"]["post"]["responses"]
    assert "invalid_credentials" in login["401"]["description"]
    assert "login_throttled" in login["429"]["description"]
    assert (
        "email_not_verified"
        in paths["/landing-pages/{page_id}/publish"]["post"]["responses"]["403"]["description"]
    )
    # The beacon takes text/plain too; anything else (a form) is its 415,
    # and its own layer's answers are listed with the API's.
    beacon = paths["/analytics/track-view"]["post"]["responses"]
    assert "text/plain" in beacon["415"]["description"]
    assert "page_not_found" in beacon["404"]["description"]
    assert {"405", "408", "413", "422", "429", "503", "507"} <= set(beacon)
    # A page filter naming a page that is not the caller's is a 404.
    query = paths["/analytics/custom-query"]["post"]["responses"]
    assert "page_not_found" in query["404"]["description"]
    upload = paths["/files/upload"]["post"]["responses"]
    assert "storage_unavailable" in upload["503"]["description"]
    # Probes are not rate limited; operators' routes say who may ask.
    health = paths["/healthz"]["get"]["responses"]
    assert "429" not in health and {"401", "403"} <= set(health)
    assert "not_ready" in paths["/readyz"]["get"]["responses"]["503"]["description"]
    # Nothing to validate, nothing said about validation.
    assert "422" not in paths["/auth/me"]["get"]["responses"]


async def test_real_errors_match_the_documented_shape(client: httpx.AsyncClient, app: Any) -> None:
    schema = error_schema(await openapi(client))
    headers = await signed_in(client, app, "ada@example.com")
    answers = [
        await client.get("/auth/me"),
        await client.get("/landing-pages/00000000-0000-0000-0000-000000000000", headers=headers),
        await client.post("/landing-pages", json={"title": 5}, headers=headers),
        await client.post(
            "/landing-pages", json={"title": "A"}, headers={**headers, "Idempotency-Key": ""}
        ),
    ]
    assert [a.status_code for a in answers] == [401, 404, 422, 400]
    for answer in answers:
        jsonschema.validate(answer.json(), schema)
    details = assert_error(answers[2], 422, "validation_failed")["details"]
    assert details[0]["path"] == "title"


async def test_the_beacons_take_no_idempotency_key(client: httpx.AsyncClient, app: Any) -> None:
    """They are answered in front of the idempotency middleware: a key that
    would be refused anywhere else is not even read."""
    headers = await signed_in(client, app, "ada@example.com")
    paths = (await openapi(client))["paths"]
    beacon = paths["/analytics/track-view"]["post"]
    assert "Idempotency-Key" not in [p["name"] for p in beacon.get("parameters", [])]
    created = await client.post("/landing-pages", json={"title": "A", "slug": "a"}, headers=headers)
    page_id = created.json()["id"]
    published = await client.post(f"/landing-pages/{page_id}/publish", headers=headers)
    assert published.status_code == 200
    tracked = await client.post(
        "/analytics/track-view",
        json={"page_id": page_id, "path": "/a"},
        headers={
            "Idempotency-Key": "",
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
        },
    )
    assert tracked.status_code == 202


async def test_documented_header_and_slug_rules_are_the_servers(
    client: httpx.AsyncClient, app: Any
) -> None:
    """What the document allows, the server takes; what it refuses, the
    document says beforehand (a client generated from it is not surprised)."""
    document = await openapi(client)
    post = document["paths"]["/landing-pages"]["post"]
    key_rule = next(p for p in post["parameters"] if p["name"] == "Idempotency-Key")["schema"]
    slug_schema = document["components"]["schemas"]["PageCreate"]["properties"]["slug"]
    slug_rule = next(s for s in slug_schema["anyOf"] if s.get("type") == "string")
    headers = await signed_in(client, app, "ada@example.com")
    for key in ("retry-1", "naïve".encode(), "x" * 255):
        text = key.decode("latin-1") if isinstance(key, bytes) else key
        documented = re.fullmatch(key_rule["pattern"].strip("^$"), text) is not None
        answer = await client.post(
            "/landing-pages", json={"title": "K"}, headers={**headers, "Idempotency-Key": key}
        )
        assert (answer.status_code == 201) == documented, (key, answer.text)
    for slug in ("spring-sale", "Spring", "a" * 64, "a" * 65, "-x"):
        documented = re.fullmatch(slug_rule["pattern"].strip("^$"), slug) is not None
        documented = documented and len(slug) <= slug_rule["maxLength"]
        answer = await client.post(
            "/landing-pages", json={"title": "S", "slug": slug}, headers=headers
        )
        assert (answer.status_code == 201) == documented, (slug, answer.text)
