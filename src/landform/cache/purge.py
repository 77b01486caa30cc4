"""The CDN purge hook (L3): after a page is published, unpublished, moved
or deleted, a signed webhook (``core.webhook``) names what to purge —
surrogate keys (the page's and its owner's tags, as the pages carry them in
``Surrogate-Key`` and ``Cache-Tag``) and URLs — so any CDN's purge API can
be wired to it. Sent in the background: a publish never waits on a CDN."""

from __future__ import annotations

from dataclasses import dataclass

from landform.core.webhook import Webhook


@dataclass(frozen=True, slots=True)
class Purge:
    event: str
    surrogate_keys: tuple[str, ...]
    urls: tuple[str, ...]


class PurgeHook(Webhook):
    def __init__(self, url: str, secret: bytes, timeout: float = 5.0) -> None:
        super().__init__(url, secret, "cdn purge", timeout)

    def purge(self, purge: Purge) -> None:
        self.notify(
            {
                "event": purge.event,
                "surrogate_keys": list(purge.surrogate_keys),
                "urls": list(purge.urls),
            }
        )
