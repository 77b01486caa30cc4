"""Two runs side by side: ``landform loadtest compare A.json B.json``. The
change of every headline figure, SLA component and operation from A to B,
with the direction that is better marked, so a regression reads at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class ResultFileError(ValueError):
    pass


def load(path: Path) -> dict[str, Any]:
    """A result file with at least the spec's ``performanceResults``
    headline (the harness's own rows are compared when both files have them)."""
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
    return dict(result)


def _change(before: float | None, after: float | None, higher_is_better: bool) -> str:
    if before is None or after is None:
        return ""
    if before == 0:
        return "new" if after else "="
    percent = 100 * (after - before) / before
    if abs(percent) < 0.05:
        return "="
    better = (percent > 0) == higher_is_better
    return f"{percent:+.1f} % {'better' if better else 'worse'}"


def rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any, str]]:
    """(figure, A, B, change) for everything the two runs share."""
    out: list[tuple[str, Any, Any, str]] = []
    ra = a["performanceResults"]["loadTest"]["results"]
    rb = b["performanceResults"]["loadTest"]["results"]
    for key, higher in (
        ("requestsPerSecond", True),
        ("successRate", True),
        ("averageResponseTime", False),
        ("p50ResponseTime", False),
        ("p95ResponseTime", False),
        ("p99ResponseTime", False),
        ("errorsPerSecond", False),
    ):
        out.append((key, ra.get(key), rb.get(key), _change(ra.get(key), rb.get(key), higher)))
    components_b = {c["name"]: c for c in b.get("components", [])}
    for component in a.get("components", []):
        other = components_b.get(component["name"])
        if other is None:
            continue
        out.append(
            (
                f"{component['name']} p99 ({component['status']} → {other['status']})",
                component["p99"],
                other["p99"],
                _change(component["p99"], other["p99"], False),
            )
        )
    operations_b = {o["name"]: o for o in b.get("operations", [])}
    for operation in a.get("operations", []):
        other = operations_b.get(operation["name"])
        if other is None:
            continue
        for key, label, higher in (
            ("p99ResponseTime", "p99", False),
            ("requestsPerSecond", "req/s", True),
        ):
            out.append(
                (
                    f"{operation['name']} {label}",
                    operation[key],
                    other[key],
                    _change(operation[key], other[key], higher),
                )
            )
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
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
