"""A real browser for the tests that need one: Debian's Chromium, driven by
Playwright (skipped, and said so, where Chromium is not installed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextmanager
def chromium(*, back_forward_cache: bool = False) -> Iterator[Any]:
    """Headless Chromium under Playwright. Started after the server: the
    sync API runs an event loop in this thread, and the server's set-up
    needs one of its own first. ``back_forward_cache``: keep pages whole on
    leaving them, as browsers do by default (Playwright turns it off)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            ignore_default_args=["--disable-back-forward-cache"] if back_forward_cache else None,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )  # fmt: skip
        try:
            yield launched
        finally:
            launched.close()
