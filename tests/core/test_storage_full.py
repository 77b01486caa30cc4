"""A full disk is a 507 ``insufficient_storage`` in the one error shape,
not an unexplained 500, and what failed was not kept."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from landform.core.storage_full import storage_full
from tests.conftest import ON_POSTGRES, assert_error


def sqlite_full_error(tmp_path: Path) -> sqlite3.Error:
    """The error SQLite itself gives when its file cannot grow."""
    connection = sqlite3.connect(tmp_path / "full.db")
    try:
        connection.execute("CREATE TABLE t (x BLOB)")
        connection.execute("PRAGMA max_page_count = 3")
        with pytest.raises(sqlite3.Error) as raised:
            for _ in range(100):
                connection.execute("INSERT INTO t VALUES (zeroblob(4096))")
        return raised.value
    finally:
        connection.close()


def test_a_full_disk_is_recognised_however_it_is_wrapped(tmp_path: Path) -> None:
    full = sqlite_full_error(tmp_path)
    assert "full" in str(full)
    assert storage_full(full)
    assert storage_full(OperationalError("INSERT …", {}, full))
    assert storage_full(OSError(errno.ENOSPC, "No space left on device"))
    assert storage_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("writing the spool failed") from exc
    except RuntimeError as outer:
        assert storage_full(outer)
    assert not storage_full(OSError(errno.ECONNREFUSED, "refused"))
    assert not storage_full(ValueError("no"))


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's own full database")
async def test_a_write_to_a_full_database_is_a_507_and_keeps_nothing(
    client: httpx.AsyncClient, ada: dict[str, str], app: Any
) -> None:
    engine = app.components.db.primary
    await engine.dispose()

    # Every new connection may not grow the file past its present size: as
    # when the disk under it is full.
    @event.listens_for(engine.sync_engine, "connect")
    def _cap(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA page_count")
        (pages,) = cursor.fetchone()
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    answers = []
    for index in range(40):  # until the pages SQLite had spare are used up
        response = await client.post(
            "/landing-pages",
            json={"title": "x" * 200, "slug": f"full-{index}", "template_id": "saas-launch"},
            headers=ada,
        )
        answers.append(response)
        if response.status_code != 201:
            break
    refused = answers[-1]
    # Before: 500 internal_error, "something went wrong on our side".
    assert_error(refused, 507, "insufficient_storage")
    slug = refused.request.read().decode().split('"slug":"')[1].split('"')[0]
    event.remove(engine.sync_engine, "connect", _cap)
    await engine.dispose()
    listed = await client.get("/landing-pages", params={"limit": 100}, headers=ada)
    assert slug not in {page["slug"] for page in listed.json()["items"]}
