"""The capacity search's steps: up by the factor while every Target is met,
one step between the last pass and the first miss, and the answer is the
highest rate that passed. (A real search against a server runs in
test_run.py; here the judge is scripted so the steps are known.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from landform.loadtest import capacity
from landform.loadtest.config import built_in, find
from landform.loadtest.fixtures import Fixture
from landform.loadtest.harness import Target
from landform.ops.sla import Sla


def scripted(limit: float, tried: list[tuple[float, int, float]]) -> Any:
    def judge(test: Any, *_: Any) -> dict[str, Any]:
        rate = test.requests_per_second
        tried.append((rate, test.concurrent_users, test.duration))
        passed = rate <= limit
        return {
            "verdict": {"passed": passed, "reasons": [] if passed else ["API Gateway: p99"]},
            "throughput": {"achieved": rate},
            "performanceResults": {"loadTest": {"results": {"p99ResponseTime": 10.0}}},
        }

    return judge


@pytest.mark.parametrize(
    ("limit", "rates", "answer"),
    [
        (700.0, [100.0, 200.0, 400.0, 800.0, 565.7], 565.7),  # the middle step passes
        (450.0, [100.0, 200.0, 400.0, 800.0, 565.7], 400.0),  # it misses
        (50.0, [100.0], None),  # the first step already misses
        # The ceiling is the last step, tried itself: it stops the search.
        (10_000.0, [100.0, 200.0, 400.0, 800.0, 1000.0], 1000.0),
        (900.0, [100.0, 200.0, 400.0, 800.0, 1000.0, 894.4], 894.4),
    ],
)
def test_the_search_steps(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    limit: float,
    rates: list[float],
    answer: float | None,
) -> None:
    tried: list[tuple[float, int, float]] = []
    monkeypatch.setattr(capacity, "run_and_judge", scripted(limit, tried))
    monkeypatch.setattr(capacity, "PAUSE_SECONDS", 0.0)
    peak = find(built_in(), "peak_traffic_simulation")
    found = capacity.search(
        peak, Target("http://x", ""), Fixture("http://x", "r", []), Sla.load(),
        start=100, factor=2, seconds=30, ceiling=1000, output=tmp_path, progress=lambda _: None,
        fixture_file=tmp_path / "fixture.json",
    )  # fmt: skip
    assert [rate for rate, _, _ in tried] == rates
    assert found["capacity"] == answer
    # Users keep the spec's ratio (10,000 users for 50,000 req/s).
    assert tried[0][1:] == (20, 30.0)
    assert (tmp_path / "capacity.json").exists()
