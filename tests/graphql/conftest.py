from __future__ import annotations

from typing import Any

import httpx

# Trusted-proxy settings, so tests can play several visitors.
from tests.analytics.conftest import settings  # noqa: F401


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """POST one operation to /graphql; returns the response body (HTTP 200)."""
    body: dict[str, Any] = {"query": query, **extra}
    if variables is not None:
        body["variables"] = variables
    response = await client.post("/graphql", json=body, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def codes(result: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in result.get("errors", [])]
