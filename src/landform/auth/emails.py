"""The one spelling an address is kept under, whoever types it where."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


def canonical_email(address: str) -> str:
    """What registration stores: email-validator's normalized form (spaces
    around it gone, Unicode in NFC, an IDNA domain in Unicode), lowercased.
    Sign-in, resending the mail and ``landform users`` look accounts up by
    it too, so the address that registered is the one that signs in. Text
    that is no address comes back trimmed and lowercased (it finds nothing)."""
    trimmed = address.strip()
    try:
        return validate_email(trimmed, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return trimmed.lower()
