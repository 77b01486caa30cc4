"""The monitoring files in deploy/ are generated from the SLA thresholds:
they must be what the generators give today (regenerate them with
`landform ops alert-rules` and `landform ops grafana-dashboard`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from landform.ops.grafana import dashboard
from landform.ops.prometheus import BUCKETS
from landform.ops.recorder import OPERATIONAL_ROUTES
from landform.ops.rules import SUCCESS_RATE, alert_rules, unmirrored
from landform.ops.sla import Sla

DEPLOY = Path(__file__).parents[2] / "deploy"


def test_prometheus_rules_mirror_the_sla() -> None:
    committed = (DEPLOY / "prometheus" / "landform-rules.yml").read_text()
    assert committed == alert_rules(Sla.load()), (
        "deploy/prometheus/landform-rules.yml is stale: run "
        "`landform ops alert-rules --output deploy/prometheus/landform-rules.yml`"
    )
    sla = Sla.load()
    # Two rules per component of the p99 table, one per check.
    assert committed.count("- alert:") == 2 * len(sla.components) + len(sla.checks)
    assert 'component=\\"file_upload\\"}[5m]))) > 10' in committed
    yaml = pytest.importorskip("yaml")
    rules = yaml.safe_load(committed)["groups"][0]["rules"]
    assert {rule["labels"]["severity"] for rule in rules} == {"warning", "critical"}
    assert all(rule["expr"] and rule["for"] == "5m" for rule in rules)


def test_success_rate_leaves_out_the_probes_as_ops_does() -> None:
    """A /readyz answering 503 while a replica drains is no user's failed
    request: /ops leaves the probes out (OPERATIONAL_ROUTES), and so must
    the alert and the panel. Prometheus anchors a regex matcher at both
    ends, as re.fullmatch does."""
    matcher = re.search(r'route!~"([^"]+)"', SUCCESS_RATE)
    assert matcher is not None
    left_out = re.compile(matcher.group(1))
    assert SUCCESS_RATE.count(matcher.group(0)) == 2  # failures and requests alike
    for route in OPERATIONAL_ROUTES:
        assert left_out.fullmatch(route.removeprefix("route:")), route
    for route in ("GET /{slug}", "POST /landing-pages", "GET /readyz/x", "POST /graphql"):
        assert not left_out.fullmatch(route), route
    committed = (DEPLOY / "prometheus" / "landform-rules.yml").read_text()
    assert json.dumps(SUCCESS_RATE)[1:-1] in committed
    assert SUCCESS_RATE in (DEPLOY / "grafana" / "landform-sla.json").read_text().replace(
        '\\"', '"'
    )


def test_grafana_dashboard_is_current_and_valid_json() -> None:
    committed = (DEPLOY / "grafana" / "landform-sla.json").read_text()
    assert committed == dashboard(Sla.load()), (
        "deploy/grafana/landform-sla.json is stale: run "
        "`landform ops grafana-dashboard --output deploy/grafana/landform-sla.json`"
    )
    board = json.loads(committed)
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    assert any("landform_component_duration_seconds_bucket" in e for e in exprs)
    assert any("landform_cache_lookups_total" in e for e in exprs)


def test_rules_of_any_sla_file_are_named_apart_and_say_what_they_cannot_mirror(
    tmp_path: Path,
) -> None:
    """Alert names are Prometheus names, one per rule, whatever the rows are
    called; a check /metrics has no series for, or a threshold past the
    largest bucket (a p99 there can never be said to exceed it), is named
    rather than left out without a word."""
    custom = tmp_path / "sla.toml"
    custom.write_text(
        (Path(__file__).parents[2] / "src/landform/ops/sla.toml").read_text()
        + '\n[response_time_p99."Cache (L2)"]\nmeasure = "cache"\n'
        'target = "1ms"\nacceptable = "2ms"\ncritical = "3ms"\n'
        '\n[response_time_p99."api gateway"]\nmeasure = "api_gateway"\n'
        'target = "1s"\nacceptable = "30s"\ncritical = "90s"\n'
        '\n[[checks]]\nname = "DB Pool"\nmetric = "database.connectionPoolUtilization"\n'
        'below = 80\notherwise = "BREACH"\n'
    )
    sla = Sla.load(custom)
    names = re.findall(r"- alert: (\S+)", alert_rules(sla))
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"Landform[A-Za-z0-9]+", name) for name in names), names
    assert "LandformCacheL2P99Critical" in names and "LandformApiGateway2P99Critical" in names
    gaps = unmirrored(sla)
    assert any("'DB Pool'" in gap for gap in gaps)
    assert any("api gateway critical 90000 ms" in gap for gap in gaps)
    assert not unmirrored(Sla.load())  # the shipped SLA is mirrored whole
    # The largest bucket lies past every shipped threshold: File Upload's
    # Critical (10 s) can fire.
    assert BUCKETS[-1] * 1000 > max(row.critical for row in Sla.load().components)
