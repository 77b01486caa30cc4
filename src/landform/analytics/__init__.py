"""Privacy-first page analytics: cookieless visitor hashing, lossless
batched ingestion, hourly rollups, reports, custom queries and a live view."""
