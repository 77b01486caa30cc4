"""The tiered cache: L1 in each process (``local``), L2 in Redis when
configured (``remote``, behind a circuit breaker), L3 the CDN (steered by
response headers). ``tiered.TieredCache`` puts them behind one interface
with single-flight loading and early refresh of hot keys."""
