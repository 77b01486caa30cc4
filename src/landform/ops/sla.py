"""The SLA, evaluated: the spec's p99 table (each component against its
Target / Acceptable / Critical thresholds) and its three compliance checks,
from thresholds in a file (``sla.toml`` here, or ``LANDFORM_SLA_FILE``);
and alerts that fire once when a breach has lasted the hold time, and once
more when it is over."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_FILE = Path(__file__).with_name("sla.toml")

OK, ACCEPTABLE, DEGRADED, CRITICAL, NO_DATA = "OK", "ACCEPTABLE", "DEGRADED", "CRITICAL", "NO_DATA"
BREACH, WARNING = "BREACH", "WARNING"
# What makes the overall status, and what alerts.
BREACHING = frozenset({CRITICAL, BREACH})
WARNING_LIKE = frozenset({DEGRADED, WARNING})

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")


class SlaFileError(ValueError):
    pass


def milliseconds(text: str | float | int, where: str) -> float:
    """``"100ms"``, ``"2s"`` (or a number of milliseconds)."""
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise SlaFileError(f"{where}: {text!r} is not a duration like 100ms or 2s")
    value = float(match.group(1))
    return value * 1000 if match.group(2) == "s" else value


@dataclass(frozen=True)
class ComponentTarget:
    name: str
    measure: str
    target: float
    acceptable: float
    critical: float


@dataclass(frozen=True)
class Check:
    name: str
    metric: str
    below: float | None
    at_least: float | None
    otherwise: str


@dataclass(frozen=True)
class Sla:
    components: tuple[ComponentTarget, ...]
    checks: tuple[Check, ...]

    @classmethod
    def load(cls, path: Path | None = None) -> Sla:
        path = path or DEFAULT_FILE
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SlaFileError(f"{path}: {exc}") from exc
        components = []
        for name, row in data.get("response_time_p99", {}).items():
            where = f"{path}: response_time_p99.{name!r}"
            try:
                target, acceptable, critical = (
                    milliseconds(row[k], f"{where}.{k}")
                    for k in ("target", "acceptable", "critical")
                )
                measure = str(row["measure"])
            except KeyError as exc:
                raise SlaFileError(f"{where}: {exc.args[0]} is missing") from exc
            if not target <= acceptable <= critical:
                raise SlaFileError(f"{where}: needs target <= acceptable <= critical")
            components.append(ComponentTarget(name, measure, target, acceptable, critical))
        checks = []
        for index, row in enumerate(data.get("checks", [])):
            where = f"{path}: checks[{index}]"
            if ("below" in row) == ("at_least" in row):
                raise SlaFileError(f"{where}: give exactly one of below, at_least")
            if "name" not in row or "metric" not in row:
                raise SlaFileError(f"{where}: name and metric are required")
            checks.append(
                Check(
                    str(row["name"]),
                    str(row["metric"]),
                    float(row["below"]) if "below" in row else None,
                    float(row["at_least"]) if "at_least" in row else None,
                    str(row.get("otherwise", BREACH)),
                )
            )
        return cls(tuple(components), tuple(checks))

    def evaluate(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """``{components, checks, overallStatus}`` for a PerformanceMetrics."""
        components = []
        for row in self.components:
            measured = metrics["components"].get(row.measure, {})
            p99, count = measured.get("p99", 0.0), measured.get("count", 0)
            components.append(
                {
                    "name": row.name,
                    "p99": p99,
                    "samples": count,
                    "target": row.target,
                    "acceptable": row.acceptable,
                    "critical": row.critical,
                    "status": _component_status(p99, count, row),
                }
            )
        checks = []
        for check in self.checks:
            current = _field(metrics, check.metric)
            ok = (
                current < check.below
                if check.below is not None
                else current >= (check.at_least or 0.0)
            )
            status = OK if ok else check.otherwise
            if _samples_behind(metrics, check.metric) == 0:
                status = NO_DATA  # a ratio of nothing is no reading, good or bad
            checks.append(
                {
                    "name": check.name,
                    "current": current,
                    "target": check.below if check.below is not None else check.at_least,
                    "status": status,
                }
            )
        statuses = {item["status"] for item in [*components, *checks]}
        overall = BREACH if statuses & BREACHING else WARNING if statuses & WARNING_LIKE else OK
        return {"components": components, "checks": checks, "overallStatus": overall}


def _component_status(p99: float, count: int, row: ComponentTarget) -> str:
    if count == 0:
        return NO_DATA
    if p99 < row.target:
        return OK
    if p99 < row.acceptable:
        return ACCEPTABLE
    if p99 < row.critical:
        return DEGRADED
    return CRITICAL


# What each group of PerformanceMetrics fields is measured over.
_SAMPLES_OF_GROUP = {
    "responseTime": "throughput.totalRequests",
    "throughput": "throughput.totalRequests",
    "cache": "cache.lookups",
}


def _samples_behind(metrics: dict[str, Any], dotted: str) -> float | None:
    """How many requests or lookups a field was measured over (None: not known)."""
    counted = _SAMPLES_OF_GROUP.get(dotted.split(".", 1)[0])
    try:
        return None if counted is None else _field(metrics, counted)
    except KeyError:  # metrics from elsewhere (a load test's) may not say
        return None


def _field(metrics: dict[str, Any], dotted: str) -> float:
    value: Any = metrics
    for part in dotted.split("."):
        value = value[part]
    return float(value)


@dataclass
class Alerts:
    """Hysteresis: an item breaching for ``hold`` seconds fires one
    ``breach``; when it stops breaching after that, one ``recovered``."""

    hold: float
    since: dict[str, float] = field(default_factory=dict)
    alerted: set[str] = field(default_factory=set)

    def state(self) -> dict[str, Any]:
        """What the next leader needs to go on where this one stopped."""
        return {"since": self.since, "alerted": sorted(self.alerted)}

    def resume(self, state: dict[str, Any]) -> None:
        self.since = {str(k): float(v) for k, v in state.get("since", {}).items()}
        self.alerted = {str(name) for name in state.get("alerted", [])}

    def update(self, result: dict[str, Any], now: float) -> list[dict[str, Any]]:
        fired = []
        for item in [*result["components"], *result["checks"]]:
            name, status = item["name"], item["status"]
            if status in BREACHING:
                started = self.since.setdefault(name, now)
                if name not in self.alerted and now - started >= self.hold:
                    self.alerted.add(name)
                    fired.append({"event": "breach", "since": started, **item})
            else:
                self.since.pop(name, None)
                if name in self.alerted:
                    self.alerted.discard(name)
                    fired.append({"event": "recovered", **item})
        return fired
