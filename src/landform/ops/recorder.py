"""Latency and outcomes, recorded per worker into HdrHistograms over sliding
windows, so percentiles merge exactly across workers and replicas (adding
histograms is exact; averaging percentiles is not).

Recording is on the hot path, so it only appends a tuple to a list. Once a
second a fold counts the pending values (``Counter``, in C) and adds each
distinct value to the histograms once, with its count: a few hundred
``record_value`` calls a second instead of one per request.

Histograms live in slots: 10-second slots for the last 5 minutes (the 1 and
5 minute windows) and 1-minute slots for the last hour. A window is the
merge of its slots. Keys are spec components (``api_gateway``,
``graphql``, ``database``, ``cache``, ``file_upload``, ``page_generation``,
``websocket_connect``) and routes (``route:GET /landing-pages/{page_id}``)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

# 1 µs to 10 minutes, two significant digits (1 % error), 4-byte counts.
LOWEST_US = 1
HIGHEST_US = 600_000_000
DIGITS = 2
WORD = 4

COMPONENTS = (
    "api_gateway",
    "graphql",
    "database",
    "cache",
    "file_upload",
    "page_generation",
    "websocket_connect",
)

# Every request is observed once, by route; these count it again.
GATEWAY = "api_gateway"
COMPONENT_OF_ROUTE = {
    "route:POST /graphql": "graphql",
    "route:GET /graphql": "graphql",
    "route:POST /files/upload": "file_upload",
}

# (ring name, slot seconds, slots kept)
RINGS = (("short", 10, 30), ("long", 60, 60))
WINDOWS = {"1m": ("short", 60), "5m": ("short", 300), "1h": ("long", 3600)}


def percentiles_and_mean(
    histogram: HdrHistogram, percentiles: tuple[float, ...]
) -> tuple[dict[float, int], float]:
    """The values at ``percentiles`` and the mean, exactly as hdrh's
    ``get_value_at_percentile`` and ``get_mean_value`` give them, in one
    pass over the counts that visits only the recorded ones (hdrh walks every
    bucket once per percentile: 50 ms a histogram where this takes 1)."""
    total = histogram.get_total_count()
    if not total:
        return {p: 0 for p in percentiles}, 0.0
    wanted = sorted((histogram.get_target_count_at_percentile(p), p) for p in percentiles)
    found: dict[float, int] = {}
    running = weighted = 0
    next_wanted = 0
    middles, highests = _index_values(histogram)
    for index, count in enumerate(histogram.counts):
        if not count:
            continue
        running += count
        weighted += count * middles[index]
        while next_wanted < len(wanted) and running >= wanted[next_wanted][0]:
            found[wanted[next_wanted][1]] = highests[index]
            next_wanted += 1
        if running >= total:
            break
    return found, weighted / total


def cumulative_counts_and_mean(
    histogram: HdrHistogram, bounds: tuple[int, ...]
) -> tuple[list[int], float]:
    """How many values are at or below each of ``bounds`` (ascending), and
    the mean as hdrh's ``get_mean_value`` gives it, in one pass over the
    recorded counts (hdrh's recorded iterator costs ~12 ms a histogram in
    Python: a scrape of a few dozen stalled the worker)."""
    middles, highests = _index_values(histogram)
    below = [0] * len(bounds)
    first = weighted = 0  # the first bound a value can still be under
    for index, count in enumerate(histogram.counts):
        if not count:
            continue
        weighted += count * middles[index]
        while first < len(bounds) and highests[index] > bounds[first]:
            first += 1
        if first < len(bounds):
            below[first] += count
    running = 0
    for position, count in enumerate(below):
        running += count
        below[position] = running
    total = histogram.get_total_count()
    return below, (weighted / total if total else 0.0)


_INDEX_VALUES: dict[tuple[int, int, int], tuple[list[int], list[int]]] = {}


def _index_values(histogram: HdrHistogram) -> tuple[list[int], list[int]]:
    """Per counts index: the value hdrh's mean takes for it, and the highest
    value it holds: the same for every histogram of one layout."""
    layout = (
        histogram.lowest_trackable_value,
        histogram.highest_trackable_value,
        histogram.significant_figures,
    )
    found = _INDEX_VALUES.get(layout)
    if found is None:
        values = [histogram.get_value_from_index(i) for i in range(histogram.counts_len)]
        found = _INDEX_VALUES[layout] = (
            [histogram._hdr_median_equiv_value(v) for v in values],
            [histogram.get_highest_equivalent_value(v) for v in values],
        )
    return found


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS, word_size=WORD)


@dataclass
class Slot:
    """One slot of one ring: a histogram per key, and request outcomes."""

    start: int
    histograms: dict[str, HdrHistogram] = field(default_factory=dict)
    # key -> [requests, failures (5xx)]; only request keys have outcomes
    outcomes: dict[str, list[int]] = field(default_factory=dict)
    # Encoding compresses the counts: done again only for what changed.
    encoded: dict[str, str] = field(default_factory=dict)

    def histogram(self, key: str) -> HdrHistogram:
        found = self.histograms.get(key)
        if found is None:
            found = self.histograms[key] = new_histogram()
        self.encoded.pop(key, None)
        return found

    def encodings(self) -> dict[str, str]:
        for key, histogram in self.histograms.items():
            if key not in self.encoded:
                self.encoded[key] = histogram.encode().decode()
        return self.encoded


class Ring:
    def __init__(self, slot_seconds: int, kept: int) -> None:
        self.slot_seconds = slot_seconds
        self.kept = kept
        self.slots: dict[int, Slot] = {}

    def slot(self, now: float) -> Slot:
        start = int(now // self.slot_seconds) * self.slot_seconds
        found = self.slots.get(start)
        if found is None:
            found = self.slots[start] = Slot(start)
            oldest = start - self.slot_seconds * self.kept
            for stale in [s for s in self.slots if s <= oldest]:
                del self.slots[stale]
        return found


class Recorder:
    """This worker's measurements. ``observe`` is the hot path; ``fold``
    runs once a second (the ops sampler calls it)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.rings = {name: Ring(seconds, kept) for name, seconds, kept in RINGS}
        self.pending: list[tuple[str, int, bool]] = []
        # Counts of things that are no request (cache lookups), for the
        # windows: added to the slots at the next fold.
        self.pending_counts: Counter[str] = Counter()
        self.started = clock()
        # Since start, for Prometheus (its counters and histograms only grow).
        self.totals: Counter[str] = Counter()
        self.cumulative: dict[str, HdrHistogram] = {}

    def observe(self, key: str, micros: int, failed: bool = False) -> None:
        self.pending.append((key, micros, failed))

    def count(self, key: str, amount: int) -> None:
        """``amount`` more of ``key`` (``cache:lookups``…) in the windows."""
        if amount > 0:
            self.pending_counts[key] += amount

    def fold(self) -> None:
        pending, self.pending = self.pending, []
        tallied, self.pending_counts = self.pending_counts, Counter()
        if not pending and not tallied:
            return
        now = self.clock()
        slots = [ring.slot(now) for ring in self.rings.values()]
        for key, amount in tallied.items():
            for slot in slots:
                slot.outcomes.setdefault(key, [0, 0])[0] += amount
        # Counted raw (in C), then rounded to 8 significant bits (finer
        # than the histograms' own precision), so that each histogram gets
        # a few hundred record calls however many requests there were.
        values: Counter[tuple[str, int]] = Counter()
        outcomes: Counter[tuple[str, bool]] = Counter()
        for (key, micros, failed), count in Counter(pending).items():
            values[key, _rounded(min(max(micros, LOWEST_US), HIGHEST_US))] += count
            if key.startswith("route:"):  # a request: it has an outcome
                outcomes[key, failed] += count
        # Each value is recorded once, into a histogram of this fold for its
        # key; those are then added (in C, hdrh's add_array) to the keys that
        # count them again, to every slot and to the running totals. hdrh
        # records in Python: recording every value into each of those
        # directly took 17 ms for 3,000 requests over 30 routes — a stall of
        # the event loop every time this worker published its measurements.
        folded: dict[str, HdrHistogram] = {}
        for (key, value), count in values.items():
            histogram = folded.get(key)
            if histogram is None:
                histogram = folded[key] = new_histogram()
            histogram.record_value(value, count)
        for key in [key for key in folded if key.startswith("route:")]:
            for each in _counted_as(key)[1:]:
                into = folded.get(each)
                if into is None:
                    into = folded[each] = new_histogram()
                into.add(folded[key])
        for key, histogram in folded.items():
            for slot in slots:
                slot.histogram(key).add(histogram)
            since_start = self.cumulative.get(key)
            if since_start is None:
                since_start = self.cumulative[key] = new_histogram()
            since_start.add(histogram)
        for (route, failed), count in outcomes.items():
            for key in _counted_as(route):
                self.totals[key] += count
                if failed:
                    self.totals[key + ":failed"] += count
                for slot in slots:
                    counts = slot.outcomes.setdefault(key, [0, 0])
                    counts[0] += count
                    if failed:
                        counts[1] += count

    def snapshot(self) -> dict[str, Any]:
        """Every slot, encoded (compressed HdrHistogram payloads), for
        merging in another process or replica."""
        rings: dict[str, Any] = {
            name: {
                str(slot.start): {
                    "histograms": slot.encodings(),
                    "outcomes": slot.outcomes,
                }
                for slot in ring.slots.values()
            }
            for name, ring in self.rings.items()
        }
        rings["cumulative"] = {k: h.encode().decode() for k, h in self.cumulative.items()}
        return rings


