"""Context assembly for an investigation: the scope around the alerting service (what it calls,
transitively, and what calls it), and every series the evidence engine needs — golden signals
per service, what each caller sees of its targets, versions and rollouts — fetched from
Prometheus in parallel over one range. Failed queries are kept with their error, not dropped."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np

from skills.prometheus.client import PrometheusClient, PrometheusError
from skills.prometheus.golden import GoldenSignals, services_regex
from skills.types import Series


@dataclass(frozen=True)
class ChangeRecord:
    """A deploy or config change, from Prometheus (version labels, rollouts) or a pipeline."""

    service: str
    kind: str  # deploy | config | rollback | feature_flag | other
    occurred_at: datetime
    source: str  # prometheus | webhook
    version: str | None = None
    previous_version: str | None = None
    description: str = ""
    query: str | None = None
    link: str | None = None


@dataclass
class SignalData:
    """One aggregated series of one service (or of one caller→target edge)."""

    service: str
    signal: str
    query: str
    series: Series
    target: str | None = None


@dataclass
class Snapshot:
    service: str
    at: datetime
    start: datetime
    end: datetime
    step: float
    scope: list[str]
    edges: list[tuple[str, str]]
    signals: list[SignalData] = field(default_factory=list)
    changes: list[ChangeRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    edges_query: str = ""
    source: str = "prometheus"  # where the series came from, as evidence will say

    def of(self, service: str) -> list[SignalData]:
        return [s for s in self.signals if s.service == service and s.target is None]

    @property
    def measured(self) -> set[str]:
        """Services with series of their own (external dependencies have none)."""
        return {s.service for s in self.signals if s.target is None}


def scope_of(service: str, edges: list[tuple[str, str]], *, depth: int = 4,
             up: int = 3, limit: int = 40, up_limit: int = 20, co_limit: int = 15) -> list[str]:
    """The alerting service, its dependencies down to `depth` hops (at most `limit`), its
    callers up to `up` hops (at most `up_limit` more), and the other callers of its
    dependencies (at most `co_limit` more): where a load that saturated one of them may have
    come from."""
    calls: dict[str, set[str]] = {}
    callers: dict[str, set[str]] = {}
    for a, b in edges:
        calls.setdefault(a, set()).add(b)
        callers.setdefault(b, set()).add(a)
    seen = {service: 0}
    queue = deque([service])
    while queue and len(seen) < limit:
        node = queue.popleft()
        if seen[node] >= depth:
            continue
        for nxt in sorted(calls.get(node, ())):
            if nxt not in seen:
                seen[nxt] = seen[node] + 1
                queue.append(nxt)
    below = list(seen)
    added = 0
    for node in below[1:]:
        for caller in sorted(callers.get(node, ())):
            if caller not in seen and added < co_limit:
                seen[caller] = seen[node]
                added += 1
    above = {service: 0}
    queue = deque([service])
    added = 0
    while queue and added < up_limit:
        node = queue.popleft()
        if above[node] >= up:
            continue
        for caller in sorted(callers.get(node, ())):
            if caller not in above:
                above[caller] = above[node] + 1
                queue.append(caller)
                if caller not in seen:
                    seen[caller] = above[caller]
                    added += 1
    return list(seen)


async def assemble(prom: PrometheusClient, *, service: str, at: datetime, window: timedelta,
                   step: float = 15.0, signals: GoldenSignals | None = None,
                   concurrency: int = 8) -> Snapshot:
    golden = signals or GoldenSignals()
    start, end = at - window, at
    range_s = f"{int(window.total_seconds())}s"
    snap = Snapshot(service=service, at=at, start=start, end=end, step=step, scope=[service],
                    edges=[])
    edges_q = golden.render(golden.edges, range=range_s)
    snap.edges_query = edges_q
    try:
        samples = await prom.query(edges_q, at=at)
        snap.edges = sorted({(s.labels["service"], s.labels["target"]) for s in samples
                             if "service" in s.labels and "target" in s.labels})
    except PrometheusError as exc:
        snap.errors.append(str(exc))
    snap.scope = scope_of(service, snap.edges)
    gate = asyncio.Semaphore(concurrency)

    async def fetch(query: str) -> list[Series] | PrometheusError:
        async with gate:
            try:
                return await prom.query_range(query, start=start, end=end, step=step)
            except PrometheusError as exc:
                return exc

    # One request per signal for the whole scope (split by its `service` label); a template
    # that names a single `$service` is asked once per service.
    callers = [svc for svc in snap.scope if any(a == svc for a, _ in snap.edges)]
    jobs: list[tuple[list[str], str, str, bool]] = []  # (services, signal, template, per-target)
    for names, templates, per_target in ((snap.scope, golden.signals, False),
                                         (callers, golden.client_signals, True)):
        for name, template in templates.items():
            if not names:
                continue
            if golden.grouped(template):
                jobs.append((names, name, template, per_target))
            else:
                jobs += [([svc], name, template, per_target) for svc in names]
    scope_re = services_regex(snap.scope)
    versions_q = golden.render(golden.versions, services=scope_re)
    rollouts_q = golden.render(golden.rollouts, services=scope_re)
    results = await asyncio.gather(
        *(fetch(golden.for_services(t, names)) for names, _, t, _ in jobs),
        fetch(versions_q), fetch(rollouts_q))
    for (names, name, template, per_target), result in zip(jobs, results, strict=False):
        if isinstance(result, PrometheusError):
            snap.errors.append(str(result))
            continue
        for series in result:
            if not np.isfinite(series.values).any():
                continue
            svc = names[0] if len(names) == 1 else series.labels.get("service", "")
            target = series.labels.get("target") if per_target else None
            if svc not in names or (per_target and target is None):
                continue
            # The evidence cites the query for this service alone: run as written, it gives
            # exactly this series.
            snap.signals.append(SignalData(service=svc, signal=name,
                                           query=golden.for_services(template, [svc]),
                                           series=series, target=target))
    # Service by service in scope order, as the engine has always read them (its ties break
    # by order).
    place = {svc: i for i, svc in enumerate(snap.scope)}
    kinds = {name: i for i, name in enumerate([*golden.signals, *golden.client_signals])}
    snap.signals.sort(key=lambda sd: (place[sd.service], kinds[sd.signal]))
    snap.changes = _changes_from(results[-2], versions_q, results[-1], rollouts_q, start)
    for r in results[-2:]:
        if isinstance(r, PrometheusError):
            snap.errors.append(str(r))
    return snap


def _first_seen(series: Series) -> float | None:
    ok = np.isfinite(series.values)
    return float(series.times[ok][0]) if ok.any() else None


def _changes_from(versions: Any, versions_q: str, rollouts: Any, rollouts_q: str,
                  start: datetime) -> list[ChangeRecord]:
    """Deploys seen in Prometheus: a version that first appears after the range began, or a
    rollout generation that moves."""
    out: list[ChangeRecord] = []
    t0 = start.timestamp()
    if isinstance(versions, list):
        by_service: dict[str, list[tuple[float, str]]] = {}
        for s in versions:
            first = _first_seen(s)
            if first is not None and "service" in s.labels:
                by_service.setdefault(s.labels["service"], []).append(
                    (first, s.labels.get("version", "?")))
        for svc, seen in by_service.items():
            seen.sort()
            for (_, prev), (when, ver) in pairwise(seen):
                if when > t0 + 1:
                    out.append(ChangeRecord(service=svc, kind="deploy", source="prometheus",
                                            occurred_at=_dt(when, start), version=ver,
                                            previous_version=prev, query=versions_q,
                                            description=f"version {prev} → {ver}"))
    if isinstance(rollouts, list):
        for s in rollouts:
            svc = s.labels.get("deployment")
            vals, times = s.values, s.times
            ok = np.isfinite(vals)
            vals, times = vals[ok], times[ok]
            for i in np.nonzero(np.diff(vals) > 0)[0]:
                when = float(times[i + 1])
                if svc and not any(c.service == svc and abs(c.occurred_at.timestamp() - when)
                                   < 300 for c in out):
                    out.append(ChangeRecord(
                        service=svc, kind="deploy", source="prometheus",
                        occurred_at=_dt(when, start), query=rollouts_q,
                        description=f"rollout: generation {vals[i]:.0f} → {vals[i + 1]:.0f}"))
    return sorted(out, key=lambda c: c.occurred_at)


def _dt(unix: float, like: datetime) -> datetime:
    return datetime.fromtimestamp(unix, tz=like.tzinfo)
