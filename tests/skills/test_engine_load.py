"""The evidence engine on a surge of traffic (a hand-built snapshot): when the entry's own
traffic triples and a dependency saturates under it, the entry's surge is the cause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from skills.context import SignalData, Snapshot
from skills.hypotheses.engine import rank
from skills.types import Series

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
END = T0 + timedelta(hours=2)
ONSET = END - timedelta(minutes=20)


def _signal(service: str, signal: str, level: float, jump: float, *, target: str | None = None,
            late: float = 0.0, seed: int = 0) -> SignalData:
    times = T0.timestamp() + np.arange(0, 7200, 15.0)
    noise = 1 + np.random.default_rng(seed).normal(0, 0.03, len(times))
    onset = (ONSET + timedelta(minutes=late)).timestamp()
    values = np.where(times >= onset, jump, level) * noise
    return SignalData(service=service, signal=signal, target=target,
                      series=Series({}, times, values),
                      query=f'{signal}{{service="{service}"}}')


def test_a_surge_at_the_entry_is_named_over_the_dependency_it_saturated() -> None:
    snap = Snapshot(
        service="frontend", at=END, start=T0, end=END, step=15.0,
        scope=["frontend", "api"], edges=[("frontend", "api")],
        signals=[_signal("frontend", "traffic", 100, 330, seed=1),
                 _signal("frontend", "latency", 0.10, 0.50, late=2, seed=2),
                 _signal("frontend", "client_traffic", 100, 330, target="api", seed=3),
                 _signal("frontend", "client_latency", 0.05, 0.45, target="api", late=2,
                         seed=4),
                 _signal("api", "traffic", 100, 330, seed=5),
                 _signal("api", "latency", 0.05, 0.45, late=2, seed=6),
                 _signal("api", "cpu", 0.4, 0.98, late=1, seed=7)])
    inv = rank(snap)
    top = inv.hypotheses[0]
    assert top.cause.service == "frontend"
    assert top.cause.kind == "traffic"
    assert inv.verdict.startswith("Look at frontend first")
