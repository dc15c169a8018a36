"""An independent generator of synthetic microservice incidents with a known root cause, for
judging a root-cause-analysis engine against a second, separately written view of what real
incidents look like. Run `python -m tests.bench.cases_independent --check` to backfill a set of
cases into a real Prometheus and read every designed effect back with PromQL.

What this module owns: a seeded model of a small estate (topology, traffic, latency, errors,
CPU, memory, restarts, rollouts); a catalogue of faults (`KINDS`) injected into it; the
confounders mixed in; and the two traces such an estate leaves behind: the series Prometheus
would have scraped (`GeneratedCase.families`) and the changes CI/CD pipelines would have
reported (`GeneratedCase.changes`). It never looks at how the engine under test works.

The system model, in short:
- Topology: a DAG in layers: 1-3 entry services (gateways, BFFs), layers of application
  services (fan-out, fan-in, diamonds), and leaves: databases and caches (self-hosted with
  process metrics only, or managed with no series of their own) and external providers, which
  exist only as `target` of their callers' client metrics. An edge carries calls per request,
  retries, a timeout, backoff, and how much of the callee's failure the caller passes on
  (`absorb`; the rest is a fallback).
- Load flows down in topological order: entry traffic (daily seasonality, AR(1) noise) times
  calls per request times attempts per call (retries) on every edge.
- Health flows up, simulated per 15 s step with a small Monte-Carlo population of requests:
  each service draws its own latency (lognormal; a queueing factor from utilisation, which is
  the larger of load/capacity and CPU demand/limit; a slow tail) and its own errors (bugs =
  500, load shedding and down pods = 503), then calls each callee by drawing from the callee's
  population: a draw slower than the edge timeout is a timeout (504 seen by the caller),
  503/504 are retried, and a final failure fails the caller with probability `absorb`. So a
  caller's latency contains its callees' and its errors follow theirs, partly absorbed.
  Load and health are iterated so retries feed back into load.
- Observation: per-step request counts are Poisson, split into codes (multinomial) and
  histogram buckets (sequential binomials); counters are cumulative with an uptime offset,
  reset by restarts, absent while a process is down, and label series appear lazily.
- A case: a fault of one kind at a root, an alert placed on a service that visibly shows the
  symptom (chosen after simulating, checked with the same arithmetic as PromQL), and two
  to seven confounders placed so they cannot explain the alert's symptom.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np

from tests.fakes.prometheus_server import MetricFamily, openmetrics, running_prometheus

KINDS: tuple[str, ...] = (
    "bad_deploy", "silent_deploy", "config_change", "db_slow", "external_down",
    "new_dependency", "cpu_exhaustion", "memory_leak", "traffic_surge", "pool_exhaustion",
    "retry_storm", "partial_failure", "cache_eviction", "none",
)

STEP = 15                    # scrape interval, seconds
SPM = 60 // STEP             # steps per minute
WINDOW = 3 * 3600            # seconds of history before the alert
POP = 128                    # Monte-Carlo requests per service per step
LE = np.array([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
LE_LABELS = [*(f"{x:g}" for x in LE), "+Inf"]
OK, C500, C503, C502, C504 = range(5)          # simulated outcome codes
SIM_CODES = ("200", "500", "503", "502", "504")
SERVED_CODES = ("200", "404", "429", "500", "502", "503", "504")

ENTRY_NAMES = ("gateway", "api-gateway", "mobile-bff", "web-bff", "partner-api", "admin-api",
               "graphql", "edge-proxy", "storefront-api")
APP_NAMES = ("checkout", "cart", "catalog", "search", "pricing", "inventory", "orders",
             "payments", "ledger", "billing", "accounts", "auth", "users", "profile",
             "recommendations", "reviews", "shipping", "notifications", "fraud-check", "tax",
             "promotions", "wishlist", "media", "sessions", "geo", "quotes", "invoices",
             "loyalty", "returns", "fulfillment", "subscriptions", "risk", "identity", "feed",
             "ratings", "coupons", "warehouse", "settlement", "kyc", "audit-log")
NEW_NAMES = ("fraud-score", "pricing-v2", "recs-ml", "tax-engine", "address-validation",
             "entitlements", "consent", "eta-predictor")
DB_NAMES = (("postgres-main", False), ("postgres-orders", False), ("mysql-legacy", False),
            ("mongo-catalog", False), ("cassandra-events", False), ("elasticsearch", False),
            ("rds-ledger", True), ("aurora-billing", True), ("dynamodb-carts", True),
            ("cloudsql-users", True))
CACHE_NAMES = ("redis-sessions", "redis-cache", "memcached-catalog", "redis-carts")
EXTERNAL_NAMES = ("stripe-api", "adyen-api", "twilio-sms", "sendgrid-email", "s3",
                  "maps-api", "avalara-tax", "fedex-api", "auth0", "paypal-api", "recaptcha")
NAMESPACES = ("storefront", "payments", "platform", "core", "growth", "logistics")
RUNTIMES = ("jvm", "go", "python", "node")
CONFOUNDERS = ("unrelated_deploy", "cron_cpu", "gc_pause", "batch_traffic", "error_blip",
               "earlier_incident", "noisy_service", "lone_spikes", "restart", "scrape_gaps",
               "slow_trend", "unrelated_config")


@dataclass
class GeneratedCase:
    """One synthetic incident: its truth (kind, root, onset), what the engine is asked
    (alert_service, alert_at) and what it can read (families, changes)."""

    name: str
    seed: int
    kind: str
    root_service: str | None
    acceptable_kinds: frozenset[str]
    alert_service: str
    alert_at: datetime
    onset: datetime | None
    families: list[MetricFamily]
    changes: list[dict]
    notes: list[str]


# --- the estate -------------------------------------------------------------------------------


@dataclass
class _Svc:
    """A node of the estate with its baseline parameters and per-step modifiers (arrays of
    length n); faults and confounders only ever edit the modifiers."""

    name: str
    role: str                      # entry | app | db | cache | external
    layer: float
    n: int
    http: bool = True              # serves http_requests_total / duration histogram
    process: bool = True           # process_cpu / memory series
    k8s: bool = True               # build_info + kube generation
    managed: bool = False
    namespace: str = "core"
    runtime: str = "go"
    lat0: float = 0.01             # own median latency, s
    sigma: float = 0.5
    err0: float = 0.001
    p404: float = 0.0
    cap: float = math.inf          # requests/s before queueing explodes
    cpu_limit: float = 1.0
    cpu_base: float = 0.02
    cpu_pr: float = 0.0            # CPU seconds per request
    mem_base: float = 2e8
    mem_limit: float = 5e8
    mem_trend: float = 0.0         # relative growth over the window
    saw: tuple[float, float] = (0.0, 600.0)  # GC sawtooth: amplitude (relative), period s
    base_rps: float = 0.0
    parallel: bool = False         # calls its dependencies concurrently (latency = max)
    dep_code: int = C500           # what this service answers when a dependency fails
    timeout_code: int = C500
    rate_limit: float | None = None
    offset: int = 0                # scrape offset within the 15 s interval
    uptime: float = 86400.0
    gen0: int = 1
    replicas: int = 2
    f_down: float = 1.0            # share of callers' attempts refused while down
    versions: list[list[Any]] = field(default_factory=list)  # [version, start, end, rollout]
    gen_bumps: list[int] = field(default_factory=list)
    restarts: list[tuple[int, int]] = field(default_factory=list)  # (down start, down steps)

    def __post_init__(self) -> None:
        n = self.n
        self.traffic = np.ones(n)       # multiplier of the entry's own traffic
        self.extra_rps = np.zeros(n)    # traffic from outside the modelled graph (batch jobs)
        self.lat_mult = np.ones(n)
        self.slow_frac = np.zeros(n)
        self.slow_level = np.full(n, 2.0)
        self.err500 = np.zeros(n)
        self.err503 = np.zeros(n)
        self.err_noise = np.ones(n)
        self.cap_mult = np.ones(n)
        self.cpu_mult = np.ones(n)
        self.cpu_limit_t = np.ones(n)
        self.cpu_add = np.zeros(n)      # counted in utilisation (GC thrash, startup)
        self.cpu_extra = np.zeros(n)    # not counted (a cron thread with its own quota)
        self.mem_extra = np.zeros(n)
        self.gaps = np.zeros(n, bool)   # scrape gaps (process up, not scraped)
        self.exists = np.ones(n, bool)
        self.noise_lat = np.ones(n)
        self.noise_traffic = np.ones(n)

    def add_version(self, version: str, start: int, rollout: int) -> None:
        """A version rolled out at `start`; the one before it runs until the rollout ends."""
        self.versions.append([version, start, self.n, rollout])
        self.versions.sort(key=lambda v: v[1])
        for cur, nxt in zip(self.versions, self.versions[1:], strict=False):
            cur[2] = min(self.n, nxt[1] + nxt[3])
        self.versions[-1][2] = self.n

    def version_at(self, i: int) -> str | None:
        running = [v for v in self.versions if v[1] <= i]
        return str(running[-1][0]) if running else None

    @property
    def down(self) -> np.ndarray:
        d = np.zeros(self.n, bool)
        for start, steps in self.restarts:
            d[max(start, 0):start + steps] = True
        return d

    @property
    def alive(self) -> np.ndarray:
        return self.exists & ~self.down

    @property
    def resets(self) -> np.ndarray:
        return np.array(sorted(s + k for s, k in self.restarts if 0 < s + k < self.n), int)


@dataclass
class _Edge:
    src: str
    dst: str
    n: int
    w: float = 1.0                 # calls per request
    retries: int = 0
    timeout: float = 5.0
    absorb: float = 1.0
    backoff: float = 0.05
    lag: int = 0
    paired: str | None = None      # for a db edge: the cache in front of it (cache-aside)

    def __post_init__(self) -> None:
        self.active = np.ones(self.n, bool)
        self.w_mult = np.ones(self.n)
        self.retries_t = np.full(self.n, self.retries)
        self.timeout_t = np.full(self.n, self.timeout)
        self.apc_floor = np.ones(self.n)

    @property
    def key(self) -> tuple[str, str]:
        return (self.src, self.dst)


@dataclass
class _Health:
    """One simulated pass: per service the outcome mix, the bucket CDF, mean latency and own
    unavailability; per edge attempts per call and the attempts' outcome mix."""

    codes: dict[str, np.ndarray]
    cdf: dict[str, np.ndarray]
    mean_lat: dict[str, np.ndarray]
    unavail: dict[str, np.ndarray]
    apc: dict[tuple[str, str], np.ndarray]
    attempt_codes: dict[tuple[str, str], np.ndarray]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ar1(rng: np.random.Generator, n: int, sigma: float, rho: float = 0.9) -> np.ndarray:
    """Lognormal AR(1) multiplicative noise with stationary log-sd `sigma`."""
    e = rng.standard_normal(n) * sigma * math.sqrt(1 - rho * rho)
    x = np.empty(n)
    acc = rng.standard_normal() * sigma
    for i in range(n):  # n ~ 760: a plain loop is cheap and exact
        acc = rho * acc + e[i]
        x[i] = acc
    return np.exp(x - sigma * sigma / 2)


def _next_version(v: str, rng: np.random.Generator) -> str:
    if "." in v:
        ma, mi, pa = (int(x) for x in v.split("."))
        return f"{ma}.{mi + 1}.0" if rng.random() < 0.4 else f"{ma}.{mi}.{pa + 1}"
    return "".join(rng.choice(list("0123456789abcdef"), 7))


def _first_version(rng: np.random.Generator) -> str:
    if rng.random() < 0.65:
        return f"{int(rng.integers(1, 5))}.{int(rng.integers(0, 60))}.{int(rng.integers(0, 12))}"
    return "".join(rng.choice(list("0123456789abcdef"), 7))


def _hist_quantile(q: float, buckets: np.ndarray) -> float:
    """PromQL's histogram_quantile over cumulative bucket increases (last = +Inf)."""
    total = buckets[-1]
    if total <= 0:
        return float("nan")
    rank = q * total
    i = int(np.searchsorted(buckets, rank, side="left"))
    if i >= len(LE):
        return float(LE[-1])
    lo, lo_c = (0.0, 0.0) if i == 0 else (float(LE[i - 1]), float(buckets[i - 1]))
    width = buckets[i] - lo_c
    return lo + (float(LE[i]) - lo) * ((rank - lo_c) / width if width > 0 else 1.0)


