"""Changing a password (given the current one) and setting a new one with a
mailed token: either way every login of the account ends, the old password
stops working and the new one works; nothing tells whether an address has
an account; a wrong guess counts toward the login throttle."""

from __future__ import annotations

import asyncio
import re
import unicodedata
import uuid
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from landform.auth import repository as repo
from landform.auth.models import ApiKey
from landform.core.secrets import token_digest
from tests.conftest import PASSWORD, assert_error, outbox_token, register, signed_in

NEW = "a brand new passphrase"


async def pair(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    answer = await client.post("/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def reset_mails(app: Any, email: str) -> list[str]:
    kept = await app.components.mailer.list(recipient=email)
    return [m.message for m in kept if "Set a new Landform password" in m.message]


def token_in(message: str) -> str:
    match = re.search(r"token=([A-Za-z0-9_-]+)", message)
    assert match, message
    return match.group(1)


async def test_a_password_change_ends_every_login_and_takes_the_new_password(
    client: httpx.AsyncClient, app: Any
) -> None:
    await signed_in(client, app, "ada@example.com")
    laptop, phone = await pair(client, "ada@example.com"), await pair(client, "ada@example.com")
    change = {"current_password": PASSWORD, "new_password": NEW}

    wrong = await client.post(
        "/auth/password",
        json={**change, "current_password": "not it at all"},
        headers=bearer(phone),
    )
    assert_error(wrong, 401, "invalid_credentials")
    weak = await client.post(
        "/auth/password", json={**change, "new_password": "short"}, headers=bearer(phone)
    )
    assert assert_error(weak, 422, "weak_password")["details"][0]["path"] == "new_password"
    key = (await client.post("/auth/api-keys", json={"name": "ci"}, headers=bearer(phone))).json()
    by_key = await client.post("/auth/password", json=change, headers={"X-API-Key": key["key"]})
    assert_error(by_key, 403, "sign_in_required")
    assert_error(await client.post("/auth/password", json=change), 401)

    changed = await client.post("/auth/password", json=change, headers=bearer(phone))
    assert changed.status_code == 200, changed.text
    assert {"access_token", "refresh_token"} <= changed.json().keys()
    # Every earlier login is over, on every device; the new one works.
    for old in (laptop, phone):
        refused = await client.post("/auth/refresh", json={"refresh_token": old["refresh_token"]})
        assert refused.status_code == 401
    renewed = await client.post(
        "/auth/refresh", json={"refresh_token": changed.json()["refresh_token"]}
    )
    assert renewed.status_code == 200
    old_password = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert_error(old_password, 401, "invalid_credentials")
    await pair(client, "ada@example.com", NEW)


async def test_wrong_current_passwords_count_toward_the_login_throttle(
    client: httpx.AsyncClient, app: Any
) -> None:
    """A stolen session cannot guess the password here either; the right
    one is no failure (ten changes in a row do not lock the owner out)."""
    headers = await signed_in(client, app, "ada@example.com")
    guess = {"current_password": "a wrong guess here", "new_password": "not used at all"}

    async def wrong() -> int:
        return (await client.post("/auth/password", json=guess, headers=headers)).status_code

    assert [await wrong() for _ in range(9)] == [401] * 9
    right = {"current_password": PASSWORD, "new_password": NEW}
    changed = await client.post("/auth/password", json=right, headers=headers)
    assert changed.status_code == 200
    headers = bearer(changed.json())  # the change ended the sign-in it was made with
    assert [await wrong(), await wrong()] == [401, 429]  # the tenth failure, then the limit


async def test_a_forgotten_password_is_reset_by_mail(client: httpx.AsyncClient, app: Any) -> None:
    await signed_in(client, app, "ada@example.com")
    before = await pair(client, "ada@example.com")
    # Known or not, the same answer; only the account's address gets mail.
    for address in ("ada@example.com", "nobody@example.com"):
        asked = await client.post("/auth/forgot-password", json={"email": address})
        assert asked.status_code == 202 and asked.json() == {"status": "accepted"}
    assert await reset_mails(app, "nobody@example.com") == []
    [mail] = await reset_mails(app, "ada@example.com")
    assert "expires in 1 hour" in mail and "POST http://testserver/auth/reset-password" in mail
    # Asked again at once: no second mail (no mail-bombing through the form).
    await client.post("/auth/forgot-password", json={"email": "ADA@example.com"})
    assert len(await reset_mails(app, "ada@example.com")) == 1
    token = token_in(mail)

    bad = await client.post("/auth/reset-password", json={"token": "x" * 43, "new_password": NEW})
    assert_error(bad, 400, "invalid_token")
    weak = await client.post("/auth/reset-password", json={"token": token, "new_password": "ada"})
    assert_error(weak, 422, "weak_password")
    done = await client.post("/auth/reset-password", json={"token": token, "new_password": NEW})
    assert done.status_code == 204, done.text
    again = await client.post("/auth/reset-password", json={"token": token, "new_password": NEW})
    assert_error(again, 400, "token_already_used")
    refused = await client.post("/auth/refresh", json={"refresh_token": before["refresh_token"]})
    assert refused.status_code == 401  # signed out everywhere
    assert_error(
        await client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD}),
        401,
        "invalid_credentials",
    )
    await pair(client, "ada@example.com", NEW)


