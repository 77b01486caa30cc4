"""Accounts: registration, verification, login, throttling, refresh rotation,
logout, API keys — with every failure path."""

from __future__ import annotations

import unicodedata
from typing import Any

import httpx
import pytest

from landform.core.clock import Clock, FrozenClock
from tests.conftest import PASSWORD, assert_error, login, outbox_token, register, signed_in


@pytest.fixture
def clock() -> Clock:
    return FrozenClock()


async def test_register_returns_account_without_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register", json={"email": "Ada@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ada@example.com"
    assert body["email_verified"] is False
    assert "token" not in str(body).lower()
    assert "password" not in str(body).lower()


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("short", "at least 10"),
        ("aaaaaaaaaaaa", "4 different"),
        ("password123", "most common"),
        ("grace-hopper-2024!", "must not contain the name in your email address ('grace-hopper')"),
        ("GRACE-HOPPER@example.com", "must not contain your email address"),
        ("x" * 200, "at most 128"),
    ],
)
async def test_weak_password_is_422_saying_why(
    client: httpx.AsyncClient, password: str, says: str
) -> None:
    response = await client.post(
        "/auth/register", json={"email": "grace-hopper@example.com", "password": password}
    )
    error = assert_error(response, 422, "weak_password")
    assert says in error["message"]
    assert error["details"][0]["path"] == "password"


