"""Accounts: registration, email verification, login with throttling,
refresh-token rotation with reuse detection, and API keys."""

from __future__ import annotations

import logging
import random
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from landform.auth import mails
from landform.auth import repository as repo
from landform.auth.answer_time import AnswerTime
from landform.auth.emails import canonical_email
from landform.auth.ended_sessions import EndedSessions, change_key
from landform.auth.errors import (
    AccountClosed,
    ApiKeyNotFound,
    AuthErrorCode,
    BadEmailToken,
    BadRefreshToken,
    EmailNotVerified,
    InvalidCredentials,
    NotAuthenticated,
    OperatorOnly,
    SignInRequired,
    UserNotFound,
    WeakPassword,
)
from landform.auth.models import ApiKey, EmailToken, LoginAttempt, RefreshToken, User
from landform.auth.passwords import hash_password, password_problems, verify_password
from landform.auth.throttle import address_key, refuse_if_throttled
from landform.auth.tokens import AccessTokens
from landform.core.change_log import record_change
from landform.core.clock import Clock
from landform.core.db import Database, hold_until_commit
from landform.core.errors import ValidationFailed
from landform.core.ids import new_id
from landform.core.mail import Mailer
from landform.core.rate_limits import UNPROVEN_KEY
from landform.core.secrets import looks_like_token, new_token, token_digest
from landform.settings import Settings

log = logging.getLogger(__name__)

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
API_KEY_PREFIX = "lf_"
MEMBER = "member"
ADMIN = "admin"
ROLES = (MEMBER, ADMIN)


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class Registration:
    """What ``register`` did. ``account`` is what the one registering is
    answered: the new account, or, when the address had an account, a
    stand-in that looks like a new one and is stored nowhere. ``created``
    tells which, for callers other than the one registering (the CLI's
    demo account): telling them would say who has an account."""

    account: User
    created: bool


