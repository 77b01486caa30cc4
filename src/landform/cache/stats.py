"""Counters per tier and kind, for the metrics the ops issue exports."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass(slots=True)
class Counts:
    hits: int = 0
    misses: int = 0
    sets: int = 0
    evictions: int = 0

    @property
    def hit_ratio(self) -> float:
        looked = self.hits + self.misses
        return self.hits / looked if looked else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "sets": self.sets,
            "evictions": self.evictions,
            "hit_ratio": round(self.hit_ratio, 4),
        }


class CacheStats:
    def __init__(self) -> None:
        self.by_tier_kind: defaultdict[tuple[str, str], Counts] = defaultdict(Counts)

    def of(self, tier: str, kind: str) -> Counts:
        return self.by_tier_kind[(tier, kind)]

    def snapshot(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{tier: {kind: {hits, misses, sets, evictions, hit_ratio}}}``."""
        out: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
        for (tier, kind), counts in self.by_tier_kind.items():
            out[tier][kind] = counts.as_dict()
        return dict(out)