async def test_a_short_address_is_no_password_either(client: httpx.AsyncClient) -> None:
    """The name before the @ is too short to refuse in a password (joe),
    but the whole address is not a password."""
    for email, password in (("joe@example.com", "joe@example.com"), ("amy@x.org", "AMY@X.ORG!")):
        response = await client.post("/auth/register", json={"email": email, "password": password})
        assert "your email address" in assert_error(response, 422, "weak_password")["message"]
    fine = await client.post(
        "/auth/register", json={"email": "joe@example.com", "password": "joe's long passphrase"}
    )
    assert fine.status_code == 201, fine.text


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@b.com", "a b@c.com", ""])
async def test_invalid_email_is_422_naming_the_field(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
    error = assert_error(response, 422, "validation_failed")
    assert error["details"][0]["path"] == "email"


async def test_verification_mail_link_verifies_once(client: httpx.AsyncClient, app: Any) -> None:
    await register(client, "ada@example.com")
    messages = await app.components.mailer.list(recipient="ada@example.com")
    assert len(messages) == 1
    assert "http://testserver/auth/verify-email?token=" in messages[0].message
    token = await outbox_token(app, "ada@example.com")
    assert len(token) >= 43  # 256 random bits, URL-safe base64

    response = await client.post("/auth/verify-email", json={"token": token})
    assert response.status_code == 200
    assert response.json()["email_verified"] is True

    again = await client.post("/auth/verify-email", json={"token": token})
    assert_error(again, 400, "token_already_used")


async def test_verification_token_is_stored_hashed(client: httpx.AsyncClient, app: Any) -> None:
    from sqlalchemy import select

    from landform.auth.models import EmailToken

    await register(client, "ada@example.com")
    token = await outbox_token(app, "ada@example.com")
    async with app.components.db.read() as session:
        stored = (await session.scalars(select(EmailToken.token_hash))).all()
    assert stored and token not in stored
    assert all(len(h) == 64 for h in stored)


async def test_expired_token_is_400(
    client: httpx.AsyncClient, app: Any, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    token = await outbox_token(app, "ada@example.com")
    clock.advance(24 * 3600 + 1)
    response = await client.post("/auth/verify-email", json={"token": token})
    assert_error(response, 400, "token_expired")


@pytest.mark.parametrize("token", ["garbage", "x" * 43, "'; DROP TABLE users; --", "🙂" * 30])
async def test_garbage_token_is_400(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post("/auth/verify-email", json={"token": token})
    assert_error(response, 400, "invalid_token")


async def test_resend_verification_sends_a_new_working_token(
    client: httpx.AsyncClient, app: Any
) -> None:
    await register(client, "ada@example.com")
    # Within a minute of the last mail: the same answer, and no mail (the
    # route would otherwise mail-bomb any address that registered).
    for _ in range(3):
        again = await client.post("/auth/resend-verification", json={"email": "ada@example.com"})
        assert again.status_code == 202
    assert len(await app.components.mailer.list(recipient="ada@example.com")) == 1
    app.components.settings.verification_resend_seconds = 0
    response = await client.post("/auth/resend-verification", json={"email": "ada@example.com"})
    assert response.status_code == 202
    messages = await app.components.mailer.list(recipient="ada@example.com")
    assert len(messages) == 2
    token = await outbox_token(app, "ada@example.com")
    assert (await client.post("/auth/verify-email", json={"token": token})).status_code == 200
    # Unknown addresses get the same answer and no mail.
    unknown = await client.post("/auth/resend-verification", json={"email": "nobody@example.com"})
    assert unknown.status_code == 202
    assert await app.components.mailer.list(recipient="nobody@example.com") == []


async def test_login_refresh_logout(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    response = await client.post(
        "/auth/login", json={"email": "ADA@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    pair = response.json()
    assert pair["token_type"] == "bearer" and pair["expires_in"] == 900
    me = await client.get("/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.json()["email"] == "ada@example.com"

    rotated = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert rotated.status_code == 200
    new_pair = rotated.json()
    assert new_pair["refresh_token"] != pair["refresh_token"]

    assert (
        await client.post("/auth/logout", json={"refresh_token": new_pair["refresh_token"]})
    ).status_code == 204
    after = await client.post("/auth/refresh", json={"refresh_token": new_pair["refresh_token"]})
    assert_error(after, 401, "invalid_refresh_token")


async def test_refresh_token_reuse_revokes_the_family(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    first = (
        await client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    ).json()
    second = (
        await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    # Back at once (two tabs, a retry): refused, and the login lives on.
    raced = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_error(raced, 401, "refresh_token_just_used")
    third = await client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200
    # Back later: someone copied it.
    clock.advance(11)
    reuse = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_error(reuse, 401, "refresh_token_reused")
    # ...so the legitimate newest token of that family no longer works either.
    newest = await client.post(
        "/auth/refresh", json={"refresh_token": third.json()["refresh_token"]}
    )
    assert_error(newest, 401, "invalid_refresh_token")
    # Another login (another family) is unaffected.
    other = (
        await client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    ).json()
    assert (
        await client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    ).status_code == 200


async def test_wrong_password_and_unknown_email_look_the_same(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    wrong = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": "nope-nope-nope"}
    )
    unknown = await client.post(
        "/auth/login", json={"email": "who@example.com", "password": PASSWORD}
    )
    assert_error(wrong, 401, "invalid_credentials")
    assert_error(unknown, 401, "invalid_credentials")
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]


async def test_eleventh_failed_login_in_a_minute_is_429(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    for _ in range(10):
        r = await client.post(
            "/auth/login", json={"email": "ada@example.com", "password": "wrong-password!"}
        )
        assert r.status_code == 401
    throttled = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    error = assert_error(throttled, 429, "login_throttled")
    retry_after = int(throttled.headers["Retry-After"])
    assert 1 <= retry_after <= 61
    assert error["details"]["retry_after"] == retry_after
    clock.advance(61)
    assert (
        await client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    ).status_code == 200


async def test_access_token_expires(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await register(client, "ada@example.com")
    headers = await login(client, "ada@example.com")
    assert (await client.get("/auth/me", headers=headers)).status_code == 200
    clock.advance(901)
    assert_error(await client.get("/auth/me", headers=headers), 401, "invalid_access_token")


@pytest.mark.parametrize(
    "header",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic YWRhOnB3"},
        {"Authorization": "Bearer lf_unknown_key"},
        {"X-API-Key": "lf_unknown_key"},
    ],
)
async def test_missing_or_bad_credentials_are_401(
    client: httpx.AsyncClient, header: dict[str, str]
) -> None:
    response = await client.get("/auth/me", headers=header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("not_authenticated", "invalid_access_token")


async def test_api_keys_create_list_use_revoke(client: httpx.AsyncClient, app: Any) -> None:
    headers = await signed_in(client, app, "ada@example.com")
    created = await client.post("/auth/api-keys", json={"name": "load tests"}, headers=headers)
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("lf_")
    listed = (await client.get("/auth/api-keys", headers=headers)).json()
    assert [k["name"] for k in listed] == ["load tests"]
    assert "key" not in listed[0]  # shown once only
    assert listed[0]["last_used_at"] is None

    for auth in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        me = await client.get("/auth/me", headers=auth)
        assert me.status_code == 200 and me.json()["email"] == "ada@example.com"
        pages = await client.post("/landing-pages", json={"title": "Via key"}, headers=auth)
        assert pages.status_code == 201
        # But no key of its own: revoked, a leaked key leaves none behind.
        more = await client.post("/auth/api-keys", json={"name": "mine now"}, headers=auth)
        assert_error(more, 403, "sign_in_required")
    # Its use is noted, to the hour (one write, not one per request).
    used = (await client.get("/auth/api-keys", headers=headers)).json()[0]["last_used_at"]
    assert used is not None and used >= listed[0]["created_at"]
    await client.get("/auth/me", headers={"X-API-Key": key})
    assert (await client.get("/auth/api-keys", headers=headers)).json()[0]["last_used_at"] == used

    # Another user cannot see or revoke it.
    other = await signed_in(client, app, "bob@example.com")
    key_id = created.json()["id"]
    assert_error(
        await client.delete(f"/auth/api-keys/{key_id}", headers=other), 404, "api_key_not_found"
    )
    assert (await client.get("/auth/api-keys", headers=other)).json() == []

    assert (await client.delete(f"/auth/api-keys/{key_id}", headers=headers)).status_code == 204
    assert (await client.get("/auth/me", headers={"X-API-Key": key})).status_code == 401


async def test_api_key_is_stored_hashed(client: httpx.AsyncClient, app: Any) -> None:
    from sqlalchemy import select

    from landform.auth.models import ApiKey

    headers = await signed_in(client, app, "ada@example.com")
    key = (await client.post("/auth/api-keys", json={"name": "k"}, headers=headers)).json()["key"]
    async with app.components.db.read() as session:
        hashes = (await session.scalars(select(ApiKey.key_hash))).all()
    assert key not in hashes


async def test_password_is_hashed_with_argon2id(client: httpx.AsyncClient, app: Any) -> None:
    from sqlalchemy import select

    from landform.auth.models import User

    await register(client, "ada@example.com")
    async with app.components.db.read() as session:
        stored = await session.scalar(select(User.password_hash))
    assert stored is not None and stored.startswith("$argon2id$")
    assert "m=19456" in stored and "t=2" in stored
    assert PASSWORD not in stored


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/auth/register", {"email": "a@example.com", "password": PASSWORD, "admin": True}),
        ("/auth/register", {"email": 5, "password": PASSWORD}),
        ("/auth/register", ["not", "an", "object"]),
        ("/auth/login", {"email": "a@example.com"}),
        ("/auth/refresh", {"refresh_token": None}),
        ("/auth/verify-email", {}),
    ],
)
async def test_bad_bodies_are_422(client: httpx.AsyncClient, path: str, body: Any) -> None:
    response = await client.post(path, json=body)
    assert_error(response, 422)


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register",
        content=b'{"email": "a@b.c", ',
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 422, "malformed_json")


async def test_a_body_not_in_utf_8_is_malformed_and_a_missing_one_is_named(
    client: httpx.AsyncClient,
) -> None:
    latin = await client.post(
        "/auth/register",
        content='{"email": "zoë@example.com"}'.encode("latin-1"),
        headers={"Content-Type": "application/json"},
    )
    assert "UTF-8" in assert_error(latin, 422, "malformed_json")["message"]
    for path in ("/auth/logout", "/auth/register"):
        missing = assert_error(await client.post(path), 422, "validation_failed")
        assert missing["message"] == "send a JSON body"


@pytest.mark.parametrize("path", ["/auth/register", "/landing-pages", "/analytics/custom-query"])
async def test_json_nested_past_the_parser_is_malformed(
    client: httpx.AsyncClient, path: str
) -> None:
    """Within the size limit but deeper than the parser follows: said as
    such, not as a bare "error parsing the body"."""
    deep = b"[" * 5000 + b"]" * 5000
    response = await client.post(path, content=deep, headers={"Content-Type": "application/json"})
    error = assert_error(response, 422, "malformed_json")
    assert "nests too deeply" in error["message"]


@pytest.mark.parametrize("path", ["/auth/register", "/landing-pages", "/analytics/custom-query"])
async def test_a_number_past_the_parsers_digit_limit_is_malformed_json(
    client: httpx.AsyncClient, path: str
) -> None:
    """Valid JSON, but an integer of 5,000 digits: Python will not read it."""
    body = b'{"title": ' + b"9" * 5000 + b"}"
    response = await client.post(path, content=body, headers={"Content-Type": "application/json"})
    error = assert_error(response, 422, "malformed_json")
    assert "digits" in error["message"]


async def test_json_sent_with_no_content_type_is_asked_for_with_one(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/auth/login", content=b'{"email": "a@example.com", "password": "a long passphrase"}'
    )
    error = assert_error(response, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in error["message"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_a_body_that_is_not_json_is_415(client: httpx.AsyncClient, content_type: str) -> None:
    response = await client.post(
        "/auth/register",
        content=b'{"email": "a@b.c", "password": "long enough password"}',
        headers={"Content-Type": content_type},
    )
    error = assert_error(response, 415, "unsupported_media_type")
    assert content_type in error["message"]


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register",
        content=b'{"email": "a@b.c", "password": "' + b"x" * (2 * 1024 * 1024) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 413, "payload_too_large")


async def test_mail_link_opens_a_confirmation_page_that_verifies_on_click(
    client: httpx.AsyncClient, app: Any
) -> None:
    await register(client, "ada@example.com")
    token = await outbox_token(app, "ada@example.com")
    page = await client.get("/auth/verify-email", params={"token": token})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'value="{token}"' in page.text
    # Opening the link (as a mail scanner would) verified nothing yet.
    me = await login(client, "ada@example.com")
    assert (await client.get("/auth/me", headers=me)).json()["email_verified"] is False

    confirmed = await client.post("/auth/verify-email/confirm", data={"token": token})
    assert confirmed.status_code == 200 and "Email confirmed" in confirmed.text
    assert (await client.get("/auth/me", headers=me)).json()["email_verified"] is True
    # Pressed again (the mail's link opened twice): confirmed, not "did not work".
    again = await client.post("/auth/verify-email/confirm", data={"token": token})
    assert again.status_code == 200 and "confirmed already" in again.text
    # A link cut short by a mail program: said as such, a page, not the API's JSON.
    # So is one mangled past any token's length.
    for cut in (
        await client.get("/auth/verify-email"),
        await client.post("/auth/verify-email/confirm", data={}),
        await client.get("/auth/verify-email", params={"token": "x" * 600}),
        await client.post("/auth/verify-email/confirm", data={"token": "x" * 600}),
    ):
        assert cut.status_code == 400 and cut.headers["content-type"].startswith("text/html")
        assert "This link is incomplete" in cut.text

    hostile = await client.get(
        "/auth/verify-email", params={"token": '"><script>alert(1)</script>'}
    )
    assert "<script>" not in hostile.text


async def test_oversized_streamed_body_without_length_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 65536

    response = await client.post(
        "/auth/register", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")


async def test_api_key_routes_need_a_user(client: httpx.AsyncClient, app: Any) -> None:
    headers = await signed_in(client, app, "ada@example.com")
    key_id = (await client.post("/auth/api-keys", json={"name": "k"}, headers=headers)).json()["id"]
    for method, path, body in (
        ("POST", "/auth/api-keys", {"name": "x"}),
        ("GET", "/auth/api-keys", None),
        ("DELETE", f"/auth/api-keys/{key_id}", None),
    ):
        missing = assert_error(await client.request(method, path, json=body), 401)
        assert missing["code"] == "not_authenticated"
    # A credential refused says so in WWW-Authenticate too (RFC 6750 3).
    for bad in ({"Authorization": "Bearer nope"}, {"X-API-Key": "lf_" + "x" * 43}):
        refused = await client.get("/auth/api-keys", headers=bad)
        assert_error(refused, 401)
        assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    blank = await client.post("/auth/api-keys", json={"name": "   "}, headers=headers)
    assert_error(blank, 422)
    assert len((await client.get("/auth/api-keys", headers=headers)).json()) == 1


async def test_the_address_that_registered_signs_in_however_it_is_typed(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Registration keeps the address in one spelling (trimmed, NFC, the
    domain in Unicode, lower case); sign-in, resending the mail and
    `landform users` find the account by the same spelling."""
    nfc = "zoë@exämple.com"
    user = await register(client, f"  {nfc.upper()}\t")
    assert user["email"] == nfc
    for typed in (
        f" {nfc} ",
        unicodedata.normalize("NFD", nfc),
        "zoë@xn--exmple-cua.com",
        nfc.upper(),
    ):
        response = await client.post("/auth/login", json={"email": typed, "password": PASSWORD})
        assert response.status_code == 200, (typed, response.text)
    sent = len(await app.components.mailer.list(limit=100, recipient=nfc))
    app.components.settings.verification_resend_seconds = 0
    resent = await client.post(
        "/auth/resend-verification", json={"email": unicodedata.normalize("NFD", nfc)}
    )
    assert resent.status_code == 202
    assert len(await app.components.mailer.list(limit=100, recipient=nfc)) == sent + 1
    promoted = await app.components.auth.set_role(f" {nfc.upper()} ", "admin")
    assert promoted.email == nfc and promoted.role == "admin"


async def test_an_address_mail_headers_would_decode_is_refused(
    client: httpx.AsyncClient, app: Any
) -> None:
    """An encoded word is valid in an address, but the mail's To: header
    decodes it: the account would be one address, its mail another's."""
    await register(client, "victim@example.com", PASSWORD)
    for address in ("=?utf-8?q?victim?=@example.com", "=?us-ascii?B?dmljdGlt?=@example.com"):
        for path in ("/auth/register", "/auth/forgot-password", "/auth/resend-verification"):
            body = {"email": address, "password": PASSWORD}
            if path != "/auth/register":
                body = {"email": address}
            refused = await client.post(path, json=body)
            error = assert_error(refused, 422, "validation_failed")
            assert "encoded word" in str(error["details"]), (path, error)
    kept = await app.components.mailer.list(recipient="victim@example.com")
    assert len(kept) == 1  # the confirmation of the one real registration
    # "=?" alone is no encoded word: such an address is as welcome as any.
    plain = await client.post(
        "/auth/register", json={"email": "a=?b@example.com", "password": PASSWORD}
    )
    assert plain.status_code == 201, plain.text


async def test_api_answers_are_kept_by_no_cache_and_not_sniffed(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Tokens, keys and account data must not rest in a browser's or a
    proxy's cache (RFC 6749 5.1); a route that says otherwise is heard."""
    await register(client, "ada@example.com", PASSWORD)
    await client.post(
        "/auth/verify-email", json={"token": await outbox_token(app, "ada@example.com")}
    )
    tokens = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    me = await client.get(
        "/auth/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    refused = await client.get("/auth/me")
    for answer in (tokens, me, refused):
        assert answer.headers["cache-control"] == "no-store", answer.request.url
        assert answer.headers["x-content-type-options"] == "nosniff"
    templates = await client.get("/templates")
    assert templates.headers["cache-control"].startswith("public, max-age=")
