"""All SQL of the auth domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Row, and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from landform.auth.models import ApiKey, EmailToken, LoginAttempt, RefreshToken, User


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email.lower()))


async def user_by_id(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def account_exists(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return await session.scalar(select(User.id).where(User.id == user_id)) is not None


async def sign_in_state(session: AsyncSession, user_id: uuid.UUID) -> Row[Any] | None:
    """What decides whether the account's sign-ins still hold: None when
    the account is closed, else a row with ``sessions_ended_at``."""
    found = await session.execute(select(User.sessions_ended_at).where(User.id == user_id))
    return found.first()


async def delete_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """The account, and by their foreign keys its tokens and API keys."""
    await session.execute(delete(User).where(User.id == user_id))


async def is_email_verified(session: AsyncSession, user_id: uuid.UUID) -> bool:
    verified_at = await session.scalar(select(User.email_verified_at).where(User.id == user_id))
    return verified_at is not None


async def email_token(session: AsyncSession, digest: str, purpose: str) -> EmailToken | None:
    return await session.scalar(
        select(EmailToken)
        .where(EmailToken.token_hash == digest, EmailToken.purpose == purpose)
        .with_for_update()
    )


async def refresh_token(
    session: AsyncSession, digest: str, *, fresh: bool = False
) -> RefreshToken | None:
    """``fresh``: as the database has it now, not as this session read it."""
    query = select(RefreshToken).where(RefreshToken.token_hash == digest)
    if fresh:
        query = query.execution_options(populate_existing=True)
    return await session.scalar(query)


async def mark_refresh_used(session: AsyncSession, token_id: uuid.UUID, now: datetime) -> bool:
    """Claim a refresh token; False when another request claimed it first."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


class FailureCount(NamedTuple):
    total: int
    oldest: datetime | None  # tells the client when to retry


class RecentFailures(NamedTuple):
    of_account_from_address: FailureCount
    from_address: FailureCount
    of_account: FailureCount


async def recent_failures(
    session: AsyncSession, email: str, client_ip: str, since: datetime
) -> RecentFailures:
    """Failed logins since ``since``: for this account from this address,
    from this address for any account, and for this account from any
    address. One query: the rows it reads are those of the account or of
    the address (each by its index), tallied three ways."""

    def tally(condition: ColumnElement[bool]) -> tuple[ColumnElement[int], ColumnElement[Any]]:
        return (
            func.coalesce(func.sum(case((condition, 1), else_=0)), 0),
            func.min(case((condition, LoginAttempt.created_at))),
        )

    of_account = LoginAttempt.email == email
    from_address = LoginAttempt.client_ip == client_ip
    row = (
        await session.execute(
            select(
                *tally(and_(of_account, from_address)),
                *tally(from_address),
                *tally(of_account),
            ).where(
                LoginAttempt.succeeded.is_(False),
                LoginAttempt.created_at >= since,
                or_(of_account, from_address),
            )
        )
    ).one()
    return RecentFailures(
        FailureCount(int(row[0]), row[1]),
        FailureCount(int(row[2]), row[3]),
        FailureCount(int(row[4]), row[5]),
    )


async def mark_login_succeeded(session: AsyncSession, attempt_id: int) -> None:
    await session.execute(
        update(LoginAttempt).where(LoginAttempt.id == attempt_id).values(succeeded=True)
    )


async def prune_login_attempts(session: AsyncSession, before: datetime) -> None:
    await session.execute(delete(LoginAttempt).where(LoginAttempt.created_at < before))


async def api_key_by_digest(session: AsyncSession, digest: str) -> ApiKey | None:
    return await session.scalar(
        select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
    )


async def last_email_token_at(
    session: AsyncSession, user_id: uuid.UUID, purpose: str | None = None
) -> datetime | None:
    """When the user's newest mailed token (of ``purpose``, if given) was made."""
    query = select(func.max(EmailToken.created_at)).where(EmailToken.user_id == user_id)
    if purpose is not None:
        query = query.where(EmailToken.purpose == purpose)
    return await session.scalar(query)


async def revoke_sessions(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    """End every login of the user (their refresh tokens)."""
    await _revoke_all(session, RefreshToken, user_id, now)


async def _revoke_all(
    session: AsyncSession,
    model: type[RefreshToken] | type[ApiKey],
    user_id: uuid.UUID,
    now: datetime,
) -> None:
    """Revoke every credential of this kind the user holds that is not yet."""
    await session.execute(
        update(model)
        .where(model.user_id == user_id, model.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def claim_registration_notice(
    session: AsyncSession, user_id: uuid.UUID, now: datetime, quiet_since: datetime
) -> bool:
    """Stamp the account as told, now, that someone registered with its
    address, unless a mail went to the address after ``quiet_since`` (such a
    notice, or a verification mail); False then. One statement, so of
    registrations at once only one sends the notice."""
    mailed_lately = (
        select(EmailToken.id)
        .where(EmailToken.user_id == user_id, EmailToken.created_at > quiet_since)
        .exists()
    )
    result = await session.execute(
        update(User)
        .where(
            User.id == user_id,
            or_(
                User.registration_notice_at.is_(None),
                User.registration_notice_at <= quiet_since,
            ),
            ~mailed_lately,
        )
        .values(registration_notice_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def forget_email_token(session: AsyncSession, token_hash: str) -> None:
    await session.execute(delete(EmailToken).where(EmailToken.token_hash == token_hash))


async def forget_email_tokens(session: AsyncSession, user_id: uuid.UUID, purpose: str) -> None:
    """The user's unused tokens of ``purpose`` stop working (the used ones
    stay, so a second use is told "already used")."""
    await session.execute(
        delete(EmailToken).where(
            EmailToken.user_id == user_id,
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
        )
    )


async def revoke_api_keys(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    await _revoke_all(session, ApiKey, user_id, now)


async def note_api_key_use(
    session: AsyncSession, key_id: uuid.UUID, now: datetime, not_since: datetime
) -> None:
    """Stamp the key's last use, unless it was stamped after ``not_since``."""
    await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < not_since),
        )
        .values(last_used_at=now)
    )


async def api_keys_of(session: AsyncSession, user_id: uuid.UUID) -> list[ApiKey]:
    result = await session.scalars(
        select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id.desc())
    )
    return list(result.all())


async def api_key_of(session: AsyncSession, user_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
    return await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id)
    )