def _row_hist(values: np.ndarray, k: int, where: np.ndarray | None = None) -> np.ndarray:
    """Per row of an (n, m) array of small ints in [0, k): the share of each value."""
    n, m = values.shape
    flat = (np.arange(n)[:, None] * k + values).ravel()
    w = None if where is None else where.ravel().astype(np.float64)
    return np.bincount(flat, weights=w, minlength=n * k).reshape(n, k) / m


def _cumulative(inc: np.ndarray, init: float, resets: np.ndarray) -> np.ndarray:
    cum = np.cumsum(inc)
    if not resets.size:
        return cum + init
    seg = np.searchsorted(resets, np.arange(inc.size), side="right")
    base = np.concatenate(([0.0], cum[resets - 1]))
    return cum - base[seg] + np.where(seg == 0, init, 0.0)


# --- one case ---------------------------------------------------------------------------------


class _World:
    """Builds one case for one severity attempt: topology, fault, alert, confounders,
    simulation, draws; `emit` turns the draws into families."""

    def __init__(self, seed: int, prefix: str, alert_ts: int, kind: str, sev: float) -> None:
        self.seed, self.prefix, self.kind, self.sev = seed, prefix, kind, sev
        self.alert_ts = alert_ts
        r = np.random.default_rng([seed, 11])
        self.tail = int(r.integers(2 * SPM, 8 * SPM))
        self.t0 = (alert_ts - WINDOW) // STEP * STEP
        self.alert_idx = (alert_ts - self.t0) // STEP
        self.n = self.alert_idx + self.tail + 1
        self.idx = np.arange(self.n)
        self.svcs: dict[str, _Svc] = {}
        self.edges: list[_Edge] = []
        self.changes: list[dict] = []
        self.notes: list[str] = []
        self.root: str | None = None
        self.onset_idx: int | None = None
        self.acceptable: frozenset[str] = frozenset({"unknown"})
        self.alert: str = ""
        self.candidates: list[str] = []
        self.hub = ""                             # the saturated shared dependency, if any
        self.touched: dict[str, set[str]] = {}   # service -> effectful confounders on it
        self.rng_topo = np.random.default_rng([seed, 1])
        self.rng_fault = np.random.default_rng([seed, 2])
        self.rng_alert = np.random.default_rng([seed, 3])
        self.rng_conf = np.random.default_rng([seed, 4])
        self.rng_sim = np.random.default_rng([seed, 5])
        self.rng_obs = np.random.default_rng([seed, 6])
        # protected windows: the 5 m before the alert and an hour earlier (the check's reads)
        a = self.alert_idx
        self.w_now = (a - 8 * SPM, self.n)
        self.w_before = (a - 67 * SPM, a - 53 * SPM)

    # -- helpers --------------------------------------------------------------------------

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def ts(self, i: float) -> int:
        return int(self.t0 + STEP * i)

    def steps(self, minutes: float) -> int:
        return round(minutes * SPM)

    def ramp(self, start: int, dur: int) -> np.ndarray:
        x = np.clip((self.idx - start) / max(dur, 1), 0.0, 1.0)
        return x * x * (3 - 2 * x)

    def window(self, start: int, dur: int) -> np.ndarray:
        return ((self.idx >= start) & (self.idx < start + dur)).astype(float)

    def out(self, name: str) -> list[_Edge]:
        return [e for e in self.edges if e.src == name]

    def inc(self, name: str) -> list[_Edge]:
        return [e for e in self.edges if e.dst == name]

    def desc(self, name: str) -> set[str]:
        seen: set[str] = set()
        stack = [name]
        while stack:
            for e in self.out(stack.pop()):
                if e.dst not in seen:
                    seen.add(e.dst)
                    stack.append(e.dst)
        return seen

    def anc(self, name: str) -> set[str]:
        seen: set[str] = set()
        stack = [name]
        while stack:
            for e in self.inc(stack.pop()):
                if e.src not in seen:
                    seen.add(e.src)
                    stack.append(e.src)
        return seen

    def order(self) -> list[_Svc]:
        return sorted(self.svcs.values(), key=lambda s: s.layer)

    def pick(self, rng: np.random.Generator, items: Sequence[str],
             weights: Sequence[float] | None = None) -> str:
        if weights is None:
            return str(items[int(rng.integers(len(items)))])
        p = np.asarray(weights, float)
        return str(items[int(rng.choice(len(items), p=p / p.sum()))])

    def outside(self, i: int, dur: int) -> bool:
        """Whether [i, i+dur) misses both protected windows."""
        return all(i + dur <= lo or i >= hi for lo, hi in (self.w_now, self.w_before))

    def free_start(self, rng: np.random.Generator, dur: int, lo: int = 4,
                   hi: int | None = None) -> int:
        hi = self.n - dur if hi is None else hi
        for _ in range(50):
            i = int(rng.integers(lo, max(hi, lo + 1)))
            if self.outside(i, dur):
                return i
        return lo

    def deploy(self, s: _Svc, i: int, rng: np.random.Generator, *, report: bool,
               kind: str = "deploy", rollout: int | None = None, version: str | None = None,
               why: str = "") -> str:
        """Roll out a new version of `s` at step i: build_info overlap during the rollout and a
        generation bump (k8s services only); optionally reported by the pipeline."""
        prev = s.version_at(i) or _first_version(rng)
        new = version or _next_version(prev, rng)
        if s.k8s:
            s.add_version(new, i, rollout if rollout is not None else int(rng.integers(2, 10)))
            s.gen_bumps.append(i)
        if report:
            tool = self.pick(rng, ["ArgoCD", "Spinnaker", "GitHub Actions", "Jenkins", "Flux"])
            self.changes.append({
                "service": s.name, "kind": kind,
                "occurred_at": _iso(self.ts(i) + int(rng.integers(-20, 40))),
                "version": new, "previous_version": prev,
                "description": why or f"{kind} {new} via {tool}",
            })
        return new

    def report(self, service: str, kind: str, i: int, description: str,
               rng: np.random.Generator) -> None:
        self.changes.append({"service": service, "kind": kind,
                             "occurred_at": _iso(self.ts(i) + int(rng.integers(-10, 30))),
                             "description": description})

    # -- topology ---------------------------------------------------------------------------

    def build(self) -> None:
        rng, kind, n = self.rng_topo, self.kind, self.n
        total = int(rng.integers(5, 26))
        n_entry = int(rng.choice([1, 1, 2, 2, 3])) if total >= 9 else 1
        n_db = 1 + int(rng.random() < 0.4) + int(total > 15 and rng.random() < 0.4)
        n_cache = int(rng.random() < 0.45) + int(total > 14 and rng.random() < 0.3)
        n_ext = int(rng.integers(0, 3))
        if kind == "cache_eviction":
            n_cache = max(n_cache, 1)
        if kind == "external_down":
            n_ext = max(n_ext, 1)
        n_app = max(total - n_entry - n_db - n_cache - n_ext, 2)
        depth = min(int(rng.integers(2, 7)), n_app + 1)
        leaf_layer = float(depth)

        def mk(base: str, role: str, layer: float, **kw: Any) -> _Svc:
            s = _Svc(name=self.name(base), role=role, layer=layer, n=n, **kw)
            self.svcs[s.name] = s
            return s

        entries = [mk(b, "entry", 0) for b in rng.choice(ENTRY_NAMES, n_entry, replace=False)]
        app_names = list(rng.choice(APP_NAMES, n_app, replace=False))
        counts = np.ones(depth - 1, int)
        for _ in range(n_app - (depth - 1)):
            counts[int(rng.integers(depth - 1))] += 1
        layers: list[list[_Svc]] = [entries]
        it = iter(app_names)
        for li, c in enumerate(counts, start=1):
            layers.append([mk(next(it), "app", li) for _ in range(c)])
        dbs = []
        for base, managed in (DB_NAMES[i] for i in rng.choice(len(DB_NAMES), n_db, False)):
            dbs.append(mk(base, "db", leaf_layer, managed=managed, http=False,
                          process=not managed and rng.random() < 0.6, k8s=False))
        caches = [mk(b, "cache", leaf_layer, http=False, process=rng.random() < 0.7, k8s=False)
                  for b in rng.choice(CACHE_NAMES, n_cache, replace=False)]
        exts = [mk(b, "external", leaf_layer, http=False, process=False, k8s=False,
                   managed=True) for b in rng.choice(EXTERNAL_NAMES, n_ext, replace=False)]

        def edge(src: _Svc, dst: _Svc) -> _Edge | None:
            if any(e.src == src.name and e.dst == dst.name for e in self.edges):
                return None
            e = _Edge(src=src.name, dst=dst.name, n=n)
            self.edges.append(e)
            return e

        for li in range(1, depth):
            for a in layers[li]:
                edge(layers[li - 1][int(rng.integers(len(layers[li - 1])))], a)
                earlier = [s for lay in layers[:li] for s in lay]
                for k in rng.choice(len(earlier), min(int(rng.choice([0, 0, 0, 1, 1, 2])),
                                                      len(earlier)), replace=False):
                    edge(earlier[int(k)], a)  # fan-in and diamonds
        for en in entries:
            if not self.out(en.name):
                edge(en, layers[1][int(rng.integers(len(layers[1])))])
        apps = [s for lay in layers[1:] for s in lay]
        for i, db in enumerate(dbs):
            k = int(rng.integers(2, 5)) if i == 0 else int(rng.integers(1, 3))
            for a in rng.choice(len(apps), min(k, len(apps)), replace=False):
                edge(apps[int(a)], db)
        for a in apps:
            if not self.out(a.name) and rng.random() < 0.7:
                edge(a, dbs[int(rng.integers(len(dbs)))])
        for c in caches:
            k = int(rng.integers(1, 4))
            for a in rng.choice(len(apps), min(k, len(apps)), replace=False):
                app = apps[int(a)]
                edge(app, c)
                db_edges = [e for e in self.out(app.name) if self.svcs[e.dst].role == "db"]
                if not db_edges:
                    e2 = edge(app, dbs[int(rng.integers(len(dbs)))])
                    db_edges = [e2] if e2 else []
                if db_edges:
                    db_edges[0].paired = c.name
        deep = sorted(apps, key=lambda s: -s.layer)
        for x in exts:
            for a in rng.choice(len(deep), min(int(rng.integers(1, 3)), len(deep)), False):
                edge(deep[int(a)], x)
        self.params()

    def params(self) -> None:
        """Baseline parameters: latencies, errors, edge policies, traffic, capacities."""
        rng = self.rng_topo
        for s in self.svcs.values():
            s.offset = int(rng.integers(0, STEP))
            s.uptime = float(rng.uniform(0.3, 30) * 86400)
            s.namespace = self.pick(rng, NAMESPACES)
            s.runtime = self.pick(rng, RUNTIMES)
            s.gen0 = int(rng.integers(2, 400))
            s.replicas = int(rng.integers(2, 7))
            s.sigma = float(rng.uniform(0.25, 0.6))
            s.err0 = float(10 ** rng.uniform(-4, -2.2))
            s.noise_lat = _ar1(rng, self.n, float(rng.uniform(0.04, 0.12)), 0.8)
            if s.role == "entry":
                s.lat0 = float(rng.uniform(0.002, 0.01))
                s.parallel = rng.random() < 0.5
                s.base_rps = float(np.exp(rng.uniform(math.log(40), math.log(900))))
                s.noise_traffic = _ar1(rng, self.n, float(rng.uniform(0.03, 0.08)), 0.93)
                s.dep_code, s.timeout_code = C502, C504
                s.p404 = float(rng.uniform(0.005, 0.05))
                s.process = rng.random() < 0.85
                s.k8s = rng.random() < 0.9
            elif s.role == "app":
                s.lat0 = float(np.exp(rng.uniform(math.log(0.002), math.log(0.025))))
                if rng.random() < 0.06:
                    s.lat0 = float(rng.uniform(0.04, 0.12))
                s.parallel = rng.random() < 0.3
                s.dep_code = C500 if rng.random() < 0.7 else C503
                s.timeout_code = s.dep_code
                s.p404 = float(rng.uniform(0, 0.02)) if rng.random() < 0.4 else 0.0
                s.process = rng.random() < 0.8
                s.k8s = rng.random() < 0.88
            elif s.role == "db":
                s.lat0 = float(rng.uniform(0.0008, 0.008))
                s.err0 = float(10 ** rng.uniform(-5, -3.5))
            elif s.role == "cache":
                s.lat0 = float(rng.uniform(0.0002, 0.0015))
                s.sigma = float(rng.uniform(0.3, 0.5))
                s.err0 = float(10 ** rng.uniform(-5, -3.5))
            else:
                s.lat0 = float(np.exp(rng.uniform(math.log(0.03), math.log(0.25))))
                s.err0 = float(10 ** rng.uniform(-3.5, -2.3))
            s.slow_level[:] = s.over_level = float(np.clip(s.lat0 * 60, 0.6, 5.0))
            if s.http and s.k8s:
                s.add_version(_first_version(rng), 0, 0)
            if s.role == "entry" and rng.random() < 0.4:
                s.rate_limit = -1.0  # set from traffic below
        for e in self.edges:
            dst = self.svcs[e.dst]
            if dst.role == "db":
                e.w, e.retries = float(rng.uniform(1, 4)), int(rng.random() < 0.2)
                e.timeout = float(rng.choice([0.5, 1, 2, 3, 5]))
                e.absorb = float(rng.uniform(0.85, 1.0))
            elif dst.role == "cache":
                e.w, e.retries = float(rng.uniform(1, 3)), 0
                e.timeout = float(rng.choice([0.05, 0.1, 0.2, 0.5]))
                e.absorb = float(rng.uniform(0.0, 0.2))
            elif dst.role == "external":
                e.w, e.retries = float(rng.uniform(0.05, 0.4)), int(rng.integers(0, 3))
                e.timeout = float(rng.choice([2, 5, 10, 15]))
                e.absorb = float(rng.uniform(0.2, 1.0))
            elif self.svcs[e.src].role == "entry":
                e.w, e.retries = 1.0, int(rng.random() < 0.3)
                e.timeout = float(rng.choice([5, 10, 15, 30]))
                e.absorb = 1.0
            else:
                e.w = float(np.exp(rng.uniform(math.log(0.4), math.log(1.8))))
                e.retries = int(rng.choice([0, 0, 0, 1, 1, 2]))
                e.timeout = float(rng.choice([0.5, 1, 2, 2, 3, 5, 10]))
                e.absorb = float(rng.uniform(0.5, 1.0))
            e.backoff = float(rng.uniform(0.02, 0.2))
            e.lag = int(rng.choice([1, 2, 4])) if rng.random() < 0.12 else 0
        for s in self.svcs.values():  # a gateway routes a share of its traffic to each backend
            if s.role == "entry":
                es = self.out(s.name)
                shares = rng.dirichlet(np.ones(len(es))) * rng.uniform(1.0, 1.4)
                for e, sh in zip(es, shares, strict=True):
                    e.w = float(max(sh, 0.1))
        self.season()
        self.sanity_timeouts()
        load = self.loads(None, None)
        peak = max(float(load[s.name].max()) for s in self.svcs.values()
                   if s.role in ("app", "entry"))
        low = min(float(load[s.name].mean()) for s in self.svcs.values()
                  if s.role in ("app", "entry"))
        scale = min(2000 / peak, max(1.0, 8 / max(low, 1e-3)))
        if scale != 1.0:
            for s in self.svcs.values():
                s.base_rps *= scale
            load = self.loads(None, None)
        for s in self.svcs.values():
            lp, lm = float(load[s.name].max()), float(load[s.name].mean())
            if s.role == "external":
                s.cap = math.inf
            elif s.role == "cache":
                s.cap = lp / rng.uniform(0.05, 0.15)
            else:
                s.cap = lp / rng.uniform(0.2, 0.5)
            s.cpu_limit = float(rng.choice([2.0, 4.0])) if s.role == "db" else \
                float(rng.choice([0.5, 1.0, 1.0, 2.0, 2.0, 4.0]))
            s.cpu_limit_t[:] = s.cpu_limit
            s.cpu_base = float(rng.uniform(0.01, 0.06))
            target = rng.uniform(0.1, 0.45) * s.cpu_limit
            s.cpu_pr = max(target - s.cpu_base, 0.01) / max(lp, 1e-3)
            if s.role == "external":
                s.cpu_pr, s.cpu_limit_t[:] = 0.0, math.inf
            base = {"jvm": (5e8, 3e9), "go": (5e7, 4e8), "python": (1.5e8, 8e8),
                    "node": (1e8, 6e8)}[s.runtime]
            if s.role == "db":
                base = (1e9, 3.5e9)
            elif s.role == "cache":
                base = (1e8, 2e9)
            s.mem_base = float(np.exp(rng.uniform(math.log(base[0]), math.log(base[1]))))
            s.mem_limit = min(s.mem_base * rng.uniform(1.5, 2.5), 4.2e9)
            s.saw = (float(rng.uniform(0.05, 0.15) if s.runtime == "jvm" else
                           rng.uniform(0.0, 0.04)), float(rng.uniform(120, 900)))
            if s.rate_limit is not None:
                s.rate_limit = lm * rng.uniform(1.8, 2.5)
            if lm < 1.0 and s.role in ("app", "entry"):
                s.err0 = min(s.err0, 0.002)

    def season(self) -> None:
        rng = self.rng_topo
        amp, peak_h = float(rng.uniform(0.15, 0.5)), float(rng.uniform(11, 21))
        hours = ((self.t0 + STEP * self.idx) % 86400) / 3600.0
        self.seasonal = 1 + amp * np.cos(2 * np.pi * (hours - peak_h) / 24)
        self.notes.append(f"daily seasonality ±{amp:.0%} peaking at {peak_h:.0f}h UTC")

    def sanity_timeouts(self) -> None:
        """Edge timeouts above a rough healthy p99.9 of the callee (leaves first)."""
        p999: dict[str, float] = {}
        for s in reversed(self.order()):
            med = s.lat0 + sum(e.w * p999.get(e.dst, 0.0) / 4 for e in self.out(s.name))
            p999[s.name] = med * math.exp(3.1 * s.sigma)
        for e in self.edges:
            e.timeout = max(e.timeout, 2.5 * p999[e.dst])
            e.timeout_t[:] = e.timeout
            e.retries_t[:] = e.retries

    # -- simulation --------------------------------------------------------------------------

    def p429(self, s: _Svc, load: np.ndarray) -> np.ndarray:
        if not s.rate_limit or s.rate_limit <= 0:
            return np.zeros(self.n)
        return np.clip(1 - s.rate_limit / np.maximum(load, 1e-9), 0, 1)

    def loads(self, health: _Health | None, prev: dict[str, np.ndarray] | None,
              ) -> dict[str, np.ndarray]:
        """Arrival rate per service, top-down."""
        load = {name: np.zeros(self.n) for name in self.svcs}
        for s in self.order():
            if s.role == "entry":
                load[s.name] += s.base_rps * self.seasonal * s.noise_traffic * s.traffic
            load[s.name] += s.extra_rps
            load[s.name] *= s.exists
            through = load[s.name] * (1 - self.p429(s, load[s.name]))
            if health is not None:
                through = through * (1 - health.unavail[s.name])
            for e in self.out(s.name):
                a = health.apc[e.key] if health is not None else 1.0
                a = np.maximum(a, e.apc_floor)
                load[e.dst] += through * e.w * e.w_mult * e.active * a
        return load

    def util(self, s: _Svc, load: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cpu = s.cpu_base + s.cpu_pr * s.cpu_mult * load + s.cpu_add
        u = load / (s.cap * s.cap_mult) if math.isfinite(s.cap) else np.zeros(self.n)
        return np.maximum(u, cpu / s.cpu_limit_t), cpu

    def health(self, load: dict[str, np.ndarray], final: bool) -> _Health:
        rng, n, m = self.rng_sim, self.n, POP
        lat: dict[str, np.ndarray] = {}
        code: dict[str, np.ndarray] = {}
        h = _Health({}, {}, {}, {}, {}, {})
        for s in reversed(self.order()):
            u, _ = self.util(s, load[s.name])
            over = np.where(u > 1, np.clip(1 - 1 / np.maximum(u, 1e-9), 0, 0.95), 0.0)
            q = np.clip(0.5 / (1 - np.minimum(u, 0.97)), 1, 25)
            med = (s.lat0 * s.lat_mult * q * s.noise_lat).astype(np.float32)
            z = rng.standard_normal((n, m), dtype=np.float32)
            x = med[:, None] * np.exp(np.float32(s.sigma) * z)
            p_slow = 1 - (1 - np.clip(s.slow_frac, 0, 1)) * (1 - 0.35 * over)
            if p_slow.max() > 0:
                slow = rng.random((n, m), dtype=np.float32) < p_slow[:, None]
                tail = s.slow_level.astype(np.float32)[:, None] * np.exp(
                    np.float32(0.25) * z[:, ::-1])
                x = np.where(slow, tail, x)
            p500 = np.clip(s.err0 * s.err_noise + s.err500, 0, 1)
            p503 = np.clip(s.err503 + 0.6 * over + s.f_down * s.down, 0, 1 - p500)
            r = rng.random((n, m), dtype=np.float32)
            c = (r < p500[:, None]).astype(np.int8)
            if p503.max() > 0:
                unavailable = (r >= p500[:, None]) & (r < (p500 + p503)[:, None])
                c[unavailable] = C503
                x[unavailable] = 0.002
            h.unavail[s.name] = p503
            waits = []
            for e in self.out(s.name):
                wait, c = self.call(s, e, c, lat[e.dst], code[e.dst], h)
                waits.append(wait)
            if waits:
                x = x + (np.maximum.reduce(waits) if s.parallel else np.add.reduce(waits))
            lat[s.name], code[s.name] = x, c
            if final and s.http:
                h.codes[s.name] = _row_hist(c, 5)
                # bucket i counts x <= LE[i] (le is inclusive)
                h.cdf[s.name] = np.cumsum(_row_hist(np.searchsorted(LE, x, side="left"),
                                                    len(LE) + 1), axis=1)[:, :-1]
                h.mean_lat[s.name] = x.mean(1)
        return h

    def call(self, s: _Svc, e: _Edge, c: np.ndarray, dl: np.ndarray, dc: np.ndarray,
             h: _Health) -> tuple[np.ndarray, np.ndarray]:
        """Every request of `s` virtually calls `e.dst` (for the edge statistics: attempts per
        call, their outcomes); the ones that really call it (per w, still healthy) take on the
        latency (returned as the wait) and the failures. A callee's population is i.i.d. per
        step, so a random column permutation is a fresh independent draw of it. Beyond the first
        call of a request, further calls (w > 1) add the callee's mean latency."""
        rng, n, m = self.rng_sim, self.n, POP
        if e.lag:
            dl = np.concatenate([np.repeat(dl[:1], e.lag, 0), dl[:-e.lag]])
            dc = np.concatenate([np.repeat(dc[:1], e.lag, 0), dc[:-e.lag]])
        w = e.w * e.w_mult
        called = (c == OK) & (rng.random((n, m), dtype=np.float32)
                              < np.minimum(w, 1)[:, None]) & e.active[:, None]
        t_out = e.timeout_t.astype(np.float32)[:, None]
        r_max = int(e.retries_t.max())
        pending = np.ones((n, m), bool)
        total = np.zeros((n, m), np.float32)
        fail = np.zeros((n, m), np.int8)
        attempts = np.zeros(n)
        counts = np.zeros((n, 5))
        for i in range(r_max + 1):
            perm = rng.permutation(m)
            al, ac = dl[:, perm], dc[:, perm]
            timed = al > t_out
            ac[timed] = C504
            np.minimum(al, t_out, out=al)
            if i:
                al += np.float32(e.backoff * i)
            total += al * pending
            attempts += np.count_nonzero(pending, axis=1) / m
            counts += _row_hist(ac, 5, pending)
            bad = pending & (ac != OK)
            if i < r_max:
                retry = bad & ((ac == C503) | timed) & (i < e.retries_t)[:, None]
                fail[bad & ~retry] = ac[bad & ~retry]
                pending = retry
                if not pending.any():
                    break
            else:
                fail[bad] = ac[bad]
        h.apc[e.key] = attempts
        h.attempt_codes[e.key] = counts / np.maximum(attempts, 1e-9)[:, None]
        more = (np.maximum(w, 1) - 1) * np.minimum(dl.mean(1), e.timeout_t)
        wait = (total + more.astype(np.float32)[:, None]) * called
        passed_on = called & (fail != OK)
        passed_on &= rng.random((n, m), dtype=np.float32) < e.absorb
        if passed_on.any():
            c = c.copy()
            c[passed_on] = np.where(fail[passed_on] == C504, s.timeout_code, s.dep_code)
        return wait, c

    def simulate(self) -> None:
        iters = 3 if self.kind == "retry_storm" else 2
        load = self.loads(None, None)
        for it in range(iters):
            health = self.health(load, final=it == iters - 1)
            load = self.loads(health, load)
        self.load, self.h = load, health

    # -- observation ----------------------------------------------------------------------

    def draw(self) -> None:
        """Per-step counts as a real process would have counted them."""
        rng = self.rng_obs
        self.served: dict[str, np.ndarray] = {}
        self.buckets: dict[str, np.ndarray] = {}
        self.lat_sum: dict[str, np.ndarray] = {}
        self.client: dict[tuple[str, str], np.ndarray] = {}
        for s in self.svcs.values():
            alive = s.alive
            if s.http:
                load = self.load[s.name]
                n_req = rng.poisson(np.maximum(load, 0) * STEP * alive)
                codes = self.h.codes[s.name]
                p429 = self.p429(s, load)
                keep = 1 - p429
                pv = np.stack([codes[:, OK] * (1 - s.p404) * keep, codes[:, OK] * s.p404 * keep,
                               p429, codes[:, C500] * keep, codes[:, C502] * keep,
                               codes[:, C503] * keep, codes[:, C504] * keep], axis=1)
                pv = np.clip(pv, 0, None)
                pv /= pv.sum(1, keepdims=True)
                self.served[s.name] = rng.multinomial(n_req, pv)
                cdf = self.h.cdf[s.name]
                cnt = np.zeros((self.n, len(LE) + 1))
                left = n_req.astype(float)
                prev = np.zeros(self.n)
                for k in range(len(LE)):
                    p = np.clip((cdf[:, k] - prev) / np.maximum(1 - prev, 1e-9), 0, 1)
                    got = rng.binomial(left.astype(np.int64), p)
                    cnt[:, k] = (cnt[:, k - 1] if k else 0) + got
                    left -= got
                    prev = cdf[:, k]
                cnt[:, -1] = n_req
                self.buckets[s.name] = cnt
                self.lat_sum[s.name] = n_req * self.h.mean_lat[s.name] * rng.uniform(
                    0.97, 1.03, self.n)
            through = self.load[s.name] * (1 - self.p429(s, self.load[s.name])) * \
                (1 - self.h.unavail[s.name])
            for e in self.out(s.name):
                rate = through * e.w * e.w_mult * e.active * np.maximum(self.h.apc[e.key],
                                                                        e.apc_floor)
                n_att = rng.poisson(np.maximum(rate, 0) * STEP * alive)
                pv = np.clip(self.h.attempt_codes[e.key], 0, None) + 1e-12
                pv /= pv.sum(1, keepdims=True)
                self.client[e.key] = rng.multinomial(n_att, pv)

    def window_stats(self, name: str, back: int = 0) -> tuple[float, float]:
        """(5xx ratio, p99) over the 5 m a PromQL instant query at alert_at - back sees."""
        s = self.svcs[name]
        a = (self.alert_ts - back - self.t0 - s.offset) // STEP
        sl = slice(max(a - 18, 0), a + 1)
        served = self.served[name][sl].sum(0)
        total = served.sum()
        err = float(served[3:].sum() / total) if total else float("nan")
        p99 = _hist_quantile(0.99, self.buckets[name][sl].sum(0))
        return err, p99

    def effect(self, name: str, strict: bool = True) -> tuple[bool, str]:
        e1, q1 = self.window_stats(name)
        e0, q0 = self.window_stats(name, 3600)
        fe, fq, ae, aq = (2.5, 1.8, 0.015, 0.03) if strict else (2.0, 1.5, 0.01, 0.02)
        e0 = 0.0 if math.isnan(e0) else e0
        ok_e = not math.isnan(e1) and e1 >= fe * e0 and e1 - e0 >= ae
        ok_q = not math.isnan(q1) and not math.isnan(q0) and q1 >= fq * q0 and q1 - q0 >= aq
        return ok_e or ok_q, f"err {e0:.3f}->{e1:.3f} p99 {q0:.3f}->{q1:.3f}"

    # -- emission ---------------------------------------------------------------------------

    def emit(self) -> list[MetricFamily]:
        fams = {
            "http_requests_total": MetricFamily("http_requests_total", "counter",
                                                "Requests served.", []),
            "http_request_duration_seconds_bucket": MetricFamily(
                "http_request_duration_seconds_bucket", "counter", "", []),
            "http_request_duration_seconds_count": MetricFamily(
                "http_request_duration_seconds_count", "counter", "", []),
            "http_request_duration_seconds_sum": MetricFamily(
                "http_request_duration_seconds_sum", "counter", "", []),
            "process_cpu_seconds_total": MetricFamily("process_cpu_seconds_total", "counter",
                                                      "CPU seconds.", []),
            "process_resident_memory_bytes": MetricFamily("process_resident_memory_bytes",
                                                          "gauge", "Resident memory.", []),
            "http_client_requests_total": MetricFamily("http_client_requests_total", "counter",
                                                       "Outgoing calls.", []),
            "build_info": MetricFamily("build_info", "gauge", "Running version.", []),
            "kube_deployment_status_observed_generation": MetricFamily(
                "kube_deployment_status_observed_generation", "gauge", "", []),
        }

        def add(fam: str, labels: dict[str, str], ts: np.ndarray, vals: np.ndarray,
                mask: np.ndarray) -> None:
            if mask.any():
                cast(list, fams[fam].samples).append(
                    (labels, list(zip(ts[mask].tolist(), vals[mask].tolist(), strict=True))))

        warm = self.steps(3)
        for s in self.svcs.values():
            ts = self.t0 + STEP * self.idx + s.offset
            alive = s.alive
            scraped = alive & ~s.gaps
            resets = s.resets
            up = s.uptime / STEP
            first = slice(0, 40)
            if s.http:
                served = self.served[s.name]
                for k, label in enumerate(SERVED_CODES):
                    inc = served[:, k].astype(float)
                    init = float(np.floor(inc[first].mean() * up)) if s.exists[0] else 0.0
                    val = _cumulative(inc, init, resets)
                    add("http_requests_total", {"service": s.name, "code": label}, ts, val,
                        scraped & (val > 0))
                bk = self.buckets[s.name]
                n0 = float(bk[first, -1].mean() * up) if s.exists[0] else 0.0
                frac0 = bk[first].sum(0) / max(bk[first, -1].sum(), 1)
                count = _cumulative(bk[:, -1], math.floor(n0), resets)
                present = scraped & (count > 0)
                for k, label in enumerate(LE_LABELS):
                    val = _cumulative(bk[:, k], math.floor(n0 * frac0[k]), resets)
                    add("http_request_duration_seconds_bucket", {"service": s.name, "le": label},
                        ts, val, present)
                add("http_request_duration_seconds_count", {"service": s.name}, ts, count,
                    present)
                sm = _cumulative(self.lat_sum[s.name],
                                 n0 * float(self.h.mean_lat[s.name][first].mean()), resets)
                add("http_request_duration_seconds_sum", {"service": s.name}, ts,
                    np.round(sm, 3), present)
            for e in self.out(s.name):
                cl = self.client[e.key]
                for k, label in enumerate(SIM_CODES):
                    inc = cl[:, k].astype(float)
                    init = float(np.floor(inc[first].mean() * up)) if e.active[0] else 0.0
                    val = _cumulative(inc, init, resets)
                    add("http_client_requests_total",
                        {"service": s.name, "target": e.dst, "code": label}, ts, val,
                        scraped & (val > 0))
            if s.process:
                _, cpu = self.util(s, self.load[s.name])
                cpu = np.minimum(cpu, s.cpu_limit_t * 0.98) + s.cpu_extra
                since = np.full(self.n, 10**6)
                for r in resets:
                    since = np.where(self.idx >= r, self.idx - r, since)
                boot = np.clip(1 - since / warm, 0, 1)
                cpu = cpu * (1 + 1.5 * boot) * self.rng_obs.uniform(0.9, 1.1, self.n)
                val = _cumulative(cpu * STEP * alive, float(cpu[first].mean() * s.uptime),
                                  resets)
                add("process_cpu_seconds_total", {"service": s.name}, ts, np.round(val, 2),
                    scraped)
                t_rel = self.idx / self.n
                phase = (ts % s.saw[1]) / s.saw[1]
                mem = s.mem_base * (1 + s.mem_trend * t_rel) * (1 + s.saw[0] * phase)
                mem = mem * (0.55 + 0.45 * np.clip(since / (5 * SPM), 0, 1)) + s.mem_extra
                mem *= self.rng_obs.normal(1, 0.004, self.n)
                add("process_resident_memory_bytes", {"service": s.name}, ts, np.round(mem),
                    scraped)
            if s.k8s and s.versions:
                for version, start, end, _ in s.versions:
                    live = scraped & (self.idx >= start) & (self.idx < end)
                    add("build_info", {"service": s.name, "version": str(version)}, ts,
                        np.ones(self.n), live)
                gen = s.gen0 + np.searchsorted(np.array(sorted(s.gen_bumps), int), self.idx,
                                               side="right")
                add("kube_deployment_status_observed_generation",
                    {"namespace": s.namespace, "deployment": s.name},
                    self.t0 + STEP * self.idx + 7, gen.astype(float), s.exists)
        return [f for f in fams.values() if f.samples]

    # -- alert --------------------------------------------------------------------------------

    def closure(self, name: str) -> set[str]:
        return {name} | self.desc(name)

    def choose_alert(self) -> None:
        """Before simulating: the service the alert rule most plausibly fires on."""
        rng, root = self.rng_alert, self.root
        assert root is not None
        r = self.svcs[root]
        cands: set[str]
        if self.kind == "traffic_surge":
            cands = {root} | self.desc(root)
        elif self.kind in ("retry_storm", "cache_eviction"):
            hub = self.hub
            cands = {root} | self.anc(root) | self.anc(hub) | {hub}
        else:
            cands = {root} | self.anc(root)
        cands = {c for c in cands if self.svcs[c].http}
        self.candidates = sorted(cands)
        weights = []
        for c in self.candidates:
            s = self.svcs[c]
            if self.kind == "traffic_surge":
                weights.append(3.0 if c == root else 1.0)
            elif c == root:
                weights.append(0.9)
            elif s.role == "entry":
                weights.append(3.0)
            else:
                weights.append(1.6)
        if not self.candidates:
            raise RuntimeError(f"no alert candidate for {self.kind} at {r.name}")
        self.alert = self.pick(rng, self.candidates, weights)

    def settle_alert(self, last: bool) -> bool:
        """After simulating: keep the pre-chosen alert if it shows the symptom, else move it
        to another candidate that does and that no effectful confounder can reach (on the
        last attempt, to any candidate that shows it)."""
        ok, _ = self.effect(self.alert)
        if ok:
            return True
        showing = [c for c in self.candidates if c != self.alert and self.effect(c)[0]]
        good = [c for c in showing
                if not any(self.touched.get(x) for x in self.closure(c))]
        if not good and last:
            good = showing
        if not good:
            return False
        entries = [c for c in good if self.svcs[c].role == "entry"]
        self.alert = self.pick(self.rng_alert, entries or good)
        return True


# --- faults -------------------------------------------------------------------------------------


def _apps(w: _World, *, http: bool = True, min_layer: float = 0.0) -> list[_Svc]:
    return [s for s in w.svcs.values() if s.role in ("app", "entry") and (s.http or not http)
            and s.layer >= min_layer]


def _layer_weights(items: list[_Svc]) -> list[float]:
    return [1.0 + s.layer for s in items]


def _effect_shape(w: _World, rng: np.random.Generator, s: _Svc, frac: np.ndarray,
                  errors: bool) -> str:
    if errors:
        e = float(np.clip(rng.uniform(0.05, 0.35) * w.sev, 0, 0.9))
        s.err500 += e * frac
        return f"{e:.0%} of its requests fail with 500"
    k = float(rng.uniform(3, 10) * w.sev)
    s.lat_mult *= 1 + (k - 1) * frac
    sf = float(rng.uniform(0.02, 0.08))
    s.slow_frac += sf * frac
    s.slow_level = np.maximum(s.slow_level, rng.uniform(1, 3))
    return f"its own latency x{k:.1f} with a {sf:.0%} slow tail"


def _squeeze(w: _World, s: _Svc, load: np.ndarray, onset: int, u: float) -> float:
    """Shrink the capacity of `s` so the load after onset runs it at utilisation `u`, but never
    so far that it was already hot (> 0.6) before; returns the utilisation reached after."""
    before, after = float(load[:onset].max()), float(load[onset + w.steps(1):].max())
    s.cap = min(s.cap, max(after / u, before / 0.6))
    s.cpu_pr = min(s.cpu_pr, 0.45 * s.cpu_limit / max(after, 1e-3))
    return after / s.cap


def fault_bad_deploy(w: _World) -> None:
    rng = w.rng_fault
    cands = _apps(w, min_layer=1) or _apps(w)
    s = w.svcs[w.pick(rng, [c.name for c in cands], _layer_weights(cands))]
    s.k8s = True
    if not s.versions:
        s.add_version(_first_version(rng), 0, 0)
    onset = w.alert_idx - w.steps(rng.uniform(4, 12))
    rollout = int(rng.integers(4, 12))
    report = rng.random() < 0.9
    version = w.deploy(s, onset, rng, report=report, rollout=rollout)
    frac = np.clip((w.idx - onset) / rollout, 0, 1)
    what = _effect_shape(w, rng, s, frac, errors=True)
    if rng.random() < 0.3:
        s.lat_mult *= 1 + rng.uniform(0.5, 2) * frac
        what += ", and it is slower"
    w.notes.append(f"fault: deploy of {version} to {s.name} (layer {s.layer:g}); {what}"
                   + ("" if report else "; the pipeline did NOT report this deploy"))
    w.root, w.onset_idx, w.acceptable = s.name, onset, frozenset({"deploy", "errors"})


def fault_silent_deploy(w: _World) -> None:
    rng = w.rng_fault
    cands = _apps(w)
    s = w.svcs[w.pick(rng, [c.name for c in cands], _layer_weights(cands))]
    s.k8s, s.versions, s.gen_bumps = False, [], []
    onset = w.alert_idx - w.steps(rng.uniform(4, 12))
    frac = np.clip((w.idx - onset) / int(rng.integers(2, 10)), 0, 1)
    errors = rng.random() < 0.6
    version = _first_version(rng)
    new = _next_version(version, rng)
    w.changes.append({"service": s.name, "kind": "deploy",
                      "occurred_at": _iso(w.ts(onset) + int(rng.integers(-20, 30))),
                      "version": new, "previous_version": version,
                      "description": f"ansible playbook deployed {new} to VMs"})
    what = _effect_shape(w, rng, s, frac, errors)
    w.notes.append(f"fault: deploy of {new} to {s.name}, which has no build_info and no k8s "
                   f"generation (VMs): visible only in the pipeline report; {what}")
    w.root, w.onset_idx = s.name, onset
    w.acceptable = frozenset({"deploy", "errors" if errors else "latency"})


def fault_config_change(w: _World) -> None:
    rng = w.rng_fault
    cands = _apps(w)
    s = w.svcs[w.pick(rng, [c.name for c in cands], _layer_weights(cands))]
    onset = w.alert_idx - w.steps(rng.uniform(4, 12))
    flag = rng.random() < 0.4
    calls = [e for e in w.out(s.name) if w.svcs[e.dst].role in ("app", "db", "external")]
    variant = "timeout" if (not flag and calls and rng.random() < 0.3) else \
        ("errors" if rng.random() < 0.55 else "latency")
    if flag:
        name = w.pick(rng, ["new-checkout-flow", "pricing-engine-v2", "bulk-discounts",
                            "async-invoices", "smart-search"])
        pct = int(rng.choice([10, 25, 50, 100]))
        w.report(s.name, "feature_flag", onset, f"flag {name} enabled for {pct}% of users", rng)
        frac = w.ramp(onset, 2) * (pct / 100) ** 0.3
        what = f"feature flag {name} -> {pct}%"
    else:
        s.k8s = True
        if not s.versions:
            s.add_version(_first_version(rng), 0, 0)
        s.gen_bumps.append(onset)
        frac = w.ramp(onset, int(rng.integers(2, 8)))
        what = "config rollout (ConfigMap change, generation bump, same version)"
        if rng.random() < 0.85:
            w.report(s.name, "config", onset, w.pick(rng, [
                "raise worker threads and lower HTTP client timeouts", "rotate DB credentials",
                "switch serializer", "tune connection pool", "enable request validation"]), rng)
        else:
            what += "; NOT reported by the pipeline"
    if variant == "timeout":
        e = calls[int(rng.integers(len(calls)))]
        new_t = w.svcs[e.dst].lat0 * rng.uniform(0.25, 0.6)  # "timeout: 5" read as ms
        e.timeout_t = np.where(w.idx >= onset, new_t, e.timeout_t)
        e.retries_t = np.where(w.idx >= onset, 0, e.retries_t)
        e.absorb = max(e.absorb, 0.9)
        what += f"; timeout to {e.dst} lowered to {new_t * 1000:.0f} ms, most calls time out"
        kinds = {"config", "errors"}
    else:
        what += "; " + _effect_shape(w, rng, s, frac, variant == "errors")
        kinds = {"config", "errors" if variant == "errors" else "latency"}
    if flag:
        kinds.add("deploy")
    w.notes.append(f"fault: {what} on {s.name}")
    w.root, w.onset_idx, w.acceptable = s.name, onset, frozenset(kinds)


def fault_db_slow(w: _World) -> None:
    rng = w.rng_fault
    dbs = [s for s in w.svcs.values() if s.role == "db"]
    s = w.svcs[w.pick(rng, [d.name for d in dbs], [len(w.inc(d.name)) + 0.5 for d in dbs])]
    onset = w.alert_idx - w.steps(rng.uniform(8, 35))
    dur = min(w.steps(rng.uniform(3, 15)), w.alert_idx - onset - w.steps(3))
    ramp = w.ramp(onset, dur)
    k = float(rng.uniform(4, 20) * w.sev)
    s.lat_mult *= 1 + (k - 1) * ramp
    tmax = max(e.timeout for e in w.inc(s.name))
    sf = float(np.clip(rng.uniform(0.04, 0.2) * w.sev, 0, 0.6))
    s.slow_frac += sf * ramp
    s.slow_level = np.where(ramp > 0, tmax * rng.uniform(1.2, 2.0), s.slow_level)
    why = w.pick(rng, ["autovacuum on a hot table with lock contention",
                       "a query plan flipped to a sequential scan after data growth",
                       "IO throttled: burst credits exhausted", "a long-running migration"])
    if s.process and rng.random() < 0.5:
        s.cpu_mult *= 1 + rng.uniform(0.5, 2.5) * ramp
        why += " (CPU bound)"
    w.notes.append(f"fault: {s.name} ({'managed' if s.managed else 'self-hosted'}) slows "
                   f"down x{k:.0f} over {dur / SPM:.0f} min with {sf:.0%} of queries beyond "
                   f"the callers' timeouts: {why}")
    w.root, w.onset_idx = s.name, onset
    w.acceptable = frozenset({"latency", "saturation", "dependency"})


def fault_external_down(w: _World) -> None:
    rng = w.rng_fault
    exts = [s for s in w.svcs.values() if s.role == "external"]
    s = exts[int(rng.integers(len(exts)))]
    callers = w.inc(s.name)
    callers[0].absorb = max(callers[0].absorb, float(rng.uniform(0.7, 1.0)))  # payments-like
    callers[0].w = max(callers[0].w, float(rng.uniform(0.2, 0.5)))
    onset = w.alert_idx - w.steps(rng.uniform(4, 12))
    on = w.ramp(onset, 2)
    flapping = rng.random() < 0.3
    if flapping:
        i, state = onset, True
        on = np.zeros(w.n)
        while i < w.n:
            d = w.steps(rng.uniform(1, 3)) if state else w.steps(rng.uniform(0.5, 2))
            if state:
                on[i:i + d] = 1
            i, state = i + d, not state
        on[w.alert_idx - w.steps(5):] = 1
    if rng.random() < 0.6:
        e = float(np.clip(rng.uniform(0.3, 1.0) * w.sev, 0, 1))
        s.err503 += e * on
        what = f"answers 503 to {e:.0%} of calls"
    else:
        sf = float(np.clip(rng.uniform(0.4, 1.0) * w.sev, 0, 1))
        s.slow_frac += sf * on
        s.slow_level = np.where(on > 0, rng.uniform(20, 60), s.slow_level)
        what = f"hangs on {sf:.0%} of calls (callers time out)"
    w.notes.append(f"fault: external provider {s.name} {what}"
                   + (", flapping" if flapping else "") + "; it has no series of its own")
    w.root, w.onset_idx = s.name, onset
    w.acceptable = frozenset({"dependency", "errors", "latency"})


def fault_new_dependency(w: _World) -> None:
    rng = w.rng_fault
    cands = _apps(w)
    caller = w.svcs[w.pick(rng, [c.name for c in cands])]
    base = next(b for b in rng.permutation(NEW_NAMES) if w.name(str(b)) not in w.svcs)
    deployed = w.alert_idx - w.steps(rng.uniform(20, 80))
    onset = w.alert_idx - w.steps(rng.uniform(4, 12))
    s = _Svc(name=w.name(str(base)), role="app", layer=caller.layer + 0.5, n=w.n,
             process=False, k8s=rng.random() < 0.5, namespace=caller.namespace,
             lat0=float(rng.uniform(0.005, 0.05)), sigma=float(rng.uniform(0.3, 0.6)),
             err0=float(10 ** rng.uniform(-4, -2.5)), offset=int(rng.integers(0, STEP)),
             gen0=1, dep_code=C500, timeout_code=C500)
    s.exists = w.idx >= deployed
    s.noise_lat = _ar1(rng, w.n, 0.06, 0.8)
    s.slow_level[:] = s.over_level = 2.0
    w.svcs[s.name] = s
    e = _Edge(src=caller.name, dst=s.name, n=w.n, w=float(rng.uniform(0.3, 1.0)),
              retries=int(rng.integers(0, 2)), timeout=float(rng.choice([1, 2, 3])),
              absorb=float(rng.uniform(0.7, 1.0)))
    e.active = s.exists.copy()
    w.edges.append(e)
    leaves = [x for x in w.svcs.values() if x.role in ("db", "external")]
    if leaves and rng.random() < 0.5:
        e2 = _Edge(src=s.name, dst=leaves[int(rng.integers(len(leaves)))].name, n=w.n,
                   w=float(rng.uniform(1, 2)), timeout=3.0, absorb=0.9)
        e2.active = s.exists.copy()
        w.edges.append(e2)
    w.sanity_timeouts()
    s.cap = 1e9
    if s.k8s:
        s.add_version(_first_version(rng), deployed, 0)
        s.gen_bumps = []
    if rng.random() < 0.7:
        w.changes.append({"service": s.name, "kind": "deploy",
                          "occurred_at": _iso(w.ts(deployed) - int(rng.integers(0, 60))),
                          "version": s.versions[0][0] if s.versions else "1.0.0",
                          "description": f"first release of {s.name}"})
    if caller.k8s and caller.versions:
        w.deploy(caller, deployed + w.steps(rng.uniform(1, 4)), rng,
                 report=rng.random() < 0.6, why=f"integrate {s.name}")
    on = w.ramp(onset, 2)
    if rng.random() < 0.7:
        x = float(np.clip(rng.uniform(0.2, 0.8) * w.sev, 0, 0.95))
        s.err500 += x * on
        what = f"fails {x:.0%} of requests"
    else:
        k = float(rng.uniform(20, 80) * w.sev)
        s.lat_mult *= 1 + (k - 1) * on
        what = f"slows down x{k:.0f} (its callers time out)"
    w.notes.append(f"fault: {s.name}, first deployed {(w.alert_idx - deployed) / SPM:.0f} min "
                   f"before the alert (no process metrics), {what}; called by {caller.name}")
    w.root, w.onset_idx = s.name, onset
    w.acceptable = frozenset({"errors", "deploy", "dependency"})


def fault_cpu_exhaustion(w: _World) -> None:
    rng = w.rng_fault
    cands = _apps(w)
    s = w.svcs[w.pick(rng, [c.name for c in cands], _layer_weights(cands))]
    s.process = True
    onset = w.alert_idx - w.steps(rng.uniform(5, 18))
    ramp = w.ramp(onset, w.steps(rng.uniform(0.5, 5)))
    load = w.loads(None, None)[s.name]
    _, cpu = w.util(s, load)
    target = float(rng.uniform(1.3, 2.5) * w.sev)
    kinds = {"cpu", "saturation", "latency"}
    if rng.random() < 0.3 and s.k8s:
        new_limit = float(cpu[onset:].max() / target)
        s.cpu_limit_t = np.where(w.idx >= onset, new_limit, s.cpu_limit_t)
        s.gen_bumps.append(onset)
        w.report(s.name, "config", onset,
                 f"resources: cpu limit {s.cpu_limit:g} -> {new_limit:.2f}", rng)
        what = f"its CPU limit was lowered to {new_limit:.2f} cores (config)"
        kinds.add("config")
    else:
        k = target * s.cpu_limit / max(float(cpu[onset:].mean()), 1e-3)
        s.cpu_mult *= 1 + (k - 1) * ramp
        what = w.pick(rng, ["a regex on a new input pattern burns CPU",
                            "a hot loop in a cache refresh", "JSON parsing of a huge payload",
                            "TLS handshakes after a cert change"]) + f" (CPU x{k:.1f})"
    w.notes.append(f"fault: CPU exhaustion on {s.name}: {what}; demand {target:.1f}x the limit, "
                   "throttled")
    w.root, w.onset_idx, w.acceptable = s.name, onset, frozenset(kinds)


def fault_memory_leak(w: _World) -> None:
    rng = w.rng_fault
    cands = _apps(w)
    s = w.svcs[w.pick(rng, [c.name for c in cands], _layer_weights(cands))]
    s.process = True
    a = w.alert_idx
    room = s.mem_limit - s.mem_base * (1 + s.saw[0])

    def leak_of(onset: int, ooms: list[int], down: int) -> np.ndarray:
        leak, start = np.zeros(w.n), onset
        for o in ooms:
            seg = (w.idx >= start) & (w.idx < o)
            leak[seg] = room * (w.idx[seg] - start) / max(o - start, 1)
            start = o + down
        seg = w.idx >= start
        leak[seg] = room * (w.idx[seg] - start) / max(ooms[-1] - onset, 1) * len(ooms)
        return leak

    def thrash_of(leak: np.ndarray) -> np.ndarray:
        return np.clip(((s.mem_base + leak) / s.mem_limit - 0.85) / 0.15, 0, 1) ** 2

    plan: tuple[int, list[int], int] | None = None
    lo, hi = w.w_before
    for _ in range(80):  # OOMs and GC thrash stay off the read an hour before the alert
        onset = a - w.steps(rng.uniform(45, 110))
        n_oom = int(rng.integers(1, 4))
        last = a - w.steps(rng.uniform(1.5, 4))
        period = (last - onset) / n_oom
        if period < w.steps(12):
            continue
        ooms = [round(onset + period * (k + 1)) for k in range(n_oom)]
        down = round(rng.integers(3, 8) * min(w.sev, 2.0))
        if all(o + down <= lo - w.steps(2) or o >= hi for o in ooms) and \
                thrash_of(leak_of(onset, ooms, down))[lo:hi].max() == 0:
            plan = (onset, ooms, down)
            break
    onset, ooms, down = plan or (a - w.steps(40), [a - w.steps(3)], 3)
    s.restarts.extend((o, down) for o in ooms)
    s.mem_extra = leak_of(onset, ooms, down)
    thrash = thrash_of(s.mem_extra)
    s.lat_mult *= 1 + 5 * thrash * w.sev
    s.slow_frac += 0.12 * thrash * w.sev
    s.slow_level = np.where(thrash > 0, rng.uniform(2, 6), s.slow_level)
    s.cpu_add += s.cpu_limit * 0.4 * thrash
    s.f_down = float(min(rng.uniform(0.6, 1.0) * w.sev, 1.0))
    for o in ooms:
        s.lat_mult *= 1 + 1.5 * w.window(o + down, w.steps(2))
    kinds = {"memory", "saturation"}
    by_deploy = rng.random() < 0.5 and s.k8s
    if by_deploy:
        w.deploy(s, onset, rng, report=rng.random() < 0.85)
        kinds.add("deploy")
    w.notes.append(f"fault: memory leak in {s.name} from {(a - onset) / SPM:.0f} min before "
                   f"the alert{' (started with a deploy)' if by_deploy else ''}: "
                   f"{len(ooms)} OOM kill(s), each a {down * STEP}s scrape gap and counter "
                   "reset, GC thrash before each")
    w.root, w.onset_idx, w.acceptable = s.name, onset, frozenset(kinds)


def fault_traffic_surge(w: _World) -> None:
    rng = w.rng_fault
    entries = [s for s in w.svcs.values() if s.role == "entry"]
    s = entries[int(rng.integers(len(entries)))]
    onset = w.alert_idx - w.steps(rng.uniform(4, 12))
    ramp = w.ramp(onset, w.steps(rng.uniform(1, 4)))
    k = float(rng.uniform(2.5, 6) * w.sev)
    s.traffic *= 1 + (k - 1) * ramp
    load = w.loads(None, None)
    after = w.idx >= onset + w.steps(2)
    sat = [x for x in w.svcs.values() if x.name in w.desc(s.name) | {s.name}
           and math.isfinite(x.cap) and x.role != "cache"]
    peak_u = {x.name: float(w.util(x, load[x.name])[0][after].max()) for x in sat}
    if max(peak_u.values()) < 1.15:
        chosen = [x for x in sat if x.role in ("app", "db")] or sat
        best = max(chosen, key=lambda x: peak_u[x.name])
        _squeeze(w, best, load[best.name], onset, float(rng.uniform(1.2, 1.7) * w.sev))
        bottleneck = best.name
    else:
        bottleneck = max(peak_u, key=lambda x: peak_u[x])
    why = w.pick(rng, ["a marketing push", "a bot scraping the catalogue", "a partner batch "
                       "import", "a mobile app release retrying on start"])
    limiter = " (its rate limiter answers 429 to part of it)" if s.rate_limit else ""
    w.notes.append(f"fault: traffic surge x{k:.1f} at {s.name} from {why}{limiter}; "
                   f"{bottleneck} saturates")
    w.root, w.onset_idx = s.name, onset
    w.acceptable = frozenset({"traffic", "saturation"})


def fault_pool_exhaustion(w: _World) -> None:
    rng = w.rng_fault
    cands = [s for s in _apps(w) if any(w.svcs[e.dst].role == "db" for e in w.out(s.name))]
    cands = cands or _apps(w)
    s = w.svcs[w.pick(rng, [c.name for c in cands])]
    onset = w.alert_idx - w.steps(rng.uniform(8, 30))
    ramp = w.ramp(onset, min(w.steps(rng.uniform(3, 12)), w.alert_idx - onset - w.steps(2)))
    load = w.loads(None, None)[s.name]
    u = float(rng.uniform(1.3, 2.5) * w.sev)
    floor = float(load[w.alert_idx]) / u / s.cap
    s.cap_mult = 1 - (1 - min(floor, 0.95)) * ramp
    s.slow_level = np.where(ramp > 0, rng.uniform(1, 5), s.slow_level)
    kinds = {"saturation", "latency", "errors"}
    why = "connections leak on an error path"
    if rng.random() < 0.4 and s.k8s:
        start = onset - w.steps(rng.uniform(5, 30))
        w.deploy(s, max(start, 4), rng, report=rng.random() < 0.8)
        why = "a deploy started leaking connections"
        kinds.add("deploy")
    elif rng.random() < 0.5:
        why = "slow transactions hold connections after a traffic-mix shift"
    w.notes.append(f"fault: connection pool of {s.name} exhausted ({why}); requests wait for "
                   f"a connection up to the pool timeout, then 503; its CPU stays flat")
    w.root, w.onset_idx, w.acceptable = s.name, onset, frozenset(kinds)


def fault_retry_storm(w: _World) -> None:
    rng = w.rng_fault
    pairs = [e for e in w.edges if w.svcs[e.src].role in ("app", "entry")
             and w.svcs[e.dst].role in ("app", "db") and math.isfinite(w.svcs[e.dst].cap)]
    load = w.loads(None, None)
    share = {e.key: float((load[e.src] * e.w / np.maximum(load[e.dst], 1e-9)).mean())
             for e in pairs}
    tries = int(rng.integers(3, 6))
    strong = [e for e in pairs if 1 + share[e.key] * (tries * 0.6) >= 2.2] or \
        [max(pairs, key=lambda e: share[e.key])]
    weights = [1.0 + len(w.inc(e.dst)) for e in strong]
    e = strong[int(rng.choice(len(strong), p=np.array(weights) / sum(weights)))]
    r, d = w.svcs[e.src], w.svcs[e.dst]
    onset = w.alert_idx - w.steps(rng.uniform(4, 12))
    e.retries_t = np.where(w.idx >= onset, tries, e.retries_t)
    e.timeout_t = np.where(w.idx >= onset, d.lat0 * rng.uniform(1.5, 3.0) + 0.002, e.timeout_t)
    e.backoff = 0.0
    e.absorb = max(e.absorb, 0.8)
    k = (tries + 1) * float(rng.uniform(0.6, 0.9))
    e.apc_floor = 1 + (k - 1) * w.ramp(onset, w.steps(rng.uniform(1, 4)))
    u = _squeeze(w, d, w.loads(None, None)[d.name], onset, float(rng.uniform(1.3, 2.2) * w.sev))
    if r.k8s:
        r.gen_bumps.append(onset)
    if rng.random() < 0.8:
        w.report(r.name, "config", onset,
                 f"client policy for {d.name}: retries {e.retries} -> {tries}, no backoff, "
                 "tighter timeout", rng)
    w.hub = d.name
    w.notes.append(f"fault: config on {r.name} made its client to {d.name} retry {tries}x with "
                   f"no backoff and a tight timeout: attempts x{k:.1f}, {d.name} runs at "
                   f"{u:.0%} of its capacity and all its callers suffer")
    w.root, w.onset_idx = r.name, onset
    w.acceptable = frozenset({"config", "traffic"})


def fault_partial_failure(w: _World) -> None:
    rng = w.rng_fault
    cands = _apps(w)
    s = w.svcs[w.pick(rng, [c.name for c in cands], _layer_weights(cands))]
    s.replicas = int(rng.integers(3, 7))
    onset = w.alert_idx - w.steps(rng.uniform(10, 30))
    on = np.zeros(w.n)
    i, state = onset, True
    while i < w.n:
        d = w.steps(rng.uniform(1, 4)) if state else w.steps(rng.uniform(0.5, 3))
        if state:
            on[i:i + d] = 1
        i, state = i + d, not state
    on[w.alert_idx - w.steps(6):] = 1
    share = float(min(rng.uniform(0.7, 1.0) * w.sev, 1.0) / s.replicas)
    if rng.random() < 0.6:
        if rng.random() < 0.5:
            s.err503 += share * on
        else:
            s.err500 += share * on
        what, kinds = f"answers errors to {share:.0%} of requests", {"errors", "latency"}
    else:
        s.slow_frac += share * on
        s.slow_level = np.where(on > 0, rng.uniform(1.5, 5), s.slow_level)
        what, kinds = f"makes {share:.0%} of requests slow", {"latency", "errors"}
    cause = w.pick(rng, ["a node with a failing disk", "a pod stuck with a stale DNS cache",
                         "one replica on a noisy node"])
    w.notes.append(f"fault: 1 of {s.replicas} replicas of {s.name} ({cause}) {what}, "
                   "flapping")
    w.root, w.onset_idx, w.acceptable = s.name, onset, frozenset(kinds)


def fault_cache_eviction(w: _World) -> None:
    rng = w.rng_fault
    caches = [s for s in w.svcs.values() if s.role == "cache"
              and any(e.paired == s.name for e in w.edges)]
    c = caches[int(rng.integers(len(caches)))]
    paired = [e for e in w.edges if e.paired == c.name]
    onset = w.alert_idx - w.steps(rng.uniform(8, 30))
    fill_start = onset - w.steps(rng.uniform(40, 100))
    c.mem_extra = (c.mem_limit * 0.97 - c.mem_base) * w.ramp(fill_start, onset - fill_start)
    c.saw = (0.0, 600.0)
    ramp = w.ramp(onset, w.steps(rng.uniform(3, 10)))
    h1 = float(np.clip(rng.uniform(0.2, 0.6) / w.sev, 0.05, 0.8))
    base = w.loads(None, None)
    # the misses must be able to overload the database: the smaller the share of its load that
    # comes through this cache, the higher the hit ratio that was lost
    share = min(sum(float((base[e.src] * e.w).mean()) for e in paired if e.dst == d)
                / max(float(base[d].mean()), 1e-9) for d in {e.dst for e in paired})
    h0 = float(np.clip(max(rng.uniform(0.85, 0.97), 1 - (1 - h1) / (1 + 1.3 / share)), 0,
                       0.995))
    hit = h0 + (h1 - h0) * ramp
    for e in paired:
        e.w_mult = (1 - hit) / (1 - h0)
    werr = float(rng.uniform(0.02, 0.12))
    c.err500 += werr * ramp
    load = w.loads(None, None)
    dbs = {e.dst for e in paired}
    for name in dbs:
        _squeeze(w, w.svcs[name], load[name], onset, float(rng.uniform(1.2, 1.8) * w.sev))
    w.hub = sorted(dbs)[0]
    w.notes.append(f"fault: {c.name} reached maxmemory (memory grew for "
                   f"{(onset - fill_start) / SPM:.0f} min) and evicts: hit ratio {h0:.0%} -> "
                   f"{h1:.0%}, {werr:.0%} of writes fail (OOM), {', '.join(sorted(dbs))} "
                   "overloaded by misses")
    w.root, w.onset_idx = c.name, onset
    w.acceptable = frozenset({"memory", "dependency", "saturation"})


def fault_none(w: _World) -> None:
    rng = w.rng_fault
    cands = _apps(w)
    s = w.svcs[w.pick(rng, [c.name for c in cands])]
    s.err0 = float(rng.uniform(0.01, 0.04))
    s.err_noise = _ar1(rng, w.n, 0.45, 0.7)
    latency = rng.random() < 0.4
    for k in range(int(rng.integers(3, 7))):
        dur = w.steps(rng.uniform(1, 4))
        start = w.alert_idx - w.steps(rng.uniform(0.5, 3)) if k == 0 else \
            int(rng.integers(4, w.alert_idx - 10 * SPM))
        bump = w.window(start, dur)
        if latency:
            s.slow_frac += rng.uniform(0.02, 0.06) * bump
            s.slow_level = np.where(bump > 0, rng.uniform(0.8, 2.5), s.slow_level)
        else:
            s.err500 += s.err0 * rng.uniform(1, 2.5) * bump
    w.alert = s.name
    w.notes.append(f"none: the alert fires on {s.name}, a noisy service (baseline errors "
                   f"{s.err0:.1%}, bursty{', spiky p99' if latency else ''}) on one of its "
                   "usual bursts; nothing is broken")


FAULTS: dict[str, Callable[[_World], None]] = {
    "bad_deploy": fault_bad_deploy, "silent_deploy": fault_silent_deploy,
    "config_change": fault_config_change, "db_slow": fault_db_slow,
    "external_down": fault_external_down, "new_dependency": fault_new_dependency,
    "cpu_exhaustion": fault_cpu_exhaustion, "memory_leak": fault_memory_leak,
    "traffic_surge": fault_traffic_surge, "pool_exhaustion": fault_pool_exhaustion,
    "retry_storm": fault_retry_storm, "partial_failure": fault_partial_failure,
    "cache_eviction": fault_cache_eviction, "none": fault_none,
}


# --- confounders --------------------------------------------------------------------------------


def _unrelated(w: _World, *, http: bool = True, far: bool = True) -> list[_Svc]:
    """Services a confounder may touch: never the root; with `far`, none that the alert
    service depends on (their blips would really reach it)."""
    near = w.closure(w.alert) if far else set()
    return [s for s in w.svcs.values() if s.name != w.root and s.name not in near
            and (s.http or not http) and s.role in ("app", "entry")]


def _near_alert(w: _World, rng: np.random.Generator, dur: int) -> int:
    return int(np.clip(w.alert_idx - w.steps(rng.uniform(-2, 12)), 4, w.n - dur))


def conf_unrelated_deploy(w: _World, rng: np.random.Generator) -> str | None:
    cands = [s for s in w.svcs.values() if s.name != w.root and s.role in ("app", "entry")]
    if not cands:
        return None
    al = [s for s in cands if s.name == w.alert]
    s = al[0] if al and rng.random() < 0.35 else cands[int(rng.integers(len(cands)))]
    i = w.alert_idx - w.steps(rng.uniform(3, 25))
    report = rng.random() < 0.85
    v = w.deploy(s, i, rng, report=report)
    return f"harmless deploy of {v} to {s.name} {(w.alert_idx - i) / SPM:.0f} min before the alert"


def conf_cron_cpu(w: _World, rng: np.random.Generator) -> str | None:
    cands = [s for s in w.svcs.values() if s.process and s.name != w.root]
    if not cands:
        return None
    s = cands[int(rng.integers(len(cands)))]
    dur = w.steps(rng.uniform(2, 12))
    i = _near_alert(w, rng, dur)
    k = float(rng.uniform(3, 12))
    extra = min(k * (s.cpu_base + s.cpu_pr * float(w.loads(None, None)[s.name].mean())),
                0.9 * s.cpu_limit)
    s.cpu_extra += extra * w.window(i, dur)
    return f"cron job on {s.name}: +{extra:.2f} cores for {dur / SPM:.0f} min near the alert"


def conf_gc_pause(w: _World, rng: np.random.Generator) -> str | None:
    cands = _unrelated(w)
    if not cands:
        return None
    s = cands[int(rng.integers(len(cands)))]
    dur = w.steps(rng.uniform(1, 3))
    i = _near_alert(w, rng, dur)
    p = float(rng.uniform(0.2, 0.6))
    bump = w.window(i, dur)
    s.slow_frac += p * bump
    s.slow_level = np.where(bump > 0, rng.uniform(0.8, 4), s.slow_level)
    w.touched.setdefault(s.name, set()).add("gc_pause")
    return f"stop-the-world GC pauses on {s.name}: {p:.0%} of requests slow for {dur / SPM:.0f} min"


def conf_batch_traffic(w: _World, rng: np.random.Generator) -> str | None:
    avoid = w.closure(w.alert) | ({w.root} if w.root else set())
    cands = [s for s in _unrelated(w) if not (w.closure(s.name) & avoid)]
    if not cands:
        return None
    s = cands[int(rng.integers(len(cands)))]
    dur = w.steps(rng.uniform(5, 20))
    i = _near_alert(w, rng, dur)
    k = float(rng.uniform(2, 5))
    base = float(w.loads(None, None)[s.name].mean())
    s.extra_rps += k * base * w.ramp(i, 2) * w.window(i, dur)
    for x in w.closure(s.name):
        w.touched.setdefault(x, set()).add("batch_traffic")
    return f"batch job hits {s.name} with x{1 + k:.1f} traffic for {dur / SPM:.0f} min"


def conf_error_blip(w: _World, rng: np.random.Generator) -> str | None:
    cands = _unrelated(w)
    if not cands:
        return None
    s = cands[int(rng.integers(len(cands)))]
    dur = w.steps(rng.uniform(1, 4))
    i = _near_alert(w, rng, dur)
    e = float(rng.uniform(0.1, 0.5))
    s.err500 += e * w.window(i, dur)
    w.touched.setdefault(s.name, set()).add("error_blip")
    return f"unrelated error burst on {s.name}: {e:.0%} for {dur / SPM:.0f} min near the alert"


def conf_earlier_incident(w: _World, rng: np.random.Generator) -> str | None:
    cands = [s for s in _apps(w) if s.name != w.root and s.k8s and s.versions]
    if not cands:
        return None
    s = cands[int(rng.integers(len(cands)))]
    i = w.alert_idx - w.steps(rng.uniform(80, 160))
    dur = w.steps(rng.uniform(4, 12))
    if i < 4:
        return None
    prev = s.version_at(i)
    bad = w.deploy(s, i, rng, report=True)
    w.deploy(s, i + dur, rng, report=True, kind="rollback", version=prev,
             why=f"rollback to {prev} after errors")
    e = float(rng.uniform(0.1, 0.4))
    s.err500 += e * w.window(i + 2, dur - 2)
    return (f"earlier incident: {bad} on {s.name} failed {e:.0%} of requests "
            f"{(w.alert_idx - i) / SPM:.0f} min before the alert, rolled back after "
            f"{dur / SPM:.0f} min")


def conf_noisy_service(w: _World, rng: np.random.Generator) -> str | None:
    cands = [s for s in _apps(w) if s.name != w.alert]
    if not cands:
        return None
    s = cands[int(rng.integers(len(cands)))]
    s.err0 = float(rng.uniform(0.008, 0.03))
    s.err_noise = _ar1(rng, w.n, 0.5, 0.7)
    if s.name in w.closure(w.alert):  # its noise reaches the alert: keep it off the reads
        for lo, hi in (w.w_now, w.w_before):
            s.err_noise[max(lo, 0):hi] = np.minimum(s.err_noise[max(lo, 0):hi], 1.3)
    return f"{s.name} is noisy: baseline errors {s.err0:.1%}, bursty"


def conf_lone_spikes(w: _World, rng: np.random.Generator) -> str | None:
    cands = [s for s in w.svcs.values() if s.role in ("app", "entry", "db")]
    hit = []
    for _ in range(int(rng.integers(2, 7))):
        s = cands[int(rng.integers(len(cands)))]
        dur = int(rng.integers(1, 3))
        i = w.free_start(rng, dur, hi=w.alert_idx - w.steps(10))
        bump = w.window(i, dur)
        if rng.random() < 0.5:
            s.slow_frac += rng.uniform(0.2, 0.6) * bump
            s.slow_level = np.where(bump > 0, rng.uniform(0.5, 3), s.slow_level)
        else:
            s.err500 += rng.uniform(0.1, 0.5) * bump
        hit.append(s.name)
    return f"lone spikes (15-30 s) on {', '.join(sorted(set(hit)))}"


def conf_restart(w: _World, rng: np.random.Generator) -> str | None:
    cands = [s for s in w.svcs.values() if s.name != w.root and s.role in ("app", "entry")]
    if not cands:
        return None
    s = cands[int(rng.integers(len(cands)))]
    down = int(rng.integers(1, 4))
    if s.name in w.closure(w.alert):
        i = w.free_start(rng, down + w.steps(3))
    else:
        i = _near_alert(w, rng, down) if rng.random() < 0.5 else w.free_start(rng, down)
    s.restarts.append((i, down))
    s.f_down = float(rng.uniform(0.05, 0.25))
    s.restarts.sort()
    when = (w.alert_idx - i) / SPM
    when_s = f"{when:.0f} min before the alert" if when >= 1 else "right at the alert"
    return f"unrelated restart of {s.name} {when_s} (counter reset, scrape gap)"


def conf_scrape_gaps(w: _World, rng: np.random.Generator) -> str | None:
    cands = [s for s in w.svcs.values() if s.http or s.process]
    hit = []
    for _ in range(int(rng.integers(1, 4))):
        s = cands[int(rng.integers(len(cands)))]
        dur = int(rng.integers(2, 13))
        i = w.free_start(rng, dur)
        s.gaps[i:i + dur] = True
        hit.append(f"{s.name} ({dur * STEP}s)")
    return "scrape gaps: " + ", ".join(hit)


def conf_slow_trend(w: _World, rng: np.random.Generator) -> str | None:
    cands = [s for s in w.svcs.values() if s.process and s.name != w.root]
    if not cands:
        return None
    s = cands[int(rng.integers(len(cands)))]
    s.mem_trend = float(rng.uniform(0.1, 0.4))
    return f"{s.name}'s memory grows {s.mem_trend:.0%} over the window (a cache warming, no OOM)"


def conf_unrelated_config(w: _World, rng: np.random.Generator) -> str | None:
    cands = [s for s in w.svcs.values() if s.name != w.root and s.role in ("app", "entry")]
    if not cands:
        return None
    s = cands[int(rng.integers(len(cands)))]
    i = int(rng.integers(4, w.alert_idx - w.steps(2)))
    flag = rng.random() < 0.5
    if flag:
        w.report(s.name, "feature_flag", i, "flag dark-mode enabled for 100% of users", rng)
    else:
        if s.k8s and s.versions:
            s.gen_bumps.append(i)
        w.report(s.name, "config", i, "log level info -> debug", rng)
    return (f"harmless {'feature flag' if flag else 'config change'} on {s.name} "
            f"{(w.alert_idx - i) / SPM:.0f} min before the alert")


CONFOUND: dict[str, Callable[[_World, np.random.Generator], str | None]] = {
    "unrelated_deploy": conf_unrelated_deploy, "cron_cpu": conf_cron_cpu,
    "gc_pause": conf_gc_pause, "batch_traffic": conf_batch_traffic,
    "error_blip": conf_error_blip, "earlier_incident": conf_earlier_incident,
    "noisy_service": conf_noisy_service, "lone_spikes": conf_lone_spikes,
    "restart": conf_restart, "scrape_gaps": conf_scrape_gaps, "slow_trend": conf_slow_trend,
    "unrelated_config": conf_unrelated_config,
}


def _confound(w: _World) -> None:
    rng = w.rng_conf
    k = int(rng.integers(2, 7))
    chosen = list(rng.choice(CONFOUNDERS, k, replace=False))
    if rng.random() < 0.6 and "unrelated_deploy" not in chosen:
        chosen.append("unrelated_deploy")
    for c in chosen:
        note = CONFOUND[str(c)](w, rng)
        if note:
            w.notes.append(f"confounder: {note}")
    missing = sorted(s.name for s in w.svcs.values() if s.role in ("app", "entry")
                     and not s.process)
    if missing:
        w.notes.append("no process metrics: " + ", ".join(missing))
    for _ in range(int(rng.integers(0, 3))):  # old pipeline history: what runs at the start
        s = w.svcs[w.pick(rng, sorted(w.svcs))]
        if s.role not in ("app", "entry") or not s.versions:
            continue
        w.changes.append({"service": s.name, "kind": "deploy",
                          "occurred_at": _iso(w.t0 - int(rng.integers(3600, 5 * 86400))),
                          "version": str(s.versions[0][0]), "description": "routine release"})


# --- public API -------------------------------------------------------------------------------


def _build(seed: int, prefix: str, alert_ts: int, kind: str, sev: float) -> _World:
    w = _World(seed, prefix, alert_ts, kind, sev)
    w.build()
    FAULTS[kind](w)
    if kind != "none":
        w.choose_alert()
    _confound(w)
    w.simulate()
    w.draw()
    return w


def generate_case(seed: int, *, prefix: str, anchor: datetime, spread: timedelta,
                  kind: str | None = None) -> GeneratedCase:
    """One case, deterministic in `seed`; its alert falls in [anchor - spread, anchor] and every
    service, target and deployment name starts with `prefix`."""
    pick = np.random.default_rng([seed, 0])
    if kind is None:
        kind = "none" if pick.random() < 0.1 else str(pick.choice(KINDS[:-1]))
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    alert_ts = int(anchor.timestamp() - pick.random() * spread.total_seconds())
    w: _World | None = None
    settled = False
    severities = (1.0, 1.6, 2.4)  # a fault too mild to show at any candidate is re-run harder
    for attempt, sev in enumerate(severities):
        w = _build(seed, prefix, alert_ts, kind, sev)
        if kind == "none" or w.settle_alert(last=attempt == len(severities) - 1):
            settled = True
            if attempt:
                w.notes.append(f"severity raised x{sev:g} to show at the alert")
            break
    assert w is not None
    if not settled:
        best = max(w.candidates, key=lambda c: w.window_stats(c)[0])
        w.alert = best
        w.notes.append("weak: no candidate shows the symptom clearly")
    effect = w.effect(w.alert)[1] if kind != "none" else ""
    w.notes.append(f"alert on {w.alert}" + (f" ({effect})" if effect else ""))
    onset = None if w.onset_idx is None else \
        datetime.fromtimestamp(w.ts(w.onset_idx), UTC)
    return GeneratedCase(
        name=f"{prefix}{kind}", seed=seed, kind=kind, root_service=w.root,
        acceptable_kinds=w.acceptable, alert_service=w.alert,
        alert_at=datetime.fromtimestamp(alert_ts, UTC), onset=onset, families=w.emit(),
        changes=sorted(w.changes, key=lambda c: c["occurred_at"]), notes=w.notes)


def merge_families(cases: Iterable[GeneratedCase]) -> list[MetricFamily]:
    """One family per metric name holding every case's series."""
    merged: dict[str, MetricFamily] = {}
    for case in cases:
        for fam in case.families:
            into = merged.setdefault(fam.name, MetricFamily(fam.name, fam.type, fam.help, []))
            cast(list, into.samples).extend(fam.samples)
    return list(merged.values())


# --- self-check -------------------------------------------------------------------------------


def _query(client: Any, base: str, expr: str, at: datetime) -> float:
    r = client.get(f"{base}/api/v1/query", params={"query": expr, "time": at.timestamp()})
    r.raise_for_status()
    res = r.json()["data"]["result"]
    if not res:
        return float("nan")
    return float(res[0]["value"][1])


def _signals(client: Any, base: str, case: GeneratedCase) -> dict[str, tuple[float, float]]:
    """(an hour before, at the alert) for each signal that can show the root's fault."""
    r = case.root_service
    sel = f'service="{r}"'
    exprs = {
        "err": f'sum(rate(http_requests_total{{{sel},code=~"5.."}}[5m])) / '
               f'sum(rate(http_requests_total{{{sel}}}[5m]))',
        "p99": f"histogram_quantile(0.99, sum by (le) "
               f"(rate(http_request_duration_seconds_bucket{{{sel}}}[5m])))",
        "rps": f"sum(rate(http_requests_total{{{sel}}}[5m]))",
        "cpu": f"sum(rate(process_cpu_seconds_total{{{sel}}}[5m]))",
        "mem": f"max(max_over_time(process_resident_memory_bytes{{{sel}}}[30m]))",
        "restarts": f"sum(resets(process_cpu_seconds_total{{{sel}}}[15m]))",
        "calls": f"sum(rate(http_client_requests_total{{{sel}}}[5m]))",
        "client_fail": f'sum(rate(http_client_requests_total{{target="{r}",code=~"5.."}}[5m]))'
                       f' / sum(rate(http_client_requests_total{{target="{r}"}}[5m]))',
    }
    before = case.alert_at - timedelta(hours=1)
    return {k: (_query(client, base, e, before), _query(client, base, e, case.alert_at))
            for k, e in exprs.items()}


def _up(before: float, now: float, factor: float, absolute: float) -> bool:
    if math.isnan(now):
        return False
    b = 0.0 if math.isnan(before) else before
    return now >= factor * b and now - b >= absolute


def _visible(sig: dict[str, tuple[float, float]]) -> list[str]:
    rules = {"err": (2.0, 0.01), "p99": (1.5, 0.02), "rps": (1.8, 1.0), "cpu": (1.4, 0.05),
             "mem": (1.25, 5e7), "restarts": (1.0, 1.0), "calls": (1.8, 1.0),
             "client_fail": (2.0, 0.01)}
    return [k for k, (f, a) in rules.items() if _up(*sig[k], f, a)]


def _check(n_cases: int, keep: bool) -> int:
    import httpx

    while True:
        from shutil import which
        if which("prometheus") and which("promtool"):
            break
        print("waiting for prometheus/promtool to be installed…", flush=True)
        time.sleep(10)
    anchor = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    spread = timedelta(days=2)
    n = max(n_cases, len(KINDS))
    cases: list[GeneratedCase] = []
    t = time.perf_counter()
    slowest = 0.0
    for i in range(n):
        t1 = time.perf_counter()
        cases.append(generate_case(1000 + i, prefix=f"c{i:02d}-", anchor=anchor, spread=spread,
                                   kind=KINDS[i % len(KINDS)]))
        slowest = max(slowest, time.perf_counter() - t1)
    gen_s = time.perf_counter() - t
    problems: list[str] = []
    for i, c in enumerate(cases):
        pfx = f"c{i:02d}-"
        for fam in c.families:
            for labels, _ in fam.samples:
                for key in ("service", "target", "deployment"):
                    if key in labels and not labels[key].startswith(pfx):
                        problems.append(f"{c.name}: {fam.name} {key}={labels[key]}")
        for ch in c.changes:
            if not ch["service"].startswith(pfx) or not ch["occurred_at"].endswith("Z"):
                problems.append(f"{c.name}: bad change {ch}")
        if not (anchor - spread <= c.alert_at <= anchor):
            problems.append(f"{c.name}: alert_at out of range")
    t = time.perf_counter()
    text = openmetrics(merge_families(cases))
    fmt_s = time.perf_counter() - t
    samples = text.count("\n")
    print(f"generated {n} cases in {gen_s:.1f}s (slowest {slowest:.2f}s), "
          f"{samples / 1e6:.2f}M samples, {len(text) / 1e6:.0f} MB text in {fmt_s:.1f}s",
          flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="cases-independent-"))
    t = time.perf_counter()
    with running_prometheus(tmp, text, max_block_duration="240h", ready_timeout=60) as base, \
            httpx.Client(timeout=30) as client:
        print(f"backfilled and started Prometheus in {time.perf_counter() - t:.1f}s", flush=True)
        for key in ("service", "target", "deployment"):
            r = client.get(f"{base}/api/v1/label/{key}/values")
            bad = [v for v in r.json()["data"] if not any(v.startswith(f"c{i:02d}-")
                                                           for i in range(n))]
            if bad:
                problems.append(f"label {key} values without a case prefix: {bad[:5]}")
        header = (f"{'case':<22} {'root':<26} {'alert':<24} {'svc':>3} {'alert err':>15} "
                  f"{'alert p99':>15}  root signals")
        print(header)
        print("-" * len(header))
        for c in cases:
            a = f'service="{c.alert_service}"'
            err_e = (f'sum(rate(http_requests_total{{{a},code=~"5.."}}[5m])) / '
                     f"sum(rate(http_requests_total{{{a}}}[5m]))")
            p99_e = (f"histogram_quantile(0.99, sum by (le) "
                     f"(rate(http_request_duration_seconds_bucket{{{a}}}[5m])))")
            before = c.alert_at - timedelta(hours=1)
            e0, e1 = (_query(client, base, err_e, x) for x in (before, c.alert_at))
            q0, q1 = (_query(client, base, p99_e, x) for x in (before, c.alert_at))
            n_svc = len({lab["service"] for f in c.families for lab, _ in f.samples
                         if "service" in lab} | {lab["target"] for f in c.families
                                                  for lab, _ in f.samples if "target" in lab})
            if c.kind == "none":
                shown, vis = "-", ["(none)"]
                ok = not math.isnan(e1) or not math.isnan(q1)
            else:
                alert_ok = _up(e0, e1, 2.0, 0.01) or _up(q0, q1, 1.5, 0.02)
                vis = _visible(_signals(client, base, c))
                ok = alert_ok and bool(vis)
                shown = "" if alert_ok else "ALERT FLAT "
            if not ok:
                problems.append(f"{c.name}: {shown or 'no data'} visible={vis}")
            print(f"{c.name:<22} {c.root_service or '-':<26} {c.alert_service:<24} {n_svc:>3} "
                  f"{e0:>6.3f}->{e1:<7.3f} {q0:>6.3f}->{q1:<7.3f}  "
                  f"{'OK ' if ok else 'BAD'} {','.join(vis)}")
    if not keep:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    if problems:
        print("\nPROBLEMS:\n" + "\n".join(problems))
        return 1
    print(f"\nall {n} cases OK")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--check", action="store_true", help="backfill and verify with PromQL")
    ap.add_argument("--cases", type=int, default=len(KINDS))
    ap.add_argument("--keep", action="store_true", help="keep the temporary TSDB")
    ap.add_argument("--show", type=int, help="print the notes and changes of one seed")
    args = ap.parse_args(argv)
    if args.show is not None:
        c = generate_case(args.show, prefix="x-", anchor=datetime.now(UTC),
                          spread=timedelta(hours=1))
        print(c.name, c.root_service, sorted(c.acceptable_kinds), c.alert_service, c.alert_at)
        print("\n".join(c.notes))
        for ch in c.changes:
            print(ch)
        return 0
    if args.check:
        return _check(args.cases, args.keep)
    ap.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
