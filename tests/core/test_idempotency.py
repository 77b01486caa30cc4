"""Idempotency-Key on the API's POST routes: a retry returns the first answer
and creates nothing twice; the same key for a different request is a 422;
concurrent duplicates make one creation; keys are the caller's own."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from landform.core.db_failures import DatabaseUnavailable
from landform.core.idempotency import Claim, IdempotencyKey, IdempotencyStore, StoredAnswer
from landform.core.idempotent_requests import request_fingerprint
from landform.files.models import StoredFile
from landform.pages.models import LandingPage
from tests.conftest import PASSWORD, assert_error
from tests.files.samples import png


async def count(app: Any, model: Any) -> int:
    async with app.components.db.read_primary() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def test_a_retry_gets_the_first_answer_and_creates_nothing(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    body = {"title": "Spring sale", "slug": "spring-sale"}
    first = await client.post("/landing-pages", json=body, headers=keyed(ada, "k-1"))
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    # The same request again, its JSON spelled differently: the same answer.
    retry = await client.post(
        "/landing-pages",
        content=b'{ "slug": "spring-sale",  "title": "Spring sale" }',
        headers={**keyed(ada, "k-1"), "Content-Type": "application/json"},
    )
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert retry.headers["content-type"] == first.headers["content-type"]
    assert await count(app, LandingPage) == 1
    # Without a key, a POST is not deduplicated (the slug is taken now).
    again = await client.post("/landing-pages", json=body, headers=ada)
    assert_error(again, 409)


async def test_the_same_key_for_a_different_request_is_refused(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    first = await client.post(
        "/landing-pages", json={"title": "One", "slug": "one"}, headers=keyed(ada, "k-2")
    )
    assert first.status_code == 201
    for path, body in (
        ("/landing-pages", {"title": "Two", "slug": "two"}),
        (f"/landing-pages/{first.json()['id']}/publish", {}),
    ):
        refused = await client.post(path, json=body, headers=keyed(ada, "k-2"))
        error = assert_error(refused, 422, "idempotency_key_reused")
        assert "different request" in error["message"]
    assert await count(app, LandingPage) == 1
    page = await client.get(f"/landing-pages/{first.json()['id']}", headers=ada)
    assert page.json()["status"] == "draft"


async def test_a_keyed_request_without_the_credential_its_route_needs_is_a_401(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Not a key's answer (a 422 for a key the client's address used for
    something else, say): the route's refusal, which says to sign in."""
    used = await client.post(
        "/auth/forgot-password", json={"email": "x@example.com"}, headers=keyed({}, "k-anon")
    )
    assert used.status_code == 202
    for path, body in (("/landing-pages", {"title": "T"}), ("/auth/api-keys", {"name": "k"})):
        refused = await client.post(path, json=body, headers=keyed({}, "k-anon"))
        assert_error(refused, 401, "not_authenticated")
    # Routes open to anyone still hold an address's keys to their request.
    reused = await client.post(
        "/auth/resend-verification", json={"email": "x@example.com"}, headers=keyed({}, "k-anon")
    )
    assert_error(reused, 422, "idempotency_key_reused")


