"""What each operation of a scenario file does in a user journey, as the
request to send: ``POST /landing-pages`` creates a draft for the journey's
account, ``PUT /landing-pages/{id}`` renames the page the journey is on,
``GET /{slug}`` fetches a published page (a few pages draw most visits, as
on a real site), ``POST /auth/verify-email`` confirms the address the
journey registered with the token from the verification mail, and so on.

Pure: the engine sends the requests, hands answers back through
``on_answer``, and gives steps ``fetch`` for the harness's own unmeasured
calls (reading the outbox). An account a journey registers is told to
``Shared.on_register``, so that cleanup can close it."""

from __future__ import annotations

import itertools
import json
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from landform.loadtest.fixtures import (
    BROWSER,
    HARNESS_DOMAIN,
    Account,
    page_blocks,
    small_png,
    token_in_outbox,
)

Answer = Callable[[int, bytes], None]  # status 0: no answer came (a timeout, a reset)
Registered = Callable[[Account, int | None], None]  # status None: sent, not answered yet
Fetch = Callable[[str, str, dict[str, str]], tuple[int, bytes]]

CUSTOM_QUERY = {"metrics": ["views", "visitors"], "dimensions": ["referrer"], "limit": 20}


@dataclass
class Request:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    on_answer: Answer | None = None  # told every answer, an error's too


@dataclass
class Shared:
    """What every user of one generator process shares."""

    accounts: list[Account]
    tokens: dict[str, str]  # email → access token, refreshed by the engine
    ops_token: str
    tag: str  # makes registered addresses unique across processes and runs
    on_register: Registered = lambda account, status: None
    counter: itertools.count[int] = field(default_factory=itertools.count)
    upload: bytes = field(default_factory=lambda: small_png(7))
    slugs: list[str] = field(init=False)
    assets: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.slugs = [page["slug"] for account in self.accounts for page in account.pages]
        self.assets = [asset for account in self.accounts for asset in account.assets]


@dataclass
class Journey:
    """One pass through a scenario: the account it acts for, the page it
    is on, and what earlier steps produced."""

    shared: Shared
    rng: random.Random
    fetch: Fetch
    account: Account
    page_id: str
    registered: str | None = None  # the address this journey registered, once the server made it

    @classmethod
    def start(cls, shared: Shared, rng: random.Random, fetch: Fetch) -> Journey:
        account = rng.choice(shared.accounts)
        return cls(shared, rng, fetch, account, rng.choice(account.pages)["id"])

    def auth(self, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.shared.tokens[self.account.email]}", **headers}

    def popular(self, items: list[str]) -> str:
        # Pareto: the first few draw most of the traffic.
        return items[min(int(self.rng.paretovariate(1.2)) - 1, len(items) - 1)]


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


JSON = {"Content-Type": "application/json"}


def register(j: Journey) -> Request:
    # A password of its own, never derived from the address or the run: the
    # account is verified, and lives until cleanup closes it.
    account = Account(
        f"lt-{j.shared.tag}-r{next(j.shared.counter)}@{HARNESS_DOMAIN}", secrets.token_urlsafe(18)
    )
    # Told before it is sent, as the answer may never come (a run stopped
    # mid-request) while the server makes the account all the same.
    j.shared.on_register(account, None)

    def answered(status: int, body: bytes) -> None:
        j.shared.on_register(account, status)
        if status == 201:
            j.registered = account.email

    body = {"email": account.email, "password": account.password}
    return Request("POST", "/auth/register", JSON, _json(body), answered)


def verify_email(j: Journey) -> Request | None:
    # Nothing to verify when the registration was refused (a 429, say): a
    # request with a made-up token would count that one refusal twice.
    if j.registered is None:
        return None
    status, body = j.fetch(
        "GET",
        f"/ops/outbox?to={quote(j.registered)}&limit=1",
        {"Authorization": f"Bearer {j.shared.ops_token}"},
    )
    found = token_in_outbox(body) if status == 200 else None
    # Without the token the request still goes out, and fails visibly.
    token = found or "no-verification-mail-found"
    return Request("POST", "/auth/verify-email", JSON, _json({"token": token}))


