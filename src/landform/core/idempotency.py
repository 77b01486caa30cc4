"""Idempotency keys: a retried request gets the first one's answer.

A client that sends ``Idempotency-Key: <key>`` with a POST may retry it after
a timeout or a dropped connection without creating anything twice. The first
request with a key *claims* it (a row with no answer yet) and runs; its
answer is stored on the row; a retry with the same key and the same request
gets that stored answer back. Keys are scoped to the caller (account, API
key, or client address when anonymous), so one caller's key never reaches
another's answer, and they expire after ``idempotency_key_ttl_seconds``.

The claim is a primary-key insert, so concurrent duplicates race on the
database (on every replica alike) and exactly one of them runs. A claim whose
holder died (a killed worker) lapses after ``idempotency_lock_seconds`` and
the next retry takes it over.

Answers hold secrets (a login's tokens, a new API key), so the database
never holds them in the clear, nor the keys that find them: a row is named
by an HMAC of (scope, key) under the server's secret key, and its answer is
sealed (AES-GCM) with a key derived from the same. Only a caller who sends
the key again, to a server that holds the secret, can read it; a copy of
the database, or of a backup, cannot. The same goes for what else a row
says of its request: the caller (an account, or a client's address) and the
request's fingerprint, a digest of its body (a login's password: a plain
SHA-256 of it could be tried against guesses at speed) are HMACs too."""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from landform.core.db import Base, Database, dialect_of


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    # Not the caller, nor the client's key: HMACs of them (IdempotencyStore._sealed).
    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # The request (method, path, query, body), an HMAC of its digest under
    # the row's key: a retry must match.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Milliseconds since the epoch.
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    locked_until: Mapped[int] = mapped_column(BigInteger)
    # The stored answer; no status yet while the first request runs. Its
    # headers and body are sealed together in ``body`` (``headers`` is
    # left empty: a column of the first version of this table).
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    headers: Mapped[str | None] = mapped_column(Text, nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Claim(enum.Enum):
    OURS = "ours"  # run the request, then finish() or release()
    RUNNING = "running"  # the first request with this key has not answered yet
    MISMATCH = "mismatch"  # the key was used for a different request


@dataclass(frozen=True, slots=True)
class _Sealed:
    row_scope: str  # whose row it is
    row_key: str  # what names the row
    cipher: AESGCM  # what seals its answer
    context: bytes  # bound to the seal: an answer moved to another row opens nowhere
    root: bytes

    def fingerprint(self, request_digest: str) -> str:
        return hmac.new(
            self.root, b"request\0" + request_digest.encode(), hashlib.sha256
        ).hexdigest()


class IdempotencyStore:
    def __init__(self, db: Database, ttl_seconds: int, lock_seconds: int, secret: str) -> None:
        self.db = db
        self.ttl_ms = ttl_seconds * 1000
        self.lock_ms = lock_seconds * 1000
        self._secret = secret.encode()

    def _row_scope(self, scope: str) -> str:
        return hmac.new(self._secret, b"scope\0" + scope.encode(), hashlib.sha256).hexdigest()

    def _sealed(self, scope: str, key: str) -> _Sealed:
        root = hmac.new(self._secret, f"{scope}\0{key}".encode(), hashlib.sha256).digest()
        row_scope = self._row_scope(scope)
        row_key = hmac.new(root, b"row", hashlib.sha256).hexdigest()
        cipher = AESGCM(hmac.new(root, b"seal", hashlib.sha256).digest())
        return _Sealed(row_scope, row_key, cipher, f"{scope}\0{row_key}".encode(), root)

    async def claim(
        self, scope: str, raw_key: str, fingerprint: str, now_ms: int
    ) -> Claim | StoredAnswer:
        sealed = self._sealed(scope, raw_key)
        key, row_scope = sealed.row_key, sealed.row_scope
        fingerprint = sealed.fingerprint(fingerprint)
        async with self.db.write() as session:
            # Expired keys go first, so an old key may be used afresh.
            await session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < now_ms))
            dialect = postgresql if dialect_of(session) == "postgresql" else sqlite
            inserted = await session.execute(
                dialect.insert(IdempotencyKey)
                .values(
                    scope=row_scope,
                    key=key,
                    fingerprint=fingerprint,
                    expires_at=now_ms + self.ttl_ms,
                    locked_until=now_ms + self.lock_ms,
                )
                .on_conflict_do_nothing()
                .returning(IdempotencyKey.key)
            )
            if inserted.first() is not None:
                return Claim.OURS
            row = await session.get(IdempotencyKey, (row_scope, key), populate_existing=True)
            if row is None:  # expired and deleted between the two statements
                return Claim.RUNNING
            if row.fingerprint != fingerprint:
                return Claim.MISMATCH
            if row.status is not None:
                assert row.body is not None
                answer = _open(sealed, row.status, row.body)
                if answer is not None:
                    return answer
                # Damaged or tampered with: as if the first request had
                # never answered, this one runs.
                row.status, row.headers, row.body = None, None, None
                row.locked_until = now_ms + self.lock_ms
                return Claim.OURS
            if row.locked_until >= now_ms:
                return Claim.RUNNING
            # Its holder died without answering: this retry takes over.
            taken = await session.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.scope == row_scope,
                    IdempotencyKey.key == key,
                    IdempotencyKey.locked_until == row.locked_until,
                )
                .values(locked_until=now_ms + self.lock_ms)
                .returning(IdempotencyKey.key)
            )
            return Claim.OURS if taken.first() is not None else Claim.RUNNING

    async def finish(self, scope: str, raw_key: str, answer: StoredAnswer) -> None:
        sealed = self._sealed(scope, raw_key)
        plain = orjson.dumps([answer.headers, answer.body.decode("latin-1")])
        nonce = os.urandom(12)
        async with self.db.write() as session:
            await session.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.scope == sealed.row_scope, IdempotencyKey.key == sealed.row_key
                )
                .values(
                    status=answer.status,
                    headers="",
                    body=nonce + sealed.cipher.encrypt(nonce, plain, sealed.context),
                )
            )

    async def forget_callers(self, scopes: Iterable[str]) -> None:
        """Drop every key and answer of these callers (a closed account's:
        the answers may hold its data, a login's tokens, a key's secret)."""
        row_scopes = [self._row_scope(scope) for scope in scopes]
        async with self.db.write() as session:
            await session.execute(
                delete(IdempotencyKey).where(IdempotencyKey.scope.in_(row_scopes))
            )

    async def release(self, scope: str, raw_key: str) -> None:
        """Give the key back unanswered (the request failed in a way a retry
        may fix): the next request with it runs afresh."""
        sealed = self._sealed(scope, raw_key)
        async with self.db.write() as session:
            await session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.scope == sealed.row_scope,
                    IdempotencyKey.key == sealed.row_key,
                    IdempotencyKey.status.is_(None),
                )
            )


def _open(sealed: _Sealed, status: int, stored: bytes) -> StoredAnswer | None:
    try:
        plain = sealed.cipher.decrypt(stored[:12], stored[12:], sealed.context)
    except InvalidTag:
        return None
    headers, body = orjson.loads(plain)
    return StoredAnswer(status, [(name, value) for name, value in headers], body.encode("latin-1"))
