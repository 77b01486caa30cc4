"""SLA alerts end to end: thresholds from an operator's file, a breach that
lasts the hold time posted once to the alert webhook (signed like every
Landform webhook), and its end posted once more."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from landform.app import create_app
from landform.ops.sla import NO_DATA, Alerts, Check, Sla, SlaFileError, metric_fields
from landform.settings import Settings
from tests.cache.test_purge import check_signature
from tests.webhook_receiver import Receiver

STRICT = """
[response_time_p99."API Gateway"]
measure = "api_gateway"
target = "0.001ms"
acceptable = "0.002ms"
critical = "0.003ms"
"""
LENIENT = """
[response_time_p99."API Gateway"]
measure = "api_gateway"
target = "10s"
acceptable = "20s"
critical = "30s"
"""


@pytest.fixture
async def alerting(
    settings: Settings, receiver: Receiver, tmp_path: Path
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    strict = tmp_path / "strict.toml"
    strict.write_text(STRICT)
    update = {"sla_file": str(strict), "sla_alert_url": receiver.url, "sla_alert_hold_seconds": 30}
    app = create_app(settings.model_copy(update=update))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


async def test_a_held_breach_alerts_once_and_its_end_once_more(
    alerting: tuple[Any, httpx.AsyncClient], receiver: Receiver, settings: Settings, tmp_path: Path
) -> None:
    app, client = alerting
    monitor = app.components.monitor
    for _ in range(5):
        assert (await client.get("/templates")).status_code == 200
    assert await monitor.check_alerts(now=1000) == []  # breaching, not held yet
    fired = await monitor.check_alerts(now=1031)
    assert [(a["event"], a["name"], a["status"]) for a in fired] == [
        ("breach", "API Gateway", "CRITICAL")
    ]
    assert await monitor.check_alerts(now=1060) == []  # still breaching: no repeat
    # The leader restarts: the next one remembers what was posted.
    monitor.alerts = Alerts(monitor.alerts.hold)
    assert await monitor.check_alerts(now=1075) == []
    # The operator relaxes the thresholds: the breach is over.
    lenient = tmp_path / "lenient.toml"
    lenient.write_text(LENIENT)
    monitor.sla = Sla.load(lenient)
    recovered = await monitor.check_alerts(now=1090)
    assert [(a["event"], a["name"]) for a in recovered] == [("recovered", "API Gateway")]

    bodies = await receiver.wait_for(2)
    assert [b["event"] for b in bodies] == ["breach", "recovered"]
    assert bodies[0]["kind"] == "sla" and bodies[0]["since"] == 1000
    assert bodies[0]["p99"] > bodies[0]["critical"] == 0.003
    for headers, body in receiver.received:
        check_signature(headers, body, settings.secret_key)


async def test_alerts_are_signed_with_their_own_secret_and_a_fallback_is_said(
    settings: Settings, receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The receiver of an alert holds the key that signs it: with a secret
    of its own, that is not the key that signs this server's sessions."""
    strict = tmp_path / "strict.toml"
    strict.write_text(STRICT)
    update = {
        "sla_file": str(strict),
        "sla_alert_url": receiver.url,
        "sla_alert_secret": "alerts-only-secret",
        "cdn_purge_secret": "purges-only-secret",
    }
    app = create_app(settings.model_copy(update=update))
    with caplog.at_level("WARNING", logger="landform.components"):
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/templates")).status_code == 200
            monitor = app.components.monitor
            await monitor.check_alerts(now=1000)
            assert len(await monitor.check_alerts(now=1100)) == 1
            await receiver.wait_for(1)
            [(headers, body)] = receiver.received
    check_signature(headers, body, "alerts-only-secret")
    assert "signed with the secret key" not in caplog.text

    caplog.clear()
    fallback = create_app(settings.model_copy(update={"sla_alert_url": receiver.url}))
    with caplog.at_level("WARNING", logger="landform.components"):
        async with LifespanManager(fallback):
            pass
    assert "LANDFORM_SLA_ALERT_SECRET is not set" in caplog.text


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[response_time_p99."X"]\nmeasure = "api_gateway"\ntarget = "fast"\n'
         'acceptable = "1s"\ncritical = "2s"\n', "is not a duration"),
        ('[response_time_p99."X"]\nmeasure = "api_gateway"\ntarget = "3s"\n'
         'acceptable = "1s"\ncritical = "2s"\n', "target <= acceptable <= critical"),
        ('[response_time_p99."X"]\ntarget = "1s"\nacceptable = "1s"\ncritical = "2s"\n',
         "measure is missing"),
        ('[[checks]]\nname = "A"\nmetric = "responseTime.p99"\n', "exactly one of below"),
        ("not = [toml", "line 1"),
        ('[[checks]]\nname = "A"\nmetric = "cache.hitRatio"\nat_least = "ninety"\n',
         "checks[0].at_least: 'ninety' is not a number"),
        ('[[checks]]\nname = "A"\nmetric = "cache.hitRatoi"\nat_least = 90\n',
         "checks[0].metric: 'cache.hitRatoi' is not a PerformanceMetrics field (did you mean "
         "'cache.hitRatio'?)"),
        ('[response_time_p99."X"]\nmeasure = "api_gateway_typo"\ntarget = "1s"\n'
         'acceptable = "2s"\ncritical = "3s"\n',
         "response_time_p99.'X'.measure: 'api_gateway_typo' is not a measured component "
         "(one of api_gateway, graphql,"),
        ('[[checks]]\nname = "A"\nmetric = "cache.hitRatio"\nat_least = 90\notherwise = "MAYBE"\n',
         "checks[0].otherwise: 'MAYBE' is not a status a failed check can have "
         "(BREACH or WARNING)"),
        ('[[checks]]\nname = "A"\nmetric = "cache.hitRatio"\nat_least = 90\notherwse = "WARNING"\n',
         "checks[0]: unknown key 'otherwse'"),
        ('[[check]]\nname = "A"\nmetric = "cache.hitRatio"\nat_least = 90\n',
         "unknown key 'check'"),
        ('[response_time_p99]\nX = 5\n', "response_time_p99.'X': must be a table"),
        ('[response_time_p99."X"]\nmeasure = "cache"\ntarget = [1]\n'
         'acceptable = "2s"\ncritical = "3s"\n', "is not a duration"),
    ],
)  # fmt: skip
def test_a_bad_sla_file_is_refused_with_where_and_why(
    tmp_path: Path, text: str, complaint: str
) -> None:
    path = tmp_path / "sla.toml"
    path.write_text(text)
    with pytest.raises(SlaFileError) as refused:
        Sla.load(path)
    assert complaint in str(refused.value) and str(path) in str(refused.value)


def test_a_missing_sla_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SlaFileError) as refused:
        Sla.load(tmp_path / "nowhere.toml")
    assert (
        str(refused.value)
        == f"{tmp_path / 'nowhere.toml'}: cannot read it: No such file or directory"
    )


def test_every_metric_a_check_may_name_is_measured() -> None:
    """A check's metric is a PerformanceMetrics field; one a caller did not
    measure (the load test's verdict has only some) is NO_DATA, not a 500."""
    assert {"responseTime.p99", "throughput.successRate", "cache.hitRatio"} <= metric_fields()
    assert "resources.cpuUsage" in metric_fields() and "window" not in metric_fields()
    sla = Sla((), (Check("CPU", "resources.cpuUsage", 85.0, None, "WARNING"),))
    assert sla.evaluate({"components": {}})["checks"][0]["status"] == NO_DATA
    assert sla.evaluate({"resources": {"cpuUsage": 90}})["checks"][0]["status"] == "WARNING"
