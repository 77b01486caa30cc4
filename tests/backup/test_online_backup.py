"""``landform backup`` of a real server while it takes writes, then
``landform restore`` into a fresh data folder (and on PostgreSQL a fresh
database): everything acknowledged before the backup started comes back
exactly — accounts, pages with their versions, file bytes, analytics
counts, including events that were still in the spool — and nothing comes
back that was never sent."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from PIL import Image
from sqlalchemy import select

from landform.app import create_app
from landform.auth.models import User
from landform.backup.manifest import Manifest
from landform.core.db import Database
from tests.analytics.conftest import BROWSER
from tests.backup.conftest import Target
from tests.conftest import ON_POSTGRES, PASSWORD, TEST_DATABASE_URL, make_settings
from tests.live_server import live_server, verified_login

pytestmark = pytest.mark.server

# Events wait in the spool: a batch is written only when 40 are waiting, so
# the backup must carry the rest itself.
BATCH_SIZE = 40
SERVER_ENV = {
    "LANDFORM_ANALYTICS_BATCH_INTERVAL": "600",
    "LANDFORM_ANALYTICS_BATCH_SIZE": str(BATCH_SIZE),
    "LANDFORM_ANALYTICS_RATE_BURST": "1000000",
}
VIEWS_PER_PAGE = (7, 30, 55)
# However the views spread over the workers, the events still spooled are
# congruent to all views sent modulo the batch size (each written batch is
# whole), so none would be left only if the total reached the next multiple
# of it. The writer stops one view short of that, so the backup always has
# events of its own to carry (92 views before, at most 27 during).
WRITER_VIEWS_AT_MOST = BATCH_SIZE - sum(VIEWS_PER_PAGE) % BATCH_SIZE - 1
VISITOR = {"User-Agent": BROWSER}  # a bot's views are counted apart


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "landform.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def png(seed: int, side: int = 40) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (seed % 256, (seed * 7) % 256, (seed * 13) % 256)).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


@dataclass
class Acknowledged:
    """What the server answered for, and when (monotonic)."""

    emails: list[tuple[float, str]] = field(default_factory=list)
    pages: list[tuple[float, str]] = field(default_factory=list)
    attempted_emails: set[str] = field(default_factory=set)
    views: int = 0


def keep_writing(base: str, token: str, stop: threading.Event, seen: Acknowledged) -> None:
    """New accounts, pages (published) and views, until ``stop``; never
    touches what existed before, so that stays as it was."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=10) as api:
        index = 0
        while not stop.is_set():
            index += 1
            email = f"writer{index}@example.com"
            seen.attempted_emails.add(email)
            response = api.post("/auth/register", json={"email": email, "password": PASSWORD})
            if response.status_code == 201:
                seen.emails.append((time.monotonic(), email))
            page = api.post(
                "/landing-pages", json={"title": f"During {index}"}, headers=headers
            ).json()
            seen.pages.append((time.monotonic(), page["id"]))
            api.post(f"/landing-pages/{page['id']}/publish", headers=headers)
            if seen.views == WRITER_VIEWS_AT_MOST:
                continue
            view = api.post("/analytics/track-view", json={"page_id": page["id"]}, headers=VISITOR)
            if view.status_code == 202:
                seen.views += 1