def _stand_in(email: str, now: datetime) -> User:
    """An account as a new one looks (its own id, a member's, unverified,
    made now), never stored: nothing can be done with it."""
    return User(
        id=new_id(),
        email=email,
        password_hash="",
        role=MEMBER,
        email_verified_at=None,
        created_at=now,
    )


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved from an access token or an API key."""

    user_id: uuid.UUID
    via_api_key: bool = False
    # An access token's issue time (ms since the epoch); None for a key.
    issued_at_ms: int | None = None

    def signed_in_before(self, ended_at: datetime | None) -> bool:
        """Whether this sign-in is one that a password change or reset at
        ``ended_at`` ended (the tokens the change itself gives are issued
        after it)."""
        return ended_at is not None and self.signed_in_before_ms(int(ended_at.timestamp() * 1000))

    def signed_in_before_ms(self, ended_ms: int) -> bool:
        return self.issued_at_ms is not None and self.issued_at_ms < ended_ms


# A rotated refresh token that comes back this soon is a race (two tabs, a
# retry), not a theft: refused without ending the login.
REFRESH_RACE_GRACE = timedelta(seconds=10)
# How fresh an API key's ``last_used_at`` is kept.
KEY_USE_RESOLUTION = timedelta(hours=1)


async def refuse_if_closed(db: Database, user_id: uuid.UUID, error: Exception) -> None:
    """After an insert for ``user_id`` failed on a constraint: AccountClosed
    if the account is gone (its foreign key failed), else nothing (the
    caller re-raises or says what else it was). Asked only then, so writes
    pay nothing for it."""
    async with db.read_primary() as session:
        exists = await repo.account_exists(session, user_id)
    if not exists:
        raise AccountClosed() from error


async def _spend_email_token(
    session: AsyncSession, token: str, purpose: str, now: datetime
) -> User:
    """The account a mailed token of ``purpose`` is for, the token marked
    used; or BadEmailToken saying why not (unknown, used, expired)."""
    if not looks_like_token(token):
        raise BadEmailToken("this token is not valid", code=AuthErrorCode.INVALID_TOKEN)
    record = await repo.email_token(session, token_digest(token), purpose)
    if record is None:
        raise BadEmailToken("this token is not valid", code=AuthErrorCode.INVALID_TOKEN)
    if record.used_at is not None:
        raise BadEmailToken("this token was already used", code=AuthErrorCode.TOKEN_ALREADY_USED)
    if record.expires_at <= now:
        raise BadEmailToken(
            "this token has expired; ask for a new one", code=AuthErrorCode.TOKEN_EXPIRED
        )
    record.used_at = now
    user = await repo.user_by_id(session, record.user_id)
    assert user is not None  # the foreign key cascades
    return user


async def _family_held(session: AsyncSession, digest: str) -> RefreshToken | None:
    """The refresh token of ``digest``, its family's writes (rotation,
    revocation) held to this transaction's turn and the token read as it is
    once the turn came. Without the turn, on PostgreSQL a refresh could
    insert its new token after a logout's (or a detected reuse's) revoking
    UPDATE had taken its snapshot: that token outlived the logout."""
    record = await repo.refresh_token(session, digest)
    if record is None:
        return None
    await hold_until_commit(session, f"auth/refresh-family/{record.family_id}")
    return await repo.refresh_token(session, digest, fresh=True)  # None: deleted meanwhile


KEYS_SEEN_KEPT = 100_000


class AuthService:
    def __init__(self, db: Database, settings: Settings, mailer: Mailer, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.mailer = mailer
        self.clock = clock
        self.access_tokens = AccessTokens(settings.secret_key, settings.access_token_ttl)
        self.ended_sessions = EndedSessions(db, clock, timedelta(seconds=settings.access_token_ttl))
        # What the other domains delete of an account that closes (pages,
        # files, analytics), in order, before the account itself goes.
        self.on_close: list[Callable[[uuid.UUID], Awaitable[object]]] = []
        # Digests of API keys that authenticated here: rate limits key their
        # requests by the key (else by the client address).
        self._keys_seen_valid: OrderedDict[str, None] = OrderedDict()
        # How long answers that mail take, so those that do not take as long.
        self._resend_time = AnswerTime()
        self._reset_time = AnswerTime()

    # Registration and verification

    async def register(self, email: str, password: str) -> Registration:
        """Create an account and mail its verification link.

        An address that has an account already is answered as a new one
        would be, or the answer would tell anyone who has an account: the
        password is hashed all the same, the answer is a stand-in for a new
        account, and the address's owner is told by mail instead (at most
        once per ``verification_resend_seconds``)."""
        email = canonical_email(email)
        password_hash = await self._new_password_hash(password, email, "password")
        now = self.clock.now()
        quiet_since = now - timedelta(seconds=self.settings.verification_resend_seconds)
        user: User | None = None
        token = ""
        owner: User | None = None  # of the address, to be told
        try:
            async with self.db.write() as session:
                existing = await repo.user_by_email(session, email)
                if existing is None:
                    user = User(email=email, password_hash=password_hash, created_at=now)
                    session.add(user)
                    await session.flush()
                    token = self._new_email_token(session, user.id)
                elif await repo.claim_registration_notice(session, existing.id, now, quiet_since):
                    owner = existing
        except IntegrityError:
            # A concurrent registration of this address won the race: the
            # address gets that one's verification mail, and this is
            # answered as any other registration of a taken address.
            user = None
        if user is None:
            # Mailed before answering, as the verification mail is: both
            # answers cost a hash, a transaction and a mail. Within the
            # quiet period no mail goes and the answer comes sooner by the
            # mail's time; that tells only that the address was mailed
            # moments ago (someone registered it, or asked for its
            # verification mail), and mailing anyway would let
            # registrations flood the owner's inbox.
            if owner is not None:
                await self._mail_registration_notice(owner)
            return Registration(account=_stand_in(email, now), created=False)
        # The account exists either way; the user can ask for the mail again.
        await self._mail_verification(user.email, token)
        return Registration(account=user, created=True)

    async def _mail_registration_notice(self, owner: User) -> None:
        """A failure is only logged: the answer must not differ, and the
        stamp stays (one lost notice is better than retries that could
        mail an address more often than the limit)."""
        verified = owner.email_verified_at is not None
        try:
            await self.mailer.send(mails.registration_notice(self.settings, owner.email, verified))
        except Exception:
            log.exception("could not send the registration notice to %s", owner.email)

    async def _mail_verification(self, address: str, token: str) -> bool:
        """Send the mail; whether it went. A token whose mail did not go is
        forgotten, so it does not hold back the resend that follows."""
        try:
            await self._send_verification(address, token)
        except Exception:
            log.exception("could not send the verification mail to %s", address)
            async with self.db.write() as session:
                await repo.forget_email_token(session, token_digest(token))
            return False
        return True

    def _new_email_token(
        self, session: object, user_id: uuid.UUID, purpose: str = VERIFY_EMAIL
    ) -> str:
        token = new_token()
        now = self.clock.now()
        lifetime = (
            self.settings.password_reset_token_ttl
            if purpose == RESET_PASSWORD
            else self.settings.verification_token_ttl
        )
        session.add(  # type: ignore[attr-defined]
            EmailToken(
                user_id=user_id,
                purpose=purpose,
                token_hash=token_digest(token),
                expires_at=now + timedelta(seconds=lifetime),
                created_at=now,
            )
        )
        return token

    async def _send_verification(self, email: str, token: str) -> None:
        await self.mailer.send(mails.verification(self.settings, email, token))

    async def verify_email(self, token: str) -> User:
        now = self.clock.now()
        async with self.db.write() as session:
            user = await _spend_email_token(session, token, VERIFY_EMAIL, now)
            if user.email_verified_at is None:
                user.email_verified_at = now
        return user

    async def resend_verification(self, email: str) -> None:
        """Send a fresh token. Says nothing about whether the account exists,
        nor that the last mail went out too recently to send another (one per
        ``verification_resend_seconds`` per address: the route must not be a
        way to mail-bomb anyone), nor that it could not be sent (logged; the
        token is forgotten, so asking again mails), and takes as long either
        way (auth/answer_time)."""
        await self._resend_time.evened(self._resend_verification(email))

    async def _resend_verification(self, email: str) -> bool:
        """Whether a token was made and its mail tried."""
        now = self.clock.now()
        quiet = timedelta(seconds=self.settings.verification_resend_seconds)
        async with self.db.write() as session:
            user = await repo.user_by_email(session, canonical_email(email))
            if user is None or user.email_verified_at is not None:
                return False
            last = await repo.last_email_token_at(session, user.id)
            if last is not None and last > now - quiet:
                return False
            token = self._new_email_token(session, user.id)
        await self._mail_verification(user.email, token)
        return True

    # Passwords

    async def change_password(
        self, principal: Principal, current: str, new: str, client_ip: str
    ) -> Tokens:
        """Set a new password, given the current one (checked as login
        checks it, throttled). Every login of the account ends, a thief's
        among them; the caller gets a new one. Signed in only: an API key
        cannot (a leaked key must not take the account over)."""
        if principal.via_api_key:
            raise SignInRequired("an API key cannot change the password: sign in (an access token)")
        user = await self.me(principal)
        checked, attempt = await self._password_checked(user.email, current, client_ip)
        if checked is None or checked.id != user.id:
            raise InvalidCredentials("the current password is wrong; nothing changed")
        password_hash = await self._new_password_hash(new, user.email, "new_password")
        now = self.clock.now()
        async with self.db.write(actor=user.id) as session:
            await _sessions_in_turn(session, user.id)
            fresh = await repo.user_by_id(session, user.id)
            if fresh is None:
                raise AccountClosed()
            # A reset (or another change) since the password was checked: it
            # stands, and this change, made with what it replaced, does not.
            if fresh.password_hash != checked.password_hash:
                raise InvalidCredentials(
                    "the password was changed or reset meanwhile; nothing changed"
                )
            _refuse_if_ended(principal, fresh.sessions_ended_at)
            await repo.mark_login_succeeded(session, attempt.id)  # no failure to count
            fresh.password_hash = password_hash
            await self._end_sessions(session, fresh, now)
            # A reset mail still out must not set the password back.
            await repo.forget_email_tokens(session, user.id, RESET_PASSWORD)
            tokens = self._issue(session, user.id, uuid.uuid4())
        self.ended_sessions.note(user.id, now)
        return tokens

    async def request_password_reset(self, email: str) -> None:
        """Mail a link to set a new password. Says nothing about whether the
        address has an account (the answer is the same, and takes as long:
        auth/answer_time), and mails an address at most once per
        ``verification_resend_seconds``."""
        await self._reset_time.evened(self._request_password_reset(email))

    async def _request_password_reset(self, email: str) -> bool:
        """Whether a token was made and its mail tried."""
        now = self.clock.now()
        quiet = timedelta(seconds=self.settings.verification_resend_seconds)
        async with self.db.write() as session:
            user = await repo.user_by_email(session, canonical_email(email))
            if user is None:
                return False
            last = await repo.last_email_token_at(session, user.id, RESET_PASSWORD)
            if last is not None and last > now - quiet:
                return False
            token = self._new_email_token(session, user.id, RESET_PASSWORD)
        try:
            await self.mailer.send(mails.password_reset(self.settings, user.email, token))
        except Exception:
            # Logged, not said: the answer must be the one an unknown
            # address gets. The token is forgotten, so a retry can mail.
            log.exception("could not send the password-reset mail to %s", user.email)
            async with self.db.write() as session:
                await repo.forget_email_token(session, token_digest(token))
        return True

    async def reset_password(self, token: str, new: str) -> None:
        """Set a new password with a mailed reset token (once, before it
        expires). Every login of the account ends, and every API key: a
        reset is how an account is taken back, and a key made by whoever
        had it (one who registered the address before its owner confirmed
        it, say) must not outlive that. The address is proven (the mail
        reached it), so it counts as verified."""
        now = self.clock.now()
        owner = None
        if looks_like_token(token):
            async with self.db.read_primary() as session:
                record = await repo.email_token(session, token_digest(token), RESET_PASSWORD)
                owner = await repo.user_by_id(session, record.user_id) if record else None
        if owner is None:  # before the slow hash; used or expired is said below
            raise BadEmailToken("this token is not valid", code=AuthErrorCode.INVALID_TOKEN)
        password_hash = await self._new_password_hash(new, owner.email, "new_password")
        async with self.db.write() as session:
            await _sessions_in_turn(session, owner.id)
            user = await _spend_email_token(session, token, RESET_PASSWORD, now)
            user.password_hash = password_hash
            if user.email_verified_at is None:
                user.email_verified_at = now
            await self._end_sessions(session, user, now)
            await repo.revoke_api_keys(session, user.id, now)
            # Other reset mails still out could undo this one.
            await repo.forget_email_tokens(session, user.id, RESET_PASSWORD)
        self.ended_sessions.note(user.id, now)

    async def _end_sessions(self, session: AsyncSession, user: User, now: datetime) -> None:
        """End every sign-in of ``user`` (in the caller's transaction): its
        refresh tokens are revoked, and its access tokens refused by every
        worker once the change log tells them (``auth/ended_sessions``)."""
        user.sessions_ended_at = now
        await repo.revoke_sessions(session, user.id, now)
        record_change(session, change_key(user.id, now), now)

    async def _new_password_hash(self, password: str, email: str, path: str) -> str:
        problems = password_problems(password, email)
        if problems:
            raise WeakPassword(
                "password is too weak: " + "; ".join(problems),
                details=[{"path": path, "message": p} for p in problems],
            )
        return await hash_password(password)

    # Login, refresh, logout

    async def login(self, email: str, password: str, client_ip: str) -> Tokens:
        user, attempt = await self._password_checked(email, password, client_ip)
        if user is None:
            raise InvalidCredentials("email or password is wrong")
        try:
            async with self.db.write(actor=user.id) as session:
                await repo.mark_login_succeeded(session, attempt.id)
                return self._issue(session, user.id, uuid.uuid4())
        except IntegrityError as exc:
            # The account was closed while its password was checked: its
            # session's foreign key failed. As unknown now as any address.
            try:
                await refuse_if_closed(self.db, user.id, exc)
            except AccountClosed:
                raise InvalidCredentials("email or password is wrong") from None
            raise

    async def _password_checked(
        self, email: str, password: str, client_ip: str
    ) -> tuple[User | None, LoginAttempt]:
        """The account whose password ``password`` is (None: wrong, or no
        such account), under the login throttle: the throttle is checked and
        the attempt recorded as failed in one transaction, before the slow
        password check, so concurrent guesses are counted too; a caller
        that goes on marks it a success. Every password check goes through
        here, so none is a way around the throttle."""
        email = canonical_email(email)
        address = address_key(client_ip)
        now = self.clock.now()
        async with self.db.write() as session:
            # Concurrent guesses take turns here, so each counts the others'
            # failures (PostgreSQL's read committed would let each count only
            # what was committed before any of them). Account before address,
            # in every transaction: no two can wait on each other.
            await hold_until_commit(session, f"auth/login-throttle/account/{email}")
            await hold_until_commit(session, f"auth/login-throttle/address/{address}")
            await refuse_if_throttled(session, self.settings, email, address, now)
            attempt = LoginAttempt(email=email, client_ip=address, succeeded=False, created_at=now)
            session.add(attempt)
            if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
                await repo.prune_login_attempts(session, now - timedelta(days=1))
            user = await repo.user_by_email(session, email)
        if not await verify_password(user.password_hash if user else None, password):
            return None, attempt
        return user, attempt

    def _issue(self, session: object, user_id: uuid.UUID, family_id: uuid.UUID) -> Tokens:
        now = self.clock.now()
        refresh = new_token()
        session.add(  # type: ignore[attr-defined]
            RefreshToken(
                user_id=user_id,
                family_id=family_id,
                token_hash=token_digest(refresh),
                expires_at=now + timedelta(seconds=self.settings.refresh_token_ttl),
                created_at=now,
            )
        )
        return Tokens(
            access_token=self.access_tokens.issue(user_id, now),
            refresh_token=refresh,
            expires_in=self.access_tokens.ttl_seconds,
        )

    async def refresh(self, refresh_token: str) -> Tokens:
        if not looks_like_token(refresh_token):
            raise BadRefreshToken("refresh token is not valid")
        now = self.clock.now()
        tokens: Tokens | None = None
        async with self.db.write() as session:
            record = await _family_held(session, token_digest(refresh_token))
            if record is None or record.revoked_at is not None or record.expires_at <= now:
                raise BadRefreshToken("refresh token is not valid; log in again")
            raced = False
            if record.used_at is None and await repo.mark_refresh_used(session, record.id, now):
                tokens = self._issue(session, record.user_id, record.family_id)
            elif record.used_at is None or now - record.used_at < REFRESH_RACE_GRACE:
                # Used a moment ago (or this very moment): two tabs or a retry
                # refreshing at once, not a thief. Refused, and nothing revoked.
                raced = True
            else:
                # A rotated token came back: it leaked. End the whole family.
                await repo.revoke_family(session, record.family_id, now)
        if raced:
            raise BadRefreshToken(
                "this refresh token was used a moment ago; use the tokens that refresh gave",
                code=AuthErrorCode.REFRESH_TOKEN_JUST_USED,
            )
        if tokens is None:
            raise BadRefreshToken(
                "refresh token was already used; every session of this login is revoked",
                code=AuthErrorCode.REFRESH_TOKEN_REUSED,
            )
        return tokens

    async def logout(self, refresh_token: str) -> None:
        if not looks_like_token(refresh_token):
            return
        now = self.clock.now()
        async with self.db.write() as session:
            record = await _family_held(session, token_digest(refresh_token))
            if record is not None:
                await repo.revoke_family(session, record.family_id, now)

    # Who is calling

    async def authenticate(self, credential: str) -> Principal:
        if credential.startswith(API_KEY_PREFIX):
            # On the primary: a replica may lag by seconds and stay in
            # rotation, and would then refuse a key made a moment ago and
            # accept one revoked a moment ago (its owner's read-your-writes
            # pin does not cover requests made with the key).
            async with self.db.read(fresh=True) as session:
                key = await repo.api_key_by_digest(session, token_digest(credential))
            if key is None:
                raise NotAuthenticated(
                    "API key is not valid", code=AuthErrorCode.INVALID_ACCESS_TOKEN
                )
            self._note_key_valid(key.key_hash)
            now = self.clock.now()
            if key.last_used_at is None or key.last_used_at < now - KEY_USE_RESOLUTION:
                # To the hour: a write now and then, not one per request.
                async with self.db.write() as session:
                    await repo.note_api_key_use(session, key.id, now, now - KEY_USE_RESOLUTION)
            return Principal(user_id=key.user_id, via_api_key=True)
        user_id, issued_at_ms = self.access_tokens.signed_in(credential, self.clock.now())
        principal = Principal(user_id=user_id, issued_at_ms=issued_at_ms)
        ended_ms = self.ended_sessions.ended_ms(user_id)
        if ended_ms is not None and principal.signed_in_before_ms(ended_ms):
            raise _ended_sign_in()
        return principal

    async def authenticate_open_account(self, credential: str) -> Principal:
        """``authenticate``, and the account still exists (AccountClosed)
        and the sign-in was not ended by a password change or reset since
        (NotAuthenticated): for what lasts (a live stream) or hands back
        what was kept (a stored answer), which an access token would
        otherwise keep up to its lifetime."""
        principal = await self.authenticate(credential)
        if not principal.via_api_key:  # a key is deleted with its account
            async with self.db.read(fresh=True) as session:
                state = await repo.sign_in_state(session, principal.user_id)
            if state is None:
                raise AccountClosed()
            _refuse_if_ended(principal, state.sessions_ended_at)
        return principal

    def caller_key(self, credential: str) -> str | None:
        """Who sends ``credential``, exactly and without a database read:
        the account of a valid access token, or the API key (valid or not:
        an invalid one is refused later, and is still no one else)."""
        if credential.startswith(API_KEY_PREFIX):
            return _key_caller(token_digest(credential))
        try:
            return _user_caller(self.access_tokens.user_id(credential, self.clock.now()))
        except NotAuthenticated:
            return None

    async def caller_keys_of(self, user_id: uuid.UUID) -> list[str]:
        """Every ``caller_key`` the account's credentials have: its access
        tokens' and each of its API keys' (revoked ones too)."""
        async with self.db.read_primary() as session:
            keys = await repo.api_keys_of(session, user_id)
        return [_user_caller(user_id), *(_key_caller(key.key_hash) for key in keys)]

    async def proven_caller_key(self, credential: str) -> str:
        """``caller_key``, for a credential that signs in now; else the
        domain error that says why not (NotAuthenticated, AccountClosed):
        what a caller stored under its key (a new API key, a login's
        tokens) must not be handed back to a key revoked since, to its
        account once closed, or to a sign-in a password change or reset
        ended. Costs a database read."""
        await self.authenticate_open_account(credential)
        key = self.caller_key(credential)
        if key is None:  # signed in a moment ago, expired since
            raise NotAuthenticated(
                "access token expired; refresh it", code=AuthErrorCode.INVALID_ACCESS_TOKEN
            )
        return key

    def rate_limit_key(self, credential: str) -> str | None:
        """Whose allowance a request with ``credential`` spends, without a
        database read: ``caller_key``'s, for an API key only once this
        worker has seen it valid; any other key is ``UNPROVEN_KEY`` (a
        made-up key per request must not get a fresh allowance each)."""
        if credential.startswith(API_KEY_PREFIX):
            digest = token_digest(credential)
            return _key_caller(digest) if digest in self._keys_seen_valid else UNPROVEN_KEY
        return self.caller_key(credential)

    async def close_account(self, principal: Principal, password: str, client_ip: str) -> None:
        """Delete the account and everything of it, once its password is
        given again (a stolen token or API key alone cannot, nor can it
        guess the password: the check is the login's, throttled). Its
        sessions and API keys end with it; an access token already issued
        can write nothing more (``refuse_if_closed``)."""
        user = await self.me(principal)
        checked, attempt = await self._password_checked(user.email, password, client_ip)
        if checked is None or checked.id != user.id:
            raise InvalidCredentials("the password is wrong; the account stays")
        for close in self.on_close:
            await close(user.id)
        async with self.db.write(actor=user.id) as session:
            # The right password: no failure for the throttle to count (a
            # script closing its test accounts was throttled after 30).
            await repo.mark_login_succeeded(session, attempt.id)
            await repo.delete_user(session, user.id)

    def _note_key_valid(self, digest: str) -> None:
        self._keys_seen_valid[digest] = None
        self._keys_seen_valid.move_to_end(digest)
        if len(self._keys_seen_valid) > KEYS_SEEN_KEPT:
            self._keys_seen_valid.popitem(last=False)

    async def me(self, principal: Principal) -> User:
        async with self.db.read(actor=principal.user_id) as session:
            user = await repo.user_by_id(session, principal.user_id)
        if user is None:  # an access token outlives its account (not looked up)
            raise AccountClosed()
        return user

    async def require_operator(self, principal: Principal) -> User:
        """The principal's account, if it is an admin's: operators see the
        routes under ``/ops/`` that show the whole system."""
        user = await self.me(principal)
        if user.role != ADMIN:
            raise OperatorOnly(
                "only operators may see this: an admin account (granted with "
                "`landform users set-role EMAIL admin`) or the ops token"
            )
        return user

    async def set_role(self, email: str, role: str) -> User:
        """Make the account with ``email`` an admin or a member again (from
        the command line: roles are not granted over HTTP)."""
        if role not in ROLES:
            raise ValidationFailed(
                f"role must be one of: {', '.join(ROLES)}",
                details=[{"path": "role", "message": "unknown role"}],
            )
        async with self.db.write() as session:
            user = await repo.user_by_email(session, canonical_email(email))
            if user is None:
                raise UserNotFound(f"no account has the address {email}")
            user.role = role
        return user

    async def visible_users(
        self, principal: Principal, user_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, User]:
        """Those of ``user_ids`` the principal may see: only themselves."""
        if principal.user_id not in user_ids:
            return {}
        return {principal.user_id: await self.me(principal)}

    async def is_email_verified(self, user_id: uuid.UUID) -> bool:
        async with self.db.read(actor=user_id) as session:
            return await repo.is_email_verified(session, user_id)

    # API keys

    async def create_api_key(self, principal: Principal, name: str) -> tuple[ApiKey, str]:
        """A new key, for a signed-in owner only: a key that could make keys
        would outlive its own revocation in the keys it made."""
        if principal.via_api_key:
            raise SignInRequired(
                "an API key cannot make API keys: sign in (an access token) to make one"
            )
        secret = API_KEY_PREFIX + new_token()
        key = ApiKey(
            user_id=principal.user_id,
            name=name,
            prefix=secret[:10],
            key_hash=token_digest(secret),
            created_at=self.clock.now(),
        )
        try:
            async with self.db.write(actor=principal.user_id) as session:
                # Checked in the transaction that makes the key, in turn with a
                # reset (which revokes every key): a key made with a token from
                # before the reset, or made while it ran, would outlive the reset
                # that takes the account back.
                await _sessions_in_turn(session, principal.user_id)
                user = await repo.user_by_id(session, principal.user_id)
                if user is None:
                    raise AccountClosed()
                _refuse_if_ended(principal, user.sessions_ended_at)
                # Not before the address is proven: someone who registered
                # another's address would keep a key past the owner's reset.
                if user.email_verified_at is None:
                    raise EmailNotVerified("verify your email address before making API keys")
                session.add(key)
        except IntegrityError as exc:  # the account closed meanwhile
            await refuse_if_closed(self.db, principal.user_id, exc)
            raise
        return key, secret

    async def list_api_keys(self, principal: Principal) -> list[ApiKey]:
        async with self.db.read(actor=principal.user_id) as session:
            return await repo.api_keys_of(session, principal.user_id)

    async def revoke_api_key(self, principal: Principal, key_id: uuid.UUID) -> None:
        async with self.db.write(actor=principal.user_id) as session:
            key = await repo.api_key_of(session, principal.user_id, key_id)
            if key is None:
                raise ApiKeyNotFound("no such API key")
            if key.revoked_at is None:
                key.revoked_at = self.clock.now()
            self._keys_seen_valid.pop(key.key_hash, None)


def _user_caller(user_id: uuid.UUID) -> str:
    return "user:" + str(user_id)


def _key_caller(digest: str) -> str:
    return "key:" + digest[:32]


async def _sessions_in_turn(session: AsyncSession, user_id: uuid.UUID) -> None:
    """What ends an account's sign-ins (a password change or reset) and
    what a sign-in makes that outlasts it (an API key) take turns, so that
    neither is checked against a state the other is changing."""
    await hold_until_commit(session, f"sign-ins:{user_id}")


def _refuse_if_ended(principal: Principal, ended_at: datetime | None) -> None:
    if principal.signed_in_before(ended_at):
        raise _ended_sign_in()


def _ended_sign_in() -> NotAuthenticated:
    return NotAuthenticated(
        "this access token was issued before the password was last changed or reset; sign in again",
        code=AuthErrorCode.INVALID_ACCESS_TOKEN,
    )
