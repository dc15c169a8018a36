"""The copilot's own Prometheus metrics, on a registry per app (no process-global state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.http_requests = Counter(
            "sre_copilot_http_requests", "HTTP requests answered, by route and status code",
            ["route", "method", "status"], registry=r)
        self.http_latency = Histogram(
            "sre_copilot_http_request_duration_seconds", "Time to answer an HTTP request",
            ["route"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.inbox_accepted = Counter(
            "sre_copilot_inbox_accepted", "Webhook items stored in the inbox", ["source"],
            registry=r)
        self.inbox_duplicates = Counter(
            "sre_copilot_inbox_duplicates", "Webhook items ignored as repeats of a stored key",
            ["source"], registry=r)
        self.inbox_depth = Gauge(
            "sre_copilot_inbox_depth", "Inbox items waiting to be processed", registry=r)
        self.inbox_failed = Gauge(
            "sre_copilot_inbox_failed", "Inbox items given up after their last attempt",
            registry=r)
        self.inbox_oldest_age = Gauge(
            "sre_copilot_inbox_oldest_age_seconds", "Age of the oldest waiting inbox item",
            registry=r)
        self.items_processed = Counter(
            "sre_copilot_inbox_processed", "Inbox items processed, by source and outcome",
            ["source", "outcome"], registry=r)
        self.processing_latency = Histogram(
            "sre_copilot_inbox_processing_seconds",
            "Time from an item's receipt to its processing being committed", ["source"],
            registry=r, buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
