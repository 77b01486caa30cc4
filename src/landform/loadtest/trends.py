"""Growth over time, told from noise: the endurance test's checks. A leak
is a slope: memory that climbs steadily through the run, not memory that
is merely high, nor a few bumps. A least-squares line through the samples
after the ramp-up; a trend is flagged when its slope is both significant
(more than three standard errors from zero) and material (it moves the
value by more than a set share of its mean over the run)."""

from __future__ import annotations

import math
from dataclasses import dataclass

T_STAT = 3.0
MATERIAL_SHARE = 0.05  # 5 % of the mean over the run


@dataclass(frozen=True)
class Trend:
    slope: float  # units per hour
    change: float  # over the whole span, in units
    t_stat: float
    mean: float
    samples: int

    def rising(self) -> bool:
        return self.slope > 0 and self._material()

    def falling(self) -> bool:
        return self.slope < 0 and self._material()

    def _material(self) -> bool:
        return abs(self.t_stat) > T_STAT and abs(self.change) > MATERIAL_SHARE * abs(self.mean)


def fit(times: list[float], values: list[float]) -> Trend | None:
    """The trend of ``values`` sampled at ``times`` (seconds); None with
    fewer than five samples."""
    n = len(values)
    if n < 5 or len(times) != n:
        return None
    mean_t, mean_v = sum(times) / n, sum(values) / n
    sxx = sum((t - mean_t) ** 2 for t in times)
    if sxx == 0:
        return None
    slope = sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)) / sxx
    residuals = [v - (mean_v + slope * (t - mean_t)) for t, v in zip(times, values, strict=True)]
    variance = sum(r * r for r in residuals) / (n - 2)
    error = math.sqrt(variance / sxx)
    t_stat = slope / error if error > 0 else (math.inf if slope else 0.0)
    span = max(times) - min(times)
    return Trend(slope * 3600, slope * span, t_stat, mean_v, n)
