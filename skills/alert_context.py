"""Context assembly for an investigation that starts from the alert itself, whatever its metric
names: the rule's expression (from the alert's `generatorURL`, else the rules API), evaluated over
the window — when it began to hold, and for which series —, the value it watches (`quantity`),
that value broken down by the series each selector reads (which instance, pod, mountpoint drives
it), and the series that exist around the subject, found by its labels (`/api/v1/series`), not by
fixed metric names. Failed queries are kept with their error, never dropped silently.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
from pydantic import BaseModel, Field

from skills.families import NOUN, family_of, host_of, identity, is_noise
from skills.kube_relations import Placement, placement
from skills.prometheus.client import PrometheusClient, PrometheusError
from skills.promql import Anatomy, NotPromQL, Selector, anatomy
from skills.shifts import rates
from skills.types import Series

MAX_POINTS = 300  # points per series in range queries; the step follows from the range
MIN_STEP = 1.0
MAX_SERIES_PER_SCOPE = 2500  # a scope larger than this is narrowed to the catalogue's names
RATE_WINDOW = 60.0  # seconds over which counters are rated client-side
# Labels carried by alerts that no series has (rule and routing labels, external labels).
NOT_SERIES = {"alertname", "severity", "alertstate", "prometheus", "receiver"}


class AlertRef(BaseModel):
    """An alert as Alertmanager delivers it (only `name` is needed)."""

    name: str = Field(min_length=1, description="The alert's name (alertname).")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime | None = None
    generator_url: str | None = None
    expr: str | None = Field(default=None, description="The rule's PromQL, if known.")


@dataclass
class Scope:
    """Series around the subject: `relation` says how they are tied to it."""

    relation: str  # same resource | same instance | same host | on the node | the pod's node
    matcher: str
    series: list[Series] = field(default_factory=list)


@dataclass
class AlertSnapshot:
    alert: AlertRef
    at: datetime
    start: datetime
    end: datetime
    step: float
    expr: str | None = None
    expr_source: str = ""  # generatorURL | rules API | given
    anatomy: Anatomy | None = None
    condition: list[Series] = field(default_factory=list)  # the expression's series (matching)
    quantity: list[Series] = field(default_factory=list)  # the watched value (matching)
    quantity_all: int = 0  # how many series the watched value has in all
    drills: list[tuple[Selector, str, list[Series]]] = field(default_factory=list)
    scopes: list[Scope] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)  # metric → scraped type
    placement: Placement = field(default_factory=Placement)  # pods → nodes, owners
    errors: list[str] = field(default_factory=list)
    source: str = "prometheus"

    @property
    def data_start(self) -> float:
        """The first time any fetched series has data (a young Prometheus has little)."""
        firsts = [float(s.times[np.isfinite(s.values)][0]) for s in self.quantity + self.condition
                  if np.isfinite(s.values).any()]
        return min(firsts, default=self.start.timestamp())


def expr_from_url(url: str | None) -> str | None:
    """The `g0.expr` of a Prometheus graph link (what Alertmanager alerts carry)."""
    if not url:
        return None
    values = parse_qs(urlparse(url).query).get("g0.expr")
    return values[0] if values and values[0].strip() else None


async def rule_expression(prom: PrometheusClient, alert: AlertRef) -> tuple[str | None, str]:
    """The alert's expression: given, else from its generatorURL, else its rule by name (the
    rule whose labels the alert carries, when several share the name)."""
    if alert.expr:
        return alert.expr, "given"
    found = expr_from_url(alert.generator_url)
    if found:
        return found, "generatorURL"
    try:
        groups = await prom.rules()
    except PrometheusError:
        return None, ""
    best: tuple[int, str] | None = None
    for group in groups:
        for rule in group.get("rules", []):
            if rule.get("type") != "alerting" or rule.get("name") != alert.name:
                continue
            labels = rule.get("labels") or {}
            fit = sum(alert.labels.get(k) == v for k, v in labels.items())
            if all(alert.labels.get(k) in (None, v) for k, v in labels.items()) and (
                    best is None or fit > best[0]):
                best = (fit, str(rule.get("query", "")))
    return (best[1], "rules API") if best and best[1] else (None, "")


def matches(series_labels: dict[str, str], alert_labels: dict[str, str]) -> bool:
    """A series belongs to the alert when no label disagrees."""
    return all(alert_labels.get(k) in (None, v) for k, v in series_labels.items()
               if k != "__name__")


def _regex_escape(text: str) -> str:
    """`text` as a regex that matches it literally, inside a PromQL double-quoted string (whose
    own escapes double every backslash)."""
    return _esc(re.sub(r"([.*+?^${}()|\[\]\\])", r"\\\1", text))


async def assemble_alert(prom: PrometheusClient, alert: AlertRef, *, at: datetime,
                         window: timedelta, concurrency: int = 8) -> AlertSnapshot:
    """The expression over the window, the watched value, and its breakdown; the subject's
    surroundings are fetched by `surroundings` once the engine has chosen the subject."""
    start = at - window
    snap = AlertSnapshot(alert=alert, at=at, start=start, end=at,
                         step=max(MIN_STEP, window.total_seconds() / MAX_POINTS))
    snap.expr, snap.expr_source = await rule_expression(prom, alert)
    if snap.expr is None:
        snap.errors.append(f"no expression for {alert.name}: the alert has no generatorURL and "
                           "no loaded rule has that name")
        return snap
    try:
        snap.anatomy = anatomy(snap.expr)
    except NotPromQL as exc:
        snap.errors.append(str(exc))
        return snap
    await _fit_range(prom, snap)
    gate = asyncio.Semaphore(concurrency)

    async def fetch(promql: str) -> list[Series]:
        async with gate:
            try:
                return await prom.query_range(promql, start=snap.start, end=snap.end,
                                              step=snap.step)
            except PrometheusError as exc:
                snap.errors.append(str(exc))
                return []

    labels = {k: v for k, v in alert.labels.items() if k not in NOT_SERIES}
    condition, quantity = await asyncio.gather(fetch(snap.expr),
                                               fetch(snap.anatomy.quantity))
    snap.condition = [s for s in condition if matches(s.labels, labels)]
    snap.quantity_all = len(quantity)
    snap.quantity = [s for s in quantity if matches(s.labels, labels)] or quantity[:20]
    extra = identity(labels)
    selectors = _distinct(snap.anatomy.selectors)
    drilled = await asyncio.gather(*(fetch(s.series_promql(extra)) for s in selectors))
    for sel, found in zip(selectors, drilled, strict=True):
        promql = sel.series_promql(extra)
        if not found and extra:
            promql = sel.series_promql()
            found = [s for s in await fetch(promql) if matches(s.labels, labels)]
        snap.drills.append((sel, promql, found[:200]))
    return snap


def _distinct(selectors: tuple[Selector, ...]) -> list[Selector]:
    out: list[Selector] = []
    for s in selectors:
        if s.metric and not any(o.metric == s.metric and o.matchers == s.matchers for o in out):
            out.append(s)
    return out[:6]


async def _fit_range(prom: PrometheusClient, snap: AlertSnapshot) -> None:
    """A young Prometheus (or a short-lived series) has data for only part of the window: the
    range shrinks to where the watched value has data, so the step stays fine enough to see
    the last minutes."""
    assert snap.anatomy is not None
    # The watched value may exist only while the condition holds (`count(up == 0)`): the
    # series it reads say how far back the data goes.
    sources = [snap.anatomy.quantity] + [s.promql() for s in _distinct(snap.anatomy.selectors)]
    firsts: list[float] = []
    # At the window's step first; a value younger than one step shows only at a fine one.
    for span, resolution in ((int((snap.end - snap.start).total_seconds()), int(snap.step)),
                             (900, 1)):
        for source in sources[:4]:
            try:
                first = await prom.query(f"min(min_over_time(timestamp({source})"
                                         f"[{span}s:{resolution}s]))", at=snap.end)
            except PrometheusError:
                continue
            firsts += [s.value for s in first if np.isfinite(s.value)]
        if firsts:
            break
    if not firsts or min(firsts) <= snap.start.timestamp() + snap.step:
        return
    began = min(firsts) - snap.step
    span_s = snap.end.timestamp() - began
    snap.start = datetime.fromtimestamp(began, tz=snap.end.tzinfo)
    snap.step = max(MIN_STEP, round(span_s / MAX_POINTS))


async def surroundings(prom: PrometheusClient, snap: AlertSnapshot,
                       subject: dict[str, str]) -> None:
    """The series around `subject` (its identifying labels): the same resource, instance and
    host; through kube-state-metrics, the node a pod runs on, the pods on a node, the pods a
    workload owns and their nodes. Found by label (`/api/v1/series`), whatever their names."""
    place = snap.placement = await placement(prom, start=snap.start, end=snap.end)
    scopes: list[tuple[str, str]] = []
    instance = subject.get("instance")
    pod = (subject.get("namespace", ""), subject["pod"]) if subject.get("pod") else None
    node = subject.get("node") or (place.node_of_instance(instance) if instance else None) \
        or (place.node_of.get(pod) if pod else None)
    if instance:
        scopes.append(("same instance", f'{{instance="{_esc(instance)}"}}'))
        scopes.append(("same host", f'{{instance=~"(https?://)?{_regex_escape(host_of(instance))}'
                                    f'([:/].*)?",instance!="{_esc(instance)}"}}'))
    if pod:
        sel = f'pod="{_esc(pod[1])}"' + (f',namespace="{_esc(pod[0])}"' if pod[0] else "")
        scopes.append(("same pod", f"{{{sel}}}"))
    nodes = [node] if node else []
    for key in ("deployment", "statefulset", "daemonset", "job_name"):
        if subject.get(key) and not pod:
            kind = {"job_name": "Job"}.get(key, key)
            owned = place.pods_of(subject.get("namespace", ""), kind, subject[key])
            if owned:
                scopes.append((f"pods of the {NOUN.get(key, key)}", _pods_matcher(owned)))
                nodes += sorted({place.node_of[p] for p in owned if p in place.node_of})
            else:
                scopes.append((f"same {key}", f'{{{key}="{_esc(subject[key])}"}}'))
    for n in list(dict.fromkeys(nodes))[:4]:
        relation = "the node" if n == node else "a node of its pods"
        scopes.append((relation, f'{{node="{_esc(n)}"}}'))
        exporter = place.instance_of.get(n)
        if exporter and not instance:
            scopes.append((f"{relation}'s exporter",
                           f'{{instance=~"{_regex_escape(host_of(exporter))}(:[0-9]+)?"}}'))
        on_node = [p for p in place.pods_on(n) if p != pod]
        if on_node:
            scopes.append((f"pods on {relation}", _pods_matcher(on_node[:80])))
    if subject.get("service") and not (instance or pod or nodes):
        scopes.append(("same service", f'{{service="{_esc(subject["service"])}"}}'))
    if subject.get("job") and not scopes:
        scopes.append(("same job", f'{{job="{_esc(subject["job"])}"}}'))
    if not snap.types:
        try:
            meta = await prom.metadata()
            snap.types = {k: str(v[0].get("type", "")) for k, v in meta.items() if v}
        except PrometheusError as exc:
            snap.errors.append(str(exc))
    await asyncio.gather(*(_scope(prom, snap, relation, matcher)
                           for relation, matcher in dict.fromkeys(scopes)))


def _pods_matcher(pods: list[tuple[str, str]]) -> str:
    namespaces = sorted({ns for ns, _ in pods if ns})
    sel = f'pod=~"{"|".join(_regex_escape(p) for _, p in pods)}"'
    if namespaces:
        sel += f',namespace=~"{"|".join(_regex_escape(n) for n in namespaces)}"'
    return f"{{{sel}}}"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


async def _scope(prom: PrometheusClient, snap: AlertSnapshot, relation: str,
                 matcher: str) -> None:
    """One scope's series, counters rated, exporter and scrape noise left out."""
    try:
        found = await prom.series([matcher], start=snap.start, end=snap.end)
    except PrometheusError as exc:
        snap.errors.append(str(exc))
        return
    names = sorted({s.get("__name__", "") for s in found} - {""})
    names = [n for n in names if not is_noise(n)]
    if len(found) > MAX_SERIES_PER_SCOPE:  # too many to read whole: the catalogue's names only
        names = [n for n in names if family_of(n).kind != "unknown"]
    if not names:
        return
    promql = matcher[:-1] + f',__name__=~"{"|".join(_regex_escape(n) for n in names)}"}}'
    try:
        series = await prom.query_range(promql, start=snap.start, end=snap.end, step=snap.step)
    except PrometheusError as exc:
        snap.errors.append(str(exc))
        return
    out = []
    for s in series:
        name = s.labels.get("__name__", "")
        fam = family_of(name, metadata_type=snap.types.get(name))
        values = rates(s.times, s.values, max(RATE_WINDOW, 2 * snap.step)) if fam.counter \
            else s.values
        out.append(Series(s.labels, s.times, values))
    snap.scopes.append(Scope(relation=relation, matcher=promql, series=out))


def as_dict(snap: AlertSnapshot) -> dict[str, Any]:
    """What was fetched, in numbers, for logs and tests."""
    return {"expr": snap.expr, "source": snap.expr_source, "condition": len(snap.condition),
            "quantity": len(snap.quantity), "drills": [(p, len(s)) for _, p, s in snap.drills],
            "scopes": [(sc.relation, len(sc.series)) for sc in snap.scopes],
            "errors": snap.errors}
