"""deploy/compose.yaml: valid against the Compose specification's JSON schema
(as vendored by check-jsonschema; no Docker engine or compose plugin runs
here), and wired as promised: Landform writes through PgBouncer to the
primary and reads through it from the replica, everything it needs is
healthy (or done, for the one-shots) before it starts, its settings are real
and parse, and the scripts the services run pass shellcheck."""

from __future__ import annotations

import configparser
import copy
import json
import os
import re
import subprocess
from importlib import resources
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import jsonschema
import pytest

from landform.settings import Settings
from tests.deploy.manifests import (
    COMPOSE_DIR,
    COMPOSE_FILE,
    DEPLOY,
    SETTING_NAMES,
    compose,
    landform_names,
    tool,
)

ONE_SHOTS = {"migrate", "minio-init"}
INTERPOLATION = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def compose_schema() -> dict[str, Any]:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema: dict[str, Any] = json.loads(vendored.read_text())
    return schema


def validate_compose(document: dict[str, Any]) -> None:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)
    validator(schema, format_checker=validator.FORMAT_CHECKER).validate(document)


def interpolated(value: str) -> str:
    """The value with every ${NAME:-default} at its default, as compose
    would with nothing set."""
    return INTERPOLATION.sub(lambda match: match.group(2) or "", value)


def environment(service: str) -> dict[str, str]:
    declared = compose()["services"][service].get("environment", {})
    return {name: interpolated(str(value)) for name, value in declared.items()}


def test_compose_file_validates_against_the_compose_specification() -> None:
    validate_compose(compose())
    # And through check-jsonschema's own command, as a person would run it.
    checker = tool("check-jsonschema", "pip install check-jsonschema")
    subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        check=True,
        capture_output=True,
    )


