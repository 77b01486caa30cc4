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
from landform.loadtest.verdict import evaluate
from landform.ops.sla import Sla
from tests.browser import chromium
from tests.loadtest.synthetic import result, run_data


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


def test_compare_shows_missing_data_as_missing_and_every_operation(tmp_path: Path) -> None:
    """A run without uploads has no File Upload figures: that is neither an
    improvement nor a regression; and an operation only one run made is
    listed, not dropped."""
    with_uploads = result()
    data = run_data()
    for second in data.seconds:
        second.operations.pop("POST /files/upload")
        second.sample("GET /healthz").record(0.002, 0.002, "200", False)
    without_uploads = evaluate(data, Sla.load(), 0.001)
    found = {figure: (before, after, change) for figure, before, after, change in rows(
        with_uploads, without_uploads
    )}  # fmt: skip
    upload = found["File Upload p99 (OK → NO_DATA)"]
    assert upload[0] > 0 and upload[1:] == (None, "no data in B")
    assert found["POST /files/upload p99"][1:] == (None, "no data in B")
    assert found["POST /files/upload req/s"][1:] == (None, "no data in B")
    assert found["GET /healthz p99"][0] is None and found["GET /healthz p99"][2] == "no data in A"
    # The server's rows had no data in either run.
    assert found["Database Queries p99 (NO_DATA → NO_DATA)"] == (None, None, "no data in either")
    report.write(with_uploads, tmp_path / "a")
    report.write(without_uploads, tmp_path / "b")
    shown = compare(tmp_path / "a" / "result.json", tmp_path / "b" / "result.json")
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.startswith("File Upload p99"))
    assert "—  no data in B" in line and "better" not in line
    assert any(x.startswith("GET /healthz p99") for x in shown.stdout.splitlines())


def test_compare_refuses_a_result_with_figures_of_the_wrong_type(tmp_path: Path) -> None:
    good = result()
    report.write(good, tmp_path / "good")
    broken = [
        ("p99 text", lambda r: r["performanceResults"]["loadTest"]["results"].update(
            p99ResponseTime="fast")),
        ("component p99 list", lambda r: r["components"][0].update(p99=[1])),
        ("operations object", lambda r: r.update(operations={"a": 1})),
        ("scenario list", lambda r: r.update(scenario=[])),
        ("operation name number", lambda r: r["operations"][0].update(name=7)),
        ("p99 NaN", lambda r: r["performanceResults"]["loadTest"]["results"].update(
            p99ResponseTime=float("nan"))),
        ("success rate Infinity", lambda r: r["performanceResults"]["loadTest"]["results"].update(
            successRate=float("inf"))),
        ("component p99 -Infinity", lambda r: r["components"][0].update(p99=float("-inf"))),
        ("operation req/s NaN", lambda r: r["operations"][0].update(
            requestsPerSecond=float("nan"))),
    ]  # fmt: skip
    for label, damage in broken:
        bad = json.loads(json.dumps(good))
        damage(bad)
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        refused = compare(tmp_path / "good" / "result.json", tmp_path / "bad.json")
        assert refused.returncode == 2, (label, refused.stderr)
        assert "not a load-test result.json" in refused.stderr, label
        assert "Traceback" not in refused.stderr, label


def test_the_reports_checks_show_two_decimals(tmp_path: Path) -> None:
    # 1 error in 71 requests: a success rate of 98.5952380952381 %.
    failing = result(error_every=71)
    success = next(c for c in failing["checks"] if c["name"] == "Success Rate")
    assert success["current"] == pytest.approx(98.5952, abs=1e-4)
    _, html_path = report.write(failing, tmp_path / "run")
    html = html_path.read_text()
    # Rounded down, so that a figure short of its target never shows as on it.
    assert "<td>Success Rate</td><td>check</td><td>98.59</td>" in html
    assert "<b>98.59 %</b><span>success rate</span>" in html
    assert "98.595" not in html
