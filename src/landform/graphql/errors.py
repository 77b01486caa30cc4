"""Errors, the GraphQL way: the one place where domain errors, input
validation and the GraphQL engine's own errors become entries of a
response's ``errors``, each with ``extensions.code`` (for a domain error,
the same code the REST API answers with)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from graphql import GraphQLError, GraphQLSyntaxError
from landform.core.db_failures import missing_from_schema
from landform.core.errors import DomainError, ValidationFailed, validation_details

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

# graphql-core's wording when a document passes the token limit.
_TOKEN_LIMIT_MESSAGE = "Document contains more than"


def parse_input(model: type[M], data: Any, argument: str = "", *, json: bool = False) -> M:
    """``data`` (GraphQL arguments, or one ``argument``'s value) validated
    by the REST API's own input model; a failure names the argument path,
    e.g. ``email``, ``input.templateId`` or (``json``: the argument is a
    JSON value, its keys as sent) ``content.blocks[0].cta_url``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = validation_details(exc.errors(include_url=False))
        paths = [_path(argument, d["path"], json) for d in details]
        raise ValidationFailed(
            "; ".join(f"{path}: {d['message']}" for path, d in zip(paths, details, strict=True)),
            details=[{**d, "path": path} for path, d in zip(paths, details, strict=True)],
        ) from exc


@contextmanager
def within_argument(argument: str, *, json: bool = False) -> Iterator[None]:
    """Domain errors raised inside name their paths under ``argument``
    (a service says ``slug``; the graph's caller sent ``input.slug``)."""
    try:
        yield
    except DomainError as exc:
        if isinstance(exc.details, list):
            exc.details = [
                {**d, "path": _path(argument, str(d["path"]), json)}
                if isinstance(d, dict) and "path" in d
                else d
                for d in exc.details
            ]
        raise


def _path(argument: str, path: str, json: bool) -> str:
    """The path as the caller wrote it: an input type's field in the graph's
    name (``template_id`` → ``templateId``); what lies inside a JSON value
    (``seo``, ``content``) in the keys the caller sent."""
    if not json:
        field = re.match(r"[^.\[]*", path)
        end = field.end() if field else 0
        path = _camel(path[:end]) + path[end:]
    return ".".join(part for part in (argument, path) if part)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def domain_graphql_error(exc: DomainError) -> GraphQLError:
    """A domain error as a GraphQL error carrying its code (for transports
    that format errors themselves: the subscription's WebSocket)."""
    extensions: dict[str, Any] = {"code": exc.code}
    if exc.details is not None:
        extensions["details"] = exc.details
    return GraphQLError(exc.message, original_error=exc, extensions=extensions)


def formatted(error: GraphQLError) -> dict[str, Any]:
    """One error of a response, with its code; unexpected failures are
    masked (and logged), never shown."""
    original = error.original_error
    extensions = dict(error.extensions or {})
    message = error.message
    if isinstance(original, DomainError):
        extensions["code"] = original.code
        if original.details is not None:
            extensions["details"] = original.details
    elif "code" in extensions:
        pass
    elif isinstance(original, GraphQLError):
        # The engine's verdict on the request, found as the field ran (a
        # null variable where the argument may not be null).
        extensions["code"] = "graphql_validation_failed"
    elif isinstance(error, GraphQLSyntaxError):
        too_long = message.startswith(f"Syntax Error: {_TOKEN_LIMIT_MESSAGE}")
        extensions["code"] = "too_many_tokens" if too_long else "graphql_parse_failed"
    elif original is None or not error.path:
        # Not raised by a resolver: the request itself is wrong (a bad
        # variable value, an unknown field).
        extensions["code"] = "graphql_validation_failed"
    elif missing_from_schema(original):
        # As REST says it (core/http.py): a deploy whose migration has not run.
        log.error("graphql: %s", original)
        extensions["code"] = "not_ready"
        message = (
            "the database schema is behind this version of Landform: run `landform db upgrade`"
        )
    else:
        log.error("graphql: unexpected error", exc_info=original)
        extensions["code"] = "internal_error"
        message = "internal error"
    body: dict[str, Any] = {"message": message, "extensions": extensions}
    if error.locations:
        body["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        body["path"] = error.path
    return body
