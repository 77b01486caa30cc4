"""The report as a person sees it, in a real browser: the verdict, the SLA
table with every component coloured by its status, the charts drawn; and
the comparison of two runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from landform.loadtest import report
from landform.loadtest.compare import rows
from tests.browser import chromium
from tests.loadtest.synthetic import result


def test_the_report_opens_in_chromium_with_the_sla_table(tmp_path: Path) -> None:
    failing = result(slow_ms=150.0)
    json_path, html_path = report.write(failing, tmp_path / "run")
    assert json.loads(json_path.read_text())["verdict"]["passed"] is False
    with chromium() as browser:
        page = browser.new_page()
        # Self-contained: nothing may be fetched from anywhere.
        fetched: list[str] = []
        page.on("request", lambda r: fetched.append(r.url))
        page.goto(html_path.as_uri())
        assert page.title() == "Load test peak_traffic_simulation: failed"
        assert "FAILED" in page.inner_text("#verdict")
        assert "API Gateway: p99" in page.inner_text("#verdict")
        sla_rows = page.locator("#sla tbody tr")
        assert sla_rows.count() == 7 + 3 + 1  # components, checks, throughput
        gateway = page.locator("#sla tbody tr", has_text="API Gateway")
        assert gateway.locator("td.status").inner_text() == "ACCEPTABLE"
        # Coloured by status: the class carries the colour.
        colour = gateway.locator("td.status").evaluate("td => getComputedStyle(td).backgroundColor")
        assert colour == "rgb(255, 243, 196)"
        assert page.locator("svg polyline").count() >= 5
        assert page.locator("#operations tbody tr").count() == 14
        box = page.locator("svg").first.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 80
        assert fetched == [html_path.as_uri()]


def compare(a: Path, b: Path) -> subprocess.CompletedProcess[str]:
    """``landform loadtest compare A B`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "landform.cli.main", "loadtest", "compare", str(a), str(b)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compare_marks_what_got_worse(tmp_path: Path) -> None:
    fast, slow = result(), result(slow_ms=150.0)
    found = {figure: change for figure, _, _, change in rows(fast, slow)}
    assert found["p99ResponseTime"].endswith("worse")
    assert found["successRate"] == "="
    assert found["API Gateway p99 (OK → ACCEPTABLE)"].endswith("worse")
    report.write(fast, tmp_path / "a")
    report.write(slow, tmp_path / "b")
    shown = compare(tmp_path / "a" / "result.json", tmp_path / "b" / "result.json")
    assert shown.returncode == 0, shown.stderr
    assert "API Gateway p99 (OK → ACCEPTABLE)" in shown.stdout
    (tmp_path / "junk.json").write_text("{}")
    refused = compare(tmp_path / "junk.json", tmp_path / "b" / "result.json")
    assert refused.returncode == 2
    assert "not a load-test result.json" in refused.stderr


@pytest.mark.parametrize("name", ["stress_test", "endurance_test"])
def test_every_scenarios_report_renders(name: str) -> None:
    html = report.render_html(result(name=name, seconds=20))
    assert 'id="sla"' in html
    assert ('id="criteria"' in html) == (name == "stress_test")
    assert ('id="trends"' in html) == (name == "endurance_test")


def test_compare_reads_the_specs_shape_alone(tmp_path: Path) -> None:
    """A file with only the spec's ``performanceResults`` (another tool's,
    or one trimmed by hand) compares on its headline figures."""
    full = result()
    report.write(full, tmp_path / "a")
    (tmp_path / "bare.json").write_text(
        json.dumps({"performanceResults": full["performanceResults"]})
    )
    shown = compare(tmp_path / "a" / "result.json", tmp_path / "bare.json")
    assert shown.returncode == 0, shown.stderr
    assert "unnamed test" in shown.stdout
    assert "p99ResponseTime" in shown.stdout
    other = result(name="stress_test")
    report.write(other, tmp_path / "c")
    mixed = compare(tmp_path / "a" / "result.json", tmp_path / "c" / "result.json")
    assert "note: A ran peak_traffic_simulation and B ran stress_test" in mixed.stdout
