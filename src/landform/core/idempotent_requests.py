"""``Idempotency-Key`` on the API's POST routes (the rules are in
``core/idempotency.py``). A POST without the header passes straight through.

- A retry with the same key and the same request gets the first answer again
  (with ``Idempotent-Replayed: true``) and creates nothing.
- The same key with a different request: 422 ``idempotency_key_reused``.
- A duplicate sent while the first still runs waits for its answer, up to
  ``idempotency_wait_seconds``, then gets 409 ``idempotency_key_in_use``.
- Answers are kept when they are the request's outcome (2xx, and 4xx but
  429); a 5xx, a 429 or a failure releases the key so a retry runs afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from landform.core.clock import Clock
from landform.core.db_failures import DatabaseUnavailable
from landform.core.errors import DomainError
from landform.core.http import bearer_credential, error_response, incomplete_body, send_error
from landform.core.idempotency import Claim, IdempotencyStore, StoredAnswer
from landform.core.proxies import ClientAddress
from landform.core.rate_limits import TRACKING_PATHS

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
# Headers of the first answer that a replay repeats (the compression and
# framing headers are made again for each response).
KEPT_HEADERS = frozenset({"content-type", "location", "etag", "cache-control"})
POLL_SECONDS = 0.1

log = logging.getLogger(__name__)


class IdempotentRequests:
    def __init__(
        self,
        app: ASGIApp,
        store: IdempotencyStore,
        clock: Clock,
        client_address: ClientAddress,
        # The caller's key for a credential that signs in now; raises the
        # DomainError that refuses it otherwise.
        identify: Callable[[str], Awaitable[str]],
        wait_seconds: float,
        # Whether the request's route needs a credential: one sent without
        # is the route's to refuse (401), not a key's to answer for.
        needs_credential: Callable[[Scope], bool] = lambda _scope: False,
    ) -> None:
        self.app = app
        self.store = store
        self.clock = clock
        self.client_address = client_address
        self.identify = identify
        self.wait_seconds = wait_seconds
        self.needs_credential = needs_credential

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw_key = next((value for name, value in scope["headers"] if name == HEADER), None)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not _credential(headers) and self.needs_credential(scope):
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
            message = f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
            await send_error(send, error_response(400, "invalid_idempotency_key", message))
            return
        body = await read_body(receive)
        if body is None:
            await send_error(send, incomplete_body())
            return
        fingerprint = request_fingerprint(scope, headers.get(b"content-type", b""), body)
        try:
            caller = await self._caller(scope, headers)
            claim = await self._claim(caller, key, fingerprint)
        except DomainError as exc:
            # Said as the route would say it, not a 500: a credential that
            # does not sign in now (401: its stored answers are not its
            # own any more, and a request filed under the client's address
            # instead would be anyone's there to replay), or the database
            # the key is claimed in away (a 503 to retry).
            refusal = error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
            await send_error(send, refusal)
            return
        if isinstance(claim, StoredAnswer):
            await replay(send, claim)
        elif claim is Claim.MISMATCH:
            message = (
                "this Idempotency-Key was already used for a different request; "
                "use a new key for a new request"
            )
            await send_error(send, error_response(422, "idempotency_key_reused", message))
        elif claim is Claim.RUNNING:
            message = "a request with this Idempotency-Key is still running; retry shortly"
            refusal = error_response(
                409, "idempotency_key_in_use", message, {"retry_after": 1}, {"Retry-After": "1"}
            )
            await send_error(send, refusal)
        else:
            await self._run(scope, body, send, caller, key)

    async def _caller(self, scope: Scope, headers: dict[bytes, bytes]) -> str:
        """Whose keys these are: the credential's, which must sign in now
        (``identify`` raises the refusal otherwise), or, without one, the
        client address's."""
        credential = _credential(headers)
        if credential:
            return await self.identify(credential)
        return "ip:" + self.client_address.of(scope)

    async def _claim(self, caller: str, key: str, fingerprint: str) -> Claim | StoredAnswer:
        """Claim the key, or wait while another request holds it."""
        deadline = asyncio.get_running_loop().time() + self.wait_seconds
        while True:
            claim = await self.store.claim(caller, key, fingerprint, self.clock.now_ms())
            if claim is not Claim.RUNNING or asyncio.get_running_loop().time() >= deadline:
                return claim
            await asyncio.sleep(POLL_SECONDS)

    async def _run(self, scope: Scope, body: bytes, send: Send, caller: str, key: str) -> None:
        sent_body = False

        async def receive() -> Message:
            nonlocal sent_body
            if sent_body:
                # The body was read already: anything more the app awaits is
                # the client leaving, which it learns after the response.
                await asyncio.Event().wait()
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 500
        answer_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    decoded = name.decode("latin-1").lower()
                    if decoded in KEPT_HEADERS:
                        answer_headers.append((decoded, value.decode("latin-1")))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await asyncio.shield(self._settled(self.store.release(caller, key)))
            raise
        if status >= 500 or status == 429:
            await self._settled(self.store.release(caller, key))
        else:
            answer = StoredAnswer(status, answer_headers, b"".join(chunks))
            await self._settled(self.store.finish(caller, key, answer))

    @staticmethod
    async def _settled(settling: Awaitable[None]) -> None:
        """Keep or give back the key's claim. The database gone meanwhile
        (the answer is sent), the claim lapses by itself after the lock
        time, and a retry then runs afresh."""
        try:
            await settling
        except DatabaseUnavailable as exc:
            log.warning("an Idempotency-Key's claim is left to lapse: %s", exc.message)


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body (its size is bounded by the BodyLimit layer
    outside), or None when the client disconnected."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _credential(headers: dict[bytes, bytes]) -> str:
    """The credential the request sends (a bearer token or an API key), or ""."""
    credential = bearer_credential(headers.get(b"authorization", b"").decode("latin-1"))
    return credential or headers.get(b"x-api-key", b"").decode("latin-1").strip()


