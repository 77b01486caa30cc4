"""Test data for a load test, made through the public API of the server
under test before the measured window (so it works against any
deployment): accounts (registered, verified with the token from the
operators' outbox, signed in), published pages with content, an uploaded
image each (the asset the public journey fetches) and some analytics
history from beacons. Saved as JSON so one preparation serves many runs;
``cleanup`` deletes what it made."""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from landform.loadtest.hosts import BadHost, base_url

HARNESS_DOMAIN = "loadtest.example"  # RFC 2606: a name reserved for examples, never a mailbox
_TOKEN = re.compile(r"POST /auth/verify-email: token=(\S+)")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


class FixtureError(RuntimeError):
    """The server did not let the harness set up its data (reason inside)."""


@dataclass
class Account:
    email: str
    password: str
    pages: list[dict[str, str]] = field(default_factory=list)  # {"id", "slug"}
    assets: list[str] = field(default_factory=list)  # /assets/... paths
    # A journey's registration that got no answer (a timeout, a run stopped
    # mid-request): the server may or may not have made the account.
    unconfirmed: bool = False
    # Closed by a cleanup: said so when cleanup runs again, for a sign-in
    # refused then cannot tell a closed account from a changed password.
    closed: bool = False


@dataclass
class Fixture:
    host: str
    run_id: str
    accounts: list[Account]
    # False while the data is being made, and in the record an interrupted
    # preparation leaves: enough for cleanup, not for a run.
    complete: bool = True
    # The accounts the registration journey made in runs on this data: no
    # journey acts as them, but they are verified accounts that cleanup
    # closes like the prepared ones.
    registered: list[Account] = field(default_factory=list)

    def save(self, path: Path) -> None:
        """Written whole or not at all: the file is the only record of the
        accounts' passwords, which ``cleanup`` needs."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        # Passwords: for the owner's eyes only, from the first byte on.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # a partial file left behind keeps its mode otherwise
        with os.fdopen(descriptor, "w") as file:
            file.write(json.dumps(asdict(self), indent=2))
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path) -> Fixture:
        try:
            data = json.loads(path.read_text())
            accounts = [Account(**a) for a in data["accounts"]]
            registered = [Account(**a) for a in data.get("registered", [])]
            return cls(
                data["host"],
                data["run_id"],
                accounts,
                bool(data.get("complete", True)),
                registered,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FixtureError(f"{path}: not a prepared load-test fixture ({exc})") from exc


def small_png(seed: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (seed * 37 % 256, 90, 160)).save(buffer, "PNG")
    return buffer.getvalue()


def page_blocks(headline: str) -> list[dict[str, str]]:
    """A landing page's content: a hero with its call to action, a
    paragraph, and a closing call to action."""
    return [
        {
            "type": "hero",
            "headline": headline,
            "subheadline": "Everything a visitor needs, in milliseconds.",
            "cta_label": "Start free",
            "cta_url": "https://example.com/signup",
        },
        {"type": "rich_text", "html": "<p>Fast pages, honest analytics, no cookies.</p>"},
        {"type": "cta", "label": "Talk to us", "url": "https://example.com/contact"},
    ]


def token_in_outbox(body: bytes) -> str | None:
    """The verification token in the newest mail of a ``GET /ops/outbox``
    answer."""
    try:
        messages = json.loads(body)["messages"]
    except (ValueError, KeyError, TypeError):
        return None
    for message in messages:
        found = _TOKEN.search(message.get("message", ""))
        if found:
            return found.group(1)
    return None


def read_outbox(client: httpx.Client, ops_token: str, **params: Any) -> bytes:
    """A ``GET /ops/outbox`` answer, or a ``FixtureError`` that says what the
    harness needs: the route is an operator's, and the outbox exists only
    while the server keeps its mail instead of sending it over SMTP."""
    if not ops_token:
        raise FixtureError(
            "no ops token: the harness reads the verification mail of the accounts it "
            "registers through GET /ops/outbox, an operator route; pass the server's "
            "LANDFORM_OPS_TOKEN (--ops-token, or the environment variable) or an admin's "
            "access token (docs/loadtest.md)"
        )
    response = client.get(
        "/ops/outbox", params=params, headers={"Authorization": f"Bearer {ops_token}"}
    )
    if response.status_code in (401, 403):
        raise FixtureError(
            f"{client.base_url} refused the ops token ({response.status_code}): pass the "
            "server's LANDFORM_OPS_TOKEN, or an admin's access token that has not expired"
        )
    if response.status_code == 404 and _error(response).get("code") == "outbox_disabled":
        raise FixtureError(
            f"{client.base_url} sends its mail over SMTP, so the harness cannot read the "
            "verification mail of the accounts it registers: run the server with mail in "
            "outbox mode (no LANDFORM_SMTP_URL) for load tests"
        )
    _expect(response, 200, "read the operators' outbox")
    return response.content


def verification_token(client: httpx.Client, ops_token: str, email: str) -> str:
    """The token from the verification mail, read from ``/ops/outbox``."""
    token = token_in_outbox(read_outbox(client, ops_token, to=email))
    if token is None:
        raise FixtureError(f"no verification mail for {email} in the outbox")
    return token


def sign_in(client: httpx.Client, email: str, password: str, unknown: str = "") -> str:
    """An access token; ``unknown``, if given, is the error when the server
    does not know the account (401)."""
    response = client.post("/auth/login", json={"email": email, "password": password})
    if unknown and response.status_code == 401:
        raise FixtureError(unknown)
    _expect(response, 200, f"sign in as {email}")
    return str(response.json()["access_token"])


def prepare(
    host: str,
    ops_token: str,
    accounts: int = 4,
    pages: int = 5,
    beacons: int = 20,
    progress: Callable[[str], None] = lambda _: None,
    record: Callable[[Fixture], None] = lambda _: None,
) -> Fixture:
    """New test data; ``record`` is given the fixture each time it grows, so
    that a preparation stopped half-way (Ctrl-C, a refused request) leaves a
    record ``cleanup`` can work from. An account is recorded once it is
    verified: before that it can own nothing, and cleanup signs in as it."""
    run_id = secrets.token_hex(4)
    fixture = Fixture(host, run_id, [], complete=False)
    with httpx.Client(base_url=host, timeout=30) as client:
        for n in range(accounts):
            account = Account(f"lt-{run_id}-{n}@{HARNESS_DOMAIN}", secrets.token_urlsafe(18))
            _expect(
                client.post(
                    "/auth/register", json={"email": account.email, "password": account.password}
                ),
                201,
                "register",
            )
            token = verification_token(client, ops_token, account.email)
            _expect(client.post("/auth/verify-email", json={"token": token}), 200, "verify")
            fixture.accounts.append(account)
            record(fixture)
            auth = {"Authorization": f"Bearer {sign_in(client, account.email, account.password)}"}
            upload = client.post(
                "/files/upload",
                files={"file": (f"hero-{n}.png", small_png(n), "image/png")},
                headers=auth,
            )
            _expect(upload, 201, "upload a file")
            account.assets.append(upload.json()["url"])
            for p in range(pages):
                created = client.post(
                    "/landing-pages",
                    json={"title": f"Load test {run_id} {n}-{p}", "slug": f"lt-{run_id}-{n}-{p}"},
                    headers=auth,
                )
                _expect(created, 201, "create a page")
                page = created.json()
                _expect(
                    client.put(
                        f"/landing-pages/{page['id']}/content",
                        json={"blocks": page_blocks(f"Offer {p}")},
                        headers=auth,
                    ),
                    200,
                    "write page content",
                )
                _expect(
                    client.post(f"/landing-pages/{page['id']}/publish", headers=auth),
                    200,
                    "publish a page",
                )
                account.pages.append({"id": page["id"], "slug": page["slug"]})
                for b in range(beacons):
                    client.post(
                        "/analytics/track-view",
                        content=json.dumps({"slug": page["slug"], "path": f"/{page['slug']}"}),
                        headers={
                            "Content-Type": "text/plain",
                            "User-Agent": BROWSER,
                            "X-Forwarded-For": f"10.9.{n}.{b % 250 + 1}",
                        },
                    )
            record(fixture)
            progress(f"prepared {account.email}: {pages} published pages, 1 file")
    fixture.complete = True
    record(fixture)
    return fixture


def check_present(fixture: Fixture, host: str) -> None:
    """A ``FixtureError`` unless the fixture's data is on ``host``: its first
    account signs in and sees its first page. A fixture whose data was
    cleaned up, or made on another server, would fail every request."""
    if not fixture.accounts or not fixture.accounts[0].pages:
        raise FixtureError("the fixture holds no accounts with pages: prepare it again")
    account = fixture.accounts[0]
    stale = (
        f"the data of this fixture (prepared against {fixture.host}) is not on {host}: "
        "it was cleaned up or made on another server; prepare it again (another --fixture "
        "file, or delete this one)"
    )
    with httpx.Client(base_url=host, timeout=30) as client:
        token = sign_in(
            client, account.email, account.password, f"{stale} ({account.email} cannot sign in)"
        )
        auth = {"Authorization": f"Bearer {token}"}
        page = client.get(f"/landing-pages/{account.pages[0]['id']}", headers=auth)
        if page.status_code == 404:
            raise FixtureError(f"{stale} (its pages are gone)")
        _expect(page, 200, "read a prepared page")


@dataclass
class Cleaned:
    """What a cleanup did with each account its fixture records."""

    closed: int = 0
    closed_before: int = 0  # by an earlier cleanup of this fixture
    # A sign-in refused: the server answers an unknown address and a wrong
    # password alike (invalid_credentials), so these may still exist.
    not_signed_in: list[str] = field(default_factory=list)
    never_made: int = 0  # unconfirmed registrations that cannot sign in either


def cleanup(
    fixture: Fixture,
    progress: Callable[[str], None] = lambda _: None,
    record: Callable[[Fixture], None] = lambda _: None,
) -> Cleaned:
    """Closes the harness's accounts (``DELETE /auth/me``), the prepared
    ones and those the registration journey made: each goes with
    everything of it, its pages (those the creation journey added too),
    files and analytics. Each account closed is marked so in the fixture,
    and ``record`` given it (at most once a second, and at the end), so that
    cleanup run again knows those from accounts it cannot sign in as."""
    try:
        host = base_url(fixture.host)
    except BadHost as exc:
        raise FixtureError(f"the fixture's host {exc}") from exc
    done = Cleaned()
    saved = time.monotonic()
    try:
        with httpx.Client(base_url=host, timeout=30) as client:
            for account in [*fixture.accounts, *fixture.registered]:
                if account.closed:
                    done.closed_before += 1
                    continue
                signed_in = _paced(
                    client,
                    "POST",
                    "/auth/login",
                    json={"email": account.email, "password": account.password},
                )
                if signed_in.status_code == 401 and account.unconfirmed:
                    done.never_made += 1
                    progress(
                        f"{account.email}: could not sign in: its registration got no answer, "
                        "so it was never made, or it was closed already"
                    )
                    continue
                if signed_in.status_code == 401:
                    done.not_signed_in.append(account.email)
                    progress(
                        f"{account.email}: could not sign in: closed already, or its password "
                        "changed"
                    )
                    continue
                _expect(signed_in, 200, f"sign in as {account.email}")
                auth = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
                gone = _paced(
                    client, "DELETE", "/auth/me", json={"password": account.password}, headers=auth
                )
                _expect(gone, 204, f"close {account.email}")
                account.closed = True
                done.closed += 1
                progress(f"closed {account.email}")
                if time.monotonic() - saved >= 1.0:
                    record(fixture)
                    saved = time.monotonic()
    finally:
        record(fixture)
    return done


def _paced(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """A request of the ``auth`` rate-limit group (a second each, past a
    burst of 30 from one address), waiting out a 429 as it says to."""
    deadline = time.monotonic() + 120
    while True:
        response = client.request(method, url, **kwargs)
        if response.status_code != 429 or time.monotonic() > deadline:
            return response
        time.sleep(min(float(response.headers.get("Retry-After", "1")), 10.0))


def _error(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an answer in the API's error shape, or {}."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _message(response: httpx.Response) -> str:
    message = _error(response).get("message")
    if message:
        return str(message)
    kind = response.headers.get("content-type", "").split(";", 1)[0].strip()
    if kind in ("application/json", "text/plain"):
        return response.text[:200]
    # An HTML page, say: not worth quoting, and a sign of the wrong server.
    return f"a {kind or 'untyped'} answer, not Landform's error shape: is this a Landform server?"


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise FixtureError(
            f"could not {what}: {response.request.method} {response.request.url.path} "
            f"answered {response.status_code} ({_message(response)})"
        )
