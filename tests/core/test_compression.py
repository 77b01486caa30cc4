"""API responses above the threshold are compressed by Accept-Encoding;
small ones, and clients that ask for nothing, get them as they are."""

from __future__ import annotations

import gzip
from typing import Any

import brotli
import httpx


async def raw(
    client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
) -> tuple[httpx.Headers, bytes]:
    """Headers and the bytes as sent (httpx would decode them)."""
    response = await client.send(client.build_request(method, path, **kwargs), stream=True)
    return response.headers, b"".join([chunk async for chunk in response.aiter_raw()])


async def test_large_api_responses_are_compressed_by_accept_encoding(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    headers, plain = await raw(client, "GET", "/templates", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in headers
    assert len(plain) > 1024

    headers, body = await raw(client, "GET", "/templates", headers={"Accept-Encoding": "gzip, br"})
    assert headers["content-encoding"] == "br"
    assert brotli.decompress(body) == plain
    assert len(body) < len(plain) / 2

    headers, body = await raw(client, "GET", "/templates", headers={"Accept-Encoding": "gzip"})
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == plain
    assert "Accept-Encoding" in headers["vary"]

    auth = {**ada, "Accept-Encoding": "gzip, br"}
    headers, body = await raw(client, "GET", "/auth/me", headers=auth)
    assert b"ada@example.com" in body and "content-encoding" not in headers

    query = {"query": "{ templates { id name description blocks } }"}
    headers, body = await raw(
        client, "POST", "/graphql", json=query, headers={"Accept-Encoding": "br"}
    )
    assert headers["content-encoding"] == "br"
    assert b'"templates"' in brotli.decompress(body)