# The operator's own probes and scrapes: timed as routes, but no user's
# request, so not the API Gateway's (a slow scrape is no slow API).
OPERATIONAL_METHODS = ("GET", "HEAD")
OPERATIONAL_PATHS = ("/healthz", "/readyz", "/metrics")
OPERATIONAL_ROUTES = frozenset(
    f"route:{method} {path}" for method in OPERATIONAL_METHODS for path in OPERATIONAL_PATHS
)


def _counted_as(key: str) -> tuple[str, ...]:
    if not key.startswith("route:") or key in OPERATIONAL_ROUTES:
        return (key,)
    component = COMPONENT_OF_ROUTE.get(key)
    return (key, GATEWAY) if component is None else (key, GATEWAY, component)


def _rounded(micros: int) -> int:
    shift = micros.bit_length() - 8
    return micros if shift <= 0 else (micros >> shift) << shift


@dataclass
class Merged:
    """Histograms and outcomes of one window, merged over slots, workers
    and replicas."""

    seconds: float
    histograms: dict[str, HdrHistogram] = field(default_factory=dict)
    outcomes: dict[str, list[int]] = field(default_factory=dict)

    def add_histogram(self, key: str, histogram: HdrHistogram) -> None:
        found = self.histograms.get(key)
        if found is None:
            # The decoded histograms' word size (hdrh decodes to 8 bytes), so
            # that adding takes hdrh's array-at-once path, not a Python loop
            # over every bucket (80 ms for an /ops/performance answer).
            found = self.histograms[key] = HdrHistogram(
                LOWEST_US, HIGHEST_US, DIGITS, word_size=histogram.word_size
            )
        found.add(histogram)

    def add_outcomes(self, key: str, counts: Iterable[int]) -> None:
        requests, failures = counts
        found = self.outcomes.setdefault(key, [0, 0])
        found[0] += requests
        found[1] += failures


