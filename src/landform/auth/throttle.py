"""The failed-login throttle. It has to stop password guessing without
handing anyone who knows an address a way to lock its owner out, so it
counts recent failures three ways, over one window
(``login_window_seconds``):

- per account *and* client address (``login_max_failures``): the lockout a
  guesser meets. It holds only that address; the owner, signing in from
  anywhere else, does not see it;
- per client address, across accounts (``login_max_failures_per_address``):
  one address trying many accounts, one guess each (credential stuffing).
  Many people may share an address (an office, a carrier's NAT), so it
  sits above the first;
- per account, across addresses (``login_max_failures_per_account``): a
  ceiling on guesses spread over many addresses. It locks the owner out
  too, so it sits far above the first: an address held to
  ``login_max_failures`` cannot reach it alone, it takes that many
  addresses guessing at once.

An attempt refused by the throttle is not counted, so a locked address
that keeps trying adds nothing towards the ceiling.

Failures live in the database (``LoginAttempt``), so every worker and
replica counts the same ones, with or without Redis."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from landform.auth import repository as repo
from landform.auth.errors import LoginThrottled
from landform.settings import Settings

# How long a client address may be in ``LoginAttempt.client_ip``.
ADDRESS_KEY_LENGTH = 64
# One IPv6 subscriber gets a whole /64 (or more) and could take a fresh
# address for every guess: the throttle counts the network, not the address.
IPV6_SUBSCRIBER_PREFIX = 64


def address_key(address: str) -> str:
    """The client address as the throttle counts it: an IPv4 address as
    itself (also when written IPv4-mapped), an IPv6 one as its /64, anything
    else (no address at all) as given, cut to the column's length."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:ADDRESS_KEY_LENGTH]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        host_bits = 128 - IPV6_SUBSCRIBER_PREFIX
        network = int(parsed) >> host_bits << host_bits
        return str(ipaddress.IPv6Network((network, IPV6_SUBSCRIBER_PREFIX)))
    return str(parsed)


async def refuse_if_throttled(
    session: AsyncSession, settings: Settings, email: str, address: str, now: datetime
) -> None:
    """``LoginThrottled`` when any of the three counts is at its limit,
    with ``Retry-After`` when the last of those that are lets go (when its
    oldest failure leaves the window). ``address`` is an ``address_key``."""
    window = timedelta(seconds=settings.login_window_seconds)
    failures = await repo.recent_failures(session, email, address, now - window)
    retry_after = 0
    for (count, oldest), limit in (
        (failures.of_account_from_address, settings.login_max_failures),
        (failures.from_address, settings.login_max_failures_per_address),
        (failures.of_account, settings.login_max_failures_per_account),
    ):
        if count >= limit:
            frees_in = int(((oldest or now) + window - now).total_seconds()) + 1
            retry_after = max(retry_after, frees_in, 1)
    if retry_after:
        raise LoginThrottled(
            "too many failed logins; try again later",
            details={"retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
