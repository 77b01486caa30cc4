"""Load-test files: the spec's three tests ship verbatim, scale down to a
machine, and a broken file is refused with its line and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from landform.loadtest.config import (
    ScenarioFileError,
    built_in,
    find,
    load_file,
    out_of_bounds,
    parse,
    parse_duration,
)


def test_the_specs_tests_ship_verbatim() -> None:
    tests = built_in()
    assert [t.name for t in tests] == ["peak_traffic_simulation", "stress_test", "endurance_test"]
    peak, stress, endurance = tests
    assert (peak.duration, peak.ramp_up) == (1800, 300)
    assert (peak.concurrent_users, peak.requests_per_second) == (10_000, 50_000)
    assert [(s.name, s.weight) for s in peak.scenarios] == [
        ("user_registration", 5), ("lp_creation", 15), ("content_management", 25),
        ("analytics_viewing", 30), ("public_page_views", 25),
    ]  # fmt: skip
    assert peak.scenarios[0].operations == (
        ("POST", "/auth/register"),
        ("POST", "/auth/verify-email"),
    )
    assert peak.scenarios[-1].operations[-1] == ("GET", "/assets/{file}")
    assert (stress.duration, stress.concurrent_users, stress.requests_per_second) == (
        3600, 25_000, 100_000,
    )  # fmt: skip
    assert [(c.metric, c.comparison, c.limit) for c in stress.failure_criteria] == [
        ("error_rate", ">", 5), ("response_time_p99", ">", 2000),
        ("cpu_usage", ">", 85), ("memory_usage", ">", 90),
    ]  # fmt: skip
    # Without scenarios of their own, the stress and endurance tests run the
    # peak mix; without a ramp, they ramp over a tenth of their length.
    assert stress.scenarios == peak.scenarios and stress.ramp_up == 360
    assert endurance.duration == 24 * 3600
    assert endurance.monitoring == (
        "memory_leaks", "connection_pool_exhaustion", "cache_efficiency_degradation",
    )  # fmt: skip


def test_scaling_to_a_machine() -> None:
    peak = find(built_in(), "peak_traffic_simulation")
    small = peak.scaled(0.01)
    assert (small.concurrent_users, small.requests_per_second) == (100, 500)
    assert (small.duration, small.ramp_up) == (1800, 300)
    short = peak.scaled(0.01, duration=300)
    assert (short.duration, short.ramp_up) == (300, 50)
    with pytest.raises(ScenarioFileError, match="no load test named 'nope'"):
        find(built_in(), "nope")


def test_failure_criteria_compare() -> None:
    stress = find(built_in(), "stress_test")
    error_rate, p99, *_ = stress.failure_criteria
    assert error_rate.breached_by(5.1) and not error_rate.breached_by(5)
    assert p99.breached_by(2001) and not p99.breached_by(1999)


GOOD = """\
load_tests:
  - name: small
    duration: 2m
    concurrent_users: 10
    requests_per_second: 50
    scenarios:
      - name: views
        weight: 100%
        operations:
          - GET /{slug}
