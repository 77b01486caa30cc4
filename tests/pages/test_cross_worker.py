"""Publishing reaches every worker process of a real server within a second.

Starts ``landform serve --workers 2`` and asks over fresh connections (so the
kernel spreads them over both workers) until every answer is the new one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live_server import live_server, verified_login

pytestmark = pytest.mark.server

FRESH = {"Connection": "close"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with live_server(tmp_path, workers=2, LANDFORM_PAGE_CHANGE_POLL_INTERVAL="0.25") as base:
        yield base


def answers(base: str, path: str, n: int = 24) -> list[tuple[int, str]]:
    return [
        (r.status_code, r.text)
        for r in (httpx.get(f"{base}{path}", headers=FRESH, timeout=5) for _ in range(n))
    ]


def seconds_until_all(base: str, path: str, accept: object, streak: int = 40) -> float:
    """When, after now, the last answer that fails ``accept`` came, once
    ``streak`` fresh-connection answers in a row have passed it."""
    start = time.monotonic()
    last_failure = 0.0
    passed = 0
    while passed < streak and time.monotonic() - start < 10:
        response = httpx.get(f"{base}{path}", headers=FRESH, timeout=5)
        if accept(response.status_code, response.text):  # type: ignore[operator]
            passed += 1
        else:
            passed = 0
            last_failure = time.monotonic() - start
    return last_failure if passed >= streak else float("inf")


def test_publish_unpublish_restore_delete_reach_every_worker_within_a_second(
    server: str, tmp_path: Path
) -> None:
    pids = {httpx.get(f"{server}/healthz", headers=FRESH).json()["worker"] for _ in range(30)}
    assert len(pids) == 2, "fresh connections should reach both workers"

    access = verified_login(server, tmp_path, "ada@example.com")
    with httpx.Client(base_url=server, timeout=10) as api:
        api.headers["Authorization"] = f"Bearer {access}"

        page = api.post(
            "/landing-pages", json={"title": "Propagation", "slug": "propagation"}
        ).json()
        url = f"/landing-pages/{page['id']}"

        def publish(headline: str) -> None:
            hero = {"type": "hero", "headline": headline}
            assert api.put(f"{url}/content", json={"blocks": [hero]}).status_code == 200
            assert api.post(f"{url}/publish").status_code == 200

        publish("Version one")
        # Every worker loads and holds version one.
        assert all(s == 200 and "Version one" in t for s, t in answers(server, "/propagation", 40))

        publish("Version two")
        took = seconds_until_all(
            server, "/propagation", lambda s, t: s == 200 and "Version two" in t
        )
        assert took <= 1.0, f"publish took {took:.2f}s to reach every worker"

        assert api.post(f"{url}/unpublish").status_code == 200
        took = seconds_until_all(server, "/propagation", lambda s, t: s == 404)
        assert took <= 1.0, f"unpublish took {took:.2f}s to reach every worker"

        assert api.post(f"{url}/versions/1/restore").status_code == 200
        assert api.post(f"{url}/publish").status_code == 200
        took = seconds_until_all(
            server, "/propagation", lambda s, t: s == 200 and "Version one" in t
        )
        assert took <= 1.0, f"restore-and-publish took {took:.2f}s to reach every worker"

        assert api.delete(url).status_code == 204
        took = seconds_until_all(server, "/propagation", lambda s, t: s == 404)
        assert took <= 1.0, f"delete took {took:.2f}s to reach every worker"
