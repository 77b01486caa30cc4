"""The schema, with its abuse limits and caches, as an Apollo Federation 2
subgraph (``LandingPage``, ``Template`` and ``User`` are entities keyed by
``id``). ``landform graphql schema`` prints it; ``schema.graphql`` at the
repository root is that print, checked by the tests."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.federation.schema import FederationAny
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.types.base_scalars import DateTimeDefinition, wrap_parser
from strawberry.types import ExecutionContext
from strawberry.types.info import Info

from graphql import GraphQLError
from landform.graphql.answers import QueryMarker
from landform.graphql.context import SignInPerOperation
from landform.graphql.limits import cost_extension, shape_rule
from landform.graphql.mutations import Mutation
from landform.graphql.operation_name import OperationNameRequired
from landform.graphql.persisted import PersistedQueries, persisted_query_extension
from landform.graphql.queries import Query
from landform.graphql.subscriptions import Subscription, SubscriptionsOverWebSocket
from landform.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Landform: landing pages, templates, files and analytics, over the same services "
    "as the REST API. File uploads stay REST-only: POST /files/upload (multipart); "
    "the graph lists and deletes files."
)

# Distinct documents whose parse and validation are kept per worker.
DOCUMENT_CACHE_SIZE = 1000


def _iso_datetime(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        # Not Python's own words ("invalid literal for int() with base 10").
        raise ValueError("send an ISO 8601 date or datetime, e.g. 2025-03-01") from None


# Strawberry's DateTime, read as REST reads its dates, and saying so.
DATE_TIME = dataclasses.replace(
    DateTimeDefinition, parse_value=wrap_parser(_iso_datetime, "DateTime")
)


class LandformSchema(strawberry.federation.Schema):
    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """``_entities``, with each representation checked before the
        engine reads it: an object naming one of the entity types and its
        key (``id``). Any other is that entity's error, as the request's
        fault, rather than an internal one."""
        results: list[Any] = [None] * len(representations)
        valid: list[tuple[int, Any]] = []
        for index, representation in enumerate(representations):
            problem = self._representation_problem(representation)
            if problem:
                results[index] = GraphQLError(
                    f"representations[{index}]: {problem}",
                    extensions={"code": "graphql_validation_failed"},
                )
            else:
                valid.append((index, representation))
        resolved = super().entities_resolver(info, [r for _, r in valid])
        for (index, _), result in zip(valid, resolved, strict=True):
            results[index] = result
        return results

    def _representation_problem(self, representation: Any) -> str:
        if not isinstance(representation, dict):
            return 'an entity representation is an object: {"__typename": …, "id": …}'
        name = representation.get("__typename")
        entity = self.schema_converter.type_map.get(name) if isinstance(name, str) else None
        origin = getattr(getattr(entity, "definition", None), "origin", None)
        if not hasattr(origin, "resolve_reference"):
            return f"`__typename` names no entity of this graph: {str(name)[:100]!r}"
        if not isinstance(representation.get("id"), str):
            return f"a {name} is found by its `id`, a string"
        return ""

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
        OperationNameRequired,
        cost_extension(settings.graphql_max_cost),
        QueryMarker,
        SignInPerOperation,
        SubscriptionsOverWebSocket,
    ]
    if settings.env == "production":
        extensions.append(DisableIntrospection)
    schema = LandformSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        federation_version="2.7",
        scalar_overrides={datetime: DATE_TIME},
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
