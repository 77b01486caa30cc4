"""The load-test commands as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def landform(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "landform.cli.main", "loadtest", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_show_scales_the_specs_test() -> None:
    shown = landform("show", "peak_traffic_simulation", "--scale", "0.01", "--duration", "5m")
    assert shown.returncode == 0, shown.stderr
    assert "100 users, 500 requests/s, 300 s (ramp-up 50 s)" in shown.stdout
    assert "30% analytics_viewing: GET /analytics/pages/{id}" in shown.stdout


def test_validate_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "mine.yaml"
    bad.write_text("load_tests:\n  - name: x\n    duration: soon\n")
    refused = landform("validate", str(bad))
    assert refused.returncode == 1
    assert f"{bad}:3: duration must be a duration" in refused.stderr
    assert landform("show", "nope").returncode == 1
    assert landform("show", "--duration", "forever").returncode == 1


def test_show_says_units_and_counts() -> None:
    shown = landform("show", "stress_test", "--scale", "0.0001", "--duration", "10s")
    assert shown.returncode == 0, shown.stderr
    assert "3 users, 10 requests/s" in shown.stdout
    assert "fails when error_rate > 5%" in shown.stdout
    assert "fails when response_time_p99 > 2000ms" in shown.stdout
    one = landform("show", "peak_traffic_simulation", "--scale", "0.0001", "--duration", "10s")
    assert "1 user, 5 requests/s, 10 s (ramp-up 1.7 s)" in one.stdout


def test_validate_and_run_agree_on_operations(tmp_path: Path) -> None:
    odd = tmp_path / "odd.yaml"
    odd.write_text(
        "load_tests:\n  - name: odd\n    duration: 5s\n    concurrent_users: 1\n"
        "    requests_per_second: 1\n    scenarios:\n      - name: x\n        weight: 100%\n"
        "        operations:\n          - GET /nonexistent\n"
    )
    refused = landform("validate", str(odd))
    assert refused.returncode == 1
    assert f"{odd}:10: the harness has no journey step for GET /nonexistent" in refused.stderr


def test_show_of_a_file_with_one_test_needs_no_name(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "load_tests:\n  - name: small\n    duration: 2m\n    concurrent_users: 10\n"
        "    requests_per_second: 50\n    scenarios:\n      - name: views\n"
        "        weight: 100%\n        operations:\n          - GET /{slug}\n"
    )
    shown = landform("show", "--file", str(mine))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("small: ")
    two = tmp_path / "two.yaml"
    two.write_text(mine.read_text() + mine.read_text().split("\n", 1)[1].replace("small", "big"))
    refused = landform("show", "--file", str(two))
    assert refused.returncode == 1
    assert "has 2 load tests; name one of: small, big" in refused.stderr
