"""What a user agent and a referrer say about a visit: bot or person,
browser, operating system, device class, referring host.

Bots are recognised by CrawlerDetect's maintained pattern list; browser and
OS families come from uap-core's (ua-parser). Both are regex-heavy, and user
agents repeat a lot, so results are cached."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

from crawlerdetect import CrawlerDetect
from ua_parser import parse

_crawlers = CrawlerDetect()

MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "KaiOS", "BlackBerry OS"})


class Agent(NamedTuple):
    is_bot: bool
    browser: str
    os: str
    device: str  # "mobile", "tablet", "desktop" or "" when unknown


# How much of a user agent the crawler patterns read. Their cost grows with
# the length (about 3 ms for a browser's 130 characters, 10 for 256, 37 for
# 512, uncached), and a flood of unique made-up agents is what the cache
# cannot absorb. Bots name themselves near the start; what comes past this
# in a real browser's agent (an in-app browser's app details) names no bot.
CRAWLER_CHECKED_CHARS = 256


@lru_cache(maxsize=4096)
def classify_agent(user_agent: str) -> Agent:
    if not user_agent.strip() or _crawlers.isCrawler(user_agent[:CRAWLER_CHECKED_CHARS]):
        return Agent(True, "", "", "")
    result = parse(user_agent)
    if result.device is not None and result.device.family == "Spider":
        return Agent(True, "", "", "")
    browser = result.user_agent.family if result.user_agent else ""
    os = result.os.family if result.os else ""
    if "iPad" in user_agent or "Tablet" in user_agent:
        device = "tablet"
    elif os in MOBILE_OS or "Mobile" in user_agent:
        device = "mobile"
    elif os:
        device = "desktop"
    else:
        device = ""
    return Agent(False, browser[:64], os[:64], device)


def device_from_width(width: int | None, agent: Agent) -> str:
    """Screen width, when the beacon sent one, decides the device class
    (Plausible's breakpoints); the user agent otherwise."""
    if width is None or width <= 0:
        return agent.device
    if width < 576:
        return "mobile"
    if width < 992:
        return "tablet"
    return "desktop"


@lru_cache(maxsize=4096)
def referrer_host(referrer: str, own_host: str) -> str:
    """The referring host, lower-case, without ``www.``; empty for direct
    visits and for links from the page's own site."""
    if not referrer:
        return ""
    try:
        host = urlsplit(referrer).hostname or ""
    except ValueError:
        return ""
    host = host.lower().removeprefix("www.")
    if host == own_host:
        return ""
    return host[:255]


_COUNTRY = re.compile(r"^[A-Z]{2}$")


# What geo headers say for "not known": Cloudflare's XX, and ZZ (ISO 3166's
# user-assigned code for an unknown country, as GeoIP services use it).
# Counted as no country, not as a country named XX.
_UNKNOWN_COUNTRIES = frozenset({"XX", "ZZ"})


def country_code(header_value: str) -> str:
    """An ISO 3166 alpha-2 code from a geo header, or empty."""
    code = header_value.strip().upper()
    return code if _COUNTRY.match(code) and code not in _UNKNOWN_COUNTRIES else ""
