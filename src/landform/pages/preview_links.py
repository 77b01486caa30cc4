"""Links to a draft's preview that work in any browser, for a while.

``GET /landing-pages/{id}/preview`` needs the owner's credential in a
header, so a marketer can neither open it in a browser tab nor send it to
whoever signs a page off. A preview link carries the page, its owner and
when it expires, signed with the server's secret key (HMAC-SHA256): it
shows the draft as it is when opened, until it expires. Nothing is stored;
a new secret key ends every link."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass

# Part of the signed text, so a signature made for anything else under the
# same key never passes for a preview link's.
_PURPOSE = b"landform preview link\0"
_SIGNATURE_BYTES = 16  # 128 bits: forging one is out of reach
_PAYLOAD = struct.Struct(">16s16sQ")  # page, owner, expiry (Unix seconds)

DEFAULT_SECONDS = 24 * 3600
LONGEST_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class PreviewGrant:
    page_id: uuid.UUID
    owner: uuid.UUID
    expires_at: int  # Unix seconds


class PreviewLinks:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(_PURPOSE + secret.encode()).digest()

    def token(self, grant: PreviewGrant) -> str:
        payload = _PAYLOAD.pack(grant.page_id.bytes, grant.owner.bytes, grant.expires_at)
        return _b64(payload + self._sign(payload))

    def grant(self, token: str, now: int) -> PreviewGrant | None:
        """What a link grants, if it is one of ours and has not expired."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            return None
        # One spelling per link: base64's spare bits in the last character
        # would let several tokens decode to the same bytes.
        if len(raw) != _PAYLOAD.size + _SIGNATURE_BYTES or _b64(raw) != token:
            return None
        payload, signature = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        page, owner, expires_at = _PAYLOAD.unpack(payload)
        if expires_at <= now:
            return None
        return PreviewGrant(uuid.UUID(bytes=page), uuid.UUID(bytes=owner), expires_at)

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
