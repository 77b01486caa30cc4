"""What the stream consumer's log names when a service goes away (no
Redis server needed: the errors are made here)."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError

from landform.analytics.stream import what_was_lost


def test_an_outage_names_the_service_it_took_away() -> None:
    """The database driver's refused connect is a bare OSError: it was
    logged as "lost Redis" while Redis was up."""
    assert what_was_lost(RedisConnectionError("Connection reset by peer")) == "Redis"
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
    assert what_was_lost(refused) == "a connection to the database or Redis"
    dropped = OperationalError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert what_was_lost(dropped) == "the database"
    assert what_was_lost(ValueError("a bug")) is None
