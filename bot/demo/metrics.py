"""The demo's metrics: two hours of the bundled incident's golden signals, as the default
queries would return them from Prometheus — recorded, not fetched (the demo runs with no
servers). Evidence built from them says so (`source="demo recording"`)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from skills.context import ChangeRecord, SignalData, Snapshot
from skills.prometheus.golden import GoldenSignals
from skills.types import Series

STEP = 15.0
EDGES = [("frontend", "checkout"), ("checkout", "payments"), ("checkout", "inventory-db")]
# (service, signal) → (baseline level, relative noise, level after onset or None)
LEVELS: dict[tuple[str, str], tuple[float, float, float | None]] = {
    ("frontend", "traffic"): (180.0, 0.04, None),
    ("frontend", "errors"): (0.002, 0.3, 0.041),
    ("frontend", "latency"): (0.31, 0.05, 0.62),
    ("frontend", "cpu"): (0.42, 0.05, None),
    ("frontend", "memory"): (310e6, 0.01, None),
    ("checkout", "traffic"): (64.0, 0.04, None),
    ("checkout", "errors"): (0.003, 0.3, 0.124),
    ("checkout", "latency"): (0.42, 0.05, 2.8),
    ("checkout", "cpu"): (0.55, 0.05, 0.61),
    ("checkout", "memory"): (520e6, 0.01, None),
    ("payments", "traffic"): (31.0, 0.05, None),
    ("payments", "errors"): (0.001, 0.3, None),
    ("payments", "latency"): (0.18, 0.05, None),
    ("inventory-db", "latency"): (0.012, 0.06, None),
    ("inventory-db", "cpu"): (0.35, 0.05, None),
}


def snapshot(*, service: str, at: datetime, onset: datetime, deploy_at: datetime,
             window: timedelta = timedelta(hours=2), seed: int = 7) -> Snapshot:
    rng = np.random.default_rng(seed)
    golden = GoldenSignals()
    start = at - window
    times = np.arange(start.timestamp(), at.timestamp() + 1, STEP)
    ramp = np.clip((times - onset.timestamp()) / 120.0, 0.0, 1.0)  # a two-minute rise
    snap = Snapshot(service=service, at=at, start=start, end=at, step=STEP,
                    scope=["checkout", "payments", "inventory-db", "frontend"], edges=EDGES,
                    source="demo recording")
    for (svc, signal), (level, noise, after) in LEVELS.items():
        base = level * (1 + noise * rng.standard_normal(len(times)))
        values = base if after is None else base + ramp * (after - level) * (
            1 + 0.05 * rng.standard_normal(len(times)))
        snap.signals.append(SignalData(
            service=svc, signal=signal, query=golden.for_services(golden.signals[signal], [svc]),
            series=Series({"service": svc}, times, np.maximum(values, 0.0))))
    client = golden.for_services(golden.client_signals["client_errors"], ["frontend"])
    seen = 0.002 * (1 + 0.3 * rng.standard_normal(len(times))) + ramp * 0.118
    snap.signals.append(SignalData(service="frontend", signal="client_errors", query=client,
                                   series=Series({"target": "checkout"}, times,
                                                 np.maximum(seen, 0.0)), target="checkout"))
    snap.changes = [ChangeRecord(service="checkout", kind="deploy", source="demo recording",
                                 occurred_at=deploy_at, version="v2.14.0",
                                 previous_version="v2.13.2",
                                 description="version v2.13.2 → v2.14.0",
                                 query=golden.render(golden.versions, services="checkout"))]
    return snap
