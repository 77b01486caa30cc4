from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from landform.core.schemas import InputModel


def _no_encoded_words(address: str) -> str:
    """An RFC 2047 encoded word (``=?utf-8?q?…?=``) is valid in an address,
    but mail headers decode it: the account would be one address and its
    mail would go to another (someone else's, past the notice that tells
    an owner of a second registration)."""
    if _ENCODED_WORD.search(address):
        raise ValueError("an address may not hold an encoded word (=?charset?q?…?=)")
    return address


# RFC 2047: =?charset?encoding?text?=
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


MailAddress = Annotated[EmailStr, AfterValidator(_no_encoded_words), Field(max_length=320)]


class _In(InputModel):
    opaque_fields = frozenset({"password", "current_password", "new_password"})


class RegisterIn(_In):
    email: MailAddress
    password: str = Field(max_length=1024)


class VerifyEmailIn(_In):
    token: str = Field(max_length=512)


class ResendVerificationIn(_In):
    email: MailAddress


class LoginIn(_In):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class CloseAccountIn(_In):
    password: str = Field(max_length=1024, description="The account's password, again")


class PasswordChangeIn(_In):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class PasswordResetRequestIn(_In):
    email: MailAddress


class PasswordResetIn(_In):
    token: str = Field(max_length=512)
    new_password: str = Field(max_length=1024)


class RefreshIn(_In):
    refresh_token: str = Field(max_length=512)


class ApiKeyCreate(_In):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    role: str
    email_verified: bool
    created_at: datetime


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = Field(description="When it last signed a request, to the hour")
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself. Shown once: only its hash is kept.")
