"""A server of the load-test modules' own (one per module), for tests that
run the harness against a real Landform."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_server import live_server
from tests.loadtest.test_run import TOKEN


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # The tests sign in as closed accounts on purpose: not a guesser to lock out.
    roomy_logins = {
        "LANDFORM_LOGIN_MAX_FAILURES": "100000",
        "LANDFORM_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",
        "LANDFORM_LOGIN_MAX_FAILURES_PER_ACCOUNT": "200000",  # must be above the first
    }
    with live_server(
        tmp_path_factory.mktemp("server"), workers=1, LANDFORM_OPS_TOKEN=TOKEN, **roomy_logins
    ) as base:
        yield base
