"""What a load generator measured, second by second: per operation an
HdrHistogram of latencies corrected for coordinated omission (from the
intended send time), one of service times (from the actual send), and
counts of requests, errors and statuses. Generators send each second as one
JSON line; the coordinator merges them exactly (histograms add)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from landform.ops.recorder import DIGITS, HIGHEST_US, LOWEST_US, percentiles_and_mean


def new_histogram() -> HdrHistogram:
    # The server's range and precision, at hdrh's default word size: what
    # decoding gives, so merging decoded seconds takes hdrh's array path.
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def _micros(seconds: float) -> int:
    return min(HIGHEST_US, max(LOWEST_US, int(seconds * 1_000_000)))


@dataclass
class OperationSample:
    latency: HdrHistogram = field(default_factory=new_histogram)  # from intended time
    service: HdrHistogram = field(default_factory=new_histogram)  # from actual send
    requests: int = 0
    errors: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    bytes: int = 0  # of the answers' bodies: what a download throughput is made of

    def record(
        self, latency: float, service: float, status: str, failed: bool, size: int = 0
    ) -> None:
        self.latency.record_value(_micros(latency))
        self.service.record_value(_micros(service))
        self.requests += 1
        self.errors += failed
        self.statuses[status] += 1
        self.bytes += size

    def add(self, other: OperationSample) -> None:
        self.latency.add(other.latency)
        self.service.add(other.service)
        self.requests += other.requests
        self.errors += other.errors
        self.statuses.update(other.statuses)
        self.bytes += other.bytes

    def encode(self) -> dict[str, Any]:
        return {
            "latency": self.latency.encode().decode(),
            "service": self.service.encode().decode(),
            "requests": self.requests,
            "errors": self.errors,
            "statuses": dict(self.statuses),
            "bytes": self.bytes,
        }

    @classmethod
    def decode(cls, data: dict[str, Any]) -> OperationSample:
        sample = cls(
            requests=int(data["requests"]),
            errors=int(data["errors"]),
            bytes=int(data.get("bytes", 0)),
        )
        sample.latency.add(HdrHistogram.decode(data["latency"].encode()))
        sample.service.add(HdrHistogram.decode(data["service"].encode()))
        sample.statuses.update({str(k): int(v) for k, v in data["statuses"].items()})
        return sample


@dataclass
class Second:
    """One second of a run (``at``: seconds since the run started)."""

    at: int
    operations: dict[str, OperationSample] = field(default_factory=dict)
    users: int = 0

    def sample(self, operation: str) -> OperationSample:
        found = self.operations.get(operation)
        if found is None:
            found = self.operations[operation] = OperationSample()
        return found

    def merged(self) -> OperationSample:
        total = OperationSample()
        for sample in self.operations.values():
            total.add(sample)
        return total

    def encode(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "users": self.users,
            "operations": {name: s.encode() for name, s in self.operations.items()},
        }

    @classmethod
    def decode(cls, data: dict[str, Any]) -> Second:
        return cls(
            int(data["at"]),
            {name: OperationSample.decode(s) for name, s in data["operations"].items()},
            int(data.get("users", 0)),
        )


def milliseconds(histogram: HdrHistogram, percentile: float) -> float:
    values, _ = percentiles_and_mean(histogram, (percentile,))
    return round(values[percentile] / 1000, 3)


def summary(sample: OperationSample, seconds: float) -> dict[str, Any]:
    """Latencies in milliseconds, the rate over ``seconds``."""
    latency = sample.latency
    values, mean = percentiles_and_mean(latency, (50, 95, 99))
    count = latency.get_total_count()
    return {
        "requests": sample.requests,
        "errors": sample.errors,
        "requestsPerSecond": round(sample.requests / seconds, 2) if seconds else 0.0,
        "averageResponseTime": round(mean / 1000, 3),
        "p50ResponseTime": round(values[50] / 1000, 3),
        "p95ResponseTime": round(values[95] / 1000, 3),
        "p99ResponseTime": round(values[99] / 1000, 3),
        "maxResponseTime": round(latency.get_max_value() / 1000, 3) if count else 0.0,
        # Without the wait for a late send: what a closed-loop tool reports.
        "serviceP99": milliseconds(sample.service, 99),
        "statuses": dict(sorted(sample.statuses.items())),
    }
