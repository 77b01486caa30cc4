"""Rate limits by route group, as the outermost ASGI layer: a request over
its group's limit is answered 429 before any work is done for it.

Groups (each a ``Rule``: rate a second, burst; settings):

- ``public`` — published pages and assets, per client address;
- ``tracking`` — the analytics beacon, per client address;
- ``auth`` — sign-up, sign-in, verification and refresh, per client address
  (the failed-login throttle comes on top, in ``auth/throttle.py``);
- ``api`` — everything else under the API, per account or API key (per
  address when the request carries no valid credential).

Health checks and operator routes are exempt. API responses carry
``RateLimit`` headers; public ones do not (a CDN would cache one client's
figures for everyone), except on the 429 itself, which always carries
``Retry-After`` and the ``RateLimit`` fields."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from landform.core.api_paths import API_SEGMENTS
from landform.core.cors import ApiCors
from landform.core.errors import TooManyRequests
from landform.core.http import BEACON_CORS, bearer_credential, error_response, send_error
from landform.core.logs import request_id_of
from landform.core.private_answers import PRIVATE_HEADERS
from landform.core.proxies import ClientAddress
from landform.core.token_buckets import Buckets, Decision, Rule
from landform.settings import Settings

PUBLIC, TRACKING, AUTH, API = "public", "tracking", "auth", "api"

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
EXEMPT_PREFIXES = ("/ops/",)
# What ``identify`` says of an API key not yet seen valid: its requests
# share one allowance per client address (made-up keys must not each get
# one), apart from that address's requests without a credential (a real
# key must not wait behind them to be proven).
UNPROVEN_KEY = "key-unproven:"
TRACKING_PATHS = frozenset({"/analytics/track-view", "/analytics/track-event"})
# Under /auth/, what an account does once signed in counts as API use.
ACCOUNT_AUTH_PATHS = ("/auth/me", "/auth/api-keys", "/auth/logout")

# Set in a request's scope when its group's token was already taken for it
# (by a native handler, ``core/rsgi.py``, before it handed the request on):
# this layer then takes none.
ADMITTED = "landform.admitted"

# Records one request: (route key, microseconds, failed); ops.recorder's
# observe, handed to the layers that time requests themselves.
Observe = Callable[[str, int, bool], None]

# Turns a bearer credential into a stable key for its account or API key,
# or None when it is not valid.
Identify = Callable[[str], "str | None"]


def route_group(path: str) -> str | None:
    """The group that limits ``path``, or None when it is exempt (the
    middleware remembers the answers for the paths it sees most)."""
    if path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES):
        return None
    if path in TRACKING_PATHS:
        return TRACKING
    segment = path[1:].partition("/")[0]
    if segment not in API_SEGMENTS:
        return PUBLIC
    if segment == "auth" and not path.startswith(ACCOUNT_AUTH_PATHS):
        return AUTH
    return API


def rate_limit_headers(decision: Decision, rule: Rule) -> list[tuple[bytes, bytes]]:
    window = max(1, round(rule.burst / rule.rate))
    headers = [
        (b"ratelimit-limit", str(decision.limit).encode()),
        (b"ratelimit-remaining", str(decision.remaining).encode()),
        (b"ratelimit-reset", str(decision.reset).encode()),
        (b"ratelimit-policy", f"{rule.burst};w={window}".encode()),
        (
            b"ratelimit",
            f"limit={decision.limit}, remaining={decision.remaining}, "
            f"reset={decision.reset}".encode(),
        ),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", str(decision.retry_after).encode()))
    return headers


class RateLimits:
    def __init__(
        self,
        app: ASGIApp,
        buckets: Buckets,
        rules: Mapping[str, Rule],
        client_address: ClientAddress,
        identify: Identify,
        observe: Observe | None = None,
        cors: ApiCors | None = None,
    ) -> None:
        self.app = app
        self.buckets = buckets
        self.rules = rules
        self.client_address = client_address
        self.identify = identify
        # Refusals are requests too: the metrics count them, by group, as
        # the route "(rate limited: <group>)" (not as failures: the server
        # did what it should).
        self.observe = observe
        # The API's CORS policy, for its refusals: made here, outside it.
        self.cors = cors
        self._groups: dict[str, str | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # WebSockets authenticate and are bounded per connection elsewhere;
        # preflights do no work.
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or ADMITTED in scope:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        try:
            group = self._groups[path]
        except KeyError:
            group = route_group(path)
            if len(self._groups) < 10_000:
                self._groups[path] = group
        rule = self.rules.get(group) if group is not None else None
        if group is None or rule is None:
            await self.app(scope, receive, send)
            return
        key = f"{group}:{self._client_key(group, scope)}"
        held = self.buckets.take_held(key, rule)
        allowed, tokens = held if held is not None else await self.buckets.take(key, rule)
        if not allowed:
            started = time.perf_counter_ns()
            await self._refuse(send, group, rule, tokens, scope)
            if self.observe is not None:
                micros = (time.perf_counter_ns() - started) // 1000
                self.observe(f"route:{scope['method']} (rate limited: {group})", micros, False)
            return
        if group in (PUBLIC, TRACKING):
            await self.app(scope, receive, send)
            return
        extra = rate_limit_headers(Decision.of(True, tokens, rule), rule)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def admit_now(self, group: str, client: str) -> bool | None:
        """Take a token of ``group`` for the client address ``client`` if
        that needs no I/O: True when taken, False when refused, None when
        only ``__call__`` can tell (a shared bucket this process does not
        hold). For handlers in front of this layer (``core/rsgi.py``)."""
        rule = self.rules.get(group)
        if rule is None:
            return True
        held = self.buckets.take_held(f"{group}:ip:{client}", rule)
        return None if held is None else held[0]

    async def _refuse(
        self, send: Send, group: str, rule: Rule, tokens: float, scope: Scope
    ) -> None:
        decision = Decision.of(False, tokens, rule)
        headers = {
            name.decode(): value.decode() for name, value in rate_limit_headers(decision, rule)
        }
        # Refused before the layer that gives answers their ids: one all the
        # same, as every other answer has.
        headers["X-Request-ID"] = request_id_of(scope)
        headers.update(PRIVATE_HEADERS)  # as every API answer says
        if group == TRACKING:
            # The beacon's refusal too, and when to retry, or the page's
            # script could read neither.
            headers.update(BEACON_CORS)
            headers["Access-Control-Expose-Headers"] = "Retry-After"
        elif self.cors is not None and group != PUBLIC:
            origin = next((v for k, v in scope["headers"] if k == b"origin"), b"")
            headers.update(self.cors.headers_for(origin.decode("latin-1")))
        await send_error(
            send,
            error_response(
                429,
                "rate_limited",
                f"too many requests; retry in {decision.retry_after} s",
                {"group": group, "limit": rule.burst, "retry_after": decision.retry_after},
                headers=headers,
            ),
        )

    def _client_key(self, group: str, scope: Scope) -> str:
        if group == API:
            for name, value in scope["headers"]:
                if name == b"authorization":
                    credential = bearer_credential(value.decode("latin-1"))
                elif name == b"x-api-key":
                    credential = value.decode("latin-1").strip()
                else:
                    continue
                account = self.identify(credential) if credential else None
                if account == UNPROVEN_KEY:
                    return UNPROVEN_KEY + self.client_address.of(scope)
                if account is not None:
                    return account
        return "ip:" + self.client_address.of(scope)


def rate_limit_rules(settings: Settings) -> dict[str, Rule]:
    return {
        PUBLIC: Rule(settings.rate_limit_public_per_second, settings.rate_limit_public_burst),
        TRACKING: Rule(settings.analytics_rate_per_second, settings.analytics_rate_burst),
        AUTH: Rule(settings.rate_limit_auth_per_second, settings.rate_limit_auth_burst),
        API: Rule(settings.rate_limit_api_per_second, settings.rate_limit_api_burst),
    }


async def spend(buckets: Buckets, group: str, client: str, rule: Rule) -> None:
    """A token of ``group`` for ``client`` (keyed as ``RateLimits`` keys it,
    so both spend one allowance), for what is limited inside a request: a
    GraphQL sign-in is the ``auth`` group's as much as ``POST /auth/login``.
    Refused with the same 429 ``rate_limited``."""
    key = f"{group}:{client}"
    held = buckets.take_held(key, rule)
    allowed, tokens = held if held is not None else await buckets.take(key, rule)
    if not allowed:
        decision = Decision.of(False, tokens, rule)
        raise TooManyRequests(
            f"too many requests; retry in {decision.retry_after} s",
            details={"group": group, "limit": rule.burst, "retry_after": decision.retry_after},
            headers={"Retry-After": str(decision.retry_after)},
        )
