"""The custom-query language of ``POST /analytics/custom-query``: a JSON
query (``schemas``) compiled to one parameterized select over the hourly
rollups or the raw events (``compiler``), checked, costed and run for one
owner (``runner``). Reference: docs/custom-queries.md."""

from landform.analytics.query.runner import parse_custom_query, run_custom_query
from landform.analytics.query.schemas import CustomQuery

__all__ = ["CustomQuery", "parse_custom_query", "run_custom_query"]
