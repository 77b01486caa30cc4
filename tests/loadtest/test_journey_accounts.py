"""What the harness leaves on a server: the accounts the registration
journey makes are recorded with the run's data, from every generator
process, and closed by cleanup with the prepared ones."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from landform.loadtest.fixtures import Fixture
from tests.loadtest.test_run import loadtest

pytestmark = pytest.mark.server

SIGNUPS = """\
load_tests:
  - name: signups
    duration: 3s
    ramp_up: 0s
    concurrent_users: 2
    requests_per_second: 6
    scenarios:
      - name: sign_up
        weight: 100%
        operations:
          - POST /auth/register
          - POST /auth/verify-email
"""
JOURNEY_ADDRESS = re.compile(r"lt-([0-9a-f]{6})(\d+)-r\d+@loadtest\.example")


def _signups(folder: Path) -> Path:
    path = folder / "signups.yaml"
    path.write_text(SIGNUPS)
    return path


def _process_of(email: str) -> str:
    found = JOURNEY_ADDRESS.fullmatch(email)
    assert found, email
    return found.group(2)


def _signs_in(base: str, email: str, password: str) -> bool:
    answer = httpx.post(f"{base}/auth/login", json={"email": email, "password": password})
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


def test_the_accounts_journeys_register_are_recorded_and_cleaned_up(
    server: str, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    ran = loadtest(
        "run", "signups", "--file", str(_signups(tmp_path)), "--host", server,
        "--output", str(output), "--processes", "2", "--accounts", "1", "--pages", "1",
    )  # fmt: skip
    assert ran.returncode in (0, 1), ran.stderr
    record = Fixture.load(output / "fixture.json")
    registered = record.registered
    # From each of the two generator processes.
    processes = {_process_of(a.email) for a in registered}
    assert processes == {"0", "1"}, [a.email for a in registered]
    assert len({a.password for a in registered}) == len(registered)
    # Those answered are on the server with the password recorded; a
    # registration the run's end cut short is recorded all the same, as
    # the server may have made it.
    assert any(not a.unconfirmed for a in registered)
    made = [a for a in registered if _signs_in(server, a.email, a.password)]
    assert all(a in made for a in registered if not a.unconfirmed)

    cleaned = loadtest("cleanup", "--fixture", str(output / "fixture.json"))
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout.startswith(f"closed {1 + len(made)} accounts"), cleaned.stdout
    for account in [*record.accounts, *registered]:
        assert not _signs_in(server, account.email, account.password)


def test_run_cleanup_closes_the_journeys_accounts_too(server: str, tmp_path: Path) -> None:
    output = tmp_path / "out"
    ran = loadtest(
        "run", "signups", "--file", str(_signups(tmp_path)), "--host", server,
        "--output", str(output), "--processes", "1", "--accounts", "1", "--pages", "1",
        "--cleanup",
    )  # fmt: skip
    assert ran.returncode in (0, 1), ran.stderr
    record = Fixture.load(output / "fixture.json")
    assert any(not a.unconfirmed for a in record.registered)
    assert "cleaned up: closed" in ran.stdout, ran.stdout
    for account in [*record.accounts, *record.registered]:
        assert not _signs_in(server, account.email, account.password)


def test_cleanup_does_not_call_an_account_it_cannot_sign_in_as_gone(
    server: str, tmp_path: Path
) -> None:
    fixture = tmp_path / "fixture.json"
    prepared = loadtest(
        "prepare", "--host", server, "--output", str(fixture), "--accounts", "1", "--pages", "1"
    )
    assert prepared.returncode == 0, prepared.stderr
    (account,) = Fixture.load(fixture).accounts
    # A record whose password no longer works (edited, or changed since).
    fixture.write_text(fixture.read_text().replace(account.password, "not-its-password-at-all"))
    refused = loadtest("cleanup", "--fixture", str(fixture))
    assert refused.returncode == 1, refused.stderr
    assert "gone already" not in refused.stderr
    assert f"{account.email}: could not sign in: closed already, or its password changed" in (
        refused.stderr
    )
    assert "1 account(s) could not sign in, so are not confirmed closed" in refused.stderr
    assert _signs_in(server, account.email, account.password)  # still there

    fixture.write_text(fixture.read_text().replace("not-its-password-at-all", account.password))
    cleaned = loadtest("cleanup", "--fixture", str(fixture))
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout.startswith("closed 1 accounts"), cleaned.stdout
    assert not _signs_in(server, account.email, account.password)
    # Run again, it knows the account from one it could not sign in as.
    again = loadtest("cleanup", "--fixture", str(fixture))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("closed 0 accounts") and "1 closed by an earlier" in again.stdout
