"""Replaying a generated alert stream into a real Alertmanager configured as kube-prometheus-stack
configures it, on an accelerated clock: the configuration (`kube_prometheus_config`) and the
replayer (`Replayer`). Shared by the end-to-end scenario (`tests/scenarios/test_noise_replay.py`)
and the benchmark that scores the product itself on each generator
(`tests/bench/noise_replay.py`).

`scale` is stream seconds per wall-clock second: Alertmanager's waits are divided by it, and so
are the two windows the copilot is given (`settings_env`); the copilot derives the rest.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from tests.fakes.alertmanager_server import iso


class ReplayedAlert(Protocol):
    labels: dict[str, str]
    starts_at: float
    ends_at: float | None


class ReplayedStream(Protocol):
    alerts: list[Any]
    duration_s: float


def settings_env(scale: float) -> dict[str, str]:
    """The copilot's two windows at their defaults (300 s, 120 s), accelerated."""
    return {"SRE_COPILOT_CORRELATION_WINDOW_SECONDS": str(300 / scale),
            "SRE_COPILOT_NOISE_HOLD_SECONDS": str(120 / scale)}


def kube_prometheus_config(webhook_url: str, token: str, scale: float) -> dict[str, Any]:
    """kube-prometheus-stack's Alertmanager configuration (its defaults, waits scaled), with
    Watchdog routed to the copilot (the README's route for the dead man's switch)."""
    receiver = {"name": "copilot", "webhook_configs": [{
        "url": webhook_url, "send_resolved": True,
        "http_config": {"authorization": {"type": "Bearer", "credentials": token}}}]}
    ms = lambda seconds: f"{int(seconds / scale * 1000)}ms"  # noqa: E731
    return {
        "route": {"receiver": "copilot", "group_by": ["namespace"],
                  "group_wait": ms(30), "group_interval": ms(300),
                  "repeat_interval": "12h",
                  "routes": [{"receiver": "copilot", "matchers": ['alertname = "Watchdog"'],
                              "group_wait": "0s", "group_interval": ms(300 / 4),
                              "repeat_interval": ms(300 / 2)},
                             {"receiver": "null", "matchers": ['alertname = "InfoInhibitor"']}]},
        "inhibit_rules": [
            {"source_matchers": ['severity = "critical"'],
             "target_matchers": ['severity =~ "warning|info"'],
             "equal": ["namespace", "alertname"]},
            {"source_matchers": ['severity = "warning"'], "target_matchers": ['severity = "info"'],
             "equal": ["namespace", "alertname"]},
            {"source_matchers": ['alertname = "InfoInhibitor"'],
             "target_matchers": ['severity = "info"'], "equal": ["namespace"]}],
        "receivers": [receiver, {"name": "null"}],
    }


class Replayer:
    """Pushes the stream's alerts into Alertmanager at their (scaled) times, as Prometheus
    would: a firing alert re-sent with a far end, a resolved one with its end."""

    def __init__(self, am_url: str, stream: ReplayedStream, start: datetime, scale: float) -> None:
        self.url, self.stream, self.start, self.scale = am_url, stream, start, scale
        self.errors: list[str] = []

    def at(self, seconds: float) -> datetime:
        return self.start + timedelta(seconds=seconds / self.scale)

    def stream_seconds(self, when: datetime) -> float:
        """The stream's time of a wall-clock instant (the inverse of `at`)."""
        return (when - self.start).total_seconds() * self.scale

    def run(self, stop_watchdog_after: float) -> None:
        events = []
        for a in self.stream.alerts:
            events.append((a.starts_at, a, False))
            if a.ends_at is not None and a.ends_at < self.stream.duration_s:
                events.append((a.ends_at, a, True))
        events.sort(key=lambda e: (e[0], e[2]))
        with httpx.Client(timeout=10) as http:
            for at, a, ends in events:
                wait = (self.at(at) - datetime.now(UTC)).total_seconds()
                if wait > 0:
                    time.sleep(wait)
                self._post(http, a, ends=self.at(at) if ends else None)
            time.sleep(max(0.0, (self.at(stop_watchdog_after) - datetime.now(UTC))
                           .total_seconds()))
            watchdog = next(a for a in self.stream.alerts if a.labels["alertname"] == "Watchdog")
            self._post(http, watchdog, ends=datetime.now(UTC))

    def _post(self, http: httpx.Client, a: ReplayedAlert, *, ends: datetime | None) -> None:
        body = [{"labels": a.labels, "annotations": getattr(a, "annotations", {}),
                 "startsAt": iso(self.at(a.starts_at)),
                 "endsAt": iso(ends or self.at(a.starts_at) + timedelta(hours=6)),
                 "generatorURL": "http://prometheus.test/graph"}]
        r = http.post(f"{self.url}/api/v2/alerts", json=body)
        if r.status_code != 200:
            self.errors.append(f"{r.status_code} {r.text[:200]}")
