"""Registering an address that has an account: answered exactly as a new
registration (so the answer tells no one who has an account), with the
same work done for it, and the address's owner told by mail instead."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from landform.auth import service as auth_service
from landform.auth.models import User
from landform.core.clock import Clock, FrozenClock
from tests.conftest import PASSWORD, assert_error, register, signed_in

OTHER_PASSWORD = "another long passphrase 7"
NOTICE = "Someone tried to sign up to Landform with your address"


@pytest.fixture
def clock() -> Clock:
    return FrozenClock()


async def mails_to(app: Any, address: str) -> list[Any]:
    """Oldest first."""
    return list(reversed(await app.components.mailer.list(limit=100, recipient=address)))


async def accounts(app: Any) -> int:
    async with app.components.db.read_primary() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_a_taken_address_is_answered_as_a_new_one_and_its_owner_told(
    client: httpx.AsyncClient, app: Any, clock: FrozenClock
) -> None:
    owner = await signed_in(client, app, "ada@example.com")
    ada = (await client.get("/auth/me", headers=owner)).json()
    clock.advance(61)  # past the verification mail's quiet period

    taken = await client.post(
        "/auth/register", json={"email": "ADA@Example.com", "password": OTHER_PASSWORD}
    )
    new = await client.post(
        "/auth/register", json={"email": "grace@example.com", "password": OTHER_PASSWORD}
    )
    assert taken.status_code == new.status_code == 201
    assert taken.headers.keys() == new.headers.keys()
    answer = taken.json()
    assert answer.keys() == new.json().keys()
    # Nothing of the existing account shows: not its id, not that it is
    # verified, not when it was made.
    assert answer["email"] == "ada@example.com"
    assert answer["id"] != ada["id"]
    assert answer["email_verified"] is False and ada["email_verified"] is True
    assert answer["role"] == "member"
    assert answer["created_at"] == new.json()["created_at"] != ada["created_at"]

    # Nothing was made or changed: the owner's password still signs in,
    # the one just sent does not.
    assert await accounts(app) == 2
    login = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200
    other = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": OTHER_PASSWORD}
    )
    assert_error(other, 401, "invalid_credentials")

    # The owner hears of it: a mail that says to sign in, with no token.
    verification, notice = await mails_to(app, "ada@example.com")
    assert notice.subject == NOTICE
    assert "An account with it exists already" in notice.message
    assert "sign in with your password" in notice.message
    assert "http://testserver/auth/login" in notice.message
    assert "token=" not in notice.message
    assert "token=" in verification.message


async def test_the_owner_is_told_at_most_once_per_quiet_period(
    client: httpx.AsyncClient, app: Any, clock: FrozenClock
) -> None:
    """One mail per ``verification_resend_seconds`` (60) at most, counting
    the verification mail: registering is no way to mail-bomb an address."""

    async def again() -> None:
        response = await client.post(
            "/auth/register", json={"email": "ada@example.com", "password": OTHER_PASSWORD}
        )
        assert response.status_code == 201

    async def notices() -> int:
        return sum(m.subject == NOTICE for m in await mails_to(app, "ada@example.com"))

    await register(client, "ada@example.com")
    await again()  # a double click: the verification mail just went
    assert len(await mails_to(app, "ada@example.com")) == 1
    clock.advance(60)
    await again()
    await again()
    assert await notices() == 1
    clock.advance(59)
    await again()
    assert await notices() == 1
    clock.advance(1)
    await again()
    assert await notices() == 2
    assert await accounts(app) == 1


async def test_an_unconfirmed_account_is_told_without_a_confirmation_link(
    client: httpx.AsyncClient, app: Any, clock: FrozenClock
) -> None:
    """Whoever made the account may not own the address: a link in the
    notice would let the owner confirm an account someone else holds."""
    await register(client, "ada@example.com")
    clock.advance(61)
    await register(client, "ada@example.com", OTHER_PASSWORD)
    first, notice = await mails_to(app, "ada@example.com")
    assert notice.subject == NOTICE
    assert "never confirmed" in notice.message
    assert "do not confirm it" in notice.message
    assert "/auth/resend-verification" in notice.message
    assert "token=" not in notice.message and "verify-email" not in notice.message
    # The verification mail's token still confirms, as before.
    [token] = re.findall(r"verify-email\?token=([A-Za-z0-9_-]+)", first.message)
    confirmed = await client.post("/auth/verify-email", json={"token": token})
    assert confirmed.status_code == 200


async def test_a_taken_address_costs_a_password_hash_as_a_new_one_does(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer must not come sooner for a taken address: hashing is most
    of a registration's time."""
    hashed: list[str] = []
    real = auth_service.hash_password

    async def counting(password: str) -> str:
        hashed.append(password)
        return await real(password)

    monkeypatch.setattr(auth_service, "hash_password", counting)
    await register(client, "ada@example.com")
    await register(client, "ada@example.com", OTHER_PASSWORD)
    assert hashed == [PASSWORD, OTHER_PASSWORD]


async def test_registrations_of_one_address_at_once_make_one_account(
    client: httpx.AsyncClient, app: Any
) -> None:
    passwords = [f"{PASSWORD} {n}" for n in range(4)]
    answers = await asyncio.gather(
        *(
            client.post("/auth/register", json={"email": "ada@example.com", "password": p})
            for p in passwords
        )
    )
    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.json()["id"] for a in answers}) == 4
    assert await accounts(app) == 1
    # One mail: the verification of the account that was made.
    [mail] = await mails_to(app, "ada@example.com")
    assert "token=" in mail.message


async def test_a_mail_that_cannot_go_changes_no_answer(
    client: httpx.AsyncClient, app: Any, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register(client, "ada@example.com")
    clock.advance(61)

    async def refuse(message: Any) -> None:
        raise OSError("mail server down")

    monkeypatch.setattr(app.components.auth.mailer, "send", refuse)
    for email in ("ada@example.com", "grace@example.com"):
        response = await client.post(
            "/auth/register", json={"email": email, "password": OTHER_PASSWORD}
        )
        assert response.status_code == 201, response.text