async def test_concurrent_duplicates_make_one_creation(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    body = {"title": "Launch", "slug": "launch"}
    answers = await asyncio.gather(
        *(client.post("/landing-pages", json=body, headers=keyed(ada, "k-3")) for _ in range(6))
    )
    assert [a.status_code for a in answers] == [201] * 6
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 5
    assert await count(app, LandingPage) == 1


async def test_an_upload_retried_with_a_new_multipart_boundary_is_stored_once(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    image = png()
    answers = [
        await client.post(
            "/files/upload",
            files={"file": ("hero.png", image, "image/png")},
            headers=keyed(ada, "upload-1"),
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert await count(app, StoredFile) == 1


async def test_keys_belong_to_their_caller(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], bob: dict[str, str]
) -> None:
    mine = await client.post(
        "/landing-pages", json={"title": "Mine", "slug": "mine-ada"}, headers=keyed(ada, "shared")
    )
    theirs = await client.post(
        "/landing-pages", json={"title": "Mine", "slug": "mine-bob"}, headers=keyed(bob, "shared")
    )
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    # An anonymous caller's key is theirs alone too: a replayed sign-in
    # needs the same request, password included.
    login = {"email": "ada@example.com", "password": "wrong password entirely"}
    refused = await client.post("/auth/login", json=login, headers={"Idempotency-Key": "shared"})
    assert_error(refused, 401)


async def test_a_revoked_api_key_gets_no_stored_answer(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    """A stored answer is the asker's: once the key that asked is revoked,
    a retry with it is refused like any other request of a revoked key, not
    answered from the store."""
    made = await client.post("/auth/api-keys", json={"name": "leaky"}, headers=ada)
    leaky = {"X-API-Key": made.json()["key"]}
    first = await client.post(
        "/landing-pages", json={"title": "Secret plans"}, headers=keyed(leaky, "page-1")
    )
    assert first.status_code == 201
    revoked = await client.delete(f"/auth/api-keys/{made.json()['id']}", headers=ada)
    assert revoked.status_code == 204

    retry = await client.post(
        "/landing-pages", json={"title": "Secret plans"}, headers=keyed(leaky, "page-1")
    )
    assert_error(retry, 401, "invalid_access_token")
    assert "idempotent-replayed" not in retry.headers
    assert first.json()["id"] not in retry.text
    # The account's own retries still replay: only the revoked key lost them.
    mine = await client.post("/auth/api-keys", json={"name": "ci"}, headers=keyed(ada, "own-1"))
    again = await client.post("/auth/api-keys", json={"name": "ci"}, headers=keyed(ada, "own-1"))
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["key"] == mine.json()["key"]


async def test_an_error_outcome_is_kept_and_replayed(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    """A 4xx is the request's answer (a retry of it would fail the same way)."""
    bad = {"title": "", "slug": "Not A Slug!"}
    first = await client.post("/landing-pages", json=bad, headers=keyed(ada, "k-bad"))
    assert_error(first, 422)
    retry = await client.post("/landing-pages", json=bad, headers=keyed(ada, "k-bad"))
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()


async def test_a_body_nested_deeper_than_can_be_normalised_is_refused_as_always(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    """JSON 300 levels deep is read (1,024 are) but cannot be written back
    in sorted form (255 can): the key's request is compared as sent, and
    the route's own 422 comes back, not a 500."""
    deep = "[" * 300 + "]" * 300
    headers = {**keyed(ada, "k-deep"), "Content-Type": "application/json"}
    for _ in range(2):
        answer = await client.post(
            "/landing-pages", content=f'{{"title": {deep}}}', headers=headers
        )
        assert_error(answer, 422, "validation_failed")
    assert answer.headers["idempotent-replayed"] == "true"
    assert await count(app, LandingPage) == 0


@pytest.mark.parametrize(
    "key",
    ["", " ", "x" * 256, "caf\u00e9", "tab\there"],
    ids=["empty", "blank", "long", "latin1", "tab"],
)
async def test_malformed_keys_are_refused(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str], key: str
) -> None:
    response = await client.post(
        "/landing-pages",
        json={"title": "X", "slug": "x-page"},
        headers={**ada, "Idempotency-Key": key.encode("latin-1")},  # type: ignore[dict-item]
    )
    assert_error(response, 400, "invalid_idempotency_key")
    assert await count(app, LandingPage) == 0


async def test_other_methods_ignore_the_header(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    page = await client.post(
        "/landing-pages", json={"title": "P", "slug": "plain-page"}, headers=ada
    )
    url = f"/landing-pages/{page.json()['id']}"
    for title in ("First", "Second"):
        patched = await client.put(url, json={"title": title}, headers=keyed(ada, "same"))
        assert patched.status_code == 200
        assert patched.json()["title"] == title


async def test_claims_expire_and_a_dead_holders_claim_is_taken_over(app: Any) -> None:
    db = app.components.db
    store = IdempotencyStore(db, ttl_seconds=3600, lock_seconds=60, secret="s" * 32)
    now = 1_800_000_000_000
    assert await store.claim("user:a", "k", "f1", now) is Claim.OURS
    # Still running: a duplicate waits; a different request is refused.
    assert await store.claim("user:a", "k", "f1", now + 1000) is Claim.RUNNING
    assert await store.claim("user:a", "k", "f2", now + 1000) is Claim.MISMATCH
    # Its worker died: after the lock, the next retry takes the claim over.
    assert await store.claim("user:a", "k", "f1", now + 61_000) is Claim.OURS
    await store.finish("user:a", "k", StoredAnswer(201, [("content-type", "x/y")], b"done"))
    assert await store.claim("user:a", "k", "f1", now + 62_000) == StoredAnswer(
        201, [("content-type", "x/y")], b"done"
    )
    # Released keys run afresh; expired ones are gone and may be reused.
    assert await store.claim("user:a", "r", "f1", now) is Claim.OURS
    await store.release("user:a", "r")
    assert await store.claim("user:a", "r", "f9", now) is Claim.OURS
    assert await store.claim("user:a", "k", "f3", now + 3_601_000) is Claim.OURS
    async with db.read_primary() as session:
        keys = set((await session.scalars(select(IdempotencyKey.key))).all())
    assert len(keys) == 1  # "r" expired with the rest


async def test_stored_answers_hold_no_secret_in_the_clear(
    client: httpx.AsyncClient, app: Any, ada: dict[str, str]
) -> None:
    """A new API key (shown once) and a login's tokens, sent with an
    Idempotency-Key: the database holds neither them nor the key in the
    clear, and a retry still gets them back."""
    made = await client.post("/auth/api-keys", json={"name": "ci"}, headers=keyed(ada, "mk-1"))
    assert made.status_code == 201
    secret = made.json()["key"]
    login = await client.post(
        "/auth/login",
        json={"email": "ada@example.com", "password": PASSWORD},
        headers={"Idempotency-Key": "login-1"},
    )
    tokens = login.json()
    async with app.components.db.read_primary() as session:
        rows = (await session.scalars(select(IdempotencyKey))).all()
    stored = b"".join((r.key + (r.headers or "")).encode() + (r.body or b"") for r in rows)
    assert len(rows) == 2
    for clear in (secret, tokens["refresh_token"], tokens["access_token"], "mk-1", "login-1"):
        assert clear.encode() not in stored, clear
    # Nor what the rows say of the requests: a fast digest of a login's body
    # (its password) could be tried against guesses; nor whose they are.
    login_body = orjson.dumps({"email": "ada@example.com", "password": PASSWORD})
    plain_digest = request_fingerprint(
        {"method": "POST", "path": "/auth/login", "query_string": b""},
        b"application/json",
        login_body,
    )
    assert plain_digest not in {r.fingerprint for r in rows}
    user_id = (await client.get("/auth/me", headers=ada)).json()["id"]
    for row in rows:
        assert "ip:" not in row.scope and user_id.replace("-", "") not in row.scope.replace("-", "")
    again = await client.post("/auth/api-keys", json={"name": "ci"}, headers=keyed(ada, "mk-1"))
    assert again.headers["idempotent-replayed"] == "true" and again.json()["key"] == secret
    # Without the server's secret key, the key finds nothing.
    other = IdempotencyStore(
        app.components.db, ttl_seconds=3600, lock_seconds=60, secret="another secret"
    )
    for row in rows:
        assert await other.claim(row.scope, "mk-1", row.fingerprint, 0) is Claim.OURS


async def test_the_openapi_document_offers_the_header_on_every_post_but_the_beacons(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    posts = {
        name: operation
        for name, path in paths.items()
        for verb, operation in path.items()
        if verb == "post"
    }
    assert len(posts) > 10
    for name, operation in posts.items():
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        expected = 0 if name.startswith("/analytics/track-") else 1
        assert names.count("Idempotency-Key") == expected, operation["operationId"]
    listing = paths["/landing-pages"]["get"]
    assert "Idempotency-Key" not in [p["name"] for p in listing.get("parameters", [])]


async def test_a_keyed_post_while_the_database_is_away_is_a_503_to_retry(
    client: httpx.AsyncClient, ada: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is claimed in the database: away, the POST is answered as a
    route answers then (503 database_unavailable, Retry-After), not with a
    500 and a traceback; the key is still free for the retry."""

    async def away(*_args: object, **_kwargs: object) -> None:
        raise DatabaseUnavailable("the database cannot be reached", lost_connection=False)

    monkeypatch.setattr(IdempotencyStore, "claim", away)
    refused = await client.post("/landing-pages", json={"title": "x"}, headers=keyed(ada, "k-503"))
    assert_error(refused, 503, "database_unavailable")
    assert refused.headers["retry-after"] == "1"
    monkeypatch.undo()
    retried = await client.post("/landing-pages", json={"title": "x"}, headers=keyed(ada, "k-503"))
    assert retried.status_code == 201
