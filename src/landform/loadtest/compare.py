"""Two runs side by side: ``landform loadtest compare A.json B.json``. The
change of every headline figure, SLA component and operation of either run
from A to B, with the direction that is better marked, so a regression
reads at once; a figure one run has no data for shows as missing, neither
better nor worse."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class ResultFileError(ValueError):
    pass


HEADLINE = (
    ("requestsPerSecond", True),
    ("successRate", True),
    ("averageResponseTime", False),
    ("p50ResponseTime", False),
    ("p95ResponseTime", False),
    ("p99ResponseTime", False),
    ("errorsPerSecond", False),
)  # (figure, whether higher is better)
OPERATION_FIGURES = (("p99ResponseTime", "p99", False), ("requestsPerSecond", "req/s", True))
NO_DATA = "NO_DATA"
MISSING = "—"


def load(path: Path) -> dict[str, Any]:
    """A result file with at least the spec's ``performanceResults``
    headline (the harness's own rows are compared when the files have
    them), every figure compared of the type it should be."""
    try:
        result = json.loads(path.read_text())
    except OSError as exc:
        raise ResultFileError(f"{path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ResultFileError(f"{path}: not JSON ({exc})") from exc
    try:
        headline = result["performanceResults"]["loadTest"]["results"]
    except (KeyError, TypeError, IndexError):
        headline = None
    if not isinstance(headline, dict):
        raise ResultFileError(
            f"{path}: not a load-test result.json (no performanceResults.loadTest.results)"
        )
    problem = _shape_problem(result)
    if problem is not None:
        raise ResultFileError(f"{path}: not a load-test result.json ({problem})")
    return dict(result)


def _is_number(value: Any) -> bool:
    # Python's json reads NaN and Infinity, which no result gives: a NaN
    # compares false with everything and would read as a change.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _shape_problem(result: dict[str, Any]) -> str | None:
    """What in ``result`` is not of the type a result file gives it (a file
    edited by hand, or another tool's), or None."""
    headline = result["performanceResults"]["loadTest"]["results"]
    for key, _ in HEADLINE:
        if headline.get(key) is not None and not _is_number(headline[key]):
            return f"performanceResults.loadTest.results.{key} is not a finite number"
    for key in ("scenario", "verdict"):
        if result.get(key) is not None and not isinstance(result[key], dict):
            return f"{key} is not an object"
    rows = {
        "components": {"name": str, "status": str, "p99": float},
        "operations": {"name": str, "requests": float}
        | {key: float for key, _, _ in OPERATION_FIGURES},
    }
    for listing, fields in rows.items():
        items = result.get(listing, [])
        if not isinstance(items, list):
            return f"{listing} is not a list"
        for n, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                return f"{listing}[{n}] is not an object with a name"
            for key, kind in fields.items():
                value = item.get(key)
                if value is None:
                    continue
                if kind is str and not isinstance(value, str):
                    return f"{listing}[{n}].{key} is not text"
                if kind is float and not _is_number(value):
                    return f"{listing}[{n}].{key} is not a finite number"
    return None


def _change(before: float | None, after: float | None, higher_is_better: bool) -> str:
    # Missing data is no change for better or worse: it is said, not scored.
    if before is None and after is None:
        return "no data in either"
    if before is None:
        return "no data in A"
    if after is None:
        return "no data in B"
    if before == 0:
        return "new" if after else "="
    percent = 100 * (after - before) / before
    if abs(percent) < 0.05:
        return "="
    better = (percent > 0) == higher_is_better
    return f"{percent:+.1f} % {'better' if better else 'worse'}"


def _by_name(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    """Every name of either list, A's order first, then B's newcomers."""
    names = [row["name"] for row in a]
    return names + [row["name"] for row in b if row["name"] not in names]


def _component_p99(row: dict[str, Any] | None) -> float | None:
    # A component without samples reads p99 0: that is no data, not 0 ms.
    if row is None or row.get("status") == NO_DATA:
        return None
    value = row.get("p99")
    return float(value) if value is not None else None


def _operation_figure(row: dict[str, Any] | None, key: str) -> float | None:
    if row is None or row.get("requests") == 0:
        return None
    value = row.get(key)
    return float(value) if value is not None else None


def rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any, str]]:
    """(figure, A, B, change) for every figure of either run; None where a
    run has no data for it."""
    out: list[tuple[str, Any, Any, str]] = []
    ra = a["performanceResults"]["loadTest"]["results"]
    rb = b["performanceResults"]["loadTest"]["results"]
    for key, higher in HEADLINE:
        out.append((key, ra.get(key), rb.get(key), _change(ra.get(key), rb.get(key), higher)))
    components_a = {c["name"]: c for c in a.get("components", [])}
    components_b = {c["name"]: c for c in b.get("components", [])}
    for name in _by_name(a.get("components", []), b.get("components", [])):
        ca, cb = components_a.get(name), components_b.get(name)
        before, after = _component_p99(ca), _component_p99(cb)
        status_a = ca.get("status", MISSING) if ca else MISSING
        status_b = cb.get("status", MISSING) if cb else MISSING
        out.append(
            (f"{name} p99 ({status_a} → {status_b})", before, after, _change(before, after, False))
        )
    operations_a = {o["name"]: o for o in a.get("operations", [])}
    operations_b = {o["name"]: o for o in b.get("operations", [])}
    for name in _by_name(a.get("operations", []), b.get("operations", [])):
        oa, ob = operations_a.get(name), operations_b.get(name)
        for key, label, higher in OPERATION_FIGURES:
            before, after = _operation_figure(oa, key), _operation_figure(ob, key)
            out.append((f"{name} {label}", before, after, _change(before, after, higher)))
    return out


def _describe(result: dict[str, Any]) -> str:
    """Which test, when, and its verdict, as far as the file says."""
    scenario = result.get("scenario") or {}
    verdict = result.get("verdict") or {}
    parts = [
        str(scenario.get("name", "unnamed test")),
        str(scenario.get("startedAt", "start not recorded")),
    ]
    if "passed" in verdict:
        parts.append("passed" if verdict["passed"] else "failed")
    return ", ".join(parts)


def table(a: dict[str, Any], b: dict[str, Any], name_a: str, name_b: str) -> str:
    lines = [f"A: {name_a} ({_describe(a)})", f"B: {name_b} ({_describe(b)})"]
    test_a = (a.get("scenario") or {}).get("name")
    test_b = (b.get("scenario") or {}).get("name")
    if test_a and test_b and test_a != test_b:
        lines.append(f"note: A ran {test_a} and B ran {test_b}; their mixes may differ")
    lines.append("")
    found = rows(a, b)
    width = max(len(r[0]) for r in found)
    lines.append(f"{'figure':<{width}}  {'A':>12}  {'B':>12}  change")
    for figure, before, after, change in found:
        lines.append(f"{figure:<{width}}  {_cell(before):>12}  {_cell(after):>12}  {change}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
