"""Every list setting reads from the environment as the README writes it:
comma-separated (a JSON list would be the only form otherwise, and a value
in the documented form would stop the server at start)."""

from __future__ import annotations

import os
import typing
from pathlib import Path
from unittest import mock

import pytest
from typer.testing import CliRunner

from landform.cli.main import app as cli
from landform.settings import Settings


def list_settings() -> list[str]:
    hints = typing.get_type_hints(Settings, include_extras=True)
    return [name for name in Settings.model_fields if _is_list(hints[name])]


def _is_list(hint: object) -> bool:
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return typing.get_origin(hint) is list


# Two valid items of each list setting that is not a list of networks.
LIST_ITEMS = {
    "database_replica_urls": [
        "postgresql+asyncpg://r1/landform",
        "postgresql+asyncpg://r2/landform",
    ],
    "cors_origins": ["https://a.example.com", "http://localhost:5173"],
}


def test_every_list_setting_takes_commas_from_the_environment() -> None:
    names = list_settings()
    assert {"ops_open_networks", "trusted_proxies", "cors_origins"} <= set(names)
    for name in names:
        variable = f"LANDFORM_{name.upper()}"
        items = LIST_ITEMS.get(name, ["10.0.0.0/8", "192.168.0.0/16"])
        with mock.patch.dict(os.environ, {variable: f" {items[0]}, {items[1]} ,"}):
            value = getattr(Settings(), name)
        assert value == items, (variable, value)


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("LANDFORM_OPS_OPEN_NETWORKS", "10.0.0.0/8,not-a-net", "'not-a-net' is not an IP address"),
        ("LANDFORM_TRUSTED_PROXIES", "10.0.0.300", "'10.0.0.300' is not an IP address"),
        ("LANDFORM_REDIS_URL", "foo://bar", "foo:// is not Redis: use redis://"),
        ("LANDFORM_STORAGE_URL", "ftp://x/y", "must look like s3://bucket/prefix"),
        ("LANDFORM_STORAGE_URL", "s3://", "must look like s3://bucket/prefix"),
        ("LANDFORM_DATABASE_URL", "mysql://u:hunter2@x/y",
         "mysql:// is not a supported database: use sqlite+aiosqlite://… or postgresql+asyncpg://…"),
        ("LANDFORM_DATABASE_URL", "postgresql://u:hunter2@x/y",
         "for postgresql:// write postgresql+asyncpg://"),
        ("LANDFORM_DATABASE_URL", "sqlite:///data/x.db", "for sqlite:// write sqlite+aiosqlite://"),
        ("LANDFORM_DATABASE_URL", "landform.db", "a URL with no scheme is not a supported"),
        ("LANDFORM_DATABASE_REPLICA_URLS", "postgresql+asyncpg://r1/l,mysql://r2/l",
         "mysql:// is not a supported database"),
        ("LANDFORM_DATABASE_POOL_SIZE", "0", "greater than or equal to 1"),
        ("LANDFORM_DATABASE_POOL_TIMEOUT", "-1", "greater than 0"),
        ("LANDFORM_DATABASE_STATEMENT_TIMEOUT", "0", "greater than 0"),
        ("LANDFORM_ACCESS_TOKEN_TTL", "0", "greater than or equal to 1"),
        ("LANDFORM_LOGIN_MAX_FAILURES", "-3", "greater than or equal to 1"),
        ("LANDFORM_MAX_UPLOAD_BYTES", "0", "greater than or equal to 1"),
        ("LANDFORM_PAGE_CHANGE_POLL_INTERVAL", "0", "greater than 0"),
        ("LANDFORM_PUBLIC_MAX_AGE", "-1", "greater than or equal to 0"),
        ("LANDFORM_PUBLIC_URL", "notaurl", "must be the address visitors use"),
        ("LANDFORM_REDIS_URL", "redis://127.0.0.1:notaport/10", "could not be cast to integer"),
        ("LANDFORM_REDIS_URL", "redis://127.0.0.1:99999/10", "Port out of range"),
        ("LANDFORM_REDIS_URL", "redis://:hunter2@127.0.0.1:6379/1O",
         "the database after the host must be a number, not '1O'"),
        ("LANDFORM_SLA_ALERT_URL", "not a url", "must be the webhook's address"),
        ("LANDFORM_CDN_PURGE_URL", "hooks.example.com/purge", "must be the webhook's address"),
        ("LANDFORM_MAIL_FROM", "not an address", "must be a sender address"),
        ("LANDFORM_CORS_ORIGINS", "[bad", "'[bad' is not an origin"),
        ("LANDFORM_CORS_ORIGINS", "https://a.example.com/path", "is not an origin"),
        ("LANDFORM_SECRET_KEY", "x", "at least 32 characters"),
        ("LANDFORM_SHUTDOWN_DRAIN_SECONDS", "30",
         "(30) must be shorter than LANDFORM_SHUTDOWN_GRACE_SECONDS (25)"),
        ("LANDFORM_LOGIN_MAX_FAILURES_PER_ACCOUNT", "5",
         "(5) must be above LANDFORM_LOGIN_MAX_FAILURES (10)"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_one_line_naming_it_at_start(
    variable: str, value: str, complaint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before anything starts (exit 2), as LANDFORM_ENV=prod is:
    never a server whose workers crash-loop or answer 500s."""

    def started() -> None:
        raise AssertionError("serve went on past the settings")

    monkeypatch.setattr("landform.cli.main.load_settings", started)
    env = {"LANDFORM_DATA_DIR": str(tmp_path), "LANDFORM_DATABASE_URL": "", variable: value}
    refused = CliRunner().invoke(cli, ["serve", "--port", "8631"], env=env)
    assert refused.exit_code == 2, refused.output
    [line] = refused.output.splitlines()
    assert line.startswith(f"error: {variable}") and complaint in line
    assert "hunter2" not in refused.output  # a URL's password is never shown


def test_a_misspelt_setting_is_pointed_out(tmp_path: Path) -> None:
    """Ignored, as before (a deploy may set names of a newer version), but
    said, with the likeliest one meant; the test scripts' names are not."""
    env = {
        "LANDFORM_DATA_DIR": str(tmp_path),
        "LANDFORM_WORKER": "4",
        "LANDFORM_TEST_REDIS_URL": "redis://x",
    }
    ran = CliRunner().invoke(cli, ["db", "upgrade"], env=env)
    assert ran.exit_code == 0, ran.output
    assert (
        "warning: LANDFORM_WORKER is not a Landform setting; ignored "
        "(did you mean LANDFORM_WORKERS?)" in ran.output
    )
    assert "LANDFORM_TEST_REDIS_URL" not in ran.output


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LANDFORM_DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/landform"),
        ("LANDFORM_DATABASE_URL",
         "postgresql+asyncpg://u:p@/landform?host=a:5432&host=b:5432&target_session_attrs=read-write"),
        ("LANDFORM_DATABASE_URL", "sqlite+aiosqlite:///data/landform.db"),
        ("LANDFORM_REDIS_URL", "redis://:p@redis:6379/0"),
        ("LANDFORM_REDIS_URL", "rediss://redis:6380/1"),
        ("LANDFORM_REDIS_URL", "unix:///run/redis.sock"),
        ("LANDFORM_STORAGE_URL", "s3://landform-files"),
        ("LANDFORM_STORAGE_URL", "s3://bucket/some/prefix"),
        ("LANDFORM_TRUSTED_PROXIES", "10.0.0.1, 10.1.2.3/8, ::1, fd00::/8"),
        ("LANDFORM_OPS_OPEN_NETWORKS", "127.0.0.0/8,::1/128"),
        ("LANDFORM_STORAGE_QUOTA_BYTES", "0"),
        ("LANDFORM_READ_YOUR_WRITES_SECONDS", "0"),
        ("LANDFORM_PUBLIC_URL", "https://pages.example.com"),
        ("LANDFORM_CORS_ORIGINS", "https://app.example.com, http://localhost:5173"),
        ("LANDFORM_CORS_ORIGINS", "*"),
        ("LANDFORM_SLA_ALERT_URL", "https://hooks.example.com/landform?team=web"),
        ("LANDFORM_CDN_PURGE_URL", "http://127.0.0.1:9000/purge"),
        ("LANDFORM_MAIL_FROM", "Pages <pages@example.com>"),
        ("LANDFORM_MAIL_FROM", "root@localhost"),
    ],
)  # fmt: skip
def test_what_worked_before_still_does(variable: str, value: str) -> None:
    with mock.patch.dict(os.environ, {variable: value}):
        Settings()


def test_read_your_writes_lasts_as_long_as_a_replica_in_rotation_may_be_behind() -> None:
    """A replica stays in rotation up to max_lag behind, judged every check
    interval (a check may take up to the connect timeout): a writer's reads
    are held to where the write is for that long, unless the operator says
    otherwise."""
    settings = Settings(
        database_replica_max_lag_seconds=10,
        database_replica_check_interval=2,
        database_connect_timeout=3,
    )
    assert settings.read_your_writes_window == 15
    assert Settings(read_your_writes_seconds=30).read_your_writes_window == 30
