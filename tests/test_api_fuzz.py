"""Property-based fuzzing of every documented API operation (schemathesis,
from the OpenAPI document of a real server): whatever the input, valid or
not, signed in or not, the answer is never a 5xx, every JSON error has the
one error shape, and every answer is what the document says: a status it
lists by number, its content type, its schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.live_server import live_server, verified_login

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    with live_server(data_dir, workers=1) as base:
        token = verified_login(base, data_dir, "fuzz@example.com")
        headers = {"Authorization": f"Bearer {token}"}
        # A page of the user's own, so ids that exist can turn up too.
        httpx.post(f"{base}/landing-pages", json={"title": "Fuzz", "slug": "fuzz"}, headers=headers)
        yield base, headers


def check(case: Any, base: str, headers: dict[str, str]) -> None:
    # Half the cases signed in, half with whatever the case generated.
    if hash(repr(case.body)) % 2 == 0:
        case.headers = {**(case.headers or {}), **headers}
    response = case.call(base_url=base)
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
    # Listed by number, not only under "default".
    listed = case.operation.definition.raw["responses"]
    assert str(response.status_code) in listed, (case.method, case.path, response.text[:500])
    case.validate_response(response, checks=[content_type_conformance, response_schema_conformance])
    content_type = response.headers.get("content-type") or [""]
    if response.status_code >= 400 and content_type[0].startswith("application/json"):
        body = response.json()
        assert set(body) == {"error"}, body
        assert {"code", "message", "details"} <= set(body["error"])


def test_no_input_gets_a_server_error(server: tuple[str, dict[str, str]]) -> None:
    base, headers = server
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case: Any) -> None:
            check(case, base, headers)

        fuzz()