@pytest.mark.parametrize("settings_update", [{"password_reset_token_ttl": 1}], indirect=True)
async def test_a_reset_token_expires_and_a_reset_proves_the_address(
    client: httpx.AsyncClient, app: Any
) -> None:
    await register(client, "bob@example.com")  # never verified
    await client.post("/auth/forgot-password", json={"email": "bob@example.com"})
    [mail] = await reset_mails(app, "bob@example.com")
    await asyncio.sleep(1.1)
    late = await client.post(
        "/auth/reset-password", json={"token": token_in(mail), "new_password": NEW}
    )
    assert_error(late, 400, "token_expired")
    app.components.settings.verification_resend_seconds = 0
    await client.post("/auth/forgot-password", json={"email": "bob@example.com"})
    fresh = (await reset_mails(app, "bob@example.com"))[0]
    done = await client.post(
        "/auth/reset-password", json={"token": token_in(fresh), "new_password": NEW}
    )
    assert done.status_code == 204, done.text
    me = await client.get("/auth/me", headers=bearer(await pair(client, "bob@example.com", NEW)))
    assert me.json()["email_verified"] is True  # the mail reached the address


async def test_a_reset_or_a_change_ends_every_other_reset_mail_still_out(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Anyone holding an earlier reset mail could otherwise set the password
    back after the owner's reset (or change) for the rest of its hour."""
    await signed_in(client, app, "ada@example.com")
    app.components.settings.verification_resend_seconds = 0
    for _ in range(2):
        await client.post("/auth/forgot-password", json={"email": "ada@example.com"})
    first, second = (token_in(mail) for mail in await reset_mails(app, "ada@example.com"))
    done = await client.post("/auth/reset-password", json={"token": second, "new_password": NEW})
    assert done.status_code == 204, done.text
    stale = await client.post(
        "/auth/reset-password", json={"token": first, "new_password": PASSWORD}
    )
    assert_error(stale, 400, "invalid_token")
    # Asked for, then the password changed by hand: the mail is spent too.
    await client.post("/auth/forgot-password", json={"email": "ada@example.com"})
    third = token_in((await reset_mails(app, "ada@example.com"))[0])
    changed = await client.post(
        "/auth/password",
        json={"current_password": NEW, "new_password": "yet another passphrase"},
        headers=bearer(await pair(client, "ada@example.com", NEW)),
    )
    assert changed.status_code == 200, changed.text
    stale = await client.post("/auth/reset-password", json={"token": third, "new_password": NEW})
    assert_error(stale, 400, "invalid_token")
    await pair(client, "ada@example.com", "yet another passphrase")


async def test_an_address_taken_back_by_a_reset_leaves_no_key_of_whoever_registered_it(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Someone registers an address that is not theirs (never verified):
    they can make no API key, and one made before this rule goes when the
    owner proves the address with a reset."""
    await register(client, "vic@example.com", "the squatter's passphrase")
    squatter = bearer(await pair(client, "vic@example.com", "the squatter's passphrase"))
    refused = await client.post("/auth/api-keys", json={"name": "backdoor"}, headers=squatter)
    assert_error(refused, 403, "email_not_verified")
    # A key from before the rule, made as the API made them then.
    user_id = (await client.get("/auth/me", headers=squatter)).json()["id"]
    auth = app.components.auth
    async with app.components.db.write() as session:
        session.add(
            ApiKey(
                user_id=uuid.UUID(user_id), name="old", prefix=OLD_KEY[:10],
                key_hash=token_digest(OLD_KEY), created_at=auth.clock.now(),
            )
        )  # fmt: skip
    assert (await client.get("/landing-pages", headers={"X-API-Key": OLD_KEY})).status_code == 200
    await client.post("/auth/forgot-password", json={"email": "vic@example.com"})
    [mail] = await reset_mails(app, "vic@example.com")
    done = await client.post(
        "/auth/reset-password", json={"token": token_in(mail), "new_password": NEW}
    )
    assert done.status_code == 204, done.text
    gone = await client.get("/landing-pages", headers={"X-API-Key": OLD_KEY})
    assert_error(gone, 401)


OLD_KEY = "lf_" + "k" * 43


async def test_a_reset_revokes_every_api_key_made_before_it(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Someone registered the address first, its owner confirmed it from
    the welcome mail, and the registrant, still signed in, made a key. A
    reset, the way an account is taken back, leaves that key nothing."""
    await register(client, "vic@example.com", "the squatter's passphrase")
    squatter = bearer(await pair(client, "vic@example.com", "the squatter's passphrase"))
    await client.post(
        "/auth/verify-email", json={"token": await outbox_token(app, "vic@example.com")}
    )
    made = await client.post("/auth/api-keys", json={"name": "backdoor"}, headers=squatter)
    assert made.status_code == 201, made.text
    backdoor = {"X-API-Key": made.json()["key"]}
    assert (await client.get("/auth/me", headers=backdoor)).status_code == 200
    await client.post("/auth/forgot-password", json={"email": "vic@example.com"})
    [mail] = await reset_mails(app, "vic@example.com")
    assert "revokes your API keys" in mail
    done = await client.post(
        "/auth/reset-password", json={"token": token_in(mail), "new_password": NEW}
    )
    assert done.status_code == 204, done.text
    assert_error(await client.get("/auth/me", headers=backdoor), 401)
    assert_error(await client.post("/landing-pages", json={"title": "x"}, headers=backdoor), 401)
    # The owner, signed in with the new password, makes keys of their own.
    owner = bearer(await pair(client, "vic@example.com", NEW))
    fresh = await client.post("/auth/api-keys", json={"name": "mine"}, headers=owner)
    assert fresh.status_code == 201


async def test_a_password_is_the_same_however_its_accents_were_typed(
    client: httpx.AsyncClient, app: Any
) -> None:
    """ "é" as one code point (NFC) or as "e" and a combining accent (NFD,
    as some keyboards and systems give it), full-width letters as the
    letters: one password (NIST SP 800-63B's NFKC)."""
    composed = "motdepassé très long"
    await register(client, "zoe@example.com", composed)
    for typed in (
        composed,
        unicodedata.normalize("NFD", composed),
        "ｍｏｔｄｅｐａｓｓé très long",
    ):
        assert (await pair(client, "zoe@example.com", typed))["access_token"]
    # An account whose hash was made of the text as typed, before passwords
    # were normalized, still signs in with it.
    decomposed = unicodedata.normalize("NFD", "un autre passé, très long")
    await register(client, "old@example.com", "placeholder passphrase 1")
    async with app.components.db.write() as session:
        user = await repo.user_by_email(session, "old@example.com")
        assert user is not None
        user.password_hash = PasswordHasher(time_cost=2, memory_cost=19 * 1024).hash(decomposed)
    assert (await pair(client, "old@example.com", decomposed))["access_token"]
