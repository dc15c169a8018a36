"""The naive baseline every root-cause method is scored beside: the deepest anomalous service by
robust z-score.

On the same series the engine sees (the alerting service's scope: golden signals per service and
what each caller sees of its targets), each service gets its largest robust score in the last
30 minutes against the 90 minutes before — |x − median| / (1.4826 · MAD), a rise for errors,
latency, CPU and memory, either way for traffic. A service scoring ≥ 3 is anomalous. Anomalous
services are ranked deepest first (hops from the alerting service along calls), ties by score;
the rest follow by score. No weights, no onsets, no changes: what a person with a dashboard and
the call graph would do first.
"""

from __future__ import annotations

from collections import deque
from datetime import timedelta

import numpy as np

from skills.context import Snapshot

RECENT = timedelta(minutes=30)
ANOMALOUS = 3.0
UP = {"errors", "latency", "cpu", "memory", "client_errors", "client_latency"}


def robust_peak(times: np.ndarray, values: np.ndarray, split: float, signal: str) -> float:
    ok = np.isfinite(values)
    base, recent = values[ok & (times < split)], values[ok & (times >= split)]
    if len(base) < 10 or len(recent) == 0:
        return 0.0
    center = float(np.median(base))
    scale = 1.4826 * float(np.median(np.abs(base - center)))
    scale = max(scale, 1e-3 * max(abs(center), 1e-6), 1e-9)
    z = (recent - center) / scale
    return float(np.max(z) if signal in UP else np.max(np.abs(z)))


def depths(service: str, edges: list[tuple[str, str]]) -> dict[str, int]:
    calls: dict[str, list[str]] = {}
    for a, b in edges:
        calls.setdefault(a, []).append(b)
    seen = {service: 0}
    queue = deque([service])
    while queue:
        node = queue.popleft()
        for nxt in calls.get(node, []):
            if nxt not in seen:
                seen[nxt] = seen[node] + 1
                queue.append(nxt)
    return seen


def rank(snap: Snapshot) -> list[tuple[str, float]]:
    """(service, score) best first."""
    split = (snap.at - RECENT).timestamp()
    score: dict[str, float] = {}
    for sd in snap.signals:
        if sd.signal == "client_traffic":  # call rates are the engine's load reading, not
            continue  # a golden signal of the target
        who = sd.target if sd.target is not None else sd.service
        z = robust_peak(sd.series.times, sd.series.values, split, sd.signal)
        score[who] = max(score.get(who, 0.0), z)
    depth = depths(snap.service, snap.edges)
    anomalous = sorted((s for s in score if score[s] >= ANOMALOUS),
                       key=lambda s: (-depth.get(s, 0), -score[s]))
    rest = sorted((s for s in score if score[s] < ANOMALOUS), key=lambda s: -score[s])
    return [(s, score[s]) for s in anomalous + rest]
