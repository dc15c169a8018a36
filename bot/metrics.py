"""The copilot's own Prometheus metrics, on a registry per app (no process-global state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# The systems the copilot calls; `upstream_errors` counts failed calls by these names.
Upstream = Literal["prometheus", "pagerduty", "slack", "teams", "anthropic", "chroma"]
UPSTREAMS: tuple[Upstream, ...] = ("prometheus", "pagerduty", "slack", "teams", "anthropic",
                                   "chroma")
# The Messages API's usage fields, by the `kind` label they are counted under.
TOKEN_KINDS = {"input_tokens": "input", "output_tokens": "output",
               "cache_read_input_tokens": "cache_read",
               "cache_creation_input_tokens": "cache_creation"}


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
            "sre_copilot_inbox_processed", "Inbox items processed, by source and outcome "
            "(done, retry, failed)", ["source", "outcome"], registry=r)
        self.processing_latency = Histogram(
            "sre_copilot_inbox_processing_seconds",
            "Time from an item's receipt to its processing being committed", ["source"],
            registry=r, buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.outbox_failed = Gauge(
            "sre_copilot_outbox_failed", "Chat posts given up (Slack or Teams refused them)",
            registry=r)
        self.outbox_pending = Gauge(
            "sre_copilot_outbox_pending", "Chat posts started but neither made nor given up "
            "(in flight, or left by a worker that stopped mid-post)", registry=r)
        self.upstream_errors = Counter(
            "sre_copilot_upstream_errors", "Failed calls to the systems the copilot depends "
            "on, by system", ["system"], registry=r)
        self.model_latency = Histogram(
            "sre_copilot_model_request_duration_seconds",
            "Time of each Anthropic Messages API call, the SDK's retries included",
            registry=r, buckets=(0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120))
        self.model_tokens = Counter(
            "sre_copilot_model_tokens", "Tokens of Anthropic Messages API calls, by kind "
            "(input, output, cache_read, cache_creation)", ["kind"], registry=r)
        # Every series exists from the start at 0, so `rate()` and alerts see the first error.
        for system in UPSTREAMS:
            self.upstream_errors.labels(system)
        for kind in TOKEN_KINDS.values():
            self.model_tokens.labels(kind)

    def upstream_failed(self, system: Upstream) -> None:
        """One failed call to `system`."""
        self.upstream_errors.labels(system).inc()