"""


def test_a_minimal_file() -> None:
    (test,) = parse(GOOD)
    assert (test.duration, test.ramp_up, test.concurrent_users) == (120, 12, 10)


@pytest.mark.parametrize(
    ("text", "line", "complaint"),
    [
        (GOOD.replace("duration: 2m", "duration: soon"), 3, "duration must be a duration"),
        (GOOD.replace("weight: 100%", "weight: 90%"), 7, "weights add up to 90%, not 100%"),
        (GOOD.replace("weight: 100%", "weight: lots"), 8, "weight must be a percentage"),
        (GOOD.replace("GET /{slug}", "FETCH /{slug}"), 10, "an operation is a method and a path"),
        (GOOD.replace("concurrent_users: 10", "concurrent_users: -3"), 4, "more than 0"),
        (GOOD.replace("concurrent_users: 10", "concurrent_users: 2.5"), 4, "a whole number"),
        (GOOD.replace("    duration: 2m\n", "    duration: 2m\n    colour: blue\n"), 4,
         "unknown field 'colour'"),
        (GOOD + "    failure_criteria:\n      - error_rate: \"above 5\"\n", 12,
         'error_rate must read like "> 5%"'),
        (GOOD + "    failure_criteria:\n      - happiness: \"> 5%\"\n", 12,
         "unknown failure criterion 'happiness'"),
        (GOOD + "    failure_criteria:\n      - cpu_usage: \"> 5ms\"\n", 12, "measured in %"),
        (GOOD + "    monitoring:\n      - vibes\n", 12, "unknown monitor 'vibes'"),
        (GOOD.replace("    concurrent_users: 10\n", ""), 2, "concurrent_users is missing"),
        ("load_tests: [\n", 2, "not valid YAML"),
        ("tests: []\n", 1, "load_tests is missing"),
        (GOOD.replace("duration: 2m", "duration: 0s"), 3, "duration must be longer than 0"),
        (GOOD.replace("    concurrent_users: 10\n", "    concurrent_users: 10\n" * 2), 5,
         "concurrent_users is given twice"),
        (GOOD.replace("GET /{slug}", "GET /nonexistent"), 10,
         "the harness has no journey step for GET /nonexistent"),
        (GOOD.replace("name: small", 'name: ""'), 2, "name is empty"),
        (GOOD.replace("weight: 100%", "weight: 50%")
         + "      - name: views\n        weight: 50%\n"
         + "        operations:\n          - GET /{slug}\n",
         11, "two scenarios are named 'views'"),
        (GOOD + "    failure_criteria:\n      - response_time_p99: \"slow\"\n", 12,
         'response_time_p99 must read like "> 2000ms"'),
        # Every level refuses what it does not know, and a known field at
        # the wrong level says where it belongs.
        (GOOD.replace("        weight: 100%\n", "        weight: 100%\n        think: 2\n"), 9,
         "unknown field 'think' in a scenario (known: name, operations, weight)"),
        (GOOD + "extra: 1\n", 11,
         "unknown field 'extra' at the top of the file (known: load_tests)"),
        (GOOD + "        failure_criteria:\n          - response_time_p99: \"> 5ms\"\n", 11,
         "failure_criteria belongs in a load test (beside its name, duration and scenarios), "
         "not in a scenario"),
        (GOOD.replace("    duration: 2m\n", "    duration: 2m\n    weight: 5%\n"), 4,
         "weight belongs in a scenario"),
        (GOOD.replace("    duration: 2m\n", "    duration: 2m\n    error_rate: \"> 5%\"\n"), 4,
         'error_rate belongs under failure_criteria, as an item like - error_rate: "> …"'),
        ("name: x\n" + GOOD, 1, "name belongs in a load test"),
        # Numbers no machine could run are refused before they exhaust one.
        (GOOD.replace("concurrent_users: 10", "concurrent_users: 99999999999999999999"), 4,
         "concurrent_users must be at most 64,000, not 99999999999999999999"),
        (GOOD.replace("requests_per_second: 50", "requests_per_second: 1e400"), 5,
         "requests_per_second must be at most 1,000,000"),
        (GOOD.replace("requests_per_second: 50", "requests_per_second: .nan"), 5,
         "requests_per_second must be a number"),
        (GOOD.replace("duration: 2m", 'duration: "99999999999999999999h"'), 3,
         "duration must be at most 7 days (168h)"),
    ],
)  # fmt: skip
def test_errors_point_at_the_line(text: str, line: int, complaint: str) -> None:
    with pytest.raises(ScenarioFileError) as refused:
        parse(text, "mine.yaml")
    message = str(refused.value)
    assert message.startswith(f"mine.yaml:{line}: "), message
    assert complaint in message


def test_the_specs_cluster_sized_numbers_are_inside_the_bounds() -> None:
    stress = find(built_in(), "stress_test")
    assert out_of_bounds(stress) is None
    assert out_of_bounds(stress.scaled(3)) == (
        "75,000 users, more than the 64,000 connections one machine can hold to one host"
    )
    assert "longer than the limit of 7 days" in str(out_of_bounds(stress.scaled(1, 8 * 86400)))
    # The limit is said in days, and may be given in them.
    assert parse_duration("7d") == parse_duration("168h") == 7 * 86400


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFileError, match="No such file"):
        load_file(tmp_path / "absent.yaml")


def test_a_file_that_is_not_utf8_says_where(tmp_path: Path) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"load_tests:\n  - name: x\n\xff\xfe garbage\n")
    with pytest.raises(ScenarioFileError) as refused:
        load_file(binary)
    assert str(refused.value).startswith(f"{binary}:3: not UTF-8 text (byte 0xff)")
