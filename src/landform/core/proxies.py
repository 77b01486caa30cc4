"""The client's address: the socket peer, or — only when that peer is a
configured trusted proxy — the nearest untrusted address in
``X-Forwarded-For``. Trusting the header from anyone would let a visitor
pick their own address (and so their own rate limit and visitor id)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Where a connection's client address is kept once worked out: the rate
# limiter and the tracking layer both ask for it.
_SCOPE_KEY = "landform.client_address"


class ClientAddress:
    def __init__(self, trusted: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(item, strict=False) for item in trusted]

    @property
    def networks(self) -> list[Network]:
        return self._networks

    @networks.setter
    def networks(self, networks: list[Network]) -> None:
        self._networks = networks
        # As (bits, network, mask) integers: behind a proxy nearly every
        # request brings an address not seen before, and building an address
        # object for it cost more than the rest of the check.
        self._ranges = [(n.max_prefixlen, int(n.network_address), int(n.netmask)) for n in networks]
        self._peers: dict[str, bool] = {}  # peers are few: the proxies

    def is_trusted(self, address: str) -> bool:
        parsed = _as_integer(address)
        if parsed is None:
            return False
        bits, value = parsed
        return any(bits == size and value & mask == network for size, network, mask in self._ranges)

    def of(self, scope: Any) -> str:
        """The client address of an ASGI connection scope."""
        known: str | None = scope.get(_SCOPE_KEY)
        if known is None:
            known = scope[_SCOPE_KEY] = self._find(scope)
        return known

    def _find(self, scope: Any) -> str:
        client = scope.get("client")
        peer: str = client[0] if client else "unknown"
        if not self._ranges or not self._trusted_peer(peer):
            return peer
        forwarded = [
            value.decode("latin-1")
            for name, value in scope["headers"]
            if name == b"x-forwarded-for"
        ]
        return self._behind(peer, forwarded)

    def of_rsgi(self, scope: Any) -> str:
        """The client address of a granian RSGI scope (``core/rsgi.py``)."""
        client = host_port(scope.client)
        peer = client[0] if client else "unknown"
        if not self._ranges or not self._trusted_peer(peer):
            return peer
        return self._behind(peer, scope.headers.get_all("x-forwarded-for"))

    def _trusted_peer(self, peer: str) -> bool:
        trusted = self._peers.get(peer)
        if trusted is None:
            trusted = self.is_trusted(peer)
            if len(self._peers) < 10_000:
                self._peers[peer] = trusted
        return trusted

    def _behind(self, peer: str, forwarded: list[str]) -> str:
        """The nearest untrusted hop in the ``X-Forwarded-For`` values a
        trusted ``peer`` sent (every such header, in order)."""
        if not forwarded:
            return peer
        hops = [
            _without_port(hop.strip())
            for value in forwarded
            for hop in value.split(",")
            if hop.strip()
        ]
        for hop in reversed(hops):
            if not self.is_trusted(hop):
                return hop
        return hops[0] if hops else peer


def _without_port(hop: str) -> str:
    """An ``X-Forwarded-For`` hop as an address alone: some proxies (Azure's
    Application Gateway among them) write ``192.0.2.1:50123`` or
    ``[2001:db8::1]:50123``, and a visitor's address must not change with
    each connection's source port (their visitor id and rate limit would)."""
    if hop.startswith("["):
        return hop[1:].partition("]")[0]
    if hop.count(":") == 1:  # IPv4 with a port; an IPv6 address has two or more
        return hop.partition(":")[0]
    return hop


def host_port(address: str) -> tuple[str, int] | None:
    """``"127.0.0.1:5000"``, ``"[::1]:5000"`` or ``"::1:5000"`` (an RSGI
    scope's client or server) as ASGI's (host, port)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _as_integer(address: str) -> tuple[int, int] | None:
    """An IP address as (32 or 128, its integer); None if it is not one."""
    for family, bits in ((socket.AF_INET, 32), (socket.AF_INET6, 128)):
        try:
            return bits, int.from_bytes(socket.inet_pton(family, address), "big")
        except OSError:
            continue
    return None
