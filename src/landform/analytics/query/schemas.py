"""The custom-query language as input: a JSON document, never SQL. Shape
errors (unknown fields, wrong types, bad names) are pydantic's and name
their field; ``semantic_problems`` finds what a schema cannot express.
The language is documented in docs/custom-queries.md."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, StrictInt, ValidationInfo, field_validator

from landform.analytics.aggregate import DIMENSIONS as BREAKDOWNS
from landform.analytics.instants import parse_instant
from landform.core.schemas import InputModel

Metric = Literal["views", "visitors", "conversions", "conversion_rate"]
Dimension = Literal[
    "page",
    "hour",
    "day",
    "week",
    "month",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "device",
    "browser",
    "os",
    "country",
]
Op = Literal["eq", "neq", "in", "contains", "starts_with"]

METRICS: tuple[str, ...] = ("views", "visitors", "conversions", "conversion_rate")
TIME_DIMENSIONS = frozenset({"hour", "day", "week", "month"})
PAGE_OPS = frozenset({"eq", "neq", "in"})
MAX_ROWS = 1000
# Longer than any stored value (the widest column is 255), so a value that
# long could never match: refusing it is kinder than an empty answer.
MAX_VALUE_LENGTH = 255
MAX_IN_VALUES = 100

assert set(BREAKDOWNS) < set(Dimension.__args__)  # type: ignore[attr-defined]


class Filter(InputModel):
    dimension: Dimension
    op: Op
    value: Any

    @field_validator("value")
    @classmethod
    def _value_fits_op(cls, value: Any, info: ValidationInfo) -> str | list[str]:
        op = info.data.get("op")
        if op == "in":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError('"in" takes a list of strings')
            if not 1 <= len(value) <= MAX_IN_VALUES:
                raise ValueError(f'"in" takes 1 to {MAX_IN_VALUES} values')
            values: list[str] = value
            if any(len(v) > MAX_VALUE_LENGTH for v in values):
                raise ValueError(f"values are at most {MAX_VALUE_LENGTH} characters")
            return values
        if not isinstance(value, str):
            raise ValueError(f'"{op}" takes a string' if op else "must be a string")
        if len(value) > MAX_VALUE_LENGTH:
            raise ValueError(f"at most {MAX_VALUE_LENGTH} characters")
        return value

    def values(self) -> list[str]:
        return list(self.value) if isinstance(self.value, list) else [self.value]


class Order(InputModel):
    field: str
    direction: Literal["asc", "desc"] = "asc"


class DateRange(InputModel):
    start: datetime | None = Field(default=None, alias="from")
    end: datetime | None = Field(default=None, alias="to")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> datetime | None:
        return None if value is None else parse_instant(value)


class CustomQuery(InputModel):
    metrics: list[Metric] = Field(min_length=1, max_length=len(METRICS))
    dimensions: list[Dimension] = Field(default_factory=list, max_length=4)
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    date_range: DateRange = Field(default_factory=DateRange)
    order_by: list[Order] = Field(default_factory=list, max_length=8)
    # Strict: ``true`` or ``"10"`` is a mistake in a query, not a number.
    limit: StrictInt = Field(default=100, ge=1, le=MAX_ROWS)


def semantic_problems(query: CustomQuery) -> list[dict[str, str]]:
    """Every well-typed mistake in ``query``, each naming its field."""
    problems: list[dict[str, str]] = []
    for name, items in (("metrics", query.metrics), ("dimensions", query.dimensions)):
        seen: set[str] = set()
        for index, entry in enumerate(items):
            if entry in seen:
                problems.append({"path": f"{name}[{index}]", "message": f"{entry} is repeated"})
            seen.add(entry)
    fields = set(query.metrics) | set(query.dimensions)
    ordered: set[str] = set()
    for index, order in enumerate(query.order_by):
        path = f"order_by[{index}].field"
        if order.field not in fields:
            message = f"{order.field} is not a metric or dimension of the query"
            problems.append({"path": path, "message": message})
        elif order.field in ordered:
            problems.append({"path": path, "message": f"{order.field} is ordered by twice"})
        ordered.add(order.field)
    for index, item in enumerate(query.filters):
        path = f"filters[{index}]"
        if item.dimension in TIME_DIMENSIONS:
            problems.append(
                {
                    "path": f"{path}.dimension",
                    "message": f"{item.dimension} is time and cannot be filtered on; "
                    "narrow date_range instead",
                }
            )
        elif item.dimension == "page":
            if item.op not in PAGE_OPS:
                problems.append(
                    {"path": f"{path}.op", "message": "page filters take eq, neq or in"}
                )
            elif not all(_is_uuid(value) for value in item.values()):
                problems.append({"path": f"{path}.value", "message": "must be page ids"})
    return problems


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
