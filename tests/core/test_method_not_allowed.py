"""A method a path does not answer: 405 in the one error shape, with an
``Allow`` header naming every method the path does answer (RFC 9110
15.5.6), though each of them is a route of its own."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import assert_error

PAGE = "/landing-pages/0190b0c0-1111-7000-8000-000000000001"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/auth/me", "DELETE, GET, HEAD"),
        ("PATCH", "/landing-pages", "GET, HEAD, POST"),
        ("PATCH", PAGE, "DELETE, GET, HEAD, PUT"),
        ("POST", PAGE, "DELETE, GET, HEAD, PUT"),
        ("PUT", "/auth/api-keys", "GET, HEAD, POST"),
        ("DELETE", "/auth/login", "POST"),
        # A path of its own that a route with a parameter would also fit
        # (/files/{file_id}): its own methods, not the other route's.
        ("POST", "/files/usage", "GET, HEAD"),
        ("DELETE", "/files/usage", "GET, HEAD"),
        ("GET", "/files/upload", "POST"),
    ],
)
async def test_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, ada: dict[str, str], method: str, path: str, allowed: str
) -> None:
    refused = await client.request(method, path, headers=ada)
    assert_error(refused, 405, "method_not_allowed")
    assert refused.headers["allow"] == allowed
    assert allowed in refused.json()["error"]["message"]
