"""The client address behind trusted proxies."""

from __future__ import annotations

import pytest

from landform.core.proxies import ClientAddress


def scope(peer: str, *forwarded: str) -> dict[str, object]:
    return {
        "client": (peer, 5000),
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }


@pytest.mark.parametrize(
    ("address", "trusted"),
    [
        ("10.0.0.1", True),
        ("10.255.255.255", True),
        ("11.0.0.1", False),
        ("127.0.0.1", True),
        ("::1", True),
        ("2001:db8::7", True),
        ("2001:db9::7", False),
        ("::ffff:10.0.0.1", False),  # an IPv6 address, whatever it maps
        ("not-an-address", False),
        ("10.0.0.1.5", False),
        ("", False),
    ],
)
def test_trust_is_decided_by_network(address: str, trusted: bool) -> None:
    proxies = ClientAddress(["10.0.0.0/8", "127.0.0.1", "::1", "2001:db8::/32"])
    assert proxies.is_trusted(address) is trusted


def test_forwarded_chain_gives_the_nearest_untrusted_hop() -> None:
    proxies = ClientAddress(["10.0.0.0/8"])
    # The visitor forged a first hop; the proxies appended what they saw.
    assert proxies.of(scope("10.0.0.2", "6.6.6.6, 198.51.100.4, 10.0.0.9")) == "198.51.100.4"
    # Several headers are one list, in order.
    assert proxies.of(scope("10.0.0.2", "198.51.100.4", "203.0.113.5")) == "203.0.113.5"
    # Every hop trusted: the farthest one.
    assert proxies.of(scope("10.0.0.2", "10.1.1.1, 10.2.2.2")) == "10.1.1.1"
    assert proxies.of(scope("10.0.0.2")) == "10.0.0.2"


def test_forwarded_header_from_an_untrusted_peer_is_ignored() -> None:
    assert ClientAddress(["10.0.0.0/8"]).of(scope("198.51.100.4", "1.2.3.4")) == "198.51.100.4"
    assert ClientAddress([]).of(scope("10.0.0.2", "1.2.3.4")) == "10.0.0.2"
    assert ClientAddress(["10.0.0.0/8"]).of({"headers": []}) == "unknown"


def test_the_address_is_worked_out_once_per_connection_scope() -> None:
    proxies = ClientAddress(["10.0.0.0/8"])
    connection = scope("10.0.0.2", "198.51.100.4")
    assert proxies.of(connection) == "198.51.100.4"
    proxies.networks = []  # what was found for this request stands
    assert proxies.of(connection) == "198.51.100.4"
    assert proxies.of(scope("10.0.0.2", "198.51.100.4")) == "10.0.0.2"


class RsgiHeaders:
    """What granian's RSGI scope offers for headers (``get_all``)."""

    def __init__(self, forwarded: tuple[str, ...]) -> None:
        self.forwarded = forwarded

    def get_all(self, name: str) -> list[str]:
        return list(self.forwarded) if name == "x-forwarded-for" else []


class RsgiScope:
    def __init__(self, client: str, *forwarded: str) -> None:
        self.client = client
        self.headers = RsgiHeaders(forwarded)


def test_an_rsgi_scope_gives_the_same_address_as_an_asgi_one() -> None:
    proxies = ClientAddress(["10.0.0.0/8", "::1"])
    for peer, forwarded in (
        ("10.0.0.2", ("6.6.6.6, 198.51.100.4, 10.0.0.9",)),
        ("10.0.0.2", ("198.51.100.4", "203.0.113.5")),  # several headers: one list
        ("10.0.0.2", ("10.1.1.1, 10.2.2.2",)),
        ("10.0.0.2", ()),
        ("198.51.100.4", ("1.2.3.4",)),  # an untrusted peer's header is ignored
    ):
        expected = proxies.of(scope(peer, *forwarded))
        assert proxies.of_rsgi(RsgiScope(f"{peer}:5000", *forwarded)) == expected
    # IPv6 peers, with or without brackets around the address.
    assert proxies.of_rsgi(RsgiScope("[::1]:5000", "203.0.113.5")) == "203.0.113.5"
    assert proxies.of_rsgi(RsgiScope("::1:5000", "203.0.113.5")) == "203.0.113.5"
    assert proxies.of_rsgi(RsgiScope("[2001:db8::7]:5000", "203.0.113.5")) == "2001:db8::7"


def test_a_hop_with_a_port_is_its_address() -> None:
    """Some proxies write the client's source port into the hop: the same
    visitor on a new connection is still the same address."""
    proxies = ClientAddress(["10.0.0.0/8", "2001:db8::/32"])
    for forwarded, expected in (
        ("198.51.100.20:50001", "198.51.100.20"),
        ("198.51.100.20:50002, 10.0.0.9:443", "198.51.100.20"),
        ("[2001:db9::5]:1", "2001:db9::5"),
        ("[2001:db9::5]", "2001:db9::5"),
        ("2001:db9::5", "2001:db9::5"),
        ("198.51.100.4, [2001:db8::9]:8080", "198.51.100.4"),  # a trusted hop, with its port
    ):
        assert proxies.of(scope("10.0.0.2", forwarded)) == expected, forwarded
        assert proxies.of_rsgi(RsgiScope("10.0.0.2:5000", forwarded)) == expected, forwarded
