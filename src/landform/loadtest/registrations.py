"""The accounts a run's registration journey makes, as the generator
processes tell them (``generator.tell_registration``): each one as it is
sent, with its password, then its answer. The coordinator keeps those the
server made, or may have made, so that cleanup can close them."""

from __future__ import annotations

from typing import Any

from landform.loadtest.fixtures import Account


class Registrations:
    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self.changed = False  # since the last ``made()``

    def take(self, line: dict[str, Any]) -> bool:
        """Whether ``line`` was a generator's word on a registration (it
        is then kept); measurements and the rest are not."""
        if "registering" in line:
            sent = line["registering"]
            # Unconfirmed until answered: the server may make it though the
            # answer never comes back.
            made = Account(str(sent["email"]), str(sent["password"]), unconfirmed=True)
            self._accounts[made.email] = made
        elif "registered" in line:
            answered = self._accounts.get(str(line["registered"]))
            if answered is None:
                return True
            status = int(line.get("status", 0))
            if 200 <= status < 300:
                answered.unconfirmed = False
            elif 400 <= status < 500:
                # Refused (a rate limit, say): the server made nothing.
                del self._accounts[answered.email]
            # No answer (0) or a server error: it may exist; stays unconfirmed.
        else:
            return False
        self.changed = True
        return True

    def made(self) -> list[Account]:
        self.changed = False
        return list(self._accounts.values())