def request_fingerprint(scope: Scope, content_type: bytes, body: bytes) -> str:
    """What makes two requests the same one: method, path, query and body,
    the body as its content rather than its bytes where a retrying client
    may spell the same content differently (JSON key order and spacing; the
    random boundary a multipart encoder picks for each attempt)."""
    digest = hashlib.sha256()
    digest.update(scope["method"].encode())
    digest.update(b"\0" + scope["path"].encode("utf-8", "surrogateescape"))
    digest.update(b"\0" + scope.get("query_string", b"") + b"\0")
    digest.update(comparable_body(content_type, body))
    return digest.hexdigest()


def comparable_body(content_type: bytes, body: bytes) -> bytes:
    media_type, _, parameters = content_type.decode("latin-1").partition(";")
    media_type = media_type.strip().lower()
    if media_type == "application/json":
        try:
            return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):
            # Not JSON, or nested deeper than orjson writes (255 levels; it
            # reads 1,024): compared as sent. The route refuses it anyway.
            return body
    if media_type == "multipart/form-data":
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.lower() == "boundary" and value.strip('"'):
                return body.replace(value.strip('"').encode("latin-1"), b"")
    return body


async def replay(send: Send, answer: StoredAnswer) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def document_idempotency_keys(schema: dict[str, Any]) -> None:
    """Every POST in the OpenAPI document takes the optional header, but the
    beacons' (answered in front of this middleware, and never replayed)."""
    for name, path in schema.get("paths", {}).items():
        operation = path.get("post")
        if operation is not None and name not in TRACKING_PATHS:
            operation.setdefault("parameters", []).append(HEADER_PARAMETER)


HEADER_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    # Printable ASCII, as checked above (surrounding spaces are trimmed).
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": "^[\\x20-\\x7e]+$",
    },
    "description": (
        "Makes a retry safe: a repeat of this request with the same key gets the first "
        "answer back (with `Idempotent-Replayed: true`) and creates nothing twice. The same "
        "key with a different request is a 422 `idempotency_key_reused`."
    ),
}
