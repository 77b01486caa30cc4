"""The failed-login throttle (auth/throttle.py): a guesser is held at their
own address, one address trying many accounts is held too, and only many
addresses guessing at once reach the ceiling that stops an account's owner.
Failures are counted in the database, so these run on SQLite and PostgreSQL
alike (no Redis store to hold them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from landform.auth.throttle import address_key
from landform.core.clock import Clock, FrozenClock
from tests.conftest import PASSWORD, assert_error, register

ADA = "ada@example.com"
WRONG = "not-the-password-1"
GUESSER = "203.0.113.9"
OWNER = "198.51.100.7"


@pytest.fixture
def clock() -> Clock:
    return FrozenClock()


@asynccontextmanager
async def from_address(app: Any, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from ``address`` (the socket peer)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def sign_in(
    client: httpx.AsyncClient, password: str, email: str = ADA, **headers: str
) -> httpx.Response:
    return await client.post(
        "/auth/login", json={"email": email, "password": password}, headers=headers
    )


async def test_a_guesser_locks_out_their_own_address_and_not_the_owner(
    app: Any, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await register(client, ADA)
    async with from_address(app, GUESSER) as guesser, from_address(app, OWNER) as owner:
        for _ in range(10):
            assert_error(await sign_in(guesser, WRONG), 401, "invalid_credentials")
        # At the guesser's address even the right password now waits, in
        # the error shape and with Retry-After as before.
        for password in (WRONG, PASSWORD, WRONG):
            throttled = await sign_in(guesser, password)
            error = assert_error(throttled, 429, "login_throttled")
            retry_after = int(throttled.headers["Retry-After"])
            assert 1 <= retry_after <= 61
            assert error["details"] == {"retry_after": retry_after}

        # The owner, from another address, signs in, and may mistype too.
        assert (await sign_in(owner, PASSWORD)).status_code == 200
        assert_error(await sign_in(owner, WRONG), 401, "invalid_credentials")
        assert (await sign_in(owner, PASSWORD)).status_code == 200

        # ...which frees nothing at the guesser's address.
        assert_error(await sign_in(guesser, WRONG), 429, "login_throttled")
        clock.advance(30)
        assert_error(await sign_in(guesser, WRONG), 429, "login_throttled")
        # A window after the failures, guessing may go on at that pace.
        clock.advance(31)
        assert_error(await sign_in(guesser, WRONG), 401, "invalid_credentials")


async def test_concurrent_guesses_count_each_other(app: Any, client: httpx.AsyncClient) -> None:
    """28 guesses at once from one address: ten are tried, as ten one after
    another would be (on PostgreSQL, each had counted only the failures
    committed before it began, and 12 to 14 got through)."""
    await register(client, ADA)
    async with from_address(app, GUESSER) as guesser:
        answers = await asyncio.gather(*(sign_in(guesser, WRONG) for _ in range(28)))
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [401] * 10 + [429] * 18
    assert {answer.json()["error"]["code"] for answer in answers if answer.status_code == 429} == {
        "login_throttled"
    }


@pytest.mark.parametrize(
    "settings_update",
    [{"login_max_failures": 2, "login_max_failures_per_account": 6}],
    indirect=True,
)
async def test_only_many_addresses_together_reach_the_accounts_ceiling(
    app: Any, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await register(client, ADA)
    async with from_address(app, OWNER) as owner:
        # One address that keeps on adds nothing once it is held: its
        # refused attempts are not failures.
        async with from_address(app, "192.0.2.1") as first:
            codes = [(await sign_in(first, WRONG)).status_code for _ in range(10)]
        assert codes == [401, 401] + [429] * 8
        async with from_address(app, "192.0.2.2") as second:
            for _ in range(2):
                assert_error(await sign_in(second, WRONG), 401, "invalid_credentials")
        assert (await sign_in(owner, PASSWORD)).status_code == 200

        # A third address guessing at once: six failures, the ceiling. It
        # stops everyone, the owner too; that is why it is set far above
        # what one address may try.
        async with from_address(app, "192.0.2.3") as third:
            for _ in range(2):
                assert_error(await sign_in(third, WRONG), 401, "invalid_credentials")
        throttled = await sign_in(owner, PASSWORD)
        error = assert_error(throttled, 429, "login_throttled")
        assert error["details"]["retry_after"] == int(throttled.headers["Retry-After"])
        # Other accounts are not touched.
        await register(client, "bob@example.com")
        assert (await sign_in(owner, PASSWORD, "bob@example.com")).status_code == 200
        clock.advance(61)
        assert (await sign_in(owner, PASSWORD)).status_code == 200


async def test_one_address_trying_many_accounts_is_held(
    app: Any, client: httpx.AsyncClient
) -> None:
    """Credential stuffing: one guess per account, 30 accounts a window (the
    default), then the address waits, for every account; other addresses
    do not."""
    await register(client, ADA)
    async with from_address(app, GUESSER) as stuffer, from_address(app, OWNER) as owner:
        for n in range(30):
            email = f"user{n}@example.com"
            assert_error(await sign_in(stuffer, WRONG, email), 401, "invalid_credentials")
        throttled = await sign_in(stuffer, PASSWORD)
        error = assert_error(throttled, 429, "login_throttled")
        assert error["details"] == {"retry_after": int(throttled.headers["Retry-After"])}
        assert (await sign_in(owner, PASSWORD)).status_code == 200


@pytest.mark.parametrize(
    "settings_update",
    [{"login_max_failures": 2, "trusted_proxies": ["10.0.0.0/8"]}],
    indirect=True,
)
async def test_behind_a_trusted_proxy_each_client_is_counted_apart(
    app: Any, client: httpx.AsyncClient
) -> None:
    """Behind a load balancer every peer is the balancer: the address that
    counts is the client's, from X-Forwarded-For."""
    await register(client, ADA)
    async with from_address(app, "10.0.0.2") as balancer:
        for _ in range(2):
            response = await sign_in(balancer, WRONG, **{"X-Forwarded-For": GUESSER})
            assert_error(response, 401, "invalid_credentials")
        held = await sign_in(balancer, PASSWORD, **{"X-Forwarded-For": GUESSER})
        assert_error(held, 429, "login_throttled")
        owner = await sign_in(balancer, PASSWORD, **{"X-Forwarded-For": f"{OWNER}, 10.0.0.7"})
        assert owner.status_code == 200


@pytest.mark.parametrize("settings_update", [{"login_max_failures": 2}], indirect=True)
async def test_an_ipv6_client_is_counted_by_its_slash_64(
    app: Any, client: httpx.AsyncClient
) -> None:
    """A subscriber holds a whole /64: a fresh address per guess is the
    same guesser."""
    await register(client, ADA)
    for n in (1, 2):
        async with from_address(app, f"2001:db8:1:2::{n}") as guesser:
            assert_error(await sign_in(guesser, WRONG), 401, "invalid_credentials")
    async with from_address(app, "2001:db8:1:2:ffff:ffff:ffff:ffff") as same_network:
        assert_error(await sign_in(same_network, PASSWORD), 429, "login_throttled")
    async with from_address(app, "2001:db8:1:3::1") as next_network:
        assert (await sign_in(next_network, PASSWORD)).status_code == 200


@pytest.mark.parametrize(
    ("address", "counted_as"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::1", "::/64"),
        ("unknown", "unknown"),
        ("x" * 100, "x" * 64),
    ],
)
def test_address_key(address: str, counted_as: str) -> None:
    assert address_key(address) == counted_as
