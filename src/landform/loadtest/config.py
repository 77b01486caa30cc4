"""Load-test files in the spec's own schema (``load_tests:``, each with
name, description, duration, ramp_up, concurrent_users,
requests_per_second, scenarios with weight and operations,
failure_criteria, monitoring), read and checked; an error names the file
and the line. ``scaled`` turns the spec's cluster-sized numbers into a
machine's (``--scale 0.01``: 10,000 users and 50,000 requests/s become 100
and 500)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from landform.loadtest.steps import unknown_operations

BUILT_IN = Path(__file__).with_name("scenarios") / "spec.yaml"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_OPERATION = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD) (/\S*)$")
_CRITERION = re.compile(r"^\s*([<>]=?)\s*(\d+(?:\.\d+)?)\s*(%|ms|s)?\s*$")

CRITERIA = {"error_rate": "%", "response_time_p99": "ms", "cpu_usage": "%", "memory_usage": "%"}
MONITORS = frozenset({"memory_leaks", "connection_pool_exhaustion", "cache_efficiency_degradation"})
FILE_KEYS = frozenset({"load_tests"})
KNOWN_KEYS = frozenset(
    {
        "name", "description", "duration", "ramp_up", "concurrent_users", "requests_per_second",
        "scenarios", "failure_criteria", "monitoring",
    }
)  # fmt: skip
SCENARIO_KEYS = frozenset({"name", "weight", "operations"})
# Where a field that is known somewhere belongs, for one written at the
# wrong level (a mis-indented failure_criteria would otherwise read as a
# test without criteria, and pass).
PLACES = {
    "load_tests": "at the top of the file",
    **{key: "in a load test (beside its name, duration and scenarios)" for key in KNOWN_KEYS},
    "weight": "in a scenario (an item of a load test's scenarios)",
    "operations": "in a scenario (an item of a load test's scenarios)",
    **{metric: f'under failure_criteria, as an item like - {metric}: "> …"' for metric in CRITERIA},
    **{monitor: f"under monitoring, as an item: - {monitor}" for monitor in MONITORS},
}

# Upper bounds on a file's numbers, so that a typo cannot reach a run that
# exhausts the machine. Users: each simulated user holds its own connection,
# and one harness machine sends from one address to one host and port, so
# TCP's 16-bit source port caps it below 65,536. Rate: a generator process
# drives a few thousand requests a second, so a million is beyond any single
# machine's cores. Both leave the spec's cluster-sized numbers (25,000 users,
# 100,000 requests/s) valid, to be scaled down with --scale. Length: the
# spec's longest test is 24 hours; a week allows longer soaks, and the
# result keeps a row per second (604,800 for a week).
MAX_USERS = 64_000
MAX_REQUESTS_PER_SECOND = 1_000_000.0
MAX_DURATION_SECONDS = 7 * 24 * 3600.0


class ScenarioFileError(ValueError):
    """A load-test file that cannot be used, with where and why."""


@dataclass(frozen=True)
class Scenario:
    name: str
    weight: float  # percent
    operations: tuple[tuple[str, str], ...]  # (method, path template)


@dataclass(frozen=True)
class Criterion:
    metric: str  # error_rate, response_time_p99, cpu_usage, memory_usage
    comparison: str  # >, >=, <, <=
    limit: float  # in the metric's unit: % or ms

    def breached_by(self, value: float) -> bool:
        return {
            ">": value > self.limit,
            ">=": value >= self.limit,
            "<": value < self.limit,
            "<=": value <= self.limit,
        }[self.comparison]


@dataclass(frozen=True)
class LoadTest:
    name: str
    description: str
    duration: float  # seconds
    ramp_up: float  # seconds
    concurrent_users: int
    requests_per_second: float
    scenarios: tuple[Scenario, ...]
    failure_criteria: tuple[Criterion, ...]
    monitoring: tuple[str, ...]

    def scaled(self, scale: float = 1.0, duration: float | None = None) -> LoadTest:
        """Users and rate times ``scale``; ``duration`` (seconds) instead of
        the file's, the ramp shrunk in proportion."""
        length = self.duration if duration is None else duration
        ramp = self.ramp_up * (length / self.duration) if self.duration else 0.0
        return replace(
            self,
            duration=length,
            ramp_up=ramp,
            concurrent_users=max(1, math.ceil(self.concurrent_users * scale)),
            requests_per_second=max(0.1, self.requests_per_second * scale),
        )