def create_page(j: Journey) -> Request:
    def remember(status: int, body: bytes) -> None:
        if status == 201:
            j.page_id = json.loads(body)["id"]

    title = f"Campaign {j.rng.randrange(10**9)}"
    return Request("POST", "/landing-pages", j.auth(**JSON), _json({"title": title}), remember)


def update_page(j: Journey) -> Request:
    body = {"title": f"Campaign, take {j.rng.randrange(1000)}"}
    return Request("PUT", f"/landing-pages/{j.page_id}", j.auth(**JSON), _json(body))


def edit_content(j: Journey) -> Request:
    body = {"blocks": page_blocks(f"Edition {j.rng.randrange(10**6)}")}
    return Request("PUT", f"/landing-pages/{j.page_id}/content", j.auth(**JSON), _json(body))


def upload_file(j: Journey) -> Request:
    boundary = uuid.uuid4().hex
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="picture.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + j.shared.upload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = j.auth(**{"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return Request("POST", "/files/upload", headers, body)


def track_view(j: Journey) -> Request:
    slug = j.popular(j.shared.slugs)
    address = f"10.{j.rng.randrange(256)}.{j.rng.randrange(256)}.{j.rng.randrange(1, 255)}"
    headers = {"Content-Type": "text/plain", "User-Agent": BROWSER, "X-Forwarded-For": address}
    return Request(
        "POST", "/analytics/track-view", headers, _json({"slug": slug, "path": f"/{slug}"})
    )


def track_event(j: Journey) -> Request:
    slug = j.popular(j.shared.slugs)
    headers = {"Content-Type": "text/plain", "User-Agent": BROWSER}
    return Request(
        "POST", "/analytics/track-event", headers, _json({"slug": slug, "name": "cta_click"})
    )


def _get(url: Callable[[Journey], str], authenticated: bool = True) -> Callable[[Journey], Request]:
    def step(j: Journey) -> Request:
        return Request("GET", url(j), j.auth() if authenticated else {"User-Agent": BROWSER})

    return step


def custom_query(j: Journey) -> Request:
    return Request("POST", "/analytics/custom-query", j.auth(**JSON), _json(CUSTOM_QUERY))


def sign_in(j: Journey) -> Request:
    body = {"email": j.account.email, "password": j.account.password}
    return Request("POST", "/auth/login", JSON, _json(body))


Step = Callable[[Journey], Request | None]

STEPS: dict[str, Step] = {
    "POST /auth/register": register,
    "POST /auth/verify-email": verify_email,
    "POST /auth/login": sign_in,
    "GET /auth/me": _get(lambda j: "/auth/me"),
    "GET /templates": _get(lambda j: "/templates"),
    "POST /landing-pages": create_page,
    "GET /landing-pages": _get(lambda j: "/landing-pages?limit=20"),
    "GET /landing-pages/{id}": _get(lambda j: f"/landing-pages/{j.page_id}"),
    "PUT /landing-pages/{id}": update_page,
    "PUT /landing-pages/{id}/content": edit_content,
    "POST /files/upload": upload_file,
    "GET /files": _get(lambda j: "/files?limit=20"),
    "GET /analytics/pages/{id}": _get(lambda j: f"/analytics/pages/{j.page_id}"),
    "GET /analytics/dashboard": _get(lambda j: "/analytics/dashboard"),
    "POST /analytics/custom-query": custom_query,
    "POST /analytics/track-view": track_view,
    "POST /analytics/track-event": track_event,
    "GET /{slug}": _get(lambda j: f"/{j.popular(j.shared.slugs)}", authenticated=False),
    "GET /assets/{file}": _get(lambda j: j.rng.choice(j.shared.assets), authenticated=False),
    "GET /healthz": _get(lambda j: "/healthz", authenticated=False),
}


def unknown_operations(operations: list[str]) -> list[str]:
    return [op for op in operations if op not in STEPS]
