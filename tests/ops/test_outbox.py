"""The outbox over HTTP, for operators: what a script or a load test needs
to verify an account without a mail server."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from landform.app import create_app
from landform.settings import Settings
from tests.conftest import assert_error, register, signed_in

TOKEN = "ops-token-for-the-outbox-test"


@pytest.fixture
def settings_update() -> dict[str, Any]:
    return {"ops_token": TOKEN}


async def test_an_operator_reads_the_verification_mail(client: httpx.AsyncClient, app: Any) -> None:
    await register(client, "Zoe@Example.com")
    await register(client, "yann@example.com")
    ops = {"Authorization": f"Bearer {TOKEN}"}
    answer = await client.get("/ops/outbox", params={"to": "zoe@example.com"}, headers=ops)
    assert answer.status_code == 200
    (mail,) = answer.json()["messages"]
    assert mail["to"] == "zoe@example.com"
    token = re.findall(r"token=([A-Za-z0-9_-]+)", mail["message"])[-1]
    verified = await client.post("/auth/verify-email", json={"token": token})
    assert verified.status_code == 200
    everything = await client.get("/ops/outbox", params={"limit": 5}, headers=ops)
    assert len(everything.json()["messages"]) == 2
    assert_error(await client.get("/ops/outbox", params={"limit": 0}, headers=ops), 422)
    # PostgreSQL takes no NUL in text: refused here, not a 500 there.
    nul = await client.get("/ops/outbox", params={"to": "a\x00b"}, headers=ops)
    assert assert_error(nul, 422, "validation_failed")["details"][0]["path"] == "query.to"


async def test_the_outbox_is_for_operators_only(client: httpx.AsyncClient, app: Any) -> None:
    member = await signed_in(client, app, "ada@example.com")
    assert_error(await client.get("/ops/outbox"), 401)
    assert_error(await client.get("/ops/outbox", headers=member), 403, "operator_only")


async def test_with_smtp_there_is_no_outbox(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"smtp_url": "smtp://127.0.0.1:1"}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            answer = await client.get("/ops/outbox", headers={"Authorization": f"Bearer {TOKEN}"})
            assert_error(answer, 404, "outbox_disabled")