def test_backup_while_writing_restores_what_was_acknowledged_before(
    tmp_path: Path, migrated_postgres: str | None, restore_target: Target
) -> None:
    live_dir = tmp_path / "live"
    live_dir.mkdir()
    server_db = {"LANDFORM_DATABASE_URL": TEST_DATABASE_URL} if ON_POSTGRES else {}
    with live_server(live_dir, **SERVER_ENV) as base:
        ada_token = verified_login(base, live_dir, "ada@example.com")
        writer_token = verified_login(base, live_dir, "writer@example.com")
        ada = {"Authorization": f"Bearer {ada_token}"}
        pages: dict[str, dict[str, Any]] = {}
        uploads: dict[str, bytes] = {}
        with httpx.Client(base_url=base, headers=ada, timeout=10) as api:
            for number, views in enumerate(VIEWS_PER_PAGE):
                page = api.post(
                    "/landing-pages", json={"title": f"Page {number}", "slug": f"page-{number}"}
                ).json()
                for _ in range(number + 1):  # versions 1..n+1, the last one live
                    assert api.post(f"/landing-pages/{page['id']}/publish").status_code == 200
                versions = api.get(f"/landing-pages/{page['id']}/versions").json()["items"]
                pages[page["id"]] = {"title": page["title"], "slug": page["slug"], "views": views}
                pages[page["id"]]["versions"] = [(v["number"], v["is_live"]) for v in versions]
                for seed in range(2):
                    content = png(number * 10 + seed, side=40 + number * 20)
                    stored = api.post(
                        "/files/upload", files={"file": (f"p{number}-{seed}.png", content)}
                    )
                    assert stored.status_code == 201, stored.text
                    uploads[stored.json()["id"]] = content
            with httpx.Client(base_url=base, headers=VISITOR, timeout=10) as visitor:
                for page_id, page in pages.items():
                    for _ in range(page["views"]):
                        answer = visitor.post("/analytics/track-view", json={"page_id": page_id})
                        assert answer.status_code == 202, answer.text
        assert any(p.stat().st_size for p in (live_dir / "analytics-spool").glob("*.spool"))

        seen = Acknowledged()
        stop = threading.Event()
        writer = threading.Thread(target=keep_writing, args=(base, writer_token, stop, seen))
        writer.start()
        try:
            time.sleep(1.0)  # the writer is in full swing
            started = time.monotonic()
            backup_dir = tmp_path / "backup"
            made = cli(
                "backup",
                "--output",
                str(backup_dir),
                env={"LANDFORM_DATA_DIR": str(live_dir), **server_db},
            )
            finished = time.monotonic()
        finally:
            stop.set()
            writer.join(timeout=30)
        assert made.returncode == 0, made.stdout + made.stderr
        # Writes went on while the backup ran.
        assert any(started < at < finished for at, _ in seen.pages)

    manifest = Manifest.read(backup_dir)
    assert manifest.database == ("postgresql" if ON_POSTGRES else "sqlite")
    assert manifest.pending_events > 0  # some views were only in the spool
    assert len(manifest.objects) >= len(uploads)

    restored = cli("restore", str(backup_dir), env=restore_target.env())
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "restored the backup" in restored.stdout

    before = started
    settings = make_settings(restore_target.data_dir, database_url=restore_target.database_url)
    asyncio.run(check_restored(settings, pages, uploads, seen, before))


async def check_restored(
    settings: Any,
    pages: dict[str, dict[str, Any]],
    uploads: dict[str, bytes],
    seen: Acknowledged,
    before: float,
) -> None:
    application = create_app(settings)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            login = await api.post(
                "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
            )
            assert login.status_code == 200, login.text  # the password hash came back
            ada = {"Authorization": f"Bearer {login.json()['access_token']}"}

            listed = (await api.get("/landing-pages", headers=ada)).json()["items"]
            assert {p["id"]: p["title"] for p in listed} == {
                page_id: page["title"] for page_id, page in pages.items()
            }
            for page_id, page in pages.items():
                versions = (await api.get(f"/landing-pages/{page_id}/versions", headers=ada)).json()
                assert [(v["number"], v["is_live"]) for v in versions["items"]] == page["versions"]
                public = await api.get(f"/{page['slug']}")
                assert public.status_code == 200 and page["title"] in public.text
                report = (await api.get(f"/analytics/pages/{page_id}", headers=ada)).json()
                assert report["totals"]["views"] == page["views"], page_id

            files = (await api.get("/files", headers=ada)).json()["items"]
            assert {f["id"] for f in files} == set(uploads)
            for item in files:
                body = await api.get(item["url"])
                assert body.status_code == 200
                assert (
                    hashlib.sha256(body.content).digest()
                    == hashlib.sha256(uploads[item["id"]]).digest()
                )

            writer_login = await api.post(
                "/auth/login", json={"email": "writer@example.com", "password": PASSWORD}
            )
            writer = {"Authorization": f"Bearer {writer_login.json()['access_token']}"}
            restored_pages = await all_page_ids(api, writer)
            assert {page_id for at, page_id in seen.pages if at < before} <= restored_pages
            assert restored_pages <= {page_id for _, page_id in seen.pages}

    db = Database(settings)
    try:
        async with db.read() as session:
            emails = set((await session.scalars(select(User.email))).all())
    finally:
        await db.dispose()
    writers = {email for email in emails if email.startswith("writer") and email[6].isdigit()}
    assert {email for at, email in seen.emails if at < before} <= writers
    assert writers <= seen.attempted_emails
    assert {"ada@example.com", "writer@example.com"} <= emails


async def all_page_ids(api: httpx.AsyncClient, headers: dict[str, str]) -> set[str]:
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        listed = (await api.get("/landing-pages", params=params, headers=headers)).json()
        ids |= {p["id"] for p in listed["items"]}
        cursor = listed["next_cursor"]
        if not cursor:
            return ids