def test_every_dollar_is_an_interpolation_compose_accepts() -> None:
    """Compose interpolates $ in every value: a shell's $(...) must be
    written $$(...), or compose refuses the file ("invalid interpolation
    format"); the schema cannot see that."""
    for line_number, line in enumerate(COMPOSE_FILE.read_text().splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        without_escapes = line.replace("$$", "")
        for match in re.finditer(r"\$(?!\{\w+(?::?[-?][^}]*)?\}|[A-Za-z_])", without_escapes):
            raise AssertionError(f"compose.yaml:{line_number}: bare $ at {match.start()}: {line}")
    replica = compose()["services"]["postgres-replica"]["healthcheck"]["test"]
    assert "$$(psql" in replica[1]


def test_the_compose_validation_has_teeth() -> None:
    bad_condition = copy.deepcopy(compose())
    bad_condition["services"]["landform"]["depends_on"]["redis"]["condition"] = "service_ready"
    unknown_key = copy.deepcopy(compose())
    unknown_key["services"]["redis"]["healthcheck"]["intervall"] = "5s"
    bad_ports = copy.deepcopy(compose())
    bad_ports["services"]["landform"]["ports"] = {"8000": 8000}
    for broken in (bad_condition, unknown_key, bad_ports):
        with pytest.raises(jsonschema.ValidationError):
            validate_compose(broken)


def test_every_landform_variable_is_a_real_setting_and_parses() -> None:
    named = landform_names(COMPOSE_FILE.read_text())
    assert named and named - SETTING_NAMES == set()
    # Through the environment, as the containers read them (lists are
    # comma-separated there, which keyword arguments would not test).
    for service in ("landform", "migrate"):
        with mock.patch.dict(os.environ, environment(service)):
            settings = Settings()
        assert settings.env == "production"
        assert settings.primary_database_url.startswith("postgresql+asyncpg://")
    with mock.patch.dict(os.environ, environment("landform")):
        settings = Settings()
    # Every replica signs with the same key, stores files in the shared
    # bucket and shares Redis: nothing replica-local that others need.
    assert settings.secret_key and settings.redis_url and settings.storage_url.startswith("s3://")
    assert not settings.should_migrate_on_start
    # The image's HEALTHCHECK asks from loopback: it must stay open to it.
    assert "127.0.0.0/8" in settings.ops_open_networks


def test_landform_writes_through_pgbouncer_and_reads_through_the_replica() -> None:
    services = compose()["services"]
    env = environment("landform")
    write = urlsplit(env["LANDFORM_DATABASE_URL"])
    (read_url,) = env["LANDFORM_DATABASE_REPLICA_URLS"].split(",")
    read = urlsplit(read_url)
    assert (write.hostname, write.port) == (read.hostname, read.port) == ("pgbouncer", 6432)

    ini = configparser.ConfigParser(delimiters=("=",), comment_prefixes=(";",), interpolation=None)
    ini.read_string((COMPOSE_DIR / "pgbouncer" / "pgbouncer.ini").read_text())
    assert ini["pgbouncer"]["listen_port"] == "6432"

    def target(database: str) -> str:
        fields = dict(part.split("=", 1) for part in ini["databases"][database].split())
        return fields["host"]

    assert target(write.path.lstrip("/")) == "postgres-primary"
    assert target(read.path.lstrip("/")) == "postgres-replica"
    assert {"postgres-primary", "postgres-replica"} <= set(services)
    # The replica is a standby of the primary, cloned by the shipped script.
    replica = services["postgres-replica"]
    assert replica["environment"]["PRIMARY_HOST"] == "postgres-primary"
    assert "pg_is_in_recovery()" in " ".join(replica["healthcheck"]["test"])
    # PgBouncer logs in with the password Landform's URLs carry.
    password = services["pgbouncer"]["environment"]["PGBOUNCER_AUTH_PASSWORD"]
    assert f":{password}@" in compose_text_of("landform", "LANDFORM_DATABASE_URL")
    assert write.username == services["pgbouncer"]["environment"]["PGBOUNCER_AUTH_USER"]


def compose_text_of(service: str, name: str) -> str:
    return str(compose()["services"][service]["environment"][name])


def test_migrations_run_once_straight_on_the_primary_before_landform() -> None:
    services = compose()["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["image"] == services["landform"]["image"]
    url = urlsplit(environment("migrate")["LANDFORM_DATABASE_URL"])
    assert (url.hostname, url.port) == ("postgres-primary", 5432)
    assert float(environment("migrate")["LANDFORM_DATABASE_STATEMENT_TIMEOUT"]) > 5


def test_everything_landform_needs_is_healthy_or_done_before_it_starts() -> None:
    services = compose()["services"]
    needs = services["landform"]["depends_on"]
    assert needs == {
        "migrate": {"condition": "service_completed_successfully"},
        "pgbouncer": {"condition": "service_healthy"},
        "postgres-replica": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "minio-init": {"condition": "service_completed_successfully"},
    }
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}"
            else:
                assert how["condition"] == "service_completed_successfully"
                assert dependency in ONE_SHOTS
    for name in set(services) - ONE_SHOTS - {"landform"}:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "no"


def test_landform_scales_out() -> None:
    landform = compose()["services"]["landform"]
    assert "container_name" not in landform  # a fixed name allows one container
    # One host port per replica, from a range.
    (ports,) = landform["ports"]
    first, last = re.fullmatch(r"127\.0\.0\.1:(\d+)-(\d+):8000", ports).groups()  # type: ignore[union-attr]
    assert int(last) - int(first) + 1 >= landform["deploy"]["replicas"] >= 2
    # No named volume shared by the replicas at the data dir (spools and the
    # workers' sockets are per replica).
    assert not any(":/var/lib/landform" in str(v) for v in landform.get("volumes", []))
    grace = int(environment("landform")["LANDFORM_SHUTDOWN_GRACE_SECONDS"])
    assert int(landform["stop_grace_period"].removesuffix("s")) > grace


def test_the_bucket_landform_uses_is_the_one_created() -> None:
    init = environment("minio-init")
    landform = environment("landform")
    assert urlsplit(landform["LANDFORM_STORAGE_URL"]).netloc == init["S3_BUCKET"]
    assert landform["LANDFORM_S3_ACCESS_KEY_ID"] == init["S3_ACCESS_KEY_ID"]
    assert landform["LANDFORM_S3_SECRET_ACCESS_KEY"] == init["S3_SECRET_ACCESS_KEY"]
    assert urlsplit(landform["LANDFORM_S3_ENDPOINT_URL"]).hostname == "minio"


def test_every_mounted_file_is_shipped_and_every_script_passes_shellcheck() -> None:
    mounted = []
    for service in compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                path = DEPLOY / source
                assert path.is_file(), f"{source} is mounted but not shipped"
                mounted.append(path)
    scripts = sorted(COMPOSE_DIR.rglob("*.sh"))
    assert set(scripts) >= {p for p in mounted if p.suffix == ".sh"}
    assert all(path.stat().st_mode & 0o111 for path in scripts), "scripts must be executable"
    shellcheck = tool("shellcheck", "apt-get install shellcheck")
    result = subprocess.run(
        [shellcheck, "--severity=style", *map(str, scripts)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
