"""A run shorter than the failure criteria's ten-second window is still
judged: at its end, over what it measured, so a breach is a breach."""

from __future__ import annotations

from landform.loadtest.config import parse
from landform.loadtest.fixtures import Account, Fixture
from landform.loadtest.runner import run
from landform.loadtest.verdict import WINDOW_SECONDS, evaluate
from landform.ops.sla import Sla
from tests.loadtest.test_stall import stalling_server

# Any answer takes more than 0 ms: a criterion every run breaches.
SHORT = """
load_tests:
  - name: short
    duration: 3s
    ramp_up: 0s
    concurrent_users: 1
    requests_per_second: 20
    scenarios:
      - name: health
        weight: 100%
        operations:
          - GET /healthz
    failure_criteria:
      - response_time_p99: "> 0ms"
"""


def test_a_run_shorter_than_the_window_is_judged_at_its_end() -> None:
    (test,) = parse(SHORT)
    assert test.duration < WINDOW_SECONDS
    with stalling_server() as host:  # it stalls only after 4 s: never here
        account = Account("probe@loadtest.example", "x", [{"id": "1", "slug": "p"}], ["/a"])
        data = run(test, Fixture(host, "probe", [account]), host, ops_token="", processes=1)
    assert data.stopped_early is None  # judged at the end, not stopped
    assert [b["metric"] for b in data.breaches] == ["response_time_p99"]
    found = evaluate(data, Sla.load())
    (row,) = found["failureCriteria"]
    assert row["breached"] and row["worst"] > 0
    assert not found["verdict"]["passed"]
    assert found["verdict"]["reasons"][0].startswith("failure criterion: response_time_p99")
