"""The API's trailing-slash redirects (``/ops`` → ``/ops/``), sent with a
path for a Location. Starlette's own build an absolute URL from the Host
header, which is the client's to write: ``Host: evil.example`` got
``Location: http://evil.example/ops/``, and a cache in front that kept the
answer sent every visitor there. A path needs no host at all."""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import Receive, Scope, Send


class SlashRedirects:
    """The router's default (what runs when no route matched): the path
    with its trailing slash added or taken away, if a route serves that;
    else the router's 404."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["type"] == "http" and path != "/":
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            # ``//evil.example`` as a Location would be another host: such a
            # path is no route's anyway.
            if other.startswith("/") and not other.startswith("//") and self._served(scope, other):
                query = scope.get("query_string", b"").decode("latin-1")
                location = other + ("?" + query if query else "")
                await RedirectResponse(location, status_code=307)(scope, receive, send)
                return
        await self.router.not_found(scope, receive, send)

    def _served(self, scope: Scope, path: str) -> bool:
        candidate = {**scope, "path": path}
        return any(route.matches(candidate)[0] is not Match.NONE for route in self.router.routes)


def install_slash_redirects(router: Router) -> None:
    router.redirect_slashes = False
    router.default = SlashRedirects(router)
