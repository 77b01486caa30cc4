"""Requests about one login or account at the same moment: whatever the
order they meet in, the outcome is one a single order would give."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from landform.auth import service as auth_service
from tests.conftest import PASSWORD, assert_error, signed_in

CREDENTIALS = {"email": "ada@example.com", "password": PASSWORD}


async def _after(delay: float, request: Any) -> httpx.Response:
    await asyncio.sleep(delay)
    return await request  # type: ignore[no-any-return]


async def test_a_refresh_racing_logout_leaves_no_token_of_that_login(
    client: httpx.AsyncClient, app: Any
) -> None:
    """A logout ends every refresh token of its login, including one a
    refresh at the same moment hands out (on PostgreSQL, such a token once
    outlived the logout in about one race in five)."""
    await signed_in(client, app, "ada@example.com")
    chance = random.Random(7)
    for _ in range(30):
        token = (await client.post("/auth/login", json=CREDENTIALS)).json()["refresh_token"]
        refreshed, logged_out = await asyncio.gather(
            client.post("/auth/refresh", json={"refresh_token": token}),
            _after(
                chance.random() * 0.005,
                client.post("/auth/logout", json={"refresh_token": token}),
            ),
        )
        assert logged_out.status_code == 204
        if refreshed.status_code == 200:
            again = {"refresh_token": refreshed.json()["refresh_token"]}
            assert_error(await client.post("/auth/refresh", json=again), 401)
        else:
            assert_error(refreshed, 401)


async def test_a_login_as_its_account_closes_is_refused_as_unknown(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The account is closed while the login checks its password (a slow
    hash): the login's new session has no account to belong to. It is
    refused as any unknown address is, not a 500."""
    ada = await signed_in(client, app, "ada@example.com")
    real_verify = auth_service.verify_password
    closed: list[int] = []

    async def verify_then_close(password_hash: str | None, password: str) -> bool:
        correct = await real_verify(password_hash, password)
        if not closed:
            closed.append(1)  # once: closing checks the password too
            bye = await client.request(
                "DELETE", "/auth/me", json={"password": PASSWORD}, headers=ada
            )
            assert bye.status_code == 204, bye.text
        return correct

    monkeypatch.setattr(auth_service, "verify_password", verify_then_close)
    assert_error(await client.post("/auth/login", json=CREDENTIALS), 401, "invalid_credentials")
