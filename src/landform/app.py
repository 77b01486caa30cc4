"""The application factory: builds the components (``components.py``) from
one Settings object and the ASGI layers around them. The result is an ASGI
app whose outer layers limit rates and serve published pages (the hot
path), and hand everything else to the FastAPI API.

Run it with ``landform serve``, or with any ASGI server as the factory
``landform.app:serve_app`` (``create_app`` plus graceful shutdown on
SIGTERM, see ``core/draining.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.responses import Response
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp
from starlette_compress import CompressMiddleware

from landform import __version__
from landform.analytics.routes import router as analytics_router
from landform.analytics.tracking import Tracking
from landform.auth.deps import signed_in_only
from landform.auth.routes import router as auth_router
from landform.cache.warming import Warmer
from landform.components import Components
from landform.core.clock import Clock
from landform.core.cors import EXPOSED_HEADERS, ApiCors, ApiCorsMiddleware
from landform.core.draining import CloseWhenDraining, Draining
from landform.core.errors import skip_in_error_paths
from landform.core.head_requests import HeadAsGet
from landform.core.http import BodyCap, BodyLimit, install_error_handlers
from landform.core.idempotent_requests import IdempotentRequests, document_idempotency_keys
from landform.core.logs import configure_logging
from landform.core.openapi import document_errors, extend_openapi
from landform.core.private_answers import PrivateAnswers
from landform.core.proxies import ClientAddress
from landform.core.rate_limits import (
    PUBLIC,
    TRACKING,
    TRACKING_PATHS,
    RateLimits,
    rate_limit_rules,
)
from landform.core.read_replay import ReadReplay
from landform.core.rsgi import RSGIApp
from landform.core.slash_redirects import install_slash_redirects
from landform.core.ws_limits import WebSocketMessageLimit
from landform.files.assets import Assets
from landform.files.errors import FileTooLarge
from landform.files.routes import router as files_router
from landform.ops.routes import router as ops_router
from landform.ops.timing import NamedRoute, Timing
from landform.pages.blocks import BLOCK_TYPES
from landform.pages.public import CachePolicy, PublicPages
from landform.pages.render import NOT_FOUND_CSP, render_not_found
from landform.pages.routes import public_router
from landform.pages.routes import router as pages_router
from landform.settings import Settings, load_settings
from landform.templates.routes import router as templates_router

ROUTERS = (
    auth_router,
    pages_router,
    templates_router,
    files_router,
    analytics_router,
    ops_router,
    public_router,
)


def build_api(components: Components) -> FastAPI:
    settings = components.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await components.start()
        if components.draining is not None:
            components.draining.install()
        try:
            yield
        finally:
            # Not ready from here on: whatever still asks is told to go elsewhere.
            _app.state.draining = True
            await components.stop()

    api = FastAPI(
        title="Landform",
        version=__version__,
        description=(
            "Self-hosted landing pages: accounts, pages built from typed blocks, "
            "templates, publishing, and fast public pages at `/{slug}`."
        ),
        lifespan=lifespan,
        openapi_url=None if settings.env == "production" else "/openapi.json",
    )
    install_slash_redirects(api.router)
    api.state.settings = settings
    api.state.db = components.db
    api.state.schema = components.schema
    api.state.auth = components.auth
    api.state.pages = components.pages
    api.state.templates = components.templates
    api.state.mailer = components.mailer
    api.state.files = components.files
    api.state.client_address = components.client_address
    # Parsed once here (Settings checked them): probes ask on every request.
    api.state.ops_open_networks = ClientAddress(settings.ops_open_networks)
    api.state.analytics = components.analytics
    api.state.tracker = components.tracker
    api.state.cache_stats = components.cache_stats
    api.state.monitor = components.monitor
    api.state.draining = False
    api.state.redis = components.redis
    api.state.storage = components.storage
    install_error_handlers(api)
    # For a mistyped page's address, which no route answers (core/http.py).
    not_found_html = render_not_found(components.settings.public_url).encode("utf-8")
    api.state.not_found_page = lambda: Response(
        not_found_html,
        status_code=404,
        media_type="text/html",
        headers={
            "Cache-Control": "public, max-age=10, s-maxage=10",
            "Content-Security-Policy": NOT_FOUND_CSP,
            "X-Content-Type-Options": "nosniff",
        },
    )
    skip_in_error_paths(BLOCK_TYPES, frozenset({"blocks"}))
    api.add_middleware(HeadAsGet)  # innermost: it asks the routes themselves
    api.add_middleware(PrivateAnswers)
    # It stores what the routes answer, before compression.
    api.add_middleware(
        IdempotentRequests,
        store=components.idempotency,
        clock=components.clock,
        client_address=components.client_address,
        identify=components.auth.proven_caller_key,
        wait_seconds=settings.idempotency_wait_seconds,
        needs_credential=signed_in_only([route for router in ROUTERS for route in router.routes]),
    )
    extend_openapi(api, document_idempotency_keys, document_errors)
    # Compresses what routes and error handlers answer, by Accept-Encoding
    # (published pages and assets bring their own variants, outside the API).
    api.add_middleware(CompressMiddleware, minimum_size=settings.compress_min_bytes)
    api.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        deadlines=components.body_deadlines,
        per_path={"/files/upload": _upload_cap(settings.max_upload_bytes)},
    )
    api.add_middleware(WebSocketMessageLimit, max_bytes=settings.ws_max_message_bytes)
    # Outermost of these: a GET whose database connection was lost while it
    # was served is served again (core/read_replay.py).
    api.add_middleware(ReadReplay)
    if settings.cors_origins:
        # Outside the body limits too: a browser app reads their 413 and 408.
        api.add_middleware(
            ApiCorsMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=list(EXPOSED_HEADERS),
        )
    # GraphQL first: the route list is searched in order, and it is busy.
    api.router.routes.append(NamedRoute("/graphql", components.graphql, methods=["GET", "POST"]))
    api.router.routes.append(WebSocketRoute("/graphql", components.graphql))
    for router in ROUTERS:
        api.include_router(router)
    return api


def _upload_cap(max_upload_bytes: int) -> BodyCap:
    """An upload's whole body: the file and a little room for the multipart
    envelope around it. Past that, the file is past its limit, and the
    answer says so as the upload itself would (one code for one cause)."""
    too_large = FileTooLarge.over(max_upload_bytes)
    return BodyCap(
        max_upload_bytes + 64 * 1024, str(too_large.code), too_large.message, too_large.details
    )


def serve_app() -> ASGIApp:
    """The factory ``landform serve --interface asgi`` runs in each worker:
    the app, draining gracefully on SIGTERM (also one that arrives while
    the worker starts)."""
    Draining.hold_sigterm()
    return create_app(drain_on_sigterm=True)


def serve_rsgi_app() -> RSGIApp:
    """The factory ``landform serve --interface rsgi`` runs in each granian
    worker: the same app over RSGI, the tracking beacon and published pages
    answered natively (``core/rsgi.py``)."""
    app = serve_app()
    tracking: Tracking = app.tracking  # type: ignore[attr-defined]
    public: PublicPages = app.public  # type: ignore[attr-defined]
    components: Components = app.components  # type: ignore[attr-defined]
    draining = components.draining
    return RSGIApp(
        app,
        components.body_deadlines,
        {path: tracking.rsgi for path in TRACKING_PATHS},
        (lambda: not draining.active) if draining is not None else (lambda: True),
        public.rsgi,
    )


def create_app(
    settings: Settings | None = None, clock: Clock | None = None, *, drain_on_sigterm: bool = False
) -> ASGIApp:
    settings = settings or load_settings()
    if settings.env != "test":  # tests keep pytest's own log capture
        configure_logging(settings.log_level, settings.log_format == "json")
    components = Components(settings, clock)
    api = build_api(components)
    if drain_on_sigterm:
        draining = Draining(settings.shutdown_drain_seconds)
        draining.on_drain(lambda: setattr(api.state, "draining", True))
        draining.before_stop(components.live.end_all)
        components.draining = draining
    # Outside in: rate limits; published pages and the beacon, each timed
    # inline (the hottest paths); request ids and timing for the rest;
    # assets; the API.
    observe = components.recorder.observe if settings.ops_metrics_enabled else None
    timed = Timing(
        Assets(api, components.storage, components.assets),
        components.recorder if settings.ops_metrics_enabled else None,
    )
    tracking = Tracking(
        timed,
        components.tracker,
        components.client_address,
        settings.analytics_max_body_bytes,
        components.body_deadlines,
        settings.analytics_country_header,
        observe,
    )
    public = PublicPages(
        tracking,
        components.store,
        components.load_published,
        CachePolicy(
            settings.public_max_age,
            settings.public_s_maxage,
            settings.public_stale_while_revalidate,
        ),
        render_not_found(settings.public_url).encode("utf-8"),
        observe,
        components.client_address,
    )
    components.warmer = Warmer(
        lambda: components.analytics.most_viewed_slugs(24, settings.page_warm_count),
        public.warm,
        settings.page_warm_interval,
    )
    app: ASGIApp = public
    # The native handlers (core/rsgi.py) take their tokens here when they can.
    tracking.admit = public.admit = lambda _address: True
    if settings.rate_limit_enabled:
        limits = RateLimits(
            public,
            components.buckets,
            rate_limit_rules(settings),
            components.client_address,
            components.auth.rate_limit_key,
            observe,
            ApiCors(settings.cors_origins) if settings.cors_origins else None,
        )
        tracking.admit = lambda address: limits.admit_now(TRACKING, address)
        public.admit = lambda address: limits.admit_now(PUBLIC, address)
        app = limits
    if components.draining is not None:
        app = CloseWhenDraining(app, components.draining)
    app.components = components  # type: ignore[attr-defined]
    app.api = api  # type: ignore[attr-defined]
    app.public = public  # type: ignore[attr-defined]
    app.tracking = tracking  # type: ignore[attr-defined]
    return app
