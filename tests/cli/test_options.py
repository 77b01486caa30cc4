"""The command's options refuse what they cannot do, with a message and an
exit code and never a traceback: a port out of range, a negative worker
count, an unknown server, an --output that cannot be written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from landform.cli.main import app as cli

runner = CliRunner()


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANDFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LANDFORM_DATABASE_URL", raising=False)


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--port", "99999"], "Invalid value for '--port'"),
        (["--port", "-1"], "Invalid value for '--port'"),
        (["--workers", "-1"], "Invalid value for '--workers'"),
        (["--server", "foo"], "'foo' is not one of 'granian', 'uvicorn'"),
    ],
)
def test_serve_refuses_options_it_cannot_use(
    options: list[str], complaint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def started() -> None:
        raise AssertionError("serve went on past its options")

    monkeypatch.setattr("landform.cli.main.load_settings", started)
    refused = runner.invoke(cli, ["serve", *options])
    assert refused.exit_code == 2, refused.output
    assert " ".join(complaint.split()) in " ".join(refused.output.replace("│", " ").split())
    assert "Traceback" not in refused.output


@pytest.mark.parametrize(
    "command",
    [
        ["ops", "alert-rules"],
        ["ops", "grafana-dashboard"],
        ["graphql", "schema"],
    ],
)
def test_an_output_that_cannot_be_written_is_one_line(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "out.txt"
    refused = runner.invoke(cli, [*command, "--output", str(missing)])
    assert refused.exit_code == 1
    assert refused.output.splitlines() == [
        f"error: cannot write {missing}: No such file or directory"
    ]
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    written = tmp_path / "out.txt"
    done = runner.invoke(cli, [*command, "--output", str(written)])
    assert done.exit_code == 0 and done.output == f"wrote {written}\n"
    assert written.read_text()


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (None, "cannot read it: No such file or directory"),
        ('[[checks]]\nname = "A"\nmetric = "cache.hitRatoi"\nat_least = 90\n',
         "checks[0].metric: 'cache.hitRatoi' is not a PerformanceMetrics field"),
    ],
)  # fmt: skip
def test_serve_refuses_a_bad_sla_file_before_starting_workers(
    text: str | None, complaint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def started(host: str, port: int) -> None:
        raise AssertionError("serve went on past the SLA file")

    monkeypatch.setattr("landform.cli.main._refuse_a_taken_port", started)
    sla = tmp_path / "sla.toml"
    if text is not None:
        sla.write_text(text)
    monkeypatch.setenv("LANDFORM_SLA_FILE", str(sla))
    refused = runner.invoke(cli, ["serve", "--port", "8631"])
    assert refused.exit_code == 2, refused.output
    [line] = refused.output.splitlines()
    assert line.startswith(f"error: LANDFORM_SLA_FILE: {sla}: ") and complaint in line


def test_the_start_line_says_where_the_data_lives_without_passwords() -> None:
    from landform.cli.main import _what_it_uses
    from landform.settings import Settings

    assert (
        _what_it_uses(
            Settings(
                database_url="postgresql+asyncpg://lf:secret@db1:5433/landform",
                redis_url="redis://:hush@cache:6380/3",
                storage_url="s3://bucket/pages",
            )
        )
        == "PostgreSQL db1:5433/landform, Redis cache:6380/3, files in s3://bucket/pages"
    )
    several = Settings(database_url="postgresql+asyncpg://lf@/landform?host=a:5432&host=b:5432")
    assert _what_it_uses(several).startswith("PostgreSQL a:5432,b:5432/landform, files in ")
