"""What the account mails say: the verification link, and the notice an
address's owner gets when someone registers with it again."""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import quote

from landform.core.mail import compose
from landform.settings import Settings


def _base_url(settings: Settings) -> str:
    return settings.public_url.rstrip("/")


def _lasting(seconds: int) -> str:
    """A lifetime in words, exactly: "48 hours", "90 minutes", "1 hour"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def verification(settings: Settings, address: str, token: str) -> EmailMessage:
    link = f"{_base_url(settings)}/auth/verify-email?token={quote(token)}"
    text = (
        "Welcome to Landform!\n\n"
        "Confirm your email address to publish your landing pages:\n\n"
        f"{link}\n\n"
        f"Or send this token to POST /auth/verify-email: token={token}\n\n"
        f"The link works once and expires in {_lasting(settings.verification_token_ttl)}. "
        "If you did not sign up, "
        "ignore this message.\n"
    )
    return compose(settings.mail_from, address, "Confirm your email for Landform", text)


def password_reset(settings: Settings, address: str, token: str) -> EmailMessage:
    text = (
        "Someone, perhaps you, asked to set a new password for your Landform "
        f"account ({address}).\n\n"
        "To set one, send this token with your new password to "
        f"POST {_base_url(settings)}/auth/reset-password:\n\n"
        f"token={token}\n\n"
        f"It works once and expires in {_lasting(settings.password_reset_token_ttl)}. "
        "Setting a new password signs you out everywhere and revokes your API keys "
        "(make new ones for your integrations afterwards).\n\n"
        "If it was not you, ignore this message: your password stays as it is.\n"
    )
    return compose(settings.mail_from, address, "Set a new Landform password", text)


def registration_notice(settings: Settings, address: str, verified: bool) -> EmailMessage:
    """Someone registered with an address that has an account. The answer
    they got cannot say so (it would tell anyone who has an account), so
    the owner hears it here. An unconfirmed account gets no confirmation
    link: whoever made it may not be the address's owner, and confirming
    it would hand them an account under that address."""
    base = _base_url(settings)
    intro = (
        "Someone, perhaps you, just tried to create a Landform account with this "
        f"address ({address}). An account with it exists already, so no new one was "
        "made and nothing about the existing one changed.\n\n"
    )
    if verified:
        text = (
            intro + "If it was you: sign in with your password instead "
            f"(POST {base}/auth/login).\n\n"
            "If it was not you, you can ignore this message. No one can sign in to "
            "your account without your password.\n"
        )
    else:
        text = (
            intro + "That account's address was never confirmed. If you made it, sign in "
            f"with its password (POST {base}/auth/login); to confirm the address, ask for "
            f"a new link (POST {base}/auth/resend-verification).\n\n"
            "If you did not make it, ignore this message and do not confirm it: someone "
            "else may have used your address. Until the address is confirmed, the "
            "account cannot publish anything.\n"
        )
    return compose(
        settings.mail_from, address, "Someone tried to sign up to Landform with your address", text
    )
