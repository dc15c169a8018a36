"""Incident scenarios with a known root cause, as Prometheus series for backfill.

`generate_case(seed, kind=..., prefix=...)` builds one small system — an entry service (gateway /
frontend) calling APIs, which call other APIs, databases, caches and external providers — runs
it for a little over three hours at 15 s resolution, injects one fault (or none) plus noise, and
keeps the series a real Prometheus would have scraped. `Case.families()` gives them as
`MetricFamily` objects for `tests.fakes.prometheus_server.openmetrics`; `merge_families(cases)`
puts many cases (with distinct prefixes) into one backfill.

How the system behaves (the same model for every kind):
- traffic: a diurnal sine on the entry service, times a slow random walk; each edge carries a
  number of calls per caller request, so every service's rate follows its callers';
- latency: each service's own work is lognormal around a base mean that grows with CPU
  utilisation (queueing, 1/(1-rho)) and with throttling when demand exceeds the CPU limit;
  calls to dependencies add their (timeout-capped) expected latency;
- errors: a low Poisson baseline (500, a few 503, 404s that are not errors); a caller fails a
  share of the requests whose dependency calls failed (5xx from the target, or a client timeout,
  seen as 504) — retries and fallbacks absorb the rest — after a lag of up to 45 s;
- CPU is proportional to traffic plus an idle floor, capped by the limit; memory is flat with GC
  wobble and warms up after a (re)start; a (re)start resets the process' counters, a crash
  leaves a gap in its scrapes, and label series appear lazily (at their first increment).

Metric names and labels follow what the investigation queries: `http_requests_total{service,
code}`, `http_request_duration_seconds_bucket{service, le}` (+ `_count`, `_sum`),
`process_cpu_seconds_total{service}`, `process_resident_memory_bytes{service}`,
`http_client_requests_total{service, target, code}`, `build_info{service, version}` and
`kube_deployment_status_observed_generation{namespace, deployment}`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

from tests.fakes.prometheus_server import MetricFamily

STEP = 15  # seconds between samples (scrape interval)
KINDS = ("deploy", "database_saturation", "dependency_failure", "cpu", "memory", "none")
ROOT_KIND: dict[str, str | None] = {
    "deploy": "deploy", "database_saturation": "saturation", "dependency_failure": "dependency",
    "cpu": "cpu", "memory": "memory", "none": None}
ACCEPTABLE_KINDS: dict[str, frozenset[str]] = {
    "deploy": frozenset({"deploy"}),
    "database_saturation": frozenset({"saturation", "latency", "cpu"}),
    "dependency_failure": frozenset({"dependency", "errors"}),
    "cpu": frozenset({"cpu"}),
    "memory": frozenset({"memory"}),
    "none": frozenset(),
}
LE = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LE_LABELS = (*(f"{b:g}" for b in LE), "+Inf")

Role = Literal["entry", "api", "db", "cache", "external"]

ENTRY_NAMES = ("gateway", "frontend", "edge-proxy", "web", "api-gateway", "storefront")
API_NAMES = ("checkout", "cart", "orders", "payments", "search", "catalog", "users", "auth",
             "inventory", "shipping", "pricing", "recommendations", "notifications", "reviews",
             "accounts", "billing", "ledger", "profile", "promotions", "wishlist")
DB_NAMES = ("orders-db", "users-db", "catalog-db", "inventory-db", "payments-postgres",
            "ledger-mysql", "search-index", "accounts-db")
CACHE_NAMES = ("session-redis", "cart-cache", "catalog-cache", "rate-limit-redis", "feature-cache")
EXTERNAL_NAMES = ("payment-gateway", "sms-provider", "geo-api", "email-provider", "fraud-score",
                  "shipping-rates", "tax-service", "identity-provider")
NAMESPACES = ("shop", "prod", "storefront", "platform", "commerce")


# --------------------------------------------------------------------------- the case


@dataclass
class Deploy:
    """A rollout: at `at` the new version starts, the old one is gone `rollout` later."""

    service: str
    at: datetime
    rollout: timedelta
    old_version: str
    new_version: str
    config_only: bool = False  # a config rollout: generation bumps, version stays
    note: str = ""


@dataclass
class Case:
    """One incident scenario and its ground truth. `families()` gives its series."""

    name: str
    seed: int
    prefix: str
    kind: str
    services: list[str]  # every node, internal and external
    externals: list[str]  # nodes with no metrics of their own (appear only as `target`)
    edges: list[tuple[str, str]]  # (caller, target)
    root_service: str | None
    root_kind: str | None
    acceptable_kinds: frozenset[str]
    alert_service: str
    onset: datetime
    alert_at: datetime
    start: datetime
    end: datetime
    fault: dict[str, Any] = field(default_factory=dict)  # parameters of the injected fault
    noise: list[str] = field(default_factory=list)  # what was mixed in, in words
    deploys: list[Deploy] = field(default_factory=list)
    without_process_metrics: list[str] = field(default_factory=list)
    series: list[tuple[str, dict[str, str], np.ndarray, np.ndarray]] = field(
        default_factory=list, repr=False)  # (metric, labels, unix seconds, values; NaN = absent)

    def families(self) -> list[MetricFamily]:
        return merge_families([self])

    def truth(self) -> dict[str, Any]:
        """The ground truth as plain JSON-able data (for dumps and debugging)."""
        return {
            "name": self.name, "seed": self.seed, "prefix": self.prefix, "kind": self.kind,
            "root_service": self.root_service, "root_kind": self.root_kind,
            "acceptable_kinds": sorted(self.acceptable_kinds),
            "alert_service": self.alert_service,
            "onset": _iso(self.onset), "alert_at": _iso(self.alert_at),
            "start": _iso(self.start), "end": _iso(self.end),
            "services": self.services, "externals": self.externals,
            "edges": [list(e) for e in self.edges],
            "fault": self.fault, "noise": self.noise,
            "deploys": [{"service": d.service, "at": _iso(d.at),
                         "rollout_s": d.rollout.total_seconds(), "old": d.old_version,
                         "new": d.new_version, "config_only": d.config_only, "note": d.note}
                        for d in self.deploys],
            "without_process_metrics": self.without_process_metrics,
            "series": len(self.series),
            "samples": int(sum(int(np.count_nonzero(~np.isnan(v))) for *_, v in self.series)),
        }


def merge_families(cases: Iterable[Case]) -> list[MetricFamily]:
    """One `MetricFamily` per metric name over all `cases` (prefixes keep their series apart)."""
    by_name: dict[str, list[tuple[dict[str, str], list[tuple[float, float]]]]] = {}
    for case in cases:
        for metric, labels, times, values in case.series:
            keep = ~np.isnan(values)
            by_name.setdefault(metric, []).append(
                (dict(labels), list(zip(times[keep].tolist(), values[keep].tolist(),
                                        strict=True))))
    return [MetricFamily(name=metric, type=_TYPES[metric], help=_HELP.get(metric, ""),
                         samples=samples) for metric, samples in by_name.items()]


_TYPES: dict[str, Literal["counter", "gauge"]] = {
    "http_requests_total": "counter", "http_request_duration_seconds_bucket": "counter",
    "http_request_duration_seconds_count": "counter",
    "http_request_duration_seconds_sum": "counter", "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge", "http_client_requests_total": "counter",
    "build_info": "gauge", "kube_deployment_status_observed_generation": "gauge"}
_HELP = {
    "http_requests_total": "HTTP requests served, by status code.",
    "http_client_requests_total": "Outgoing calls, by target and status code.",
    "process_cpu_seconds_total": "Total user and system CPU time spent in seconds.",
    "process_resident_memory_bytes": "Resident memory size in bytes.",
    "build_info": "The running build; 1 per version.",
    "kube_deployment_status_observed_generation":
        "The generation observed by the deployment controller.",
}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- the system


@dataclass
class Node:
    name: str
    role: Role
    namespace: str
    base_latency: float  # seconds, own work at the reference utilisation
    sigma: float  # lognormal shape
    err500: float
    err503: float
    p404: float
    timeout: float  # client timeout for its own outgoing calls
    has_process: bool = True
    has_build_info: bool = True
    has_deployment: bool = True
    version: str = ""
    generation: int = 1
    cpu_per_req: float = 0.002  # core-seconds per request
    cpu_idle: float = 0.05  # cores
    cpu_limit: float = 1.0
    rho_ref: float = 0.4
    mem_base: float = 3e8
    mem_limit: float = 1e9
    gc_period: float = 300.0
    background: float = 0.0  # share of own traffic that comes from outside the graph


@dataclass
class EdgeSpec:
    caller: str
    target: str
    mult: float  # calls per caller request
    seq: float  # share of the call latency on the caller's critical path
    prop: float  # share of failed calls that fail the caller's request
    lag: int  # samples before the caller feels the target


class _Sim:
    """The state of one system over one time grid; faults and noise edit its arrays, `derive`
    turns them into expected rates, codes and latencies (a pure function of the state: all its
    randomness is drawn here, once), `sample` into scraped counters and gauges."""

    def __init__(self, rng: np.random.Generator, nodes: dict[str, Node], edges: list[EdgeSpec],
                 times: np.ndarray) -> None:
        self.rng = rng
        self.nodes = nodes
        self.edges = edges
        self.t = times
        n = len(times)
        self.n = n
        self.extra500 = {k: np.zeros(n) for k in nodes}
        self.extra503 = {k: np.zeros(n) for k in nodes}
        self.lat_mult = {k: np.ones(n) for k in nodes}
        self.sigma_add = {k: np.zeros(n) for k in nodes}
        self.cpu_extra = {k: np.zeros(n) for k in nodes}
        self.mem_extra = {k: np.zeros(n) for k in nodes}
        self.down = {k: np.zeros(n, dtype=bool) for k in nodes}  # crashed: no scrape, no serving
        self.down_fail = {k: np.ones(n) for k in nodes}  # share of calls failing while down
        self.restarts: dict[str, list[int]] = {k: [] for k in nodes}  # counter resets
        self.miss = {k: rng.random(n) < 0.002 for k in nodes}  # failed scrapes
        self.traffic = np.ones(n)
        self.bursts: list[tuple[str, str, int, float]] = []  # (service, what, index, size)
        self.callers: dict[str, list[EdgeSpec]] = {k: [] for k in nodes}
        self.deps: dict[str, list[EdgeSpec]] = {k: [] for k in nodes}
        for e in edges:
            self.callers[e.target].append(e)
            self.deps[e.caller].append(e)
        self.order = _topo_order(nodes, edges)  # callers before targets
        # the system's own randomness, drawn once
        hour = (times % 86400) / 3600.0
        amp, peak = rng.uniform(0.2, 0.5), rng.uniform(12, 21)
        self.entry_rate = (rng.uniform(40, 400) * (1 + amp * np.cos(2 * math.pi * (hour - peak)
                                                                    / 24))
                           * _ar1(rng, n, 0.995, 0.012))
        self.edge_wander = {(e.caller, e.target): _ar1(rng, n, 0.99, 0.01) for e in edges}
        self.bg_wander = {k: _ar1(rng, n, 0.995, 0.02) for k in nodes}
        self.lat_wander = {k: _ar1(rng, n, 0.95, 0.03) for k in nodes}
        self.mem_wander = {k: _ar1(rng, n, 0.98, 0.005) for k in nodes}
        for _ in range(3):  # size CPU limits and client timeouts on the undisturbed system
            self.derive()
            for name in reversed(self.order):
                slowest = [float(np.median(self.p99(e.target))) for e in self.deps[name]]
                if slowest and nodes[name].timeout < 4 * max(slowest):
                    nodes[name].timeout = round(4 * max(slowest), 1) + 0.5

    def idx(self, t: float) -> int:
        return int(np.clip(np.searchsorted(self.t, t), 0, self.n - 1))

    def window(self, a: float, b: float) -> np.ndarray:
        return (self.t >= a) & (self.t < b)

    # ---- expected behaviour -------------------------------------------------------------
    def derive(self) -> None:
        n = self.n
        entry = next(k for k, v in self.nodes.items() if v.role == "entry")
        self.rate: dict[str, np.ndarray] = {entry: self.entry_rate * self.traffic}
        self.edge_rate: dict[tuple[str, str], np.ndarray] = {}
        for name in self.order:
            node = self.nodes[name]
            if name != entry:
                total = np.zeros(n)
                for e in self.callers[name]:
                    r = self.rate[e.caller] * e.mult * self.edge_wander[(e.caller, name)]
                    self.edge_rate[(e.caller, name)] = r
                    total = total + r
                self.rate[name] = total * (1 + node.background * self.bg_wander[name])
        # CPU, utilisation and own latency
        self.cpu_used: dict[str, np.ndarray] = {}
        self.cpu_slow: dict[str, np.ndarray] = {}
        self.own_lat: dict[str, np.ndarray] = {}
        overload: dict[str, np.ndarray] = {}
        for name, node in self.nodes.items():
            if node.role == "external":
                self.own_lat[name] = node.base_latency * self.lat_mult[name] * self.lat_wander[
                    name]
                continue
            demand = node.cpu_idle + node.cpu_per_req * self.rate[name] + self.cpu_extra[name]
            if node.cpu_limit <= 0:  # size the limit: the baseline peak at 35-60% of it
                node.cpu_limit = math.ceil(float(np.quantile(demand, 0.99))
                                           / self.rng.uniform(0.35, 0.6) * 4) / 4
                node.rho_ref = float(np.median(demand)) / node.cpu_limit
            rho = np.minimum(demand / node.cpu_limit, 0.96)
            queue = (1 - node.rho_ref) / (1 - rho)
            throttle = np.maximum(1.0, demand / node.cpu_limit) ** 1.5
            self.cpu_used[name] = np.minimum(demand, node.cpu_limit)
            slow = (0.5 + 0.5 * queue) * throttle
            # a starved (throttled) process is slow at everything, handling its dependencies'
            # answers included: a quarter of that slowness applies to the time spent on them
            self.cpu_slow[name] = 1 + 0.25 * (slow - 1)  # slow is 1 at rho_ref
            self.own_lat[name] = (node.base_latency * slow * self.lat_mult[name]
                                  * self.lat_wander[name])
            overload[name] = np.minimum(0.25, 0.15 * np.clip(demand / node.cpu_limit - 1, 0,
                                                                None))
        # latency and errors, targets before callers
        self.mean_lat: dict[str, np.ndarray] = {}
        self.sig: dict[str, np.ndarray] = {}
        self.codes: dict[str, dict[str, np.ndarray]] = {}  # 5xx served, shares of requests
        self.client_codes: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        zero = np.zeros(n)
        for name in reversed(self.order):
            node = self.nodes[name]
            sig = node.sigma + self.sigma_add[name]
            if node.role == "external":
                self.mean_lat[name], self.sig[name] = self.own_lat[name], sig
                fail503 = np.clip(self.extra503[name], 0, 1)
                fail500 = np.clip(self.extra500[name], 0, 1 - fail503)
                self.codes[name] = {"500": fail500, "503": fail503}
                continue
            lat = self.own_lat[name].copy()
            prop_by_code: dict[str, np.ndarray] = {}
            survive = np.ones(n)
            for e in self.deps[name]:
                d = e.target
                m_d, s_d = _shift(self.mean_lat[d], e.lag), _shift(self.sig[d], e.lag)
                dcodes = {c: _shift(v, e.lag) for c, v in self.codes[d].items()}
                if self.nodes[d].role != "external":  # a crashed target refuses connections
                    down = _shift(self.down[d].astype(float) * self.down_fail[d], e.lag)
                    dcodes = {c: v * (1 - down) for c, v in dcodes.items()}
                    dcodes["503"] = dcodes.get("503", zero) + down
                server = np.clip(sum(dcodes.values(), zero), 0, 1)
                mu = np.log(m_d) - s_d ** 2 / 2
                log_t = math.log(node.timeout)
                p_to = 1 - _phi((log_t - mu) / s_d)
                fail = server + (1 - server) * p_to
                emin = (np.exp(mu + s_d ** 2 / 2) * _phi((log_t - mu - s_d ** 2) / s_d)
                        + node.timeout * p_to)
                lat = lat + (e.mult * e.seq * (emin * (1 - server) + 0.002 * server)
                             * self.cpu_slow[name])
                ok = (1 - server) * (1 - p_to)
                p404 = self.nodes[d].p404
                cc: dict[str, np.ndarray] = {"200": ok * (1 - p404), "404": ok * p404,
                                             "504": p_to * (1 - server)}
                for c, v in dcodes.items():
                    cc[c] = cc.get(c, zero) + v
                if p404 == 0:
                    del cc["404"]
                self.client_codes[(name, d)] = cc
                p_req = (1 - (1 - fail) ** e.mult if e.mult >= 1 else e.mult * fail) * e.prop
                survive = survive * (1 - p_req)
                total_fail = np.maximum(fail, 1e-12)
                for c, v in cc.items():
                    if c in ("200", "404"):
                        continue
                    code = c if c in ("503", "504") else "500"
                    prop_by_code[code] = prop_by_code.get(code, zero) + p_req * v / total_fail
            prop_total = 1 - survive
            summed = sum(prop_by_code.values(), zero)
            scale = np.where(summed > 0, prop_total / np.maximum(summed, 1e-12), 0)
            own500 = np.clip(node.err500 + self.extra500[name], 0, 1)
            own503 = np.clip(node.err503 + self.extra503[name] + overload[name], 0, 1 - own500)
            own = own500 + own503
            self.codes[name] = {
                "500": own500 + (1 - own) * prop_by_code.get("500", zero) * scale,
                "503": own503 + (1 - own) * prop_by_code.get("503", zero) * scale,
                "504": (1 - own) * prop_by_code.get("504", zero) * scale}
            self.mean_lat[name] = np.minimum(lat, 30.0)
            self.sig[name] = sig

    def error_ratio(self, name: str) -> np.ndarray:
        return np.asarray(sum(self.codes[name].values(), np.zeros(self.n)))

    def p99(self, name: str) -> np.ndarray:
        """The p99 `histogram_quantile` would give: interpolated within the buckets."""
        m, s = self.mean_lat[name], self.sig[name]
        mu = np.log(m) - s ** 2 / 2
        cdf = np.stack([np.zeros(self.n)] + [_phi((math.log(b) - mu) / s) for b in LE], axis=1)
        bounds = np.array((0.0, *LE))
        k = np.argmax(cdf >= 0.99, axis=1)  # first bound reaching 0.99 (0: none does)
        k_safe = np.maximum(k, 1)
        lo, hi = cdf[np.arange(self.n), k_safe - 1], cdf[np.arange(self.n), k_safe]
        frac = (0.99 - lo) / np.maximum(hi - lo, 1e-12)
        q = bounds[k_safe - 1] + frac * (bounds[k_safe] - bounds[k_safe - 1])
        return np.asarray(np.where(k == 0, LE[-1], q))

    # ---- what Prometheus would have scraped -----------------------------------------------
    def sample(self, deploys: list[Deploy], case_series: list[
            tuple[str, dict[str, str], np.ndarray, np.ndarray]]) -> None:
        rng, n, t = self.rng, self.n, self.t
        bursts: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for svc, what, i, size in self.bursts:
            bursts.setdefault((svc, what), []).append((i, size))
        for name, node in self.nodes.items():
            if node.role == "external":
                continue
            absent = self.down[name] | self.miss[name]
            resets = sorted(set(self.restarts[name]))
            serving = ~self.down[name]
            lam = self.rate[name] * STEP * serving
            total = rng.poisson(lam).astype(float)
            codes = self.codes[name]
            err = sum(codes.values(), np.zeros(n))
            p = {"404": (1 - err) * node.p404, **codes}
            p["200"] = np.clip(1 - sum(p.values(), np.zeros(n)), 0, 1)
            names = list(p)
            counts = _multinomial(rng, total, np.stack([p[c] for c in names], axis=1))
            per_code = {c: counts[:, k].astype(float) for k, c in enumerate(names)}
            for i, size in bursts.get((name, "errors"), []):
                extra = float(rng.poisson(size))
                per_code["500"][i] += extra
                total[i] += extra
            days = rng.uniform(0.2, 5) * 86400
            for c in names:
                start = float(rng.poisson(float(np.mean(p[c][:40])) * float(np.mean(lam[:40]))
                                          / STEP * days))
                vals = _counter(per_code[c], start, resets, absent)
                if not np.all(np.isnan(vals)):
                    case_series.append(("http_requests_total", {"service": name, "code": c},
                                        t, vals))
            # latency histogram
            m, s = self.mean_lat[name] * np.exp(rng.normal(0, 0.04, n)), self.sig[name]
            mu = np.log(m) - s ** 2 / 2
            cdf = np.stack([_phi((math.log(b) - mu) / s) for b in LE], axis=1)
            bins = np.diff(np.concatenate([np.zeros((n, 1)), cdf, np.ones((n, 1))], axis=1),
                           axis=1)
            hist = _multinomial(rng, total, np.clip(bins, 0, 1)).astype(float)
            for i, size in bursts.get((name, "latency"), []):
                hist[i, -3] += float(rng.poisson(size))  # a burst of 2.5-5 s requests
            cum = np.cumsum(hist, axis=1)
            start_days = rng.uniform(0.2, 5) * 86400 * float(np.mean(lam[:40])) / STEP
            start_cum = np.cumsum(rng.multinomial(int(start_days), np.clip(
                bins[0] / bins[0].sum(), 0, 1)))
            for k, le in enumerate(LE_LABELS):
                vals = _counter(cum[:, k], float(start_cum[k]), resets, absent)
                case_series.append(("http_request_duration_seconds_bucket",
                                    {"service": name, "le": le}, t, vals))
            case_series.append(("http_request_duration_seconds_count", {"service": name}, t,
                                _counter(cum[:, -1], float(start_cum[-1]), resets, absent)))
            sums = cum[:, -1] * m + hist[:, -3] * 3.0
            case_series.append(("http_request_duration_seconds_sum", {"service": name}, t,
                                np.round(_counter(sums, float(start_cum[-1]) * float(m[0]),
                                                  resets, absent), 3)))
            # outgoing calls
            for e in self.deps[name]:
                lam_e = self.edge_rate[(name, e.target)] * STEP * serving
                calls = rng.poisson(lam_e).astype(float)
                cc = self.client_codes[(name, e.target)]
                cnames = list(cc)
                pv = np.stack([np.clip(cc[c], 0, 1) for c in cnames], axis=1)
                ccounts = _multinomial(rng, calls, pv)
                for k, c in enumerate(cnames):
                    col = ccounts[:, k].astype(float)
                    if c == "503":
                        for i, size in bursts.get((f"{name}->{e.target}", "client"), []):
                            col[i] += float(rng.poisson(size))
                    start = float(rng.poisson(float(np.mean(cc[c][:40]))
                                              * float(np.mean(lam_e[:40])) / STEP * days))
                    vals = _counter(col, start, resets, absent)
                    if not np.all(np.isnan(vals)):
                        case_series.append(("http_client_requests_total",
                                            {"service": name, "target": e.target, "code": c},
                                            t, vals))
            # process metrics
            if node.has_process:
                used = self.cpu_used[name] * np.exp(rng.normal(0, 0.04, n)) * serving
                cpu = _counter(used * STEP, rng.uniform(2e3, 4e5), resets, absent)
                case_series.append(("process_cpu_seconds_total", {"service": name}, t,
                                    np.round(cpu, 2)))
                mem = self.memory(name)
                for i, size in bursts.get((name, "memory"), []):
                    mem[i] *= 1 + size
                mem[absent] = np.nan
                case_series.append(("process_resident_memory_bytes", {"service": name}, t,
                                    np.round(mem)))
            # build info: one series per version, 1 while it runs
            if node.has_build_info:
                for version, (a, b) in _version_spans(node, deploys, t).items():
                    vals = np.where((t >= a) & (t <= b), 1.0, np.nan)
                    vals[absent] = np.nan
                    if not np.all(np.isnan(vals)):
                        case_series.append(("build_info", {"service": name,
                                                           "version": version}, t, vals))
            if node.has_deployment:
                gen = np.full(n, float(node.generation))
                for d in deploys:
                    if d.service == name:
                        gen[t >= d.at.timestamp()] += 1
                gen[rng.random(n) < 0.002] = np.nan  # kube-state-metrics misses a scrape
                case_series.append(("kube_deployment_status_observed_generation",
                                    {"namespace": node.namespace, "deployment": name}, t, gen))

    def memory(self, name: str) -> np.ndarray:
        node, t, n = self.nodes[name], self.t, self.n
        since = np.full(n, -1e9)
        for i in sorted(set(self.restarts[name])):
            since[i:] = t[i]
        age = t - since
        warm = 0.65 + 0.35 * (1 - np.exp(-age / 400.0))
        gc = 1 + 0.04 * ((t / node.gc_period) % 1.0)  # sawtooth: heap grows, GC frees
        load = 1 + 0.05 * (self.rate[name] / np.mean(self.rate[name]) - 1)
        return np.asarray(node.mem_base * warm * gc * load * self.mem_wander[name]
                          + self.mem_extra[name])


# --------------------------------------------------------------------------- building blocks


def _phi(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz-Stegun 7.1.26 erf, |error| < 1.5e-7)."""
    x = np.asarray(z, dtype=float) / math.sqrt(2)
    s = np.sign(x)
    x = np.abs(x)
    k = 1 / (1 + 0.3275911 * x)
    poly = k * (0.254829592 + k * (-0.284496736 + k * (1.421413741 + k * (
        -1.453152027 + k * 1.061405429))))
    erf = 1 - poly * np.exp(-x * x)
    return np.asarray(0.5 * (1 + s * erf))


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """A multiplicative slow wander around 1: exp of an AR(1) with stationary sd `sd`."""
    eps = rng.normal(0, sd * math.sqrt(1 - phi * phi), n)
    x = np.empty(n)
    x[0] = rng.normal(0, sd)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + eps[i]
    return np.asarray(np.exp(x))


