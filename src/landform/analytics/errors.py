from __future__ import annotations

from enum import StrEnum

from landform.core.errors import NotFound, ServiceUnavailable, TooManyRequests, ValidationFailed


class AnalyticsErrorCode(StrEnum):
    PAGE_NOT_FOUND = "page_not_found"
    INVALID_QUERY = "invalid_query"
    QUERY_TOO_COSTLY = "query_too_costly"
    INGESTION_BACKLOG = "ingestion_backlog"
    TOO_MANY_LIVE_STREAMS = "too_many_live_streams"


class TrackedPageNotFound(NotFound):
    code = AnalyticsErrorCode.PAGE_NOT_FOUND


class InvalidQuery(ValidationFailed):
    code = AnalyticsErrorCode.INVALID_QUERY


class QueryTooCostly(ValidationFailed):
    code = AnalyticsErrorCode.QUERY_TOO_COSTLY


class IngestionBacklog(ServiceUnavailable):
    code = AnalyticsErrorCode.INGESTION_BACKLOG


class TooManyLiveStreams(TooManyRequests):
    code = AnalyticsErrorCode.TOO_MANY_LIVE_STREAMS
