"""Synthetic traffic for demos and benchmarks (``landform analytics generate``).

A demo owner gets published pages through the auth and pages services, then
the pages get days of made-up but plausible traffic: a diurnal curve with
quieter weekends, a few pages taking most views, a mix of referrers, UTM
campaigns, browsers, devices, countries and bots, visitors who come back
within the day, and conversions after views.

The events are counted through ``aggregate.count_event``, the counting core
of live ingestion, so the rollups written here are exactly those ingestion
(or ``rebuild``) would derive from the same raw rows. What is skipped is
only the slow path: rows go to the database with COPY (PostgreSQL) or one
executemany (SQLite), a day per transaction, and rollups are built in memory
a day at a time."""

from __future__ import annotations

import math
import random
import re
import secrets
import time
import uuid
from bisect import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from itertools import accumulate
from typing import Any

from landform.analytics import repository, writes
from landform.analytics.aggregate import (
    Rollups,
    VisitorDay,
    VisitorKey,
    count_event,
)
from landform.analytics.classify import Agent, classify_agent, device_from_width
from landform.analytics.events import EVENT, MS_PER_HOUR, VIEW
from landform.auth import repository as auth_repo
from landform.auth.service import AuthService
from landform.core.batches import batched
from landform.core.clock import Clock
from landform.core.db import Database
from landform.core.errors import Conflict
from landform.pages.schemas import PageCreate
from landform.pages.service import PageService
from landform.settings import Settings
from landform.templates.service import TemplateCatalogue

MS_PER_DAY = 24 * MS_PER_HOUR

# Rows per COPY / executemany: big enough to amortize the round trip, small
# enough to keep memory flat.
CHUNK = 50_000

_CHROME = "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0"
_SAFARI = "AppleWebKit/605.1.15 (KHTML, like Gecko)"
_IOS = "CPU iPhone OS 17_6 like Mac OS X"

