"""HEAD is answered wherever GET is: the same status and headers, no body."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import assert_error


@pytest.mark.parametrize("path", ["/templates", "/templates/saas-launch/preview", "/healthz"])
async def test_head_answers_as_get_without_a_body(client: httpx.AsyncClient, path: str) -> None:
    got = await client.get(path, headers={"Accept-Encoding": "identity"})
    head = await client.head(path, headers={"Accept-Encoding": "identity"})
    assert (head.status_code, got.status_code) == (200, 200)
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == got.headers["content-length"]


async def test_head_of_a_private_resource_is_refused_as_its_get(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    page = (await client.post("/landing-pages", json={"title": "Mine"}, headers=ada)).json()
    assert (await client.head(f"/landing-pages/{page['id']}", headers=ada)).status_code == 200
    assert (await client.head(f"/landing-pages/{page['id']}")).status_code == 401


async def test_head_where_there_is_no_get_is_still_405(client: httpx.AsyncClient) -> None:
    answer = await client.head("/auth/login")
    assert answer.status_code == 405 and answer.content == b""
    assert_error(await client.get("/auth/login"), 405)