def _shift(a: np.ndarray, lag: int) -> np.ndarray:
    if lag <= 0:
        return a
    return np.concatenate([np.full(lag, a[0]), a[:-lag]])


def _multinomial(rng: np.random.Generator, total: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0, None)
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
    out: np.ndarray = rng.multinomial(total.astype(np.int64), p)
    return out


def _counter(increments: np.ndarray, start: float, resets: list[int],
             absent: np.ndarray) -> np.ndarray:
    """A counter from per-interval increments: starts at `start`, restarts from 0 at each index
    in `resets`, NaN where not scraped and before its first increment in each process life
    (client libraries create a labelled series on its first increment)."""
    n = len(increments)
    out = np.full(n, np.nan)
    bounds = [0, *[r for r in resets if 0 < r < n], n]
    for k in range(len(bounds) - 1):
        a, b = bounds[k], bounds[k + 1]
        base = start if k == 0 else 0.0
        seg = base + np.cumsum(increments[a:b])
        seg[seg <= 0] = np.nan
        out[a:b] = seg
    out[absent] = np.nan
    return np.round(out, 6)


def _version_spans(node: Node, deploys: list[Deploy],
                   t: np.ndarray) -> dict[str, tuple[float, float]]:
    spans: dict[str, tuple[float, float]] = {}
    current, since = node.version, -math.inf
    for d in sorted((d for d in deploys if d.service == node.name and not d.config_only),
                    key=lambda d: d.at):
        spans[current] = (since, d.at.timestamp() + d.rollout.total_seconds())
        current, since = d.new_version, d.at.timestamp()
    spans[current] = (since, math.inf)
    return spans