def window_span(window: str, now: float, since: float | None = None) -> tuple[str, float]:
    """The ring and the seconds back from ``now`` that a window covers:
    a named one, or (``since``) from that moment on, in the finest ring that
    reaches it (10 s slots up to 5 minutes back, then 60 s slots, the last
    hour at most)."""
    if since is None:
        return WINDOWS[window]
    seconds = min(max(1.0, now - since), float(WINDOWS["1h"][1]))
    return ("short" if seconds <= WINDOWS["5m"][1] else "long"), seconds


def merge_window(
    snapshots: Iterable[dict[str, Any]],
    window: str,
    now: float,
    routes: bool = True,
    since: float | None = None,
) -> Merged:
    """One window out of several workers' snapshots (``Recorder.snapshot``);
    without the per-route histograms unless ``routes``."""
    ring_name, seconds = window_span(window, now, since)
    slot_seconds = dict((name, s) for name, s, _ in RINGS)[ring_name]
    merged = Merged(seconds)
    # Slots that ended before the window began are out (a moment still to
    # come, for ``since``, leaves every slot out).
    begins = max(now - seconds, since) if since is not None else now - seconds
    for snapshot in snapshots:
        for start, slot in snapshot.get(ring_name, {}).items():
            if int(start) + slot_seconds <= begins:
                continue
            for key, payload in slot["histograms"].items():
                if routes or not key.startswith("route:"):
                    merged.add_histogram(key, HdrHistogram.decode(payload.encode()))
            for key, counts in slot["outcomes"].items():
                merged.add_outcomes(key, counts)
    return merged
