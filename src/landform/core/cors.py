"""Cross-origin access to the API (``LANDFORM_CORS_ORIGINS``): one policy for
the API's own answers (Starlette's CORSMiddleware), the refusals made in
front of the API (the rate limits' 429), and GraphQL's WebSocket, so a
browser app on an allowed origin can read each of them. The beacon and
published pages have their own (any origin)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

# What a browser app may read of an answer beyond the CORS-safelisted
# headers: the page version to send back, where something new is, when to
# retry and how much is left, whether an answer was replayed, and the id
# to quote in a support request.
EXPOSED_HEADERS = (
    "ETag",
    "Location",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Idempotent-Replayed",
    "X-Request-Id",
)


def normalized_origin(origin: str) -> str:
    """An origin as a browser sends it: the scheme and host in lower case,
    no default port, no trailing slash (``https://App.example.com:443/`` is
    ``https://app.example.com``); ``*`` stays."""
    if origin == "*":
        return origin
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return f"{scheme}://{host}{port}"


class ApiCors:
    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(origins)
        self.any = "*" in self.origins

    def allows(self, origin: str) -> bool:
        return bool(origin) and (self.any or origin in self.origins)

    def headers_for(self, origin: str) -> dict[str, str]:
        """What an answer made outside the CORS middleware carries for a
        request from ``origin`` (nothing for an origin not allowed)."""
        if not self.allows(origin):
            return {}
        return {
            "Access-Control-Allow-Origin": "*" if self.any else origin,
            "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS),
            "Vary": "Origin",
        }
