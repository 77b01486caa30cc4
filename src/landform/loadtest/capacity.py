"""The capacity of a deployment: the peak mix at rising rates, one short
run per step, until a component leaves its Target column (or the rate, the
success rate or a failure criterion gives way); then one step between the
last pass and the first miss (after an unjudged warm-up at the first rate:
a cold cache is not the deployment's capacity). The answer is the highest rate that met
every Target."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from landform.loadtest.config import LoadTest
from landform.loadtest.fixtures import Fixture
from landform.loadtest.harness import Target, run_and_judge
from landform.ops.sla import Sla

PAUSE_SECONDS = 5.0  # lets the server drain between steps


@dataclass
class Step:
    rate: float
    users: int
    passed: bool
    achieved: float
    p99: float
    reasons: list[str]


def step_test(test: LoadTest, rate: float, seconds: float) -> LoadTest:
    users_per_request = test.concurrent_users / test.requests_per_second
    return replace(
        test,
        requests_per_second=rate,
        concurrent_users=max(1, math.ceil(rate * users_per_request)),
        duration=seconds,
        ramp_up=min(10.0, seconds / 5),
        failure_criteria=(),
        monitoring=(),
    )


def search(
    test: LoadTest,
    target: Target,
    fixture: Fixture,
    sla: Sla,
    start: float,
    factor: float,
    seconds: float,
    ceiling: float,
    output: Path,
    progress: Callable[[str], None],
    fixture_file: Path,
    warm_up: float = 0.0,
) -> dict[str, Any]:
    """``fixture_file`` records the accounts the steps' journeys register,
    for cleanup."""
    steps: list[Step] = []
    if warm_up > 0:
        # Caches and connection pools fill before the first judged step.
        progress(f"warming up: {start:g} req/s for {warm_up:g} s (not judged)")
        run_and_judge(
            step_test(test, start, warm_up), target, fixture, sla, 1.0, None, progress,
            fixture_file,
        )  # fmt: skip

    def attempt(rate: float) -> Step:
        stepped = step_test(test, rate, seconds)
        progress(f"step {len(steps) + 1}: {rate:g} req/s with {stepped.concurrent_users} users")
        result = run_and_judge(
            stepped, target, fixture, sla, 1.0, output / f"step-{len(steps) + 1}-{rate:g}",
            progress, fixture_file,
        )  # fmt: skip
        step = Step(
            rate,
            stepped.concurrent_users,
            result["verdict"]["passed"],
            result["throughput"]["achieved"],
            result["performanceResults"]["loadTest"]["results"]["p99ResponseTime"],
            result["verdict"]["reasons"],
        )
        steps.append(step)
        progress(f"  {'met every Target' if step.passed else 'missed: ' + '; '.join(step.reasons)}")
        time.sleep(PAUSE_SECONDS)
        return step

    rate, best, missed = start, None, None
    while True:
        step = attempt(rate)
        if not step.passed:
            missed = rate
            break
        best = rate
        if rate >= ceiling:
            break
        # The ceiling itself is the last step: a search told to stop there
        # says whether it was met, not only the step below it.
        rate = min(round(rate * factor, 1), ceiling)
    if best is not None and missed is not None and missed / best > 1.1:
        middle = round(math.sqrt(best * missed), 1)
        if attempt(middle).passed:
            best = middle
    summary = {
        "scenario": test.name,
        "host": target.host,
        "capacity": best,
        "firstMiss": missed,
        "stepSeconds": seconds,
        "warmUpSeconds": warm_up,
        "steps": [asdict(s) for s in steps],
    }
    output.mkdir(parents=True, exist_ok=True)
    (output / "capacity.json").write_text(json.dumps(summary, indent=2))
    return summary
