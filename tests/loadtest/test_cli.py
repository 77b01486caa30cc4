"""The load-test commands as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from landform.loadtest.harness import RESULTS, default_output
from tests.live_server import free_port


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


def one_step_test(path: Path, name: str, operation: str) -> Path:
    """A scenario file of one 5-second test of one user doing ``operation``."""
    path.write_text(
        f"load_tests:\n  - name: {name}\n    duration: 5s\n    concurrent_users: 1\n"
        "    requests_per_second: 1\n    scenarios:\n      - name: x\n        weight: 100%\n"
        f"        operations:\n          - {operation}\n"
    )
    return path


def test_validate_and_run_agree_on_operations(tmp_path: Path) -> None:
    odd = one_step_test(tmp_path / "odd.yaml", "odd", "GET /nonexistent")
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


def test_scale_and_duration_cannot_pass_the_bounds() -> None:
    refused = landform("show", "stress_test", "--scale", "3")
    assert refused.returncode == 1
    assert "stress_test with --scale 3: 75,000 users, more than the 64,000" in refused.stderr
    long = landform("show", "--duration", "99999999999999999999h")
    assert long.returncode == 1
    assert "longer than the limit of 7 days" in long.stderr


def test_a_test_name_cannot_steer_the_default_output_folder(tmp_path: Path) -> None:
    sly = one_step_test(tmp_path / "sly.yaml", '"a b/../c"', "GET /healthz")
    work = tmp_path / "work"
    work.mkdir()
    # The host is unreachable: the run stops after making its output folder.
    refused = subprocess.run(
        [sys.executable, "-m", "landform.cli.main", "loadtest", "run", "a b/../c",
         "--file", str(sly), "--host", f"http://127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=60, cwd=work,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    # Refused before it started: no folder left behind, here or above.
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sly.yaml", "work"]
    assert default_output("a b/../c", "STAMP") == RESULTS / "a-b-c-STAMP"


def test_a_run_refused_before_it_starts_leaves_no_folders(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    output, fixture = tmp_path / "out" / "deeper", tmp_path / "data" / "fixture.json"
    refused = landform(
        "run", "peak_traffic_simulation", "--host", nowhere, "--output", str(output),
        "--fixture", str(fixture),
    )  # fmt: skip
    assert refused.returncode == 2 and "is not reachable" in refused.stderr
    assert list(tmp_path.iterdir()) == []


def test_prepare_does_not_overwrite_an_earlier_fixture(tmp_path: Path) -> None:
    earlier = tmp_path / "fixture.json"
    earlier.write_text('{"host": "http://elsewhere", "run_id": "1", "accounts": []}')
    nowhere = f"http://127.0.0.1:{free_port()}"
    refused = landform("prepare", "--host", nowhere, "--output", str(earlier))
    assert refused.returncode == 2
    assert f"{earlier} exists" in refused.stderr
    assert f"cleanup --fixture {earlier}" in refused.stderr and "--replace" in refused.stderr
    assert "http://elsewhere" in earlier.read_text()
    # Said explicitly, it goes on (and here finds no host).
    replaced = landform("prepare", "--host", nowhere, "--output", str(earlier), "--replace")
    assert replaced.returncode == 2
    assert "is not reachable" in replaced.stderr


def test_run_does_not_overwrite_an_earlier_runs_files(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "result.json").write_text('{"earlier": true}')
    peak = ("peak_traffic_simulation", "--host", nowhere, "--output", str(earlier))
    refused = landform("run", *peak)
    assert refused.returncode == 2
    assert f"{earlier} holds an earlier run's result.json: choose another --output, or " in (
        refused.stderr
    )
    assert "--replace" in refused.stderr and "Traceback" not in refused.stderr
    (earlier / "fixture.json").write_text('{"host": "http://elsewhere", "run_id": "1"}')
    refused = landform("run", *peak)
    assert refused.returncode == 2
    assert "result.json, fixture.json" in refused.stderr
    assert f"cleanup --fixture {earlier / 'fixture.json'}` removes it first" in refused.stderr
    assert (earlier / "result.json").read_text() == '{"earlier": true}'
    assert "http://elsewhere" in (earlier / "fixture.json").read_text()
    capacity = landform("capacity", "--host", nowhere, "--output", str(earlier))
    assert capacity.returncode == 2 and "holds an earlier run's" in capacity.stderr
    # Said explicitly, it goes on (and here finds no host).
    replaced = landform("run", *peak, "--replace")
    assert replaced.returncode == 2
    assert "is not reachable" in replaced.stderr


def test_a_malformed_host_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for host, complaint in (
        ("http://[::1", "is not a URL"),
        ("127.0.0.1:8000", "is not an http:// or https:// URL"),
        ("ftp://example.com", "is not an http:// or https:// URL"),
        ("http://:8000", "names no host"),
        ("http://exa mple.com", "names no host"),
        ("http://127.0.0.1:99999", "port 99999 is not between 1 and 65535"),
        ("http://127.0.0.1:8000/?x=1", "has a query or fragment"),
    ):
        for command in (
            ("run", "peak_traffic_simulation", "--host", host, "--output", str(tmp_path / "o")),
            ("prepare", "--host", host, "--output", str(tmp_path / "fixture.json")),
            ("capacity", "--host", host, "--output", str(tmp_path / "c")),
        ):
            refused = landform(*command)
            assert refused.returncode == 2, (command, refused.stderr)
            assert refused.stderr.startswith(f"error: --host {host!r}"), refused.stderr
            assert complaint in refused.stderr and "Traceback" not in refused.stderr
    fixture = tmp_path / "fixture.json"
    fixture.write_text('{"host": "http://[::1", "run_id": "1", "accounts": []}')
    refused = landform("cleanup", "--fixture", str(fixture))
    assert refused.returncode == 2, refused.stderr
    assert "the fixture's host 'http://[::1' is not a URL" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_numbers_that_are_not_finite_are_refused() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    for args, complaint in (
        (("show", "--scale", "inf"), "Invalid value for '--scale': inf is not a finite number"),
        (("show", "--scale", "nan"), "Invalid value for '--scale'"),  # below any bound
        (("run", "peak_traffic_simulation", "--host", nowhere, "--scale", "inf"),
         "Invalid value for '--scale': inf is not a finite number"),
        (("capacity", "--host", nowhere, "--ceiling", "nan"),
         "Invalid value for '--ceiling': nan is not a finite number"),
        (("capacity", "--host", nowhere, "--ceiling", "inf"),
         "Invalid value for '--ceiling': inf is not a finite number"),
        (("capacity", "--host", nowhere, "--ceiling", "-5"),
         "Invalid value for '--ceiling': -5 is not positive"),
        (("capacity", "--host", nowhere, "--start", "inf"),
         "Invalid value for '--start': inf is not a finite number"),
        (("capacity", "--host", nowhere, "--factor", "inf"),
         "Invalid value for '--factor': inf is not a finite number"),
    ):  # fmt: skip
        refused = landform(*args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert complaint in refused.stderr, (args, refused.stderr)
        assert "Traceback" not in refused.stderr