def _topo_order(nodes: dict[str, Node], edges: list[EdgeSpec]) -> list[str]:
    indeg = {k: 0 for k in nodes}
    for e in edges:
        indeg[e.target] += 1
    ready = [k for k in nodes if indeg[k] == 0]
    order: list[str] = []
    while ready:
        k = ready.pop(0)
        order.append(k)
        for e in edges:
            if e.caller == k:
                indeg[e.target] -= 1
                if indeg[e.target] == 0:
                    ready.append(e.target)
    assert len(order) == len(nodes), "the call graph must be acyclic"
    return order


def _ancestors(edges: list[EdgeSpec], name: str) -> set[str]:
    out: set[str] = set()
    todo = [name]
    while todo:
        k = todo.pop()
        for e in edges:
            if e.target == k and e.caller not in out:
                out.add(e.caller)
                todo.append(e.caller)
    return out


def _descendants(edges: list[EdgeSpec], name: str) -> set[str]:
    out: set[str] = set()
    todo = [name]
    while todo:
        k = todo.pop()
        for e in edges:
            if e.caller == k and e.target not in out:
                out.add(e.target)
                todo.append(e.target)
    return out


def _version(rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        return f"v{rng.integers(1, 4)}.{rng.integers(0, 60)}.{rng.integers(0, 20)}"
    return f"2024.{rng.integers(1, 13)}.{rng.integers(1, 29)}-{rng.integers(0, 16 ** 7):07x}"


def _bump(version: str, rng: np.random.Generator) -> str:
    if version.startswith("v"):
        major, minor, patch = (int(x) for x in version[1:].split("."))
        if rng.random() < 0.6:
            return f"v{major}.{minor}.{patch + 1}"
        return f"v{major}.{minor + 1}.0"
    return f"2024.{rng.integers(1, 13)}.{rng.integers(1, 29)}-{rng.integers(0, 16 ** 7):07x}"


def _topology(rng: np.random.Generator, prefix: str, kind: str) -> tuple[
        dict[str, Node], list[EdgeSpec]]:
    n_internal = int(rng.integers(3, 13))
    n_db = int(rng.integers(1, min(3, n_internal - 2) + 1))
    n_cache = int(rng.integers(0, min(2, n_internal - 2 - n_db) + 1))
    n_api = n_internal - 1 - n_db - n_cache
    if n_api < 1:
        n_api, n_cache = 1, n_cache - 1
    n_ext = int(rng.integers(1 if kind == "dependency_failure" else 0, 3))
    ns = str(rng.choice(NAMESPACES))

    def pick(pool: tuple[str, ...], k: int) -> list[str]:
        return [prefix + str(x) for x in rng.choice(pool, size=k, replace=False)]

    nodes: dict[str, Node] = {}

    def add(name: str, role: Role) -> None:
        lat = {"entry": rng.uniform(0.003, 0.02), "api": rng.uniform(0.004, 0.06),
               "db": rng.uniform(0.001, 0.012), "cache": rng.uniform(0.0003, 0.002),
               "external": rng.uniform(0.05, 0.35)}[role]
        node = Node(
            name=name, role=role, namespace="data" if role in ("db", "cache") else ns,
            base_latency=lat, sigma=rng.uniform(0.35, 0.8),
            err500=10 ** rng.uniform(-4.3, -2.6), err503=10 ** rng.uniform(-5, -3.3),
            p404=rng.uniform(0.002, 0.03) if role in ("entry", "api") else 0.0,
            timeout=float(rng.choice([0.5, 1.0, 2.0, 3.0, 5.0, 10.0])),
            has_process=role != "external", has_build_info=role in ("entry", "api")
            or (role in ("db", "cache") and rng.random() < 0.5),
            has_deployment=role in ("entry", "api") and rng.random() < 0.92,
            version=_version(rng), generation=int(rng.integers(2, 400)),
            cpu_per_req={"db": rng.uniform(2e-4, 2e-3), "cache": rng.uniform(2e-5, 2e-4)}.get(
                role, rng.uniform(5e-4, 6e-3)),
            cpu_idle=rng.uniform(0.01, 0.1), cpu_limit=0.0,
            mem_base={"db": rng.uniform(1e9, 8e9), "cache": rng.uniform(2e8, 2e9)}.get(
                role, rng.uniform(8e7, 9e8)),
            gc_period=rng.uniform(60, 600),
            background=rng.uniform(0, 0.2) if role == "api" else 0.0)
        node.mem_limit = node.mem_base * rng.uniform(1.6, 2.6)
        if role == "db":
            node.timeout = float(rng.choice([1.0, 2.0, 5.0, 30.0]))
        nodes[name] = node

    add(prefix + str(rng.choice(ENTRY_NAMES)), "entry")
    entry = next(iter(nodes))
    apis = pick(API_NAMES, n_api)
    for name in apis:
        add(name, "api")
    dbs, caches, exts = pick(DB_NAMES, n_db), pick(CACHE_NAMES, n_cache), pick(EXTERNAL_NAMES,
                                                                                 n_ext)
    for name in dbs:
        add(name, "db")
    for name in caches:
        add(name, "cache")
    for name in exts:
        add(name, "external")
    edges: list[EdgeSpec] = []

    def edge(caller: str, target: str, mult: float) -> None:
        if any(e.caller == caller and e.target == target for e in edges):
            return
        edges.append(EdgeSpec(caller, target, mult, seq=rng.uniform(0.5, 1.0),
                              prop=rng.uniform(0.35, 0.95), lag=int(rng.integers(0, 4))))

    for i, api in enumerate(apis):
        if i == 0 or rng.random() < 0.65:
            edge(entry, api, rng.uniform(0.15, 1.0))
        for earlier in apis[:i]:
            if rng.random() < 0.25:
                edge(earlier, api, rng.uniform(0.2, 1.5))
        if not any(e.target == api for e in edges):
            edge(str(rng.choice([entry, *apis[:i]])), api, rng.uniform(0.2, 1.0))
    for db in dbs:
        for api in rng.choice(apis, size=int(rng.integers(1, min(2, len(apis)) + 1)),
                              replace=False):
            edge(str(api), db, rng.uniform(1, 5))
    for cache in caches:
        callers = list(rng.choice(apis, size=int(rng.integers(1, min(3, len(apis)) + 1)),
                                  replace=False))
        if rng.random() < 0.3:
            callers.append(entry)
        for api in callers:
            edge(str(api), cache, rng.uniform(1, 6))
    for ext in exts:
        for api in rng.choice(apis, size=int(rng.integers(1, min(2, len(apis)) + 1)),
                              replace=False):
            edge(str(api), ext, rng.uniform(0.05, 0.6))
    return nodes, edges


# --------------------------------------------------------------------------- faults


def _ramp(t: np.ndarray, a: float, duration: float) -> np.ndarray:
    return np.asarray(np.clip((t - a) / max(duration, 1.0), 0, 1))


def _rolling(a: np.ndarray, k: int) -> np.ndarray:
    """Trailing mean over `k` samples (shorter at the start)."""
    c = np.cumsum(np.concatenate([[0.0], a]))
    i = np.arange(1, len(a) + 1)
    lo = np.maximum(i - k, 0)
    return np.asarray((c[i] - c[lo]) / (i - lo))


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _choose(rng: np.random.Generator, names: list[str], nodes: dict[str, Node],
            role_weight: dict[str, float]) -> str:
    weights = np.array([role_weight.get(nodes[k].role, 1.0) for k in names], dtype=float)
    return str(names[int(rng.choice(len(names), p=weights / weights.sum()))])


def _inject(sim: _Sim, kind: str, root: str, onset: float, rng: np.random.Generator,
            severity: float, deploys: list[Deploy], fault: dict[str, Any]) -> None:
    """Put the fault into the system's state. For "none", `root` is the alerting service and
    the "fault" is a mild blip on it alone."""
    t = sim.t
    node = sim.nodes[root]
    before = sim.window(onset - 3600, onset - 300)
    base_err, own_share = 0.0, 1.0
    if node.role != "external":  # what the service shows undisturbed: its error ratio, and
        # how much of its latency is its own work (the rest is waiting on dependencies)
        base_err = float(np.mean(sim.error_ratio(root)[before]))
        own_share = float(np.median(sim.own_lat[root][before] / sim.mean_lat[root][before]))

    def own_factor(total: float) -> float:  # own-latency multiplier that moves the total so
        return 1 + (total - 1) / max(own_share, 0.05)

    if kind == "deploy":
        lead, rollout = rng.uniform(0, 300), rng.uniform(30, 180)
        at = onset - lead
        new = _bump(node.version, rng)
        deploys.append(Deploy(root, _dt(at), timedelta(seconds=rollout), node.version, new,
                              note="the bad release"))
        sim.restarts[root].append(sim.idx(at + rollout / 2))
        effect = _ramp(t, onset, rng.uniform(30, 150))  # new pods take traffic, caches expire
        mode = str(rng.choice(["errors", "latency", "both"], p=[0.45, 0.25, 0.3]))
        err = min(0.9, max(rng.uniform(0.02, 0.3), rng.uniform(6, 12) * base_err) * severity)
        lat = 1 + rng.uniform(0.8, 5) * severity  # on the service's p99, dependencies included
        if mode in ("errors", "both"):
            sim.extra500[root] += err * effect
        if mode in ("latency", "both"):
            sim.lat_mult[root] *= 1 + (own_factor(lat) - 1) * effect
            sim.sigma_add[root] += 0.15 * effect
        fault.update(mode=mode, error_ratio=round(err, 4) if mode != "latency" else 0.0,
                     latency_factor=round(lat, 2) if mode != "errors" else 1.0,
                     deployed_at=_iso(_dt(at)), rollout_s=round(rollout),
                     old_version=node.version, new_version=new)
    elif kind in ("database_saturation", "cpu"):
        climb = rng.uniform(120, 720)
        over = rng.uniform(1.05, 1.8) * severity
        base = node.cpu_idle + node.cpu_per_req * sim.rate[root]
        # extra demand so that the total reaches `over` × the limit at the end of the climb,
        # which reaches the limit around the onset
        sim.cpu_extra[root] += (np.clip(over * node.cpu_limit - base, 0, None)
                                * _ramp(t, onset - climb / 2, climb))
        if kind == "database_saturation":
            cause = str(rng.choice(["a slow query after a plan change", "lock contention",
                                    "an analytics job on the primary", "autovacuum storm"]))
            # connection pool exhaustion: a few refused queries once it is saturated
            sim.extra503[root] += min(0.05, 0.01 * severity) * _ramp(t, onset + climb / 2, 120)
        else:
            cause = str(rng.choice(["a hot loop after a traffic shape change", "GC thrashing",
                                    "a runaway background job", "regex backtracking"]))
        fault.update(cpu_limit=node.cpu_limit, demand_over_limit=round(over, 2),
                     climb_s=round(climb), cause=cause)
    elif kind == "dependency_failure":
        mode = str(rng.choice(["errors", "slow", "flapping"], p=[0.5, 0.25, 0.25]))
        ramp = _ramp(t, onset, rng.uniform(0, 120))
        if mode == "slow":  # callers time out: errors (504) in their client metrics
            factor = rng.uniform(6, 40) * severity
            sim.lat_mult[root] *= 1 + (factor - 1) * ramp
            sim.sigma_add[root] += 0.3 * ramp
            sim.extra503[root] += 0.02 * ramp
            fault.update(mode=mode, latency_factor=round(factor, 1))
        else:
            share = min(0.95, rng.uniform(0.1, 0.7) * severity)
            on = np.ones(len(t))
            if mode == "flapping":  # fails in bursts of 1-3 min
                i, period = sim.idx(onset), int(rng.integers(4, 13))
                while i < len(t):
                    on[i:i + period] = 1.0 if rng.random() < 0.6 else 0.1
                    i += period
            sim.extra503[root] += share * ramp * on
            fault.update(mode=mode, failure_share=round(share, 3))
    elif kind == "memory":
        # the leak starts 5-12 min before the first OOM kill; worse leaks crash sooner and
        # take longer to come back
        lead = rng.uniform(300, 720) / severity
        gap = min(12, round(int(rng.integers(2, 6)) * severity))
        down_fail = rng.uniform(0.3, 1.0)
        i0, i_on = sim.idx(onset - lead), sim.idx(onset)
        base_mem = sim.memory(root)
        rate = max(node.mem_limit - float(base_mem[i_on]), 0.1 * node.mem_limit) / (
            t[i_on] - t[i0])
        crashes: list[int] = []
        life_start = t[i0]
        i = i0
        while i < sim.n:
            level = base_mem[i] + rate * (t[i] - life_start)
            crash = (level >= node.mem_limit and (crashes or t[i] >= onset - 60)) or (
                not crashes and i >= i_on)
            if crash:
                crashes.append(i)
                sim.down[root][i:i + gap] = True
                sim.down_fail[root][i:i + gap] = down_fail
                sim.restarts[root].append(min(i + gap, sim.n - 1))
                life_start = t[min(i + gap, sim.n - 1)]
                base_mem = sim.memory(root)
                i += gap
                continue
            sim.mem_extra[root][i] = rate * (t[i] - life_start)
            frac = level / node.mem_limit
            if frac > 0.85:  # GC pressure just before the kill
                sim.lat_mult[root][i] *= 1 + 6 * (frac - 0.85)
                sim.extra500[root][i] += 0.03 * min(1.0, (frac - 0.85) / 0.15)
            i += 1
        for c in crashes:  # cold start: slower for a couple of minutes after the restart
            sim.lat_mult[root][sim.window(t[c], t[c] + 150)] *= 1.6
        fault.update(leak_bytes_per_s=round(rate), mem_limit=round(node.mem_limit),
                     leak_from=_iso(_dt(onset - lead)), restart_gap_s=gap * STEP,
                     crashes=[_iso(_dt(float(t[c]))) for c in crashes])
    elif kind == "none":
        dur = rng.uniform(240, 600)
        blip = ((t >= onset) & (t < onset + dur)).astype(float)
        # a latency blip under the histogram's first buckets would be invisible: errors then
        fast = float(np.median(sim.p99(root)[before])) < 0.025
        if rng.random() < 0.6 or fast:  # the error ratio goes ×2.5-5 for a few minutes
            share = max(base_err, 0.0005) * rng.uniform(1.5, 4)
            sim.extra500[root] += blip * share
            fault.update(blip="errors", error_ratio=round(base_err + share, 5),
                         duration_s=round(dur))
        else:  # or its latency ×1.4-2
            factor = rng.uniform(1.4, 2.0)
            sim.lat_mult[root] *= 1 + blip * (own_factor(factor) - 1)
            fault.update(blip="latency", latency_factor=round(factor, 2), duration_s=round(dur))


def _noise(sim: _Sim, root: str, onset: float, rng: np.random.Generator,
           deploys: list[Deploy], noise: list[str]) -> None:
    """Things that happen in any real window and fool naive methods. `root` is the root cause
    (or, for "none", the alerting service): nothing here touches its causal chain at onset."""
    t, nodes = sim.t, sim.nodes
    internal = [k for k, v in nodes.items() if v.role != "external"]
    related = {root} | _ancestors(sim.edges, root) | _descendants(sim.edges, root)
    unrelated = [k for k in internal if k not in related]

    def blip(svc: str, at: float, dur: float, why: str) -> None:
        w = sim.window(at, at + dur).astype(float)
        if rng.random() < 0.5:
            share = max(nodes[svc].err500 * rng.uniform(5, 30), rng.uniform(0.005, 0.04))
            sim.extra500[svc] += share * w
            noise.append(f"{why}: {svc} errors +{share:.1%} for {dur / 60:.0f} min at "
                         f"onset{(at - onset) / 60:+.0f} min")
        else:
            factor = rng.uniform(1.5, 3.5)
            sim.lat_mult[svc] *= 1 + (factor - 1) * w
            noise.append(f"{why}: {svc} latency ×{factor:.1f} for {dur / 60:.0f} min at "
                         f"onset{(at - onset) / 60:+.0f} min")

    if unrelated and rng.random() < 0.55:  # an unrelated service's blip near the onset
        blip(str(rng.choice(unrelated)), onset + rng.uniform(-40, 5) * 60,
             rng.uniform(60, 300), "unrelated blip")
    others = [k for k in internal if k != root]
    if others and rng.random() < 0.3:  # an earlier, resolved blip anywhere else
        blip(str(rng.choice(others)), onset - rng.uniform(25, 90) * 60, rng.uniform(60, 240),
             "earlier blip")
    stores = [k for k, v in nodes.items() if v.role in ("db", "cache", "external")
              and k != root and sim.callers[k]]
    if stores and rng.random() < 0.3:  # a dependency is slow for a while: callers time out
        svc = str(rng.choice(stores))
        at, dur = onset - rng.uniform(20, 90) * 60, rng.uniform(120, 360)
        w = sim.window(at, at + dur).astype(float)
        factor = rng.uniform(10, 40)
        sim.lat_mult[svc] *= 1 + (factor - 1) * w
        sim.sigma_add[svc] += 0.3 * w
        noise.append(f"slow dependency: {svc} latency ×{factor:.0f} for {dur / 60:.0f} min "
                     f"at onset{(at - onset) / 60:+.0f} min")
    deployable = [k for k in internal if nodes[k].has_build_info and k != root
                  and nodes[k].role in ("entry", "api")]
    if deployable and rng.random() < 0.55:  # an unrelated deploy about an hour before
        svc = str(rng.choice(deployable))
        at = onset - rng.uniform(40, 90) * 60
        new = _bump(nodes[svc].version, rng)
        deploys.append(Deploy(svc, _dt(at), timedelta(seconds=rng.uniform(30, 180)),
                              nodes[svc].version, new, note="unrelated deploy"))
        sim.restarts[svc].append(sim.idx(at + 60))
        noise.append(f"unrelated deploy: {svc} {nodes[svc].version} -> {new} at "
                     f"onset{(at - onset) / 60:+.0f} min")
    if deployable and rng.random() < 0.25:  # an older deploy or a config rollout
        svc = str(rng.choice(deployable))
        at = onset - rng.uniform(100, 170) * 60
        if any(d.service == svc for d in deploys) or rng.random() < 0.4:
            if nodes[svc].has_deployment:
                deploys.append(Deploy(svc, _dt(at), timedelta(seconds=60), nodes[svc].version,
                                      nodes[svc].version, config_only=True,
                                      note="config rollout"))
                sim.restarts[svc].append(sim.idx(at + 30))
                noise.append(f"config rollout: {svc} at onset{(at - onset) / 60:+.0f} min")
        else:
            new = _bump(nodes[svc].version, rng)
            deploys.append(Deploy(svc, _dt(at), timedelta(seconds=rng.uniform(30, 180)),
                                  nodes[svc].version, new, note="earlier deploy"))
            sim.restarts[svc].append(sim.idx(at + 60))
            noise.append(f"earlier deploy: {svc} at onset{(at - onset) / 60:+.0f} min")
    if rng.random() < 0.15:  # a traffic bump (a campaign, a crawler) well before the onset
        at, dur = onset - rng.uniform(40, 150) * 60, rng.uniform(600, 1800)
        factor = rng.uniform(1.2, 1.6)
        sim.traffic = sim.traffic * (1 + (factor - 1) * sim.window(at, at + dur))
        noise.append(f"traffic ×{factor:.1f} for {dur / 60:.0f} min at "
                     f"onset{(at - onset) / 60:+.0f} min")
    if rng.random() < 0.7:  # lone single-sample spikes, anywhere
        for _ in range(int(rng.integers(1, 5))):
            svc = str(rng.choice(internal))
            i = int(rng.integers(1, sim.n))
            what = str(rng.choice(["errors", "latency", "memory", "client"]))
            rate = float(np.mean(sim.rate[svc])) * STEP
            if what == "client" and sim.deps[svc]:
                e = sim.deps[svc][int(rng.integers(0, len(sim.deps[svc])))]
                size = float(np.mean(sim.edge_rate[(svc, e.target)])) * STEP * rng.uniform(
                    0.1, 0.5)
                sim.bursts.append((f"{svc}->{e.target}", "client", i, size))
                svc = f"{svc}->{e.target}"
            elif what == "memory":
                size = rng.uniform(0.2, 0.6)
                sim.bursts.append((svc, what, i, size))
            else:
                what = "errors" if what == "client" else what
                size = rate * rng.uniform(0.05, 0.3)
                sim.bursts.append((svc, what, i, size))
            noise.append(f"spike: {svc} {what} at onset{(t[i] - onset) / 60:+.0f} min")


def _alert_service(sim: _Sim, root: str, onset: float,
                   rng: np.random.Generator) -> str | None:
    """Where an alert would fire: a service on the root's causal chain (the root or a caller,
    transitively) whose error ratio or p99 latency is clearly off in the 10 min after onset.
    Usually a caller; the root itself a fifth of the time it qualifies (or when nothing
    upstream does)."""
    base, after = sim.window(onset - 3600, onset - 300), sim.window(onset, onset + 600)
    chain = {root} | _ancestors(sim.edges, root)
    hit: list[str] = []
    for svc in sim.order:
        if svc not in chain or sim.nodes[svc].role == "external":
            continue
        # what a 5-minute alert rule sees: rolling 5 min means
        err, p99 = _rolling(sim.error_ratio(svc), 20), _rolling(sim.p99(svc), 20)
        e_b, e_a = float(np.mean(err[base])), float(np.max(err[after]))
        l_b, l_a = float(np.median(p99[base])), float(np.max(p99[after]))
        crashed = bool(np.any(sim.down[svc][after]))  # a crash-looping pod pages on its own
        if crashed or e_a > max(3 * e_b, e_b + 0.01) or (l_a > 1.5 * l_b and l_a - l_b > 0.05):
            hit.append(svc)
    if root in hit and rng.random() < 0.2:
        return root
    upstream = [k for k in hit if k != root]
    if upstream:
        return _choose(rng, upstream, sim.nodes, {"entry": 2.0})
    return root if root in hit else None


# --------------------------------------------------------------------------- the generator


def generate_case(seed: int, *, kind: str | None = None, prefix: str = "",
                  anchor: datetime | None = None,
                  spread: timedelta = timedelta(days=10)) -> Case:
    """One scenario, deterministic in (`seed`, `kind`, `prefix`, `anchor`, `spread`).

    `kind` is one of `KINDS` (default: drawn from the seed, ~10% "none"). Every service name
    starts with `prefix`. The data ends at or before `anchor` (default: today 00:00 UTC, so a
    seed gives the same case all day) and the alert falls within `spread` before it."""
    rng = np.random.default_rng([seed, 7919])
    if kind is None:
        kind = str(rng.choice(KINDS, p=[0.18, 0.18, 0.18, 0.18, 0.18, 0.10]))
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if anchor is None:
        anchor = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    nodes, edges = _topology(rng, prefix, kind)
    internal = [k for k, v in nodes.items() if v.role != "external"]
    # when: the alert fires a few minutes after the onset; data from >3 h before to >10 min after
    span = max(spread.total_seconds() - 3600, 3600)
    after = rng.uniform(600, 1200)
    alert_at = anchor.timestamp() - after - 120 - rng.uniform(0, span)
    onset = alert_at - rng.uniform(120, 420)
    first = math.floor((alert_at - 3 * 3600 - rng.uniform(60, 900)) / STEP) * STEP
    last = math.ceil((alert_at + after) / STEP) * STEP
    times = np.arange(first, last + 1, STEP, dtype=float)

    root: str | None
    if kind == "deploy":
        root = _choose(rng, [k for k in internal if nodes[k].role in ("api", "entry")], nodes,
                       {"entry": 0.3})
    elif kind == "database_saturation":
        root = _choose(rng, [k for k in internal if nodes[k].role == "db"], nodes, {})
    elif kind == "dependency_failure":
        root = _choose(rng, [k for k, v in nodes.items() if v.role == "external"], nodes, {})
    elif kind in ("cpu", "memory"):
        root = _choose(rng, [k for k in internal if nodes[k].role in ("api", "entry", "cache")],
                       nodes, {"entry": 0.5, "cache": 0.6})
    else:
        root = None
    for k in internal:  # some services export no process metrics (the faulty one does)
        if k != root and rng.random() < 0.25:
            nodes[k].has_process = False
    noise_seed = int(rng.integers(0, 2 ** 31))

    severity, alert = 1.0, ""
    sim: _Sim | None = None
    deploys: list[Deploy] = []
    fault: dict[str, Any] = {}
    noise: list[str] = []
    for attempt in range(6):  # strengthen a fault too weak to alert anywhere
        nrng = np.random.default_rng([noise_seed, attempt])
        sim = _Sim(nrng, nodes, edges, times)
        deploys, fault, noise = [], {"severity": round(severity, 2)}, []
        if root is None:
            alert = _choose(nrng, internal, nodes, {"entry": 3.0, "db": 0.3, "cache": 0.3})
            _inject(sim, kind, alert, onset, nrng, severity, deploys, fault)
            _noise(sim, alert, onset, nrng, deploys, noise)
            sim.derive()
            break
        _inject(sim, kind, root, onset, nrng, severity, deploys, fault)
        _noise(sim, root, onset, nrng, deploys, noise)
        sim.derive()
        picked = _alert_service(sim, root, onset, nrng)
        if picked is not None:
            alert = picked
            break
        severity *= 1.5
    assert sim is not None
    if not alert:  # still nothing clear: the nearest caller (or the root) pages anyway
        alert = root if root in internal else sim.callers[str(root)][0].caller
    case = Case(
        name=f"{prefix}{kind}-{seed}", seed=seed, prefix=prefix, kind=kind, services=list(nodes),
        externals=[k for k, v in nodes.items() if v.role == "external"],
        edges=[(e.caller, e.target) for e in edges], root_service=root,
        root_kind=ROOT_KIND[kind], acceptable_kinds=ACCEPTABLE_KINDS[kind],
        alert_service=alert, onset=_dt(onset), alert_at=_dt(alert_at), start=_dt(first),
        end=_dt(float(times[-1])), fault=fault, noise=noise, deploys=deploys,
        without_process_metrics=[k for k in internal if not nodes[k].has_process])
    sim.sample(deploys, case.series)
    return case
