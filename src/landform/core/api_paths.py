"""Which paths are the API's and which a visitor's (a public page, an
asset): the rate limits group them so, and a path no route answers is
told in the API's JSON or with the visitors' HTML 404 page by it."""

from __future__ import annotations

# The first path segments that belong to the API; anything else is a
# public page or asset.
API_SEGMENTS = frozenset(
    {
        "auth",
        "landing-pages",
        "templates",
        "files",
        "analytics",
        "graphql",
        "blocks",
        "docs",
        "redoc",
        "openapi.json",
    }
)
# Not the API's, and not a visitor's either: the operators' and the
# live streams'.
_SERVICE_SEGMENTS = frozenset({"ops", "ws", "healthz", "readyz", "metrics"})


def visitors_path(path: str) -> bool:
    """A path a visitor's browser asks for: a page (however mistyped:
    ``/spring_sale``, ``/spring/sale``), an asset, a preview link."""
    segment = path[1:].partition("/")[0]
    return segment not in API_SEGMENTS and segment not in _SERVICE_SEGMENTS
