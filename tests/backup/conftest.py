"""A fresh place to restore into: a new data folder, and on PostgreSQL a new
database beside the test one (created here, dropped after)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ON_POSTGRES, scratch_postgres_database


@dataclass
class Target:
    data_dir: Path
    database_url: str  # empty on SQLite: the data folder's own file

    def env(self) -> dict[str, str]:
        values = {"LANDFORM_DATA_DIR": str(self.data_dir)}
        if self.database_url:
            values["LANDFORM_DATABASE_URL"] = self.database_url
        return values


@pytest.fixture(autouse=True)
def postgres_client_tools() -> None:
    """pg_dump and pg_restore, on the PostgreSQL run (CI must have them)."""
    if ON_POSTGRES and not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        reason = "pg_dump and pg_restore are not installed (apt-get install postgresql-client)"
        if os.environ.get("LANDFORM_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def restore_target(tmp_path: Path) -> Iterator[Target]:
    data_dir = tmp_path / "restored"
    data_dir.mkdir()
    if not ON_POSTGRES:
        yield Target(data_dir, "")
        return
    with scratch_postgres_database("restore") as url:
        yield Target(data_dir, url)
