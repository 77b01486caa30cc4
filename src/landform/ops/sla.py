"""The SLA, evaluated: the spec's p99 table (each component against its
Target / Acceptable / Critical thresholds) and its three compliance checks,
from thresholds in a file (``sla.toml`` here, or ``LANDFORM_SLA_FILE``);
and alerts that fire once when a breach has lasted the hold time, and once
more when it is over."""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from landform.ops.recorder import COMPONENTS

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
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    match = _DURATION.match(text) if isinstance(text, str) else None
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
        """The thresholds in ``path`` (default: ours). Anything that would
        fail or never be measured later is refused here, with the file, the
        row and the reason (docs/operations.md, "The SLA file")."""
        path = path or DEFAULT_FILE
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise SlaFileError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SlaFileError(f"{path}: {exc}") from exc
        _known_keys(data, {"response_time_p99", "checks"}, f"{path}")
        components = []
        for name, row in _table(data, "response_time_p99", path).items():
            where = f"{path}: response_time_p99.{name!r}"
            row = _row(row, where, {"measure", "target", "acceptable", "critical"})
            try:
                target, acceptable, critical = (
                    milliseconds(row[k], f"{where}.{k}")
                    for k in ("target", "acceptable", "critical")
                )
                measure = str(row["measure"])
            except KeyError as exc:
                raise SlaFileError(f"{where}: {exc.args[0]} is missing") from exc
            if measure not in COMPONENTS:
                raise SlaFileError(
                    f"{where}.measure: {measure!r} is not a measured component "
                    f"(one of {', '.join(COMPONENTS)})"
                )
            if not target <= acceptable <= critical:
                raise SlaFileError(f"{where}: needs target <= acceptable <= critical")
            components.append(ComponentTarget(name, measure, target, acceptable, critical))
        checks = []
        rows = data.get("checks", [])
        if not isinstance(rows, list):
            raise SlaFileError(f"{path}: checks must be [[checks]] tables")
        for index, row in enumerate(rows):
            where = f"{path}: checks[{index}]"
            row = _row(row, where, {"name", "metric", "below", "at_least", "otherwise"})
            if ("below" in row) == ("at_least" in row):
                raise SlaFileError(f"{where}: give exactly one of below, at_least")
            if "name" not in row or "metric" not in row:
                raise SlaFileError(f"{where}: name and metric are required")
            metric = str(row["metric"])
            if metric not in metric_fields():
                raise SlaFileError(f"{where}.metric: {_not_a_field(metric)}")
            otherwise = str(row.get("otherwise", BREACH))
            if otherwise not in CHECK_FAILURES:
                raise SlaFileError(
                    f"{where}.otherwise: {otherwise!r} is not a status a failed check can "
                    f"have ({' or '.join(CHECK_FAILURES)})"
                )
            checks.append(
                Check(
                    str(row["name"]),
                    metric,
                    _number(row, "below", where),
                    _number(row, "at_least", where),
                    otherwise,
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
            if current is None:  # a field this caller did not measure
                status = NO_DATA
            elif _samples_behind(metrics, check.metric) == 0:
                status = NO_DATA  # a ratio of nothing is no reading, good or bad
            elif check.below is not None:
                status = OK if current < check.below else check.otherwise
            else:
                status = OK if current >= (check.at_least or 0.0) else check.otherwise
            checks.append(
                {
                    "name": check.name,
                    # No reading is no number: not a ratio of nothing as 100 %.
                    "current": None if status == NO_DATA else current,
                    "target": check.below if check.below is not None else check.at_least,
                    "status": status,
                }
            )
        statuses = {item["status"] for item in [*components, *checks]}
        overall = BREACH if statuses & BREACHING else WARNING if statuses & WARNING_LIKE else OK
        return {"components": components, "checks": checks, "overallStatus": overall}


# What a failed check's status may be (the spec: BREACH, or WARNING).
CHECK_FAILURES = (BREACH, WARNING)


@functools.cache
def metric_fields() -> frozenset[str]:
    """Every number in a PerformanceMetrics, dotted (``cache.hitRatio``):
    what a check may compare."""
    from landform.ops.performance import performance_metrics

    fields: set[str] = set()

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{prefix}{key}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            fields.add(prefix.removesuffix("."))

    walk(performance_metrics([], "1m", "node", now=0.0), "")
    return frozenset(fields)


def _not_a_field(metric: str) -> str:
    close = difflib.get_close_matches(metric, sorted(metric_fields()), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "e.g. responseTime.p99, cache.hitRatio"
    return f"{metric!r} is not a PerformanceMetrics field ({hint})"


def _table(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise SlaFileError(f"{path}: {key} must be a table of rows")
    return table


def _row(row: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise SlaFileError(f"{where}: must be a table")
    _known_keys(row, allowed, where)
    return row


def _known_keys(row: dict[str, Any], allowed: set[str], where: str) -> None:
    """A misspelt key would otherwise be ignored, and its default used."""
    for key in row:
        if key not in allowed:
            raise SlaFileError(
                f"{where}: unknown key {key!r} (known: {', '.join(sorted(allowed))})"
            )


def _number(row: dict[str, Any], key: str, where: str) -> float | None:
    if key not in row:
        return None
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SlaFileError(f"{where}.{key}: {value!r} is not a number")
    try:
        return float(value)
    except ValueError:
        raise SlaFileError(f"{where}.{key}: {value!r} is not a number") from None


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
    return None if counted is None else _field(metrics, counted)


def _field(metrics: dict[str, Any], dotted: str) -> float | None:
    value: Any = metrics
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
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
