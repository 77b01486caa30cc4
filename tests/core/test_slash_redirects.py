"""A path written with or without its trailing slash is sent to the one the
API serves, by a path alone: the Host header is the client's to write, and
an absolute Location built from it sent visitors wherever the request said
(a cache keeping that answer sends everyone there)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import assert_error


@pytest.mark.parametrize(
    ("sent", "location"),
    [
        ("/ops", "/ops/"),
        ("/docs/", "/docs"),
        ("/templates/?category=saas", "/templates?category=saas"),
    ],
)
async def test_a_slash_redirect_names_a_path_never_the_callers_host(
    client: httpx.AsyncClient, sent: str, location: str
) -> None:
    response = await client.get(sent, headers={"Host": "evil.example"})
    assert response.status_code == 307
    assert response.headers["location"] == location
    followed = await client.get(location)
    assert followed.status_code == 200


async def test_a_path_that_is_no_route_either_way_is_still_a_404(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/no-such/thing", "/no-such/thing/", "//evil.example/"):
        assert_error(await client.get(path, headers={"Host": "evil.example"}), 404)
