"""Every API route handler and every dependency it asks for is a coroutine
function. FastAPI runs a plain ``def`` one in a worker thread, a round trip
through the thread pool per request and per dependency; under the peak mix
those hops were a tenth of the workers' time (docs/capacity.md)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant


def _is_coroutine(call: Any) -> bool:
    # Security schemes (HTTPBearer, APIKeyHeader) are instances whose
    # __call__ is the coroutine.
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__)


def _routes(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        if hasattr(route, "dependant"):
            yield route
        # An included router (FastAPI keeps the original router beside it).
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


async def test_no_route_or_dependency_runs_in_a_thread(app: Any) -> None:
    routes = list(_routes(app.api.router.routes))
    assert len(routes) > 30  # the walk reached the included routers
    blocking = sorted(
        {
            f"{getattr(route, 'path', '?')}: {getattr(call, '__qualname__', repr(call))}"
            for route in routes
            for call in [route.dependant.call, *_calls(route.dependant)]
            if call is not None and not _is_coroutine(call)
        }
    )
    assert blocking == []