# (weight, user agent). Shares roughly those of public browser statistics;
# the last five are crawlers, about 4 % of visits.
AGENTS: tuple[tuple[float, str], ...] = (
    (27, f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_CHROME} Safari/537.36"),
    (9, f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {_CHROME} Safari/537.36"),
    (6, f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {_SAFARI} Version/17.6 Safari/605.1.15"),
    (4, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (6, f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_CHROME} Safari/537.36 Edg/131.0.0.0"),
    (1, "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (19, f"Mozilla/5.0 (iPhone; {_IOS}) {_SAFARI} Version/17.6 Mobile/15E148 Safari/604.1"),
    (3, f"Mozilla/5.0 (iPhone; {_IOS}) {_SAFARI} CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"),
    (14, f"Mozilla/5.0 (Linux; Android 10; K) {_CHROME} Mobile Safari/537.36"),
    (3, "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"),
    (3, f"Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) {_SAFARI} Version/17.6 Mobile/15E148 "
        "Safari/604.1"),
    (1.5, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    (0.8, "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
    (0.7, "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"),
    (0.6, "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
          "+https://openai.com/gptbot)"),
    (0.4, "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"),
)  # fmt: skip

# CSS-pixel screen widths by the device class the user agent implies.
WIDTHS = {
    "desktop": ((1920, 30), (1536, 14), (1366, 12), (1440, 12), (1280, 10), (2560, 8), (1680, 6)),
    "mobile": ((390, 22), (393, 14), (412, 16), (375, 12), (414, 10), (430, 14), (360, 12)),
    "tablet": ((768, 20), (810, 25), (820, 25), (834, 15), (1024, 15)),
}
NO_WIDTH_SHARE = 0.08  # beacons that sent no width: the user agent decides the device

# (weight, referrer host, utm_source, utm_medium, utm_campaign, conversion rate)
CHANNELS: tuple[tuple[float, str, str, str, str, float], ...] = (
    (30, "", "", "", "", 0.030),
    (22, "google.com", "", "", "", 0.025),
    (3, "bing.com", "", "", "", 0.025),
    (1.5, "duckduckgo.com", "", "", "", 0.025),
    (2.5, "t.co", "", "", "", 0.012),
    (1, "x.com", "", "", "", 0.012),
    (3, "linkedin.com", "", "", "", 0.020),
    (3, "facebook.com", "", "", "", 0.015),
    (1.5, "instagram.com", "", "", "", 0.012),
    (2, "reddit.com", "", "", "", 0.015),
    (1, "news.ycombinator.com", "", "", "", 0.020),
    (1, "producthunt.com", "", "", "", 0.030),
    (1.5, "youtube.com", "", "", "", 0.015),
    (1, "substack.com", "", "", "", 0.040),
    (5, "", "newsletter", "email", "spring-sale", 0.080),
    (3, "", "newsletter", "email", "weekly-digest", 0.060),
    (4, "google.com", "google", "cpc", "brand-search", 0.055),
    (2, "google.com", "google", "cpc", "competitor-keywords", 0.035),
    (3, "facebook.com", "facebook", "paid-social", "retargeting", 0.045),
    (2, "linkedin.com", "linkedin", "social", "b2b-webinar", 0.050),
    (1.5, "t.co", "twitter", "social", "launch-week", 0.020),
    (1, "partnerblog.example", "partner", "referral", "affiliate", 0.040),
)

COUNTRIES = (
    ("US", 30), ("DE", 8), ("GB", 8), ("FR", 6), ("IN", 6), ("CA", 4), ("BR", 4), ("NL", 3),
    ("ES", 3), ("IT", 3), ("AU", 3), ("JP", 3), ("PL", 2), ("SE", 2), ("MX", 2), ("CH", 1),
    ("", 4),
)  # fmt: skip

TITLES = (
    "Spring Sale", "Product Launch", "Webinar Signup", "Free Trial", "Ebook Download",
    "Black Friday", "Early Access", "Pricing", "Case Study", "Newsletter", "Conference",
    "Summer Promo", "Mobile App", "Partner Program", "Demo Request", "Gift Guide",
)  # fmt: skip

RETURN_SHARE = 0.2  # visits by someone already seen on that page today
MORE_VIEWS = 0.3  # chance of each further view in a visit
FORM_AFTER_CLICK = 0.45  # of converting visits, how many also submit the form
ZIPF_EXPONENT = 1.1


@dataclass(slots=True)
class Demo:
    owner_id: uuid.UUID
    email: str
    password: str | None  # None when the account already existed
    pages: list[tuple[uuid.UUID, str]]  # (id, slug)


@dataclass(slots=True)
class Generated:
    events: int = 0
    views: int = 0
    conversions: int = 0
    bot_views: int = 0
    rollup_rows: int = 0
    visitor_rows: int = 0
    seconds: float = 0.0
    days: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class _Inbox:
    """A mailer that keeps what it is given: the demo account verifies itself
    with the token the auth service mails, as a person would."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.messages.append(message)


async def ensure_demo(
    db: Database,
    settings: Settings,
    clock: Clock,
    email: str,
    password: str | None,
    pages: int,
    *,
    existing: bool = False,
) -> Demo:
    """The demo owner, verified, with at least ``pages`` published pages:
    created through the auth and pages services. An account that exists
    already is used only when ``existing`` says so: synthetic traffic in a
    real account's analytics, and pages published there, cannot be told
    apart from its own afterwards."""
    inbox = _Inbox()
    auth = AuthService(db, settings, inbox, clock)
    async with db.read_primary() as session:
        user = await auth_repo.user_by_email(session, email)
    if user is not None and not existing:
        raise Conflict(
            f"{email} is an existing account; generating would publish pages in it, mark it "
            "verified and mix synthetic traffic into its analytics for good. Pass --existing "
            "if that is what you want, or give a new --email"
        )
    shown: str | None = None
    if user is None:
        shown = password or secrets.token_urlsafe(12)
        registration = await auth.register(email, shown)
        if not registration.created:
            # Registered meanwhile (another run): register answered a stand-in.
            raise Conflict(f"{email} was registered meanwhile; run again to use that account")
        user = registration.account
    if user.email_verified_at is None:
        if not inbox.messages:
            await auth.resend_verification(email)
        # The mail's last "token=" is the bare token (the first is in a URL).
        tokens = re.findall(r"token=([A-Za-z0-9_-]+)", inbox.messages[-1].get_content())
        assert tokens, "the verification mail carries a token"
        await auth.verify_email(tokens[-1])
    service = PageService(db, clock, TemplateCatalogue.load(), settings.public_url)
    published: list[tuple[uuid.UUID, str]] = []
    cursor: str | None = None
    while True:
        listing = await service.list_pages(user.id, status="published", cursor=cursor, limit=100)
        published.extend((page.id, page.slug) for page in listing.items)
        cursor = listing.next_cursor
        if cursor is None:
            break
    published.sort()  # oldest first: the same page stays the most popular on a rerun
    templates = [template.id for template in service.templates.all()]
    for index in range(len(published), pages):
        title = f"{TITLES[index % len(TITLES)]} {index // len(TITLES) + 1}"
        template = templates[index % len(templates)] if templates else None
        page = await service.create(user.id, PageCreate(title=title, template_id=template))
        page = await service.publish(user.id, page.id, None)
        published.append((page.id, page.slug))
    return Demo(user.id, email, shown, published[:pages])


async def generate_traffic(
    db: Database,
    clock: Clock,
    owner_id: uuid.UUID,
    pages: list[tuple[uuid.UUID, str]],
    events: int,
    days: int,
    seed: int = 0,
    progress: Callable[[str], None] = lambda _line: None,
) -> Generated:
    """Write ``events`` events over the last ``days`` days on ``pages``, their
    rollups, and the visitor-day state of today and yesterday as ingestion
    would have left it (older state is deleted by housekeeping anyway)."""
    started = time.perf_counter()
    now_ms = clock.now_ms()
    # Seeded, so a dataset can be made again: nothing here is secret.
    model = _Traffic(random.Random(seed), owner_id, pages, now_ms)  # noqa: S311
    result = Generated()
    owner_hex = owner_id.hex
    today = now_ms // MS_PER_DAY
    async with db.read_primary() as session:
        fresh = not await repository.has_rollups(
            session, [page_id for page_id, _ in pages], (now_ms - days * MS_PER_DAY) // MS_PER_HOUR
        )
    kept_visitors: dict[VisitorKey, VisitorDay] = {}
    day_count = today - (now_ms - days * MS_PER_DAY) // MS_PER_DAY + 1
    for day, budgets in _daily_budgets(model.rng, events, days, now_ms):
        visitors: dict[VisitorKey, VisitorDay] = {}
        rollups = Rollups()
        async with db.write(bulk=True) as session:
            await repository.begin_bulk(session)
            # Writing while the next chunk is made (in a thread) was tried:
            # +10 % on PostgreSQL, -7 % on SQLite, on two busy cores. Not kept.
            for rows in batched(model.day(budgets, visitors, rollups, result), CHUNK):
                await writes.copy_rows(session, "analytics_events", rows)
            counts = rollups.rows()
            owners = {page_hex: owner_hex for page_hex, *_ in counts}
            # COPY when no rollup row can exist yet; today, live ingestion
            # may be adding rows alongside, so add to them instead.
            if fresh and day < today:
                await writes.copy_rollups(session, counts, owners)
            else:
                await writes.add_rollups(session, counts, owners)
            result.rollup_rows += len(counts)
        if day >= today - 1:
            kept_visitors.update(visitors)
        result.days.append(day)
        elapsed = time.perf_counter() - started
        progress(
            f"day {len(result.days)}/{day_count}: {result.events:,} events, "
            f"{result.events / elapsed:,.0f}/s"
        )
    async with db.write(bulk=True) as session:
        await repository.begin_bulk(session)
        rows = [
            (visitor, day, page_hex, state.hours, state.conversion_hours, *state.attributes)
            for (visitor, day, page_hex), state in kept_visitors.items()
        ]
        await writes.copy_rows(session, "analytics_visitors", rows)
        result.visitor_rows = len(rows)
        await repository.set_stamps(session, [owner_id], clock.now_ms())
        await repository.refresh_statistics(session)
    result.seconds = time.perf_counter() - started
    return result


def _daily_budgets(
    rng: random.Random, events: int, days: int, now_ms: int
) -> Iterator[tuple[int, list[tuple[int, int, int]]]]:
    """Share ``events`` out over the hours of the last ``days`` days, by the
    diurnal and weekly curve with some noise: per day, the (first ms, end
    ms, events) of its hours, oldest day first."""
    start_ms = now_ms - days * MS_PER_DAY
    spans: list[tuple[int, int, int]] = []  # (hour, first ms, end ms)
    for hour in range(start_ms // MS_PER_HOUR, now_ms // MS_PER_HOUR + 1):
        lo = max(hour * MS_PER_HOUR, start_ms)
        hi = min((hour + 1) * MS_PER_HOUR, now_ms)
        if hi > lo:
            spans.append((hour, lo, hi))
    day_noise: dict[int, float] = {}
    weights = []
    for hour, lo, hi in spans:
        day = hour // 24
        noise = day_noise.setdefault(day, rng.uniform(0.85, 1.15))
        weight = _hour_weight(hour) * noise * rng.uniform(0.9, 1.1) * (hi - lo) / MS_PER_HOUR
        weights.append(weight)
    total = sum(weights) or 1.0
    shares = [events * weight / total for weight in weights]
    counts = [math.floor(share) for share in shares]
    # Largest remainders get the events left over, so the total is exact.
    by_remainder = sorted(range(len(shares)), key=lambda i: counts[i] - shares[i])
    for index in by_remainder[: events - sum(counts)]:
        counts[index] += 1
    current: int | None = None
    budgets: list[tuple[int, int, int]] = []
    for (hour, lo, hi), count in zip(spans, counts, strict=True):
        if current is not None and hour // 24 != current:
            yield current, budgets
            budgets = []
        current = hour // 24
        budgets.append((lo, hi, count))
    if current is not None:
        yield current, budgets


def _hour_weight(hour: int) -> float:
    """Relative traffic of an hour (UTC): a peak in the European afternoon, a
    second in the American evening, a quiet night; weekends lower."""
    of_day = hour % 24
    weight = (
        0.12
        + math.exp(-((of_day - 14.5) ** 2) / (2 * 3.5**2))
        + 0.45 * math.exp(-((of_day - 21) ** 2) / (2 * 2.5**2))
    )
    weekday = (hour // 24 + 3) % 7  # day 0 (1970-01-01) was a Thursday; Monday is 0
    return weight * (0.6 if weekday >= 5 else 1.05 if weekday == 0 else 1.0)


def _cumulative(weights: Any) -> list[float]:
    return list(accumulate(weights))


class _Traffic:
    """Draws visits and turns them into counted raw rows."""

    def __init__(
        self,
        rng: random.Random,
        owner_id: uuid.UUID,
        pages: list[tuple[uuid.UUID, str]],
        now_ms: int,
    ) -> None:
        self.rng = rng
        # Mixed into visitor hashes and event ids: a second run with the same
        # seed adds new visitors and events instead of colliding with the
        # first run's (same seed and same clock: the same data).
        self.salt = now_ms * 0x9E3779B97F4A7C15 & (1 << 64) - 1
        self.owner_hex = owner_id.hex
        self.pages = [(page_id.hex, f"/{slug}") for page_id, slug in pages]
        self.page_weights = _cumulative(
            1 / (rank + 1) ** ZIPF_EXPONENT for rank in range(len(pages))
        )
        self.agents: list[Agent] = [classify_agent(agent) for _, agent in AGENTS]
        self.agent_weights = _cumulative(weight for weight, _ in AGENTS)
        self.widths = {
            device: ([w for w, _ in table], _cumulative(share for _, share in table))
            for device, table in WIDTHS.items()
        }
        self.channels = CHANNELS
        self.channel_weights = _cumulative(channel[0] for channel in CHANNELS)
        self.countries = [code for code, _ in COUNTRIES]
        self.country_weights = _cumulative(weight for _, weight in COUNTRIES)
        # Today's human visitors: (page, visitor, width, entry, conversion rate).
        self.seen: list[tuple[int, str, int | None, tuple[str, ...], float]] = []

    def _pick(self, cumulative: list[float]) -> int:
        return bisect(cumulative, self.rng.random() * cumulative[-1])

    def day(
        self,
        budgets: list[tuple[int, int, int]],
        visitors: dict[VisitorKey, VisitorDay],
        rollups: Rollups,
        result: Generated,
    ) -> Iterator[tuple[Any, ...]]:
        """The raw rows of one day, hour by hour in arrival order, counted
        into ``rollups`` and ``visitors`` as they are made."""
        self.seen = []
        owner = self.owner_hex
        for lo, hi, budget in budgets:
            hour = lo // MS_PER_HOUR
            drawn = self._hour(lo, hi, budget)
            drawn.sort()  # by id, which starts with the time: arrival order
            for event_id, ms, kind, name, page, visitor, width, entry, is_bot in drawn:
                page_hex, path = self.pages[page]
                is_view = kind == VIEW
                attributes = count_event(
                    rollups,
                    visitors,
                    page_hex,
                    hour,
                    visitor,
                    is_view=is_view,
                    is_bot=is_bot,
                    entry=entry,
                )
                if is_view:
                    if is_bot:
                        result.bot_views += 1
                    else:
                        result.views += 1
                elif not is_bot:
                    result.conversions += 1
                yield (
                    event_id,
                    page_hex,
                    owner,
                    kind,
                    name,
                    None,
                    hour,
                    ms,
                    ms + 800 + (ms % 1500),  # ingested a second or two later
                    visitor,
                    is_bot,
                    path,
                    width,
                    *attributes,
                )
            result.events += len(drawn)

    def _hour(self, lo: int, hi: int, budget: int) -> list[tuple[Any, ...]]:
        """Events of ``budget`` visits' worth within [lo, hi), unordered."""
        rng = self.rng
        drawn: list[tuple[Any, ...]] = []
        span = hi - lo
        while len(drawn) < budget:
            if self.seen and rng.random() < RETURN_SHARE:
                page, visitor, width, entry, rate = self.seen[int(rng.random() * len(self.seen))]
                is_bot = False
            else:
                page = self._pick(self.page_weights)
                visitor = f"{rng.getrandbits(64) ^ self.salt:016x}"
                agent = self.agents[self._pick(self.agent_weights)]
                is_bot = agent.is_bot
                channel = self.channels[self._pick(self.channel_weights)]
                rate = channel[5]
                if is_bot or rng.random() < NO_WIDTH_SHARE or agent.device not in self.widths:
                    width = None
                else:
                    widths, cumulative = self.widths[agent.device]
                    width = widths[self._pick(cumulative)]
                entry = (
                    *channel[1:5],
                    device_from_width(width, agent),
                    agent.browser,
                    agent.os,
                    self.countries[self._pick(self.country_weights)],
                )
                if not is_bot:
                    self.seen.append((page, visitor, width, entry, rate))
            ms = lo + int(rng.random() * span)
            kinds: list[tuple[str, str | None]] = [(VIEW, None)]
            while len(kinds) < 8 and rng.random() < MORE_VIEWS:
                kinds.append((VIEW, None))
            if not is_bot and rng.random() < rate:
                kinds.insert(int(rng.random() * len(kinds)) + 1, (EVENT, "cta_click"))
                if rng.random() < FORM_AFTER_CLICK:
                    kinds.append((EVENT, "form_submit"))
            for kind, name in kinds[: budget - len(drawn)]:
                drawn.append((self._id(ms), ms, kind, name, page, visitor, width, entry, is_bot))
                ms = min(ms + 5_000 + int(rng.random() * 60_000), hi - 1)
        return drawn

    def _id(self, ms: int) -> str:
        """A UUID version 7 made of the event time and seeded randomness, as
        32 hex digits: unique, time-ordered, reproducible with the seed."""
        bits = self.rng.getrandbits(74) ^ self.salt
        value = ms << 80 | 0x7 << 76 | (bits >> 62) << 64 | 0b10 << 62 | (bits & (1 << 62) - 1)
        return f"{value:032x}"