def out_of_bounds(test: LoadTest) -> str | None:
    """Why ``test`` is too big for a harness machine (see the bounds), or None."""
    if test.concurrent_users > MAX_USERS:
        return (
            f"{test.concurrent_users:,} users, more than the {MAX_USERS:,} connections "
            "one machine can hold to one host"
        )
    if test.requests_per_second > MAX_REQUESTS_PER_SECOND:
        return (
            f"{test.requests_per_second:,.0f} requests/s, more than the "
            f"{MAX_REQUESTS_PER_SECOND:,.0f} one machine can send"
        )
    if test.duration > MAX_DURATION_SECONDS:
        return f"{test.duration / 3600:,.1f} hours, longer than the limit of 7 days (168h)"
    return None


def parse_duration(text: str) -> float:
    """``"30m"`` → 1800.0 seconds (ms, s, m, h, d)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration like 30s, 5m, 24h or 7d: {text!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def load_file(path: Path) -> list[LoadTest]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioFileError(f"{path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ScenarioFileError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
            "scenario files are YAML in UTF-8"
        ) from exc
    return parse(text, str(path))


def built_in() -> list[LoadTest]:
    return load_file(BUILT_IN)


def find(tests: list[LoadTest], name: str) -> LoadTest:
    for test in tests:
        if test.name == name:
            return test
    known = ", ".join(t.name for t in tests)
    raise ScenarioFileError(f"no load test named {name!r} (there are: {known})")


def parse(text: str, source: str = "<text>") -> list[LoadTest]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ScenarioFileError(
            f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from exc
    reader = _Reader(source)
    tests_node = reader.key(reader.mapping(root, "the file"), "load_tests", root)
    assert isinstance(root, yaml.MappingNode)  # mapping() said so
    reader.known_only(root, FILE_KEYS, "at the top of the file")
    tests = [reader.load_test(node) for node in reader.sequence(tests_node, "load_tests").value]
    if not tests:
        raise ScenarioFileError(f"{source}:{tests_node.start_mark.line + 1}: load_tests is empty")
    names = [t.name for t in tests]
    for name in names:
        if names.count(name) > 1:
            raise ScenarioFileError(f"{source}: two load tests are named {name!r}")
    if not tests[0].scenarios:
        raise ScenarioFileError(f"{source}: the first load test needs scenarios")
    # A test without scenarios runs the first one's (the spec's stress and
    # endurance tests name none: they load the peak mix harder and longer).
    return [t if t.scenarios else replace(t, scenarios=tests[0].scenarios) for t in tests]


class _Reader:
    """Turns YAML nodes into values, and any problem into an error that
    names the line it is on."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node | None, message: str) -> ScenarioFileError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        return ScenarioFileError(f"{self.source}{line}: {message}")

    def mapping(self, node: yaml.Node | None, what: str) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        fields: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if str(key.value) in fields:  # YAML would quietly keep the last
                raise self.fail(key, f"{key.value} is given twice")
            fields[str(key.value)] = value
        return fields

    def sequence(self, node: yaml.Node, what: str) -> yaml.SequenceNode:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        return node

    def key(self, fields: dict[str, yaml.Node], name: str, parent: yaml.Node | None) -> yaml.Node:
        if name not in fields:
            raise self.fail(parent, f"{name} is missing")
        return fields[name]

    def optional_list(self, fields: dict[str, yaml.Node], name: str) -> list[yaml.Node]:
        if name not in fields:
            return []
        items: list[yaml.Node] = self.sequence(fields[name], name).value
        return items

    def scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{what} must be a single value")
        if node.value == "":
            raise self.fail(node, f"{what} is empty")
        return str(node.value)

    def known_only(self, node: yaml.MappingNode, known: frozenset[str], here: str) -> None:
        """Refuses a field that is not one of ``known``, saying where it
        belongs when it is known at another level."""
        for key, _ in node.value:
            name = str(key.value)
            if name in known:
                continue
            if name in PLACES:
                raise self.fail(key, f"{name} belongs {PLACES[name]}, not {here}")
            raise self.fail(
                key, f"unknown field {name!r} {here} (known: {', '.join(sorted(known))})"
            )

    def number(self, node: yaml.Node, what: str, maximum: float) -> float:
        text = self.scalar(node, what)
        try:
            value = float(text)
        except ValueError:
            raise self.fail(node, f"{what} must be a number, not {text!r}") from None
        if math.isnan(value):
            raise self.fail(node, f"{what} must be a number, not {text!r}")
        if value <= 0:
            raise self.fail(node, f"{what} must be more than 0")
        if value > maximum:
            raise self.fail(node, f"{what} must be at most {maximum:,.0f}, not {text}")
        return value

    def duration(self, node: yaml.Node, what: str, positive: bool = True) -> float:
        text = self.scalar(node, what)
        try:
            seconds = parse_duration(text)
        except ValueError:
            raise self.fail(
                node, f"{what} must be a duration like 30s, 5m or 24h, not {text!r}"
            ) from None
        if positive and seconds <= 0:
            raise self.fail(node, f"{what} must be longer than 0")
        if seconds > MAX_DURATION_SECONDS:
            raise self.fail(node, f"{what} must be at most 7 days (168h), not {text}")
        return seconds

    def load_test(self, node: yaml.Node) -> LoadTest:
        fields = self.mapping(node, "a load test")
        assert isinstance(node, yaml.MappingNode)  # mapping() said so
        self.known_only(node, KNOWN_KEYS, "in a load test")
        name = self.scalar(self.key(fields, "name", node), "name")
        duration = self.duration(self.key(fields, "duration", node), "duration")
        ramp = (
            self.duration(fields["ramp_up"], "ramp_up", positive=False)
            if "ramp_up" in fields
            else duration / 10
        )
        if ramp > duration:
            raise self.fail(fields.get("ramp_up"), "ramp_up is longer than duration")
        users = self.number(
            self.key(fields, "concurrent_users", node), "concurrent_users", MAX_USERS
        )
        if users != int(users):
            raise self.fail(fields["concurrent_users"], "concurrent_users must be a whole number")
        rate = self.number(
            self.key(fields, "requests_per_second", node),
            "requests_per_second",
            MAX_REQUESTS_PER_SECOND,
        )
        items = self.optional_list(fields, "scenarios")
        scenarios = tuple(self.scenario(item) for item in items)
        for number, (item, scenario) in enumerate(zip(items, scenarios, strict=True)):
            if any(other.name == scenario.name for other in scenarios[:number]):
                raise self.fail(item, f"two scenarios are named {scenario.name!r}")
        if scenarios:
            total = sum(s.weight for s in scenarios)
            if abs(total - 100) > 0.01:
                raise self.fail(fields["scenarios"], f"the weights add up to {total:g}%, not 100%")
        criteria = tuple(
            self.criterion(item) for item in self.optional_list(fields, "failure_criteria")
        )
        monitoring = tuple(self.monitor(item) for item in self.optional_list(fields, "monitoring"))
        description = (
            self.scalar(fields["description"], "description") if "description" in fields else ""
        )
        return LoadTest(
            name, description, duration, ramp, int(users), rate, scenarios, criteria, monitoring
        )

    def scenario(self, node: yaml.Node) -> Scenario:
        fields = self.mapping(node, "a scenario")
        assert isinstance(node, yaml.MappingNode)  # mapping() said so
        self.known_only(node, SCENARIO_KEYS, "in a scenario")
        name = self.scalar(self.key(fields, "name", node), "the scenario's name")
        weight_node = self.key(fields, "weight", node)
        match = _PERCENT.match(self.scalar(weight_node, "weight"))
        if not match:
            raise self.fail(weight_node, "weight must be a percentage like 25%")
        operations = []
        for item in self.sequence(self.key(fields, "operations", node), "operations").value:
            text = self.scalar(item, "an operation")
            found = _OPERATION.match(text)
            if not found:
                raise self.fail(
                    item, f"an operation is a method and a path, like GET /templates, not {text!r}"
                )
            if unknown_operations([text]):
                raise self.fail(
                    item,
                    f"the harness has no journey step for {text} (docs/loadtest.md, The journeys)",
                )
            operations.append((found.group(1), found.group(2)))
        if not operations:
            raise self.fail(node, f"scenario {name!r} has no operations")
        return Scenario(name, float(match.group(1)), tuple(operations))

    def criterion(self, node: yaml.Node) -> Criterion:
        fields = self.mapping(node, "a failure criterion")
        if len(fields) != 1:
            raise self.fail(node, 'a failure criterion is one metric: "> limit"')
        ((metric, value_node),) = fields.items()
        if metric not in CRITERIA:
            raise self.fail(
                node, f"unknown failure criterion {metric!r} (known: {', '.join(CRITERIA)})"
            )
        text = self.scalar(value_node, metric)
        match = _CRITERION.match(text)
        if not match:
            example = "> 2000ms" if CRITERIA[metric] == "ms" else "> 5%"
            raise self.fail(value_node, f'{metric} must read like "{example}", not {text!r}')
        comparison, number, unit = match.group(1), float(match.group(2)), match.group(3) or ""
        expected = CRITERIA[metric]
        if expected == "ms" and unit == "s":
            number, unit = number * 1000, "ms"
        if unit != expected:
            raise self.fail(value_node, f"{metric} is measured in {expected}")
        return Criterion(metric, comparison, number)

    def monitor(self, node: yaml.Node) -> str:
        name = self.scalar(node, "a monitor")
        if name not in MONITORS:
            raise self.fail(
                node, f"unknown monitor {name!r} (known: {', '.join(sorted(MONITORS))})"
            )
        return name
