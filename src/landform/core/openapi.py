"""What the OpenAPI document says beyond what FastAPI derives from the
routes: each addition is a function that edits the built document once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from landform.core.rate_limits import route_group

Schema = dict[str, Any]


def extend_openapi(app: FastAPI, *additions: Callable[[Schema], None]) -> None:
    """Apply ``additions``, in order, to the document FastAPI builds (once;
    it is kept)."""
    build = app.openapi

    def openapi() -> Schema:
        if app.openapi_schema is None:
            schema = build()
            for addition in additions:
                addition(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


ERROR_SCHEMA: Schema = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable and machine-readable, e.g. `page_not_found`",
                },
                "message": {"type": "string", "description": "For a person"},
                "details": {
                    "description": (
                        "Null, or more about the error; for a `validation_failed`, a list "
                        "of `{path, message}`, one per offending field"
                    )
                },
            },
        }
    },
}

_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def document_errors(schema: Schema) -> None:
    """Every operation answers errors in the one error shape: say so, in
    place of FastAPI's own ``HTTPValidationError`` (which we never send).
    Each operation gets the statuses its kind can give (input, credentials,
    path ids, a body, the checked headers); a route lists its own beyond
    those (``responses=``) with a description, and gets the shape here."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Error"] = ERROR_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            _document_operation_errors(operation, rate_limited=route_group(path) is not None)


def _document_operation_errors(operation: Schema, rate_limited: bool) -> None:
    responses = operation.setdefault("responses", {})
    parameters = operation.get("parameters", [])
    body = operation.get("requestBody")
    if parameters or body or "422" in responses:
        responses["422"] = _error("Validation failed: `details` names each field")
    checked = sorted(
        _CHECKED_HEADERS[p["name"].lower()]
        for p in parameters
        if p.get("in") == "header" and p["name"].lower() in _CHECKED_HEADERS
    )
    if checked:
        responses.setdefault("400", _error(f"A malformed {' or '.join(checked)}"))
    if operation.get("security"):
        responses.setdefault("401", _error("Not signed in, or the credential is invalid"))
    if any(p.get("in") == "path" for p in parameters):
        responses.setdefault("404", _error("Not found, or another account's"))
    if body:
        responses.setdefault("413", _error("The body is over the size limit"))
        if list(body.get("content", {})) == ["application/json"]:
            responses.setdefault("415", _error("The body is not JSON"))
    if rate_limited:
        responses.setdefault("429", _error("`rate_limited`: `Retry-After` says when to try again"))
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400 and "content" not in response:
            response["content"] = {"application/json": {"schema": _ERROR_REF}}
    responses.setdefault("default", _error("Any other error, in the same shape"))


# Request headers whose malformed value is refused with a 400.
_CHECKED_HEADERS = {"idempotency-key": "Idempotency-Key", "if-match": "If-Match"}
