"""Settings for a Landform under benchmark.

wrk and the load clients send from one address what thousands of visitors
would: the per-address and per-account rate limits are raised out of their
way. The limiter still runs, so its cost is part of what is measured."""

from __future__ import annotations

ROOMY_RATE_LIMITS = {
    f"LANDFORM_{name}": "1000000000"
    for name in (
        "RATE_LIMIT_PUBLIC_PER_SECOND",
        "RATE_LIMIT_PUBLIC_BURST",
        "RATE_LIMIT_AUTH_PER_SECOND",
        "RATE_LIMIT_AUTH_BURST",
        "RATE_LIMIT_API_PER_SECOND",
        "RATE_LIMIT_API_BURST",
        "ANALYTICS_RATE_PER_SECOND",
        "ANALYTICS_RATE_BURST",
    )
}
