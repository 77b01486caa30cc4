"""Cross-origin access to the API (``LANDFORM_CORS_ORIGINS``): one policy for
the API's own answers (Starlette's CORSMiddleware), the refusals made in
front of the API (the rate limits' 429), and GraphQL's WebSocket, so a
browser app on an allowed origin can read each of them. The beacon and
published pages have their own (any origin)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from landform.core.http import error_response

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


class ApiCorsMiddleware(CORSMiddleware):
    """Starlette's, but a refused preflight is answered in the one error
    shape (it answered ``Disallowed CORS origin`` as plain text)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code != 400:
            return answer
        what = bytes(answer.body).decode().removeprefix("Disallowed CORS ")
        refused = error_response(
            400,
            "cors_not_allowed",
            f"this cross-origin request is not allowed: its {what} "
            "(LANDFORM_CORS_ORIGINS names the origins that may call the API)",
        )
        for name, value in answer.headers.items():
            if name.lower().startswith("access-control-") or name.lower() == "vary":
                refused.headers[name] = value
        return refused


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
