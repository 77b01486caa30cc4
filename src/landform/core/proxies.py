"""The client's address: the socket peer, or — only when that peer is a
configured trusted proxy — the nearest untrusted address in
``X-Forwarded-For``. Trusting the header from anyone would let a visitor
pick their own address (and so their own rate limit and visitor id)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddress:
    def __init__(self, trusted: Iterable[str]) -> None:
        self.networks: list[Network] = [
            ipaddress.ip_network(item, strict=False) for item in trusted
        ]
        self._trusted_cache: dict[str, bool] = {}

    def is_trusted(self, address: str) -> bool:
        known = self._trusted_cache.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                known = False
            else:
                known = any(ip in network for network in self.networks)
            if len(self._trusted_cache) < 10_000:
                self._trusted_cache[address] = known
        return known

    def of(self, scope: Any) -> str:
        """The client address of an ASGI connection scope."""
        client = scope.get("client")
        peer: str = client[0] if client else "unknown"
        if not self.networks or not self.is_trusted(peer):
            return peer
        forwarded = b""
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded = forwarded + b"," + value if forwarded else value
        if not forwarded:
            return peer
        hops = [hop.strip() for hop in forwarded.decode("latin-1").split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.is_trusted(hop):
                return hop
        return hops[0] if hops else peer
