"""A server of the load-test modules' own (one per module), for tests that
run the harness against a real Landform."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_server import live_server
from tests.loadtest.test_run import ROOMY_LOGINS, TOKEN


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(
        tmp_path_factory.mktemp("server"), workers=1, LANDFORM_OPS_TOKEN=TOKEN, **ROOMY_LOGINS
    ) as base:
        yield base
