"""The schema, with its abuse limits and caches, as an Apollo Federation 2
subgraph (``LandingPage``, ``Template`` and ``User`` are entities keyed by
``id``). ``landform graphql schema`` prints it; ``schema.graphql`` at the
repository root is that print, checked by the tests."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from graphql import GraphQLError
from landform.graphql.answers import QueryMarker
from landform.graphql.limits import cost_extension, shape_rule
from landform.graphql.mutations import Mutation
from landform.graphql.persisted import PersistedQueries, persisted_query_extension
from landform.graphql.queries import Query
from landform.graphql.subscriptions import Subscription
from landform.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Landform: landing pages, templates, files and analytics, over the same services "
    "as the REST API. File uploads stay REST-only: POST /files/upload (multipart); "
    "the graph lists and deletes files."
)

# Distinct documents whose parse and validation are kept per worker.
DOCUMENT_CACHE_SIZE = 1000


class LandformSchema(strawberry.federation.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # What the caller did wrong is answered, not logged; unexpected
        # failures are logged where they are formatted (errors.formatted).
        return None


def build_schema(settings: Settings, persisted: PersistedQueries | None = None) -> LandformSchema:
    shape = shape_rule(settings.graphql_max_depth, settings.graphql_max_aliases)
    extensions: list[Any] = [
        persisted_query_extension(
            persisted or PersistedQueries(settings.graphql_persisted_queries)
        ),
        lambda: MaxTokensLimiter(settings.graphql_max_tokens),
        lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: AddValidationRules([shape]),
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
        cost_extension(settings.graphql_max_cost),
        QueryMarker,
    ]
    if settings.env == "production":
        extensions.append(DisableIntrospection)
    schema = LandformSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        federation_version="2.7",
        config=StrawberryConfig(batching_config={"max_operations": settings.graphql_max_batch}),
    )
    # Strawberry has no parameter for it; introspection shows graphql-core's.
    schema._schema.description = DESCRIPTION
    return schema


def schema_sdl() -> str:
    """The schema in SDL, as committed in ``schema.graphql``."""
    # Strawberry's printer leaves the schema description out; SDL allows it
    # before the schema definition.
    return f'"""{DESCRIPTION}"""\n' + build_schema(Settings()).as_str() + "\n"


__all__ = ["LandformSchema", "build_schema", "schema_sdl"]
