from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event

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


@contextmanager
def counted_statements(app: Any) -> Iterator[list[str]]:
    db = app.components.db
    engines = [db.primary, *db.replicas]
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # The worker's own poll of the page change log runs meanwhile.
        if "page_changes" not in statement and statement not in ("BEGIN", "COMMIT"):
            statements.append(" ".join(statement.split())[:90])

    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine.sync_engine, "before_cursor_execute", record)
