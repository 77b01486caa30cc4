"""The graph's mutations: each validates its input with the REST API's
own model and calls the same service method."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from landform.auth.schemas import (
    ApiKeyCreate,
    LoginIn,
    PasswordChangeIn,
    PasswordResetIn,
    PasswordResetRequestIn,
    RefreshIn,
    RegisterIn,
    ResendVerificationIn,
    VerifyEmailIn,
)
from landform.auth.service import Tokens
from landform.core.errors import ValidationFailed
from landform.graphql.errors import parse_input, within_argument
from landform.graphql.types import (
    ApiKey,
    CreatedApiKey,
    Info,
    LandingPage,
    TokenPair,
    User,
    page_of,
    parse_id,
)
from landform.pages.schemas import VERSION_MAX, ContentUpdate, PageCreate, PageUpdate
from landform.pages.service import ExpectedVersion

VERSION = "The version this write is based on; a stale one is refused (conflict)."


@strawberry.input
class CreateLandingPageInput:
    title: str
    slug: str | None = strawberry.UNSET
    template_id: str | None = strawberry.UNSET


@strawberry.input(description="Fields left out stay as they are.")
class UpdateLandingPageInput:
    title: str | None = strawberry.UNSET
    slug: str | None = strawberry.UNSET
    seo: JSON | None = strawberry.UNSET


def _given(data: object) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(data).items()
        if value is not strawberry.UNSET and not name.startswith("_")
    }


def _expected(version: int | None, path: str = "version") -> ExpectedVersion | None:
    if version is None:
        return None
    return ExpectedVersion(_version_number(version, path), "body")


def _version_number(number: int, path: str) -> int:
    """A page version number, held to REST's bounds (1 to VERSION_MAX): 0
    or -5 is a mistake to name, not a version that may exist."""
    if not 1 <= number <= VERSION_MAX:
        problem = f"must be between 1 and {VERSION_MAX}"
        raise ValidationFailed(f"{path}: {problem}", details=[{"path": path, "message": problem}])
    return number


def _pair(tokens: Tokens) -> TokenPair:
    return TokenPair(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Create an account; a verification link is mailed. An address that has "
        "an account gets the same answer (an account as a new one looks, not stored), and "
        "its owner a mail saying someone tried."
    )
    async def register(self, info: Info, email: str, password: str) -> User:
        await _spend_auth_allowance(info)
        data = parse_input(RegisterIn, {"email": email, "password": password})
        registration = await info.context.services.auth.register(data.email, data.password)
        return User.of(registration.account)

    @strawberry.mutation
    async def verify_email(self, info: Info, token: str) -> User:
        await _spend_auth_allowance(info)
        data = parse_input(VerifyEmailIn, {"token": token})
        return User.of(await info.context.services.auth.verify_email(data.token))

    @strawberry.mutation(
        description="Each login, aliased or batched, counts against the throttle "
        "(null, with an error, when refused)."
    )
    async def login(self, info: Info, email: str, password: str) -> TokenPair | None:
        await _spend_auth_allowance(info)
        data = parse_input(LoginIn, {"email": email, "password": password})
        auth = info.context.services.auth
        return _pair(await auth.login(data.email, data.password, info.context.client_ip))

    @strawberry.mutation
    async def refresh(self, info: Info, refresh_token: str) -> TokenPair:
        await _spend_auth_allowance(info)
        data = parse_input(RefreshIn, {"refresh_token": refresh_token})
        return _pair(await info.context.services.auth.refresh(data.refresh_token))

    @strawberry.mutation(
        description="End this login on every device (its refresh tokens); always true."
    )
    async def logout(self, info: Info, refresh_token: str) -> bool:
        data = parse_input(RefreshIn, {"refresh_token": refresh_token})
        await info.context.services.auth.logout(data.refresh_token)
        return True

    @strawberry.mutation(
        description="Mail a new verification link, if the address has an account waiting "
        "for it; always true (nothing is said about the address)."
    )
    async def resend_verification(self, info: Info, email: str) -> bool:
        await _spend_auth_allowance(info)
        data = parse_input(ResendVerificationIn, {"email": email})
        await info.context.services.auth.resend_verification(data.email)
        return True

    @strawberry.mutation(
        description="Set a new password, given the current one (signed in, not with an API "
        "key). Every login of the account ends; the answer is a new one."
    )
    async def change_password(
        self, info: Info, current_password: str, new_password: str
    ) -> TokenPair:
        await _spend_auth_allowance(info)
        data = parse_input(
            PasswordChangeIn,
            {"current_password": current_password, "new_password": new_password},
        )
        principal = await info.context.principal()
        with within_argument(""):  # a weak one is newPassword here, as sent
            tokens = await info.context.services.auth.change_password(
                principal, data.current_password, data.new_password, info.context.client_ip
            )
        return _pair(tokens)

    @strawberry.mutation(
        description="Mail a token to set a new password; always true (nothing is said "
        "about the address)."
    )
    async def request_password_reset(self, info: Info, email: str) -> bool:
        await _spend_auth_allowance(info)
        data = parse_input(PasswordResetRequestIn, {"email": email})
        await info.context.services.auth.request_password_reset(data.email)
        return True

    @strawberry.mutation(
        description="Set a new password with a mailed reset token; every login of the "
        "account ends. Always true when it worked."
    )
    async def reset_password(self, info: Info, token: str, new_password: str) -> bool:
        await _spend_auth_allowance(info)
        data = parse_input(PasswordResetIn, {"token": token, "new_password": new_password})
        with within_argument(""):
            await info.context.services.auth.reset_password(data.token, data.new_password)
        return True

    @strawberry.mutation(description="A new draft, empty or from a template.")
    async def create_landing_page(self, info: Info, input: CreateLandingPageInput) -> LandingPage:
        data = parse_input(PageCreate, _given(input), "input")
        with within_argument("input"):
            page = await info.context.services.pages.create(await info.context.owner(), data)
        return page_of(info, page)

    @strawberry.mutation(description="Title, slug and SEO.")
    async def update_landing_page(
        self,
        info: Info,
        id: strawberry.ID,
        input: UpdateLandingPageInput,
        version: Annotated[int | None, strawberry.argument(description=VERSION)] = None,
    ) -> LandingPage:
        data = parse_input(PageUpdate, _given(input), "input")
        expected = _expected(version)  # an argument of its own, not a field of `input`
        with within_argument("input"):
            page = await info.context.services.pages.update(
                await info.context.owner(), parse_id(id), data, expected
            )
        return page_of(info, page)

    @strawberry.mutation(description="Replace the draft's blocks (and optionally its theme).")
    async def update_landing_page_content(
        self,
        info: Info,
        id: strawberry.ID,
        content: Annotated[JSON, strawberry.argument(description="`{blocks, theme?}`")],
        version: Annotated[int | None, strawberry.argument(description=VERSION)] = None,
    ) -> LandingPage:
        data = parse_input(ContentUpdate, content, "content", json=True)
        # The content may say the version it is based on, as REST's body
        # does; ignored, a stale edit overwrote newer work.
        if version is not None and data.version is not None and version != data.version:
            problem = f"says {data.version}, and the version argument {version}: send one"
            raise ValidationFailed(
                f"content.version {problem}",
                details=[{"path": "content.version", "message": problem}],
            )
        expected = _expected(version if version is not None else data.version)
        with within_argument("content", json=True):
            page = await info.context.services.pages.update_content(
                await info.context.owner(), parse_id(id), data, expected
            )
        return page_of(info, page)

    @strawberry.mutation(description="Make the draft live at the page's slug.")
    async def publish_landing_page(
        self,
        info: Info,
        id: strawberry.ID,
        version: Annotated[int | None, strawberry.argument(description=VERSION)] = None,
    ) -> LandingPage:
        page = await info.context.services.pages.publish(
            await info.context.owner(), parse_id(id), _expected(version)
        )
        return page_of(info, page)

    @strawberry.mutation
    async def unpublish_landing_page(
        self,
        info: Info,
        id: strawberry.ID,
        version: Annotated[int | None, strawberry.argument(description=VERSION)] = None,
    ) -> LandingPage:
        page = await info.context.services.pages.unpublish(
            await info.context.owner(), parse_id(id), _expected(version)
        )
        return page_of(info, page)

    @strawberry.mutation(description="Copy a published version into the draft.")
    async def restore_landing_page_version(
        self,
        info: Info,
        id: strawberry.ID,
        number: int,
        version: Annotated[int | None, strawberry.argument(description=VERSION)] = None,
    ) -> LandingPage:
        page = await info.context.services.pages.restore(
            await info.context.owner(),
            parse_id(id),
            _version_number(number, "number"),
            _expected(version),
        )
        return page_of(info, page)

    @strawberry.mutation(description="Returns the deleted page's id.")
    async def delete_landing_page(
        self,
        info: Info,
        id: strawberry.ID,
        version: Annotated[int | None, strawberry.argument(description=VERSION)] = None,
    ) -> strawberry.ID:
        await info.context.services.pages.delete(
            await info.context.owner(), parse_id(id), _expected(version)
        )
        return id

    @strawberry.mutation(description="Refused while a live page shows the file.")
    async def delete_file(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        await info.context.services.files.delete(await info.context.owner(), parse_id(id))
        return id

    @strawberry.mutation
    async def create_api_key(self, info: Info, name: str) -> CreatedApiKey:
        data = parse_input(ApiKeyCreate, {"name": name})
        principal = await info.context.principal()
        key, secret = await info.context.services.auth.create_api_key(principal, data.name)
        return CreatedApiKey(api_key=ApiKey.of(key), key=secret)

    @strawberry.mutation(description="Returns the revoked key's id.")
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        principal = await info.context.principal()
        await info.context.services.auth.revoke_api_key(principal, parse_id(id))
        return id


async def _spend_auth_allowance(info: Info) -> None:
    """Sign-up, verification, sign-in and refresh are the ``auth`` rate-limit
    group's over GraphQL too (each alias of a batch a request of its own),
    not only the ``api`` group's the whole request spends."""
    await info.context.services.spend_auth_allowance(info.context.client_ip)
