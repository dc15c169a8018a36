"""Synthetic Kubernetes/node incidents in which a REAL kube-prometheus alert fires because one
resource fails, with the failing resource known.

Each case is a small cluster (4-6 nodes, a handful of deployments) observed for ~3 h at a 30 s
scrape interval the way a kube-prometheus(-stack) Prometheus sees it: node_exporter series
(`job="node-exporter"`, `instance="<node ip>:9100"`, the node-exporter pod as `pod`),
kube-state-metrics series (`job="kube-state-metrics"`, honoured labels: object metrics carry the
object's namespace/pod, cluster-scoped ones the kube-state-metrics pod's), cAdvisor series
(`job="kubelet"`, `metrics_path="/metrics/cadvisor"`, `node`), and `up` for every target. One
fault is injected (see KINDS) so that the chosen alert's exact expression - read at run time
from the PrometheusRule manifests in /work/shared/data/alert-rules - becomes true about 30-90 s
before `alert_at - for` and stays true through `alert_at`, the alert's `startsAt`. Confounders
ride along: other nodes/pods with blips near the same time, healthy or low-but-stable mounts,
unrelated restarts, daily seasonality and noise.

The alert is delivered as Alertmanager's webhook (v4) would deliver it: labels = the expression's
output series + the rule's labels + alertname; annotations rendered from the rule's Go templates
with those labels and the expression's value; startsAt; generatorURL; the label-set fingerprint.

Several kinds are built so that the alert's own labels do NOT name the culprit (TargetDown names
only the job/service; a deployment replica mismatch caused by one node; a node running out of
memory because of one pod on it); `truth_labels`/`truth_names` always name the real culprit,
which is discoverable from the series (pod -> node via kube_pod_info, instance via up, ...), and
each case's `notes[0]` says where a naive reading of the alert's labels would land.

Names: `prefix` is prepended to every namespace, node, workload and pod name, and selects the
case's own 10.a.b.0/24 (node, pod and target addresses), so that many cases share one Prometheus
without their series mixing (aggregations such as TargetDown's are by namespace).

Self-check (backfills every kind into one real Prometheus and evaluates each alert's expression):

    python -m tests.bench.cases_alerts --check [--cases 18]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import re
import shlex
import sys
import tempfile
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tests.fakes.prometheus_server import MetricFamily, openmetrics, running_prometheus

STEP = 30  # scrape interval, seconds
HISTORY = 3 * 3600  # seconds of series before alert_at
GENERATOR_BASE = "http://prometheus.example:9090"
RULES_DIR = Path(os.environ.get("ALERT_RULES_DIR")
                 or Path(__file__).resolve().parents[3] / "shared" / "data" / "alert-rules")

KINDS: tuple[str, ...] = ("disk_filling", "inodes", "crashloop", "rollout_stuck",
                          "node_not_ready", "target_down", "cpu_throttling", "node_memory",
                          "job_failed")

Mi = 2.0**20
Gi = 2.0**30
PENDING, RUNNING, SUCCEEDED, FAILED, UNKNOWN = range(5)
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
CONDITION_STATUS = {1: "true", 0: "false", 2: "unknown"}


# --- the rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One alerting rule of a PrometheusRule manifest."""

    alert: str
    expr: str
    for_s: int
    labels: dict[str, str]
    annotations: dict[str, str]
    source: str


def _duration(text: str | None) -> int:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return int(sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", text or "")))


@lru_cache(maxsize=4)
def load_rules(directory: str = str(RULES_DIR)) -> dict[tuple[str, str], Rule]:
    """Every alerting rule in the manifests under `directory`, by (alertname, severity)."""
    rules: dict[tuple[str, str], Rule] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for group in (doc or {}).get("spec", {}).get("groups", []):
            for raw in group.get("rules", []):
                if "alert" not in raw:
                    continue
                labels = {k: str(v) for k, v in (raw.get("labels") or {}).items()}
                key = (raw["alert"], labels.get("severity", ""))
                rules.setdefault(key, Rule(
                    alert=raw["alert"], expr=str(raw["expr"]).strip(),
                    for_s=_duration(raw.get("for")), labels=labels,
                    annotations={k: str(v) for k, v in (raw.get("annotations") or {}).items()},
                    source=path.name))
    return rules


def rule(alert: str, severity: str) -> Rule:
    try:
        return load_rules()[(alert, severity)]
    except KeyError:
        raise KeyError(f"no rule {alert} (severity {severity}) under {RULES_DIR}") from None


# --- Go-template rendering of annotations (the subset kube-prometheus uses) -------------------


def _go_float(v: float) -> str:
    """Go's %v of a float64, as `{{ $value }}` prints it: the shortest digits, in exponent
    form when the exponent is below -4 or at least 6 (1e+06, 1.5e-05)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0"
    d = Decimal(repr(float(v)))
    sign, digits, _ = d.as_tuple()
    exp = d.adjusted()
    mant = "".join(map(str, digits)).rstrip("0") or "0"
    if exp < -4 or exp >= 6:
        body = mant[0] + ("." + mant[1:] if len(mant) > 1 else "")
        return f"{'-' if sign else ''}{body}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _humanize(v: float) -> str:
    if v == 0 or math.isnan(v) or math.isinf(v):
        return f"{v:.4g}"
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return f"{v:.4g}{prefix}"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{v:.4g}{prefix}"


def _humanize_duration(v: float) -> str:
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        d = int(abs(v))
        s, m, h, days = d % 60, d // 60 % 60, d // 3600 % 24, d // 86400
        if days:
            return f"{sign}{days}d {h}h {m}m {s}s"
        if h:
            return f"{sign}{h}h {m}m {s}s"
        if m:
            return f"{sign}{m}m {s}s"
        return f"{sign}{abs(v):.4g}s"
    if v == 0:
        return "0s"
    for unit, scale in (("ms", 1e3), ("us", 1e6), ("ns", 1e9)):
        if abs(v * scale) >= 1 or unit == "ns":
            return f"{v * scale:.4g}{unit}"
    return f"{v}s"


_FUNCS: dict[str, Callable[..., Any]] = {
    "printf": lambda fmt, *args: fmt % tuple(args),
    "humanize": lambda v: _humanize(float(v)),
    "humanizePercentage": lambda v: f"{float(v) * 100:.4g}%",
    "humanizeDuration": lambda v: _humanize_duration(float(v)),
    "toUpper": lambda s: str(s).upper(),
    "toLower": lambda s: str(s).lower(),
}
_ACTION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.S)


def _operand(token: str, labels: Mapping[str, str], value: float, dot: Any) -> Any:
    if token == "$value":
        return value
    if token.startswith("$labels."):
        return labels.get(token.removeprefix("$labels."))
    if token == ".":
        return dot
    if token.startswith("$"):
        raise ValueError(f"template variable {token!r} not supported")
    return token  # a string literal (its quotes went with shlex)


def _pipeline(text: str, labels: Mapping[str, str], value: float, dot: Any) -> Any:
    result: Any = None
    for i, stage in enumerate(text.split("|")):
        words = shlex.split(stage.strip())
        if not words:
            raise ValueError(f"empty pipeline stage in {text!r}")
        head, args = words[0], [_operand(w, labels, value, dot) for w in words[1:]]
        if i > 0:
            args.append(result)
        if head in _FUNCS:
            result = _FUNCS[head](*args)
        elif i == 0 and not args:
            result = _operand(head, labels, value, dot)
        else:
            raise ValueError(f"template function {head!r} not supported")
    return result


def render_template(text: str, labels: Mapping[str, str], value: float) -> str:
    """Expand a Prometheus alert template: `$labels.x`, `$value`, `printf`, `humanize*`,
    `with`/`if`…`end` and the `{{-`/`-}}` trims; a missing label prints `<no value>` (Go's
    text/template on the labels map)."""
    parts: list[tuple[str, str]] = []
    pos = 0
    for m in _ACTION.finditer(text):
        literal = text[pos:m.start()]
        parts.append(("text", literal.rstrip() if m.group(1) else literal))
        parts.append(("act", m.group(2).strip()))
        pos = m.end()
        if m.group(3):
            rest = text[pos:]
            pos += len(rest) - len(rest.lstrip())
    parts.append(("text", text[pos:]))
    out: list[str] = []
    stack: list[tuple[bool, Any]] = []
    for kind, body in parts:
        active = all(ok for ok, _ in stack)
        dot = stack[-1][1] if stack else None
        if kind == "text":
            if active:
                out.append(body)
            continue
        word, _, rest = body.partition(" ")
        if word == "end":
            stack.pop()
        elif word in ("with", "if"):
            got = _pipeline(rest, labels, value, dot) if active else None
            ok = active and got is not None and got != "" and got != 0
            stack.append((ok, got if word == "with" else dot))
        elif active:
            got = _pipeline(body, labels, value, dot)
            out.append("<no value>" if got is None
                       else _go_float(got) if isinstance(got, float) else str(got))
    return "".join(out)


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (FNV-1a 64 over sorted names and values)."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for byte in name.encode() + b"\xff" + labels[name].encode() + b"\xff":
            h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


# --- the cluster model -----------------------------------------------------------------------


@dataclass(frozen=True)
class _App:
    ns: str
    name: str
    image: str
    cpu: float  # mean cores
    mem: float  # mean working set, bytes
    cpu_req: float
    cpu_lim: float | None
    mem_req: float
    mem_lim: float | None
    port: int | None = 8080


_REG = "registry.example.com"
_CATALOG: tuple[_App, ...] = (
    _App("shop", "checkout", f"{_REG}/shop/checkout:3.8.1", 0.18, 380 * Mi, 0.25, 1.0,
         512 * Mi, 1 * Gi),
    _App("shop", "cart", f"{_REG}/shop/cart:1.22.0", 0.08, 210 * Mi, 0.1, 0.5, 256 * Mi,
         512 * Mi),
    _App("shop", "frontend", f"{_REG}/shop/frontend:5.2.4", 0.12, 160 * Mi, 0.1, 0.5, 128 * Mi,
         256 * Mi, 3000),
    _App("payments", "payments-api", f"{_REG}/payments/api:2.31.0", 0.15, 450 * Mi, 0.25, 1.0,
         512 * Mi, 1 * Gi),
    _App("payments", "ledger", f"{_REG}/payments/ledger:2.0.7", 0.3, 1.4 * Gi, 0.5, 2.0,
         2 * Gi, 2 * Gi, 9090),
    _App("search", "search-api", f"{_REG}/search/api:7.4.2", 0.35, 2.2 * Gi, 0.5, None,
         2.5 * Gi, 3 * Gi, 9200),
    _App("identity", "auth", f"{_REG}/identity/auth:4.9.3", 0.06, 140 * Mi, 0.1, 0.5,
         128 * Mi, 256 * Mi),
    _App("notifications", "mailer", f"{_REG}/notifications/mailer:1.3.0", 0.03, 96 * Mi, 0.05,
         0.25, 64 * Mi, 128 * Mi),
    _App("analytics", "report-worker", f"{_REG}/analytics/report-worker:0.17.2", 0.2,
         600 * Mi, 0.25, None, 512 * Mi, None),
    _App("catalog", "catalog-api", f"{_REG}/catalog/api:6.0.1", 0.1, 300 * Mi, 0.2, 1.0,
         384 * Mi, 768 * Mi),
)
_APPS = {a.name: a for a in _CATALOG}
_CNI = _App("kube-system", "aws-node",
            "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.2", 0.02,
            58 * Mi, 0.025, None, 0, None, None)
_CRONS = (  # namespace, cronjob, image, cpu, mem, mem limit
    ("data", "db-backup", f"{_REG}/ops/pg-backup:1.4.0", 0.6, 300 * Mi, 512 * Mi),
    ("billing", "invoice-export", f"{_REG}/billing/invoice-export:2.2.0", 0.4, 200 * Mi,
     384 * Mi),
    ("search", "search-reindex", f"{_REG}/search/reindex:7.4.2", 0.8, 700 * Mi, 1 * Gi),
)
_NODE_TYPES = {"m5.large": (2, 8 * Gi), "m5.xlarge": (4, 16 * Gi), "r5.large": (2, 16 * Gi)}
_CHARS = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(eq=False)
class _FS:
    mountpoint: str
    device: str
    fstype: str
    size: float
    avail: np.ndarray
    files: float
    files_free: np.ndarray


@dataclass(eq=False)
class _Node:
    name: str
    ip: str
    itype: str
    cpus: int
    mem_total: float
    zone: str
    ne_pod: str
    ready: np.ndarray  # 1 true, 0 false, 2 unknown
    conditions: dict[str, np.ndarray]  # MemoryPressure, DiskPressure: 1 true, 0 false, 2 unknown
    unschedulable: np.ndarray
    ne_up: np.ndarray
    kubelet_up: np.ndarray
    sys_mem: np.ndarray
    sys_cpu: np.ndarray
    extra_load: np.ndarray
    boot_ts: float
    fs: list[_FS] = field(default_factory=list)
    taints: list[tuple[str, str, np.ndarray]] = field(default_factory=list)
    reboots: list[int] = field(default_factory=list)


@dataclass(eq=False)
class _Ctr:
    name: str
    image: str
    cpu_req: float
    cpu_lim: float | None
    mem_req: float
    mem_lim: float | None
    cpu: np.ndarray
    mem: np.ndarray
    run: np.ndarray  # container instance since the window began; -1 = not running
    restarts0: int
    unready: np.ndarray  # running but failing readiness
    waiting: dict[str, np.ndarray] = field(default_factory=dict)
    terminated: dict[str, np.ndarray] = field(default_factory=dict)
    last_term: list[tuple[int, str]] = field(default_factory=list)
    throttle: np.ndarray | None = None
    saturated: bool = False  # always runnable: every CFS period counts
    warmup: bool = True
    age0: float = 86400.0


@dataclass(eq=False)
class _Pod:
    namespace: str
    name: str
    uid: str
    node: _Node | None
    ip: str | None
    owner_kind: str
    owner_name: str
    workload: str
    template: str
    alive: np.ndarray
    phase: np.ndarray
    ctrs: list[_Ctr]
    deleting: np.ndarray
    unready: np.ndarray
    up: np.ndarray  # scrape health override (1 = as the container allows)
    port: int | None
    created_ts: float
    priority_class: str = ""


@dataclass(eq=False)
class _Deploy:
    namespace: str
    name: str
    app: _App
    replicas: int
    max_unavailable: int
    generation: np.ndarray
    observed: np.ndarray
    progressing: np.ndarray
    templates: list[tuple[int, str]]


@dataclass(eq=False)
class _DaemonSet:
    namespace: str
    name: str
    pods: list[_Pod]


@dataclass(eq=False)
class _Job:
    namespace: str
    name: str
    cron: str
    alive: np.ndarray
    start_ts: float
    active: np.ndarray
    succeeded: np.ndarray
    failed: np.ndarray
    complete_at: int | None = None
    complete_ts: float = 0.0
    failed_at: int | None = None


@dataclass(eq=False)
class _Cron:
    namespace: str
    name: str
    schedule: str
    last_schedule: np.ndarray
    active: np.ndarray


def _subnet(prefix: str) -> tuple[int, int]:
    """The case's 10.a.b.0/24: from the prefix's number when it has one, else its hash."""
    letters = re.sub(r"\d+", "", prefix)
    h = int.from_bytes(hashlib.blake2b(letters.encode(), digest_size=4).digest(), "big")
    digits = re.findall(r"\d+", prefix)
    n = int(digits[-1]) if digits else int.from_bytes(
        hashlib.blake2b(prefix.encode(), digest_size=4).digest(), "big")
    return 16 + ((n >> 8) + h) % 200, n & 255


class _Case:
    """One cluster over one time grid, with the objects the series are rendered from."""

    def __init__(self, seed: int, prefix: str, alert_ts: int) -> None:
        self.rng = np.random.default_rng([seed, zlib.crc32(prefix.encode())])
        self.p = prefix
        self.alert_ts = alert_ts
        # Samples sit 8-22 s before each evaluation instant, so range windows never straddle a
        # sample exactly at their edge.
        off = int(self.rng.integers(8, 23))
        k = HISTORY // STEP
        tail = int(self.rng.integers(8, 21))
        self.t = (alert_ts - off) + STEP * np.arange(-k, tail + 1, dtype=float)
        self.n = len(self.t)
        self.i_alert = k
        hour = (self.t / 3600 + self.rng.uniform(-8, 3)) % 24
        self.day = 1 + 0.3 * np.sin(2 * np.pi * (hour - 9) / 24)
        self.net = _subnet(prefix)
        self._hosts: set[int] = set()
        self.mon = f"{prefix}monitoring"
        self.ksys = f"{prefix}kube-system"
        self.nodes: list[_Node] = []
        self.pods: list[_Pod] = []
        self.deploys: list[_Deploy] = []
        self.daemonsets: list[_DaemonSet] = []
        self.jobs: list[_Job] = []
        self.crons: list[_Cron] = []
        for _ in range(int(self.rng.integers(4, 7))):
            self.add_node(str(self.rng.choice(list(_NODE_TYPES))))
        self.ksm_ip = self.host(100, 250)
        self.ksm_pod = f"{prefix}kube-state-metrics-{self.hash()}-{self.suffix()}"
        for name in self.rng.choice([a.name for a in _CATALOG], size=3, replace=False):
            self.deploy(_APPS[str(name)], int(self.rng.integers(2, 4)))

    # ids and noise
    def host(self, lo: int, hi: int) -> str:
        free = [x for x in range(lo, hi + 1) if x not in self._hosts]
        x = int(self.rng.choice(free))
        self._hosts.add(x)
        return f"10.{self.net[0]}.{self.net[1]}.{x}"

    def hash(self, n: int = 10) -> str:
        return "".join(self.rng.choice(list(_CHARS), size=n))

    def suffix(self) -> str:
        return self.hash(5)

    def uid(self) -> str:
        h = self.rng.bytes(16).hex()
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def wiggle(self, sigma: float, width: int = 8) -> np.ndarray:
        """Smooth noise with standard deviation `sigma`."""
        raw = np.convolve(self.rng.normal(0, 1, self.n + width), np.ones(width), "valid")
        raw = raw[: self.n]
        return raw / (raw.std() or 1.0) * sigma

    def at(self, ts: float) -> int:
        """Index of the last sample at or before `ts`."""
        return int(np.clip(np.searchsorted(self.t, ts, side="right") - 1, 0, self.n - 1))

    def i_true(self, r: Rule) -> int:
        """The sample from which the alert's expression is to hold: 30-90 s before the end of
        the rule's pending period, so that `startsAt` = alert_at."""
        return self.at(self.alert_ts - r.for_s - 30 - 30 * int(self.rng.integers(0, 3)))

    def full(self, value: float) -> np.ndarray:
        return np.full(self.n, float(value))

    # objects
    def add_node(self, itype: str) -> _Node:
        a, b = self.net
        ip = self.host(10, 99)
        cpus, mem = _NODE_TYPES[itype]
        node = _Node(
            name=f"{self.p}ip-10-{a}-{b}-{ip.rsplit('.', 1)[1]}", ip=ip, itype=itype, cpus=cpus,
            mem_total=mem * 0.955, zone=str(self.rng.choice(["us-west-2a", "us-west-2b",
                                                              "us-west-2c"])),
            ne_pod=f"{self.p}node-exporter-{self.suffix()}", ready=self.full(1),
            conditions={"MemoryPressure": self.full(0), "DiskPressure": self.full(0)},
            unschedulable=self.full(0), ne_up=self.full(1), kubelet_up=self.full(1),
            sys_mem=self.full(self.rng.uniform(0.55, 0.9) * Gi + 0.03 * mem) + self.wiggle(2 * Mi),
            sys_cpu=np.clip(self.full(self.rng.uniform(0.06, 0.18)) + self.wiggle(0.01), 0.02,
                            None),
            extra_load=self.full(0),
            boot_ts=float(self.t[0] - self.rng.uniform(2, 40) * 86400))
        size = float(self.rng.choice([50, 80, 100])) * Gi
        frac = self.rng.uniform(45, 75) - self.rng.uniform(0, 0.3) * (self.t - self.t[0]) / 3600
        files = size / Gi * 65536
        node.fs.append(_FS("/", "/dev/nvme0n1p1", "ext4", size,
                           (frac + self.wiggle(0.02)) / 100 * size, files,
                           (self.rng.uniform(88, 97) + self.wiggle(0.01)) / 100 * files))
        self.nodes.append(node)
        return node

    def pick_nodes(self, k: int, exclude: Iterable[_Node] = ()) -> list[_Node]:
        skip = {id(e) for e in exclude}
        pool = [n for n in self.nodes if id(n) not in skip]
        return [pool[i] for i in self.rng.choice(len(pool), size=k, replace=False)]

    def pods_on(self, node: _Node) -> list[_Pod]:
        return [p for p in self.pods if p.node is node]

    def _least_loaded(self, exclude: Iterable[_Node] = ()) -> _Node:
        pool = [n for n in self.nodes if n not in exclude]
        load = np.array([len(self.pods_on(n)) + self.rng.uniform(0, 0.9) for n in pool])
        return pool[int(np.argmin(load))]

    def new_ctr(self, app: _App, created: int | None) -> _Ctr:
        n = self.n
        scale = self.rng.uniform(0.8, 1.2)
        cpu = app.cpu * scale * self.day * (1 + self.wiggle(0.08))
        cpu = np.clip(cpu, 0.001, 0.95 * app.cpu_lim if app.cpu_lim else None)
        mem = app.mem * self.rng.uniform(0.85, 1.15) * (1 + self.wiggle(0.01))
        run = np.zeros(n, dtype=int) if created is None else np.where(
            np.arange(n) > created, 0, -1)
        restarts0 = int(self.rng.choice([0, 0, 0, 0, 1, 2])) if created is None else 0
        ctr = _Ctr(name=app.name, image=app.image, cpu_req=app.cpu_req, cpu_lim=app.cpu_lim,
                   mem_req=app.mem_req, mem_lim=app.mem_lim, cpu=cpu, mem=mem, run=run,
                   restarts0=restarts0, unready=np.zeros(n, dtype=bool),
                   age0=float(self.rng.uniform(0.5, 20) * 86400))
        if restarts0:
            ctr.last_term.append((0, str(self.rng.choice(["Error", "Error", "Completed"]))))
        if created is not None:
            ctr.waiting["ContainerCreating"] = np.arange(n) == created
        return ctr

    def new_pod(self, ns: str, name: str, app: _App, node: _Node | None, *, owner_kind: str,
                owner_name: str, workload: str, template: str = "",
                created: int | None = None, stuck: bool = False,
                created_ts: float | None = None) -> _Pod:
        n = self.n
        idx = np.arange(n)
        alive = np.ones(n, dtype=bool) if created is None else idx >= created
        phase = np.full(n, RUNNING)
        if created is not None:
            phase[idx <= created] = PENDING
        ctr = self.new_ctr(app, created)
        if stuck:
            phase[:] = PENDING
            ctr.run[:] = -1
            ctr.waiting = {"ContainerCreating": alive.copy()}
        pod = _Pod(namespace=ns, name=name, uid=self.uid(), node=node,
                   ip=None if stuck else self.host(100, 250), owner_kind=owner_kind,
                   owner_name=owner_name, workload=workload, template=template, alive=alive,
                   phase=phase, ctrs=[ctr], deleting=np.zeros(n, dtype=bool),
                   unready=np.zeros(n, dtype=bool), up=np.ones(n), port=app.port,
                   created_ts=created_ts if created_ts is not None
                   else float(self.t[created] - self.rng.uniform(1, 20)) if created is not None
                   else float(self.t[0] - ctr.age0 - self.rng.uniform(0, 600)))
        self.pods.append(pod)
        return pod

    def deploy(self, app: _App, replicas: int, nodes: Sequence[_Node] | None = None,
               exclude: Sequence[_Node] = ()) -> _Deploy:
        name = self.p + app.name
        d = _Deploy(namespace=self.p + app.ns, name=name, app=app, replicas=replicas,
                    max_unavailable=max(1, replicas // 4),
                    generation=self.full(int(self.rng.integers(2, 40))), observed=self.full(0),
                    progressing=self.full(1), templates=[(0, self.hash())])
        d.observed = d.generation.copy()
        self.deploys.append(d)
        for k in range(replicas):
            node = nodes[k % len(nodes)] if nodes else self._least_loaded(exclude)
            self.replica(d, node)
        return d

    def replica(self, d: _Deploy, node: _Node | None, created: int | None = None,
                template: str | None = None, stuck: bool = False) -> _Pod:
        tpl = template or d.templates[-1][1]
        return self.new_pod(d.namespace, f"{d.name}-{tpl}-{self.suffix()}", d.app, node,
                            owner_kind="ReplicaSet", owner_name=f"{d.name}-{tpl}",
                            workload=d.name, template=tpl, created=created, stuck=stuck)

    def deploy_pods(self, d: _Deploy) -> list[_Pod]:
        return [p for p in self.pods if p.owner_kind == "ReplicaSet" and p.workload == d.name
                and p.namespace == d.namespace]

    def fresh_app(self, names: Sequence[str]) -> _App:
        used = {d.app.name for d in self.deploys}
        free = [n for n in names if n not in used] or [a.name for a in _CATALOG
                                                       if a.name not in used]
        return _APPS[str(self.rng.choice(free))]

    def daemonset(self, app: _App) -> _DaemonSet:
        ds = _DaemonSet(self.ksys, self.p + app.name, [])
        for node in self.nodes:
            pod = self.new_pod(self.ksys, f"{self.p}{app.name}-{self.suffix()}", app, node,
                               owner_kind="DaemonSet", owner_name=ds.name, workload=ds.name)
            pod.ip = node.ip  # hostNetwork
            pod.priority_class = "system-node-critical"
            ds.pods.append(pod)
        self.daemonsets.append(ds)
        return ds

    # behaviours
    def restart(self, ctr: _Ctr, i: int, reason: str, down: int = 1) -> None:
        """The container dies at sample i and runs again `down` samples later."""
        nxt = int(ctr.run.max()) + 1
        ctr.run[i:i + down] = -1
        ctr.run[i + down:] = np.where(ctr.run[i + down:] >= 0, nxt, ctr.run[i + down:])
        ctr.last_term.append((i, reason))

    def crashloop(self, ctr: _Ctr, i0: int, reason: str, *, until: int | None = None,
                  oom: bool = False, backoff: float = 20.0) -> list[int]:
        """From sample i0 the container alternates CrashLoopBackOff (back-off doubling to
        300 s) and short runs ending in `reason`; back to a steady run at `until`. Returns the
        indices of the CrashLoopBackOff samples."""
        end = self.n if until is None else until
        wait = ctr.waiting.setdefault("CrashLoopBackOff", np.zeros(self.n, dtype=bool))
        nxt = int(ctr.run.max()) + 1
        ctr.run[i0:end] = -1
        ctr.last_term.append((i0, reason))
        lim = ctr.mem_lim or float(np.median(ctr.mem)) * 2
        i, out = i0, []
        while i < end:
            w = max(1, math.ceil(backoff / STEP))
            wait[i:min(i + w, end)] = True
            out.extend(range(i, min(i + w, end)))
            i += w
            backoff = min(backoff * 2, 300.0)
            if i >= end:
                break
            length = int(self.rng.integers(2, 5))
            stop = min(i + length, end)
            ctr.run[i:stop] = nxt
            if oom:
                ctr.mem[i:stop] = np.linspace(0.55 * lim, 0.99 * lim, stop - i)
            nxt += 1
            i = stop
        if until is not None and until < self.n:
            ctr.run[until:] = nxt
        return out


# --- rendering -------------------------------------------------------------------------------


_HELP = {
    "up": "Whether the target was scraped successfully.",
    "node_filesystem_avail_bytes": "Filesystem space available to non-root users in bytes.",
    "node_filesystem_size_bytes": "Filesystem size in bytes.",
    "node_filesystem_files": "Filesystem total file nodes.",
    "node_filesystem_files_free": "Filesystem total free file nodes.",
    "node_filesystem_readonly": "Filesystem read-only status.",
    "node_memory_MemAvailable_bytes": "Memory information field MemAvailable_bytes.",
    "node_memory_MemTotal_bytes": "Memory information field MemTotal_bytes.",
    "node_cpu_seconds_total": "Seconds the CPUs spent in each mode.",
    "node_load1": "1m load average.",
    "kube_pod_info": "Information about pod.",
    "kube_node_status_condition": "The condition of a cluster node.",
    "kube_pod_container_status_waiting_reason":
        "Describes the reason the container is currently in waiting state.",
    "kube_pod_container_status_restarts_total":
        "The number of container restarts per container.",
    "kube_deployment_status_replicas_available":
        "The number of available replicas per deployment.",
    "kube_job_failed": "The job has failed its execution.",
    "container_cpu_usage_seconds_total": "Cumulative cpu time consumed in seconds.",
    "container_memory_working_set_bytes": "Current working set in bytes.",
    "container_cpu_cfs_periods_total": "Number of elapsed enforcement period intervals.",
    "container_cpu_cfs_throttled_periods_total": "Number of throttled period intervals.",
}


def _cum(inc: np.ndarray, resets: Iterable[int], start: float) -> np.ndarray:
    out = np.cumsum(inc) + start
    for r in sorted(resets):
        if 0 < r < len(out):
            out[r:] -= out[r - 1]
    return out


class _Store:
    def __init__(self, t: np.ndarray) -> None:
        self.t = t
        self.fams: dict[str, list[tuple[dict[str, str], np.ndarray]]] = {}

    def add(self, name: str, labels: Mapping[str, str | None], values: Any,
            mask: np.ndarray | None = None) -> None:
        v = np.broadcast_to(np.asarray(values, dtype=float), self.t.shape)
        if mask is not None:
            v = np.where(mask, v, np.nan)
        if np.isnan(v).all():
            return
        clean = {k: str(x) for k, x in labels.items() if x not in (None, "")}
        self.fams.setdefault(name, []).append((clean, v))

    def families(self) -> list[MetricFamily]:
        out = []
        for name, series in self.fams.items():
            samples = []
            for labels, v in series:
                ok = ~np.isnan(v)
                vals = v[ok]
                top = float(np.abs(vals).max()) if len(vals) else 0.0
                digits = 6 if top < 1000 else max(0, 9 - int(math.log10(top)))
                samples.append((labels, list(zip(self.t[ok].tolist(),
                                                 np.round(vals, digits).tolist(),
                                                 strict=True))))
            out.append(MetricFamily(name=name,
                                    type="counter" if name.endswith("_total") else "gauge",
                                    help=_HELP.get(name, ""), samples=samples))
        return out


def _ready(ctr: _Ctr) -> np.ndarray:
    prev = np.concatenate([[-2], ctr.run[:-1]])
    settled = (ctr.run >= 0) & ((ctr.run == prev) | (np.arange(len(ctr.run)) == 0))
    return settled & ~ctr.unready


def _render(c: _Case) -> list[MetricFamily]:
    s = _Store(c.t)
    n = c.n
    ksm_target = {"container": "kube-state-metrics", "endpoint": "http",
                  "instance": f"{c.ksm_ip}:8080", "job": "kube-state-metrics",
                  "namespace": c.mon, "pod": c.ksm_pod, "service": "kube-state-metrics"}

    def ksm(**own: str | None) -> dict[str, str | None]:
        return {**ksm_target, **own}

    s.add("up", ksm_target, 1.0)
    pod_mem = {id(node): np.zeros(n) for node in c.nodes}
    pod_cpu = {id(node): np.zeros(n) for node in c.nodes}

    # pods: kube-state-metrics and cAdvisor
    for pod in c.pods:
        node = pod.node
        base = {"namespace": pod.namespace, "pod": pod.name, "uid": pod.uid}
        alive = pod.alive
        s.add("kube_pod_info", ksm(**base, host_ip=node.ip if node else None,
                                   pod_ip=pod.ip if pod.ip else None,
                                   node=node.name if node else None,
                                   created_by_kind=pod.owner_kind,
                                   created_by_name=pod.owner_name,
                                   priority_class=pod.priority_class or None,
                                   host_network="true" if node and pod.ip == node.ip
                                   else "false"), 1.0, alive)
        s.add("kube_pod_owner", ksm(**base, owner_kind=pod.owner_kind,
                                    owner_name=pod.owner_name, owner_is_controller="true"),
              1.0, alive)
        s.add("kube_pod_created", ksm(**base), pod.created_ts, alive)
        for k, phase in enumerate(PHASES):
            s.add("kube_pod_status_phase", ksm(**base, phase=phase), pod.phase == k, alive)
        ready = alive & (pod.phase == RUNNING) & ~pod.unready
        for ctr in pod.ctrs:
            ready &= _ready(ctr)
        for cond, val in (("true", ready), ("false", ~ready), ("unknown", np.zeros(n))):
            s.add("kube_pod_status_ready", ksm(**base, condition=cond), val, alive)
        if pod.deleting.any():
            s.add("kube_pod_deletion_timestamp", ksm(**base),
                  c.t[int(np.argmax(pod.deleting))], alive & pod.deleting)
        reachable = node.kubelet_up > 0 if node else np.zeros(n, dtype=bool)
        for ctr in pod.ctrs:
            cb = {**base, "container": ctr.name}
            running = ctr.run >= 0
            restarts = ctr.restarts0 + np.maximum(np.maximum.accumulate(ctr.run), 0)
            s.add("kube_pod_container_status_restarts_total", ksm(**cb), restarts, alive)
            s.add("kube_pod_container_status_running", ksm(**cb), running, alive)
            s.add("kube_pod_container_status_ready", ksm(**cb), _ready(ctr) & ~pod.unready,
                  alive)
            waiting = np.zeros(n, dtype=bool)
            for reason, mask in ctr.waiting.items():
                waiting |= mask
                s.add("kube_pod_container_status_waiting_reason", ksm(**cb, reason=reason),
                      1.0, alive & mask)
            s.add("kube_pod_container_status_waiting", ksm(**cb), waiting, alive)
            for reason, mask in ctr.terminated.items():
                s.add("kube_pod_container_status_terminated_reason", ksm(**cb, reason=reason),
                      1.0, alive & mask)
            marks: list[tuple[int, str]] = []
            for i, reason in sorted(ctr.last_term):
                if not marks or marks[-1][1] != reason:
                    marks.append((i, reason))
            for j, (i, reason) in enumerate(marks):
                stop = marks[j + 1][0] if j + 1 < len(marks) else n
                span = (np.arange(n) >= i) & (np.arange(n) < stop)
                s.add("kube_pod_container_status_last_terminated_reason",
                      ksm(**cb, reason=reason), 1.0, alive & span)
            nb = node.name if node else None
            for res, unit, req, lim in (("cpu", "core", ctr.cpu_req, ctr.cpu_lim),
                                        ("memory", "byte", ctr.mem_req, ctr.mem_lim)):
                if req:
                    s.add("kube_pod_container_resource_requests",
                          ksm(**cb, node=nb, resource=res, unit=unit), req, alive)
                if lim:
                    s.add("kube_pod_container_resource_limits",
                          ksm(**cb, node=nb, resource=res, unit=unit), lim, alive)
            if node is None:
                continue
            # cAdvisor: one series per container instance (a restart is a new container id)
            cpu = np.where(running, ctr.cpu, 0.0)
            if ctr.cpu_lim:
                cpu = np.minimum(cpu, ctr.cpu_lim)
            mem = ctr.mem.copy()
            pod_cpu[id(node)] += cpu
            qos = "burstable" if ctr.mem_lim != ctr.mem_req else "guaranteed"
            uid_ = pod.uid.replace("-", "_")
            for run_id in np.unique(ctr.run[ctr.run >= 0]):
                seg = ctr.run == run_id
                first = int(np.argmax(seg))
                fresh = not (first == 0 and run_id == 0)
                if fresh and ctr.warmup:
                    since = c.t - c.t[first]
                    mem = np.where(seg, mem * (0.6 + 0.4 * np.clip(since / 300, 0, 1)), mem)
                pod_mem[id(node)] += np.where(seg, mem, 0.0)
                cid = c.rng.bytes(32).hex()
                lab = {"container": ctr.name, "endpoint": "https-metrics",
                       "id": f"/kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{uid_}"
                             f".slice/cri-containerd-{cid}.scope",
                       "image": ctr.image, "instance": f"{node.ip}:10250", "job": "kubelet",
                       "metrics_path": "/metrics/cadvisor", "name": cid,
                       "namespace": pod.namespace, "node": node.name, "pod": pod.name,
                       "service": "kubelet"}
                shown = seg & reachable
                start = 0.0 if fresh else float(np.mean(ctr.cpu)) * ctr.age0
                s.add("container_cpu_usage_seconds_total", {**lab, "cpu": "total"},
                      _cum(np.where(seg, cpu * STEP, 0.0), [], start), shown)
                s.add("container_memory_working_set_bytes", lab, mem, shown)
                if ctr.cpu_lim:
                    util = np.clip(cpu / ctr.cpu_lim, 0, 0.98)
                    act = np.ones(n) if ctr.saturated else np.clip(0.25 + util, 0.05, 1.0)
                    periods = np.where(seg, 10.0 * STEP * act, 0.0)
                    thr = ctr.throttle if ctr.throttle is not None else np.clip(
                        0.01 + 0.5 * np.maximum(util - 0.45, 0) ** 1.5, 0, 0.2)
                    age = 0.0 if fresh else ctr.age0
                    s.add("container_cpu_cfs_periods_total", lab,
                          _cum(periods, [], age * 6.0), shown)
                    s.add("container_cpu_cfs_throttled_periods_total", lab,
                          _cum(periods * thr, [], age * 0.2), shown)
        # the pod's own metrics target
        if pod.port and pod.ip and pod.ctrs:
            ctr = pod.ctrs[0]
            host_up = node.ne_up > 0 if node else np.zeros(n, dtype=bool)
            up = ((ctr.run >= 0) & host_up & (pod.up > 0)).astype(float)
            s.add("up", {"container": ctr.name, "endpoint": "http-metrics",
                         "instance": f"{pod.ip}:{pod.port}", "job": pod.workload,
                         "namespace": pod.namespace, "pod": pod.name,
                         "service": pod.workload}, up, alive & (pod.phase == RUNNING))

    # nodes: node_exporter, kubelet targets, kube-state-metrics
    for node in c.nodes:
        ne = {"container": "node-exporter", "endpoint": "http-metrics",
              "instance": f"{node.ip}:9100", "job": "node-exporter", "namespace": c.mon,
              "pod": node.ne_pod, "service": "node-exporter"}
        shown = node.ne_up > 0
        s.add("up", ne, node.ne_up)
        boot = c.full(node.boot_ts)
        for r in node.reboots:
            boot[r:] = c.t[r] - 20
        s.add("node_boot_time_seconds", ne, boot, shown)
        s.add("node_uname_info", {**ne, "domainname": "(none)", "machine": "x86_64",
                                  "nodename": node.name,
                                  "release": "5.10.219-208.866.amzn2.x86_64",
                                  "sysname": "Linux"}, 1.0, shown)
        used = node.sys_mem + pod_mem[id(node)]
        s.add("node_memory_MemTotal_bytes", ne, node.mem_total, shown)
        s.add("node_memory_MemAvailable_bytes", ne,
              np.clip(node.mem_total - used, 0.01 * node.mem_total, None), shown)
        busy = np.clip(node.sys_cpu + pod_cpu[id(node)] + 0.25 * node.extra_load, 0,
                       node.cpus * 0.98)
        s.add("node_load1", ne, np.clip(busy * 1.05 + node.extra_load + c.wiggle(0.05), 0,
                                        None), shown)
        share = c.rng.dirichlet(np.full(node.cpus, 8.0))
        for cpu in range(node.cpus):
            b = np.clip(busy * share[cpu], 0, 0.99)
            for mode, frac in (("user", 0.68 * b), ("system", 0.27 * b), ("iowait", 0.05 * b),
                               ("idle", 1 - b)):
                s.add("node_cpu_seconds_total", {**ne, "cpu": str(cpu), "mode": mode},
                      _cum(frac * STEP, node.reboots, float(np.mean(frac)) *
                           (c.t[0] - node.boot_ts)), shown)
        for fs in node.fs:
            fl = {**ne, "device": fs.device, "fstype": fs.fstype, "mountpoint": fs.mountpoint}
            s.add("node_filesystem_avail_bytes", fl, fs.avail, shown)
            s.add("node_filesystem_size_bytes", fl, fs.size, shown)
            s.add("node_filesystem_files", fl, fs.files, shown)
            s.add("node_filesystem_files_free", fl, fs.files_free, shown)
            s.add("node_filesystem_readonly", fl, 0.0, shown)
        for direction, scale in (("receive", 2.5e6), ("transmit", 1.8e6)):
            s.add(f"node_network_{direction}_bytes_total", {**ne, "device": "eth0"},
                  _cum(busy * scale * STEP, node.reboots, busy.mean() * scale * 1e5), shown)
        kubelet = {"endpoint": "https-metrics", "instance": f"{node.ip}:10250",
                   "job": "kubelet", "namespace": c.ksys, "node": node.name,
                   "service": "kubelet"}
        for path in ("/metrics", "/metrics/cadvisor"):
            s.add("up", {**kubelet, "metrics_path": path}, node.kubelet_up)
        s.add("kube_node_info", ksm(node=node.name, internal_ip=node.ip,
                                    kernel_version="5.10.219-208.866.amzn2.x86_64",
                                    os_image="Amazon Linux 2",
                                    container_runtime_version="containerd://1.7.11",
                                    kubelet_version="v1.29.3-eks-ae9a62a",
                                    kubeproxy_version="v1.29.3-eks-ae9a62a",
                                    provider_id=f"aws:///{node.zone}/i-{c.rng.bytes(8).hex()[:17]}"),
              1.0)
        for cond, arr in (("Ready", node.ready), *node.conditions.items()):
            for code, status in CONDITION_STATUS.items():
                s.add("kube_node_status_condition", ksm(node=node.name, condition=cond,
                                                        status=status), arr == code)
        s.add("kube_node_spec_unschedulable", ksm(node=node.name), node.unschedulable)
        for res, unit, val in (("cpu", "core", node.cpus - 0.07),
                               ("memory", "byte", node.mem_total - 0.6 * Gi)):
            s.add("kube_node_status_allocatable", ksm(node=node.name, resource=res, unit=unit),
                  val)
        for key, effect, mask in node.taints:
            s.add("kube_node_spec_taint", ksm(node=node.name, key=key, effect=effect), 1.0,
                  mask)

    # workloads
    for d in c.deploys:
        pods = c.deploy_pods(d)
        active = np.array([p.alive & ~p.deleting for p in pods])
        ready = np.array([p.alive & ~p.deleting & (p.phase == RUNNING) & ~p.unready
                          & np.logical_and.reduce([_ready(x) for x in p.ctrs]) for p in pods])
        updated = np.zeros(n)
        for j, (i0, tpl) in enumerate(d.templates):
            i1 = d.templates[j + 1][0] if j + 1 < len(d.templates) else n
            mine = np.array([p.template == tpl for p in pods])
            updated[i0:i1] = active[mine][:, i0:i1].sum(axis=0)
        available = ready.sum(axis=0)
        lab = {"namespace": d.namespace, "deployment": d.name}
        s.add("kube_deployment_spec_replicas", ksm(**lab), d.replicas)
        s.add("kube_deployment_status_replicas", ksm(**lab), active.sum(axis=0))
        s.add("kube_deployment_status_replicas_available", ksm(**lab), available)
        s.add("kube_deployment_status_replicas_unavailable", ksm(**lab),
              np.maximum(d.replicas - available, 0))
        s.add("kube_deployment_status_replicas_updated", ksm(**lab), updated)
        s.add("kube_deployment_metadata_generation", ksm(**lab), d.generation)
        s.add("kube_deployment_status_observed_generation", ksm(**lab), d.observed)
        s.add("kube_deployment_spec_strategy_rollingupdate_max_unavailable", ksm(**lab),
              d.max_unavailable)
        for cond, val in (("Available", available >= d.replicas - d.max_unavailable),
                          ("Progressing", d.progressing > 0)):
            for status, v in (("true", val), ("false", ~val), ("unknown", np.zeros(n))):
                s.add("kube_deployment_status_condition",
                      ksm(**lab, condition=cond, status=status), v)
    for ds in c.daemonsets:
        lab = {"namespace": ds.namespace, "daemonset": ds.name}
        ready = sum((p.alive & (p.phase == RUNNING) & _ready(p.ctrs[0])).astype(float)
                    for p in ds.pods)
        s.add("kube_daemonset_status_desired_number_scheduled", ksm(**lab), len(ds.pods))
        s.add("kube_daemonset_status_current_number_scheduled", ksm(**lab), len(ds.pods))
        s.add("kube_daemonset_status_updated_number_scheduled", ksm(**lab), len(ds.pods))
        s.add("kube_daemonset_status_number_misscheduled", ksm(**lab), 0.0)
        s.add("kube_daemonset_status_number_ready", ksm(**lab), ready)
        s.add("kube_daemonset_status_number_available", ksm(**lab), ready)
        s.add("kube_daemonset_status_number_unavailable", ksm(**lab), len(ds.pods) - ready)
    for job in c.jobs:
        lab = {"namespace": job.namespace, "job_name": job.name}
        s.add("kube_job_info", ksm(**lab), 1.0, job.alive)
        s.add("kube_job_owner", ksm(**lab, owner_kind="CronJob", owner_name=job.cron,
                                    owner_is_controller="true"), 1.0, job.alive)
        s.add("kube_job_spec_completions", ksm(**lab), 1.0, job.alive)
        s.add("kube_job_spec_parallelism", ksm(**lab), 1.0, job.alive)
        s.add("kube_job_status_start_time", ksm(**lab), job.start_ts, job.alive)
        s.add("kube_job_status_active", ksm(**lab), job.active, job.alive)
        s.add("kube_job_status_succeeded", ksm(**lab), job.succeeded, job.alive)
        s.add("kube_job_status_failed", ksm(**lab), job.failed, job.alive)
        idx = np.arange(n)
        if job.complete_at is not None:
            done = job.alive & (idx >= job.complete_at)
            s.add("kube_job_status_completion_time", ksm(**lab), job.complete_ts, done)
            for status, v in (("true", 1.0), ("false", 0.0), ("unknown", 0.0)):
                s.add("kube_job_complete", ksm(**lab, condition=status), v, done)
        if job.failed_at is not None:
            gone = job.alive & (idx >= job.failed_at)
            for status, v in (("true", 1.0), ("false", 0.0), ("unknown", 0.0)):
                s.add("kube_job_failed", ksm(**lab, condition=status), v, gone)
    for cron in c.crons:
        lab = {"namespace": cron.namespace, "cronjob": cron.name}
        s.add("kube_cronjob_info", ksm(**lab, schedule=cron.schedule,
                                       concurrency_policy="Forbid"), 1.0)
        s.add("kube_cronjob_spec_suspend", ksm(**lab), 0.0)
        s.add("kube_cronjob_status_last_schedule_time", ksm(**lab), cron.last_schedule)
        s.add("kube_cronjob_status_active", ksm(**lab), cron.active)
        s.add("kube_cronjob_next_schedule_time", ksm(**lab), cron.last_schedule + 3600)
    return s.families()


# --- outcomes --------------------------------------------------------------------------------


@dataclass
class _Outcome:
    alertname: str
    severity: str
    labels: dict[str, str]  # the expression's output series
    value: float
    truth_labels: dict[str, str]
    truth_names: list[str]
    notes: list[str]
    avoid_pods: set[str] = field(default_factory=set)
    avoid_nodes: set[str] = field(default_factory=set)


def _ne(c: _Case, node: _Node) -> dict[str, str]:
    return {"container": "node-exporter", "endpoint": "http-metrics",
            "instance": f"{node.ip}:9100", "job": "node-exporter", "namespace": c.mon,
            "pod": node.ne_pod, "service": "node-exporter"}


def _ksm(c: _Case, **own: str) -> dict[str, str]:
    return {"container": "kube-state-metrics", "endpoint": "http",
            "instance": f"{c.ksm_ip}:8080", "job": "kube-state-metrics", "namespace": c.mon,
            "pod": c.ksm_pod, "service": "kube-state-metrics", **own}


def _predict_linear(t: np.ndarray, v: np.ndarray, at: float, window: float,
                    horizon: float) -> float:
    m = (t > at - window) & (t <= at) & ~np.isnan(v)
    slope, icpt = np.polyfit(t[m] - at, v[m], 1)
    return float(icpt + slope * horizon)


def _filling(c: _Case, i_true: int, thr: float, p0: float, lead_min: tuple[float, float],
             sigma: float = 0.001) -> np.ndarray:
    """A percentage that is flat near p0, then falls linearly and crosses `thr` between
    samples i_true-1 and i_true."""
    t = c.t
    t_cross = t[i_true] - c.rng.uniform(8, STEP - 8)
    t_f = t_cross - c.rng.uniform(*lead_min) * 60
    rate = (p0 - thr) / (t_cross - t_f)
    pct = np.where(t < t_f, p0 + c.wiggle(0.05) * np.clip((t_f - t) / 1800, 0, 1),
                   p0 - rate * (t - t_f)) + c.wiggle(sigma)
    return np.clip(pct, 0.4, 100)


def _k_disk_filling(c: _Case) -> _Outcome:
    sev = str(c.rng.choice(["warning", "critical"]))
    r = rule("NodeFilesystemSpaceFillingUp", sev)
    thr, horizon = (15.0, 86400) if sev == "warning" else (10.0, 4 * 3600)
    mount, device, fstype, size = [
        ("/var/lib/kafka", "/dev/nvme1n1", "ext4", 500 * Gi),
        ("/var/log", "/dev/nvme1n1", "xfs", 100 * Gi),
        ("/var/lib/containerd", "/dev/nvme1n1", "xfs", 200 * Gi),
        ("/mnt/data", "/dev/nvme2n1", "ext4", 1000 * Gi)][int(c.rng.integers(4))]
    x, low, slow, blip = c.pick_nodes(4)
    t = c.t
    hours = (t - t[0]) / 3600
    for node in c.nodes:
        pct = c.rng.uniform(35, 70) - c.rng.uniform(0, 0.3) * hours + c.wiggle(0.03)
        files = size / Gi * 16384
        node.fs.append(_FS(mount, device, fstype, size, pct / 100 * size, files,
                           (99.2 + c.wiggle(0.02)) / 100 * files))
    i_true = c.i_true(r)
    head, lead = ((8, 13), (80, 105)) if sev == "warning" else ((7, 10), (85, 100))
    pct = _filling(c, i_true, thr, thr + c.rng.uniform(*head), lead)
    x.fs[-1].avail = pct / 100 * size
    pl = _predict_linear(t, x.fs[-1].avail, t[i_true], 6 * 3600, horizon)
    assert pl < 0, f"predict_linear {pl} at onset is not negative"
    # confounders: low but stable (retention sawtooth), slowly filling, a transient dip on /
    saw = ((t - t[0]) % (2400 + c.rng.uniform(0, 900))) / 2400
    low.fs[-1].avail = (thr + c.rng.uniform(3, 5) - 1.2 * saw + c.wiggle(0.02)) / 100 * size
    slow.fs[-1].avail = (c.rng.uniform(40, 50) - 0.8 * hours + c.wiggle(0.05)) / 100 * size
    root = blip.fs[0]
    t0 = c.alert_ts - r.for_s + c.rng.uniform(-900, 900)
    dip = np.clip(1 - np.abs(t - t0) / c.rng.uniform(600, 1000), 0, 1)
    root.avail = root.avail - 0.1 * root.size * dip
    value = float(pct[c.i_alert])
    labels = {**_ne(c, x), "device": device, "fstype": fstype, "mountpoint": mount}
    return _Outcome(
        r.alert, sev, labels, value,
        truth_labels={"instance": f"{x.ip}:9100", "mountpoint": mount},
        truth_names=[x.name, f"{x.ip}:9100", mount],
        notes=[
            f"naive: the alert's instance+mountpoint ({x.ip}:9100 {mount}) name the failing "
            f"filesystem directly; its pod/namespace labels are the node-exporter pod "
            f"({x.ne_pod}), not the culprit",
            f"injected: {mount} on {x.name} falls from ~{pct[0]:.0f}% to {value:.1f}% free, "
            f"crossing {thr:.0f}% about {r.for_s // 60} min before the alert",
            f"confounders: {mount} on {low.name} low but stable (~{thr + 3:.0f}-{thr + 5:.0f}%"
            f", retention sawtooth); on {slow.name} slowly filling but >40% free; / on "
            f"{blip.name} dips 10% for ~20-30 min and recovers"],
        avoid_nodes={x.name})


def _k_inodes(c: _Case) -> _Outcome:
    sev = str(c.rng.choice(["warning", "critical"]))
    r = rule("NodeFilesystemFilesFillingUp", sev)
    thr, horizon, p0 = ((40.0, 86400, c.rng.uniform(72, 86)) if sev == "warning"
                        else (20.0, 4 * 3600, c.rng.uniform(34, 42)))
    x, lowbytes, other = c.pick_nodes(3)
    t = c.t
    i_true = c.i_true(r)
    pct = _filling(c, i_true, thr, p0, (85, 110))
    fs = x.fs[0]
    fs.files_free = pct / 100 * fs.files
    assert _predict_linear(t, fs.files_free, t[i_true], 6 * 3600, horizon) < 0
    fs.avail = (c.rng.uniform(45, 60) - 0.4 * (t - t[0]) / 3600 + c.wiggle(0.03)) / 100 * fs.size
    lb = lowbytes.fs[0]
    lb.avail = (c.rng.uniform(12, 14) + 0.1 * (t - t[0]) / 3600 + c.wiggle(0.02)) / 100 * lb.size
    of = other.fs[0]
    of.files_free = (c.rng.uniform(52, 60) + c.wiggle(0.05)) / 100 * of.files
    value = float(pct[c.i_alert])
    labels = {**_ne(c, x), "device": fs.device, "fstype": fs.fstype, "mountpoint": "/"}
    return _Outcome(
        r.alert, sev, labels, value,
        truth_labels={"instance": f"{x.ip}:9100", "mountpoint": "/"},
        truth_names=[x.name, f"{x.ip}:9100"],
        notes=[
            f"naive: the alert's instance+mountpoint ({x.ip}:9100 /) name the failing "
            f"filesystem; its pod label is the node-exporter pod ({x.ne_pod})",
            f"injected: inodes of / on {x.name} fall from {p0:.0f}% to {value:.1f}% free "
            "(many small files) while its bytes stay ~50% free",
            f"confounders: / on {lowbytes.name} has only ~13% BYTES free (flat); / on "
            f"{other.name} has ~55% inodes free (flat)"],
        avoid_nodes={x.name})


def _k_crashloop(c: _Case) -> _Outcome:
    r = rule("KubePodCrashLooping", "warning")
    app = c.fresh_app(["checkout", "cart", "payments-api", "auth", "catalog-api", "mailer"])
    d = c.deploy(app, 3)
    pod = c.deploy_pods(d)[int(c.rng.integers(3))]
    ctr = pod.ctrs[0]
    lim = float(ctr.mem_lim or 1 * Gi)
    i_true = c.i_true(r)
    i_c1 = i_true - int(c.rng.integers(3, 6))
    i_leak = i_c1 - int(c.rng.integers(20, 50))
    ctr.mem[i_leak:i_c1] = np.linspace(ctr.mem[i_leak], 0.99 * lim, i_c1 - i_leak)
    ctr.warmup = False
    c.restart(ctr, i_c1, "OOMKilled", down=0)
    ctr.mem[i_c1:i_true] = np.linspace(0.6 * lim, 0.99 * lim, i_true - i_c1)
    c.crashloop(ctr, i_true, "OOMKilled", oom=True)
    # confounders: a brief crash loop elsewhere an hour or more earlier; an old OOMKill
    others = [p for p in c.pods if p.workload != d.name and p.owner_kind == "ReplicaSet"]
    blip = others[int(c.rng.integers(len(others)))]
    i_b = c.at(c.alert_ts - c.rng.uniform(40, 100) * 60)
    c.crashloop(blip.ctrs[0], i_b, "Error", until=i_b + int(c.rng.integers(8, 13)))
    old = others[int(c.rng.integers(len(others)))]
    if old is not blip:
        old.ctrs[0].restarts0 = 3
        old.ctrs[0].last_term = [(0, "OOMKilled")]
    labels = _ksm(c, namespace=pod.namespace, pod=pod.name, uid=pod.uid, container=ctr.name,
                  reason="CrashLoopBackOff")
    return _Outcome(
        r.alert, "warning", labels, 1.0,
        truth_labels={"namespace": pod.namespace, "pod": pod.name},
        truth_names=[pod.name],
        notes=[
            f"naive: the alert's namespace/pod ({pod.namespace}/{pod.name}) name the culprit; "
            "job/instance/service name kube-state-metrics",
            f"injected: {pod.name} ({ctr.name}) leaks to its {lim / Mi:.0f}Mi limit, is "
            "OOMKilled and restarts with growing back-off (restarts up, last terminated reason "
            "OOMKilled); its two siblings are healthy",
            f"confounders: {blip.name} crash-looped for ~5 min about "
            f"{(c.alert_ts - c.t[i_b]) / 60:.0f} min before the alert and recovered; "
            f"{old.name} carries an old OOMKilled last-terminated reason"],
        avoid_pods={p.name for p in c.deploy_pods(d)} | {blip.name})


def _k_rollout_stuck(c: _Case) -> _Outcome:
    r = rule("KubeDeploymentReplicasMismatch", "warning")
    x, b = c.pick_nodes(2)
    app = c.fresh_app(["payments-api", "checkout", "auth", "cart", "catalog-api", "frontend"])
    d = c.deploy(app, 4, exclude=[x])
    ds = c.daemonset(_CNI)
    cni = next(p for p in ds.pods if p.node is x)
    j = c.at(c.alert_ts - r.for_s - 600 - 30 - 30 * int(c.rng.integers(0, 3)))
    ro = j - 2
    i_cni = ro - int(c.rng.integers(6, 24))
    cni.ctrs[0].warmup = False
    c.crashloop(cni.ctrs[0], i_cni, "Error")
    h1 = c.hash()
    d.templates.append((ro, h1))
    d.generation[ro:] += 1
    d.observed[ro:] += 1
    d.progressing[ro + 600 // STEP:] = 0
    old = c.deploy_pods(d)
    c.rng.shuffle(old)
    old[0].alive[ro + 1:] = False
    old[1].alive[ro + 3:] = False
    n1 = c.replica(d, b, created=ro, template=h1)
    n2 = c.replica(d, x, created=ro + 1, template=h1, stuck=True)
    n3 = c.replica(d, x, created=ro + 3, template=h1, stuck=True)
    # confounder: another deployment rolls out cleanly within minutes of this one
    candidates = [o for o in c.deploys if o is not d and o.replicas >= 2]
    note = ""
    if candidates:
        other = candidates[int(c.rng.integers(len(candidates)))]
        ro2 = ro + int(c.rng.choice([-1, 1]) * c.rng.integers(6, 16))
        h2 = c.hash()
        other.templates.append((ro2, h2))
        other.generation[ro2:] += 1
        other.observed[ro2:] += 1
        for k, p in enumerate(c.deploy_pods(other)):
            c.replica(other, c._least_loaded(exclude=[x]), created=ro2 + 2 * k, template=h2)
            p.alive[ro2 + 2 * k + 2:] = False
        note = f"{other.name} rolled out cleanly {abs(ro2 - ro) * STEP // 60} min apart; "
    labels = _ksm(c, namespace=d.namespace, deployment=d.name)
    return _Outcome(
        r.alert, "warning", labels, float(d.replicas),
        truth_labels={"node": x.name},
        truth_names=[x.name, cni.name],
        notes=[
            f"naive: the alert names deployment {d.namespace}/{d.name} (the symptom) and, via "
            f"its pod label, the kube-state-metrics pod {c.ksm_pod}; neither is the culprit, "
            f"node {x.name}",
            f"injected: the CNI agent {cni.name} on {x.name} crash-loops from "
            f"{(c.alert_ts - c.t[i_cni]) / 60:.0f} min before the alert; a rollout of "
            f"{d.name} then places {n2.name} and {n3.name} on {x.name}, where they stay "
            f"ContainerCreating (Pending, no pod IP), while {n1.name} on {b.name} comes up: "
            "available 3 of 4, updated stuck at 3",
            "confounders: " + note + "pods already running on the node stay healthy"],
        avoid_pods={p.name for p in c.deploy_pods(d)} | {cni.name},
        avoid_nodes={x.name})


def _k_node_not_ready(c: _Case) -> _Outcome:
    r = rule("KubeNodeNotReady", "warning")
    x, z, y = c.pick_nodes(3)
    movable = [p for p in c.pods if p.node is not x and p.owner_kind == "ReplicaSet"]
    for k in c.rng.choice(len(movable), size=min(2, len(movable)), replace=False):
        movable[int(k)].node = x
    for p in c.pods_on(z):
        p.node = c._least_loaded(exclude=[z])
    i_nr = c.i_true(r)
    i_h = i_nr - 1 - int(c.rng.integers(0, 2))
    i_l = i_h - int(c.rng.integers(25, 45))
    ramp = np.clip((np.arange(c.n) - i_l) / (i_h - i_l), 0, 1)
    pods_mem = sum((p.ctrs[0].mem for p in c.pods_on(x)), np.zeros(c.n))
    need = np.clip(0.985 * x.mem_total - x.sys_mem - pods_mem, 0, None)
    x.sys_mem = x.sys_mem + need * ramp ** 2
    x.extra_load = x.extra_load + 3.5 * x.cpus * ramp ** 3
    x.conditions["MemoryPressure"][i_h - 4:] = 1
    for arr in (x.ready, *x.conditions.values()):
        arr[i_nr:] = 2
    x.ne_up[i_h:] = 0
    x.kubelet_up[i_h:] = 0
    after = np.arange(c.n) >= i_nr
    x.taints += [("node.kubernetes.io/unreachable", "NoSchedule", after),
                 ("node.kubernetes.io/unreachable", "NoExecute", after)]
    replaced = []
    for p in c.pods_on(x):
        p.unready[i_nr:] = True
        if p.owner_kind == "ReplicaSet":
            p.deleting[i_nr + 300 // STEP:] = True
            d = next(d for d in c.deploys if d.name == p.workload)
            new = c.replica(d, c._least_loaded(exclude=[x, z]),
                            created=i_nr + 300 // STEP + int(c.rng.integers(0, 2)),
                            template=p.template)
            replaced.append(new.name)
    # confounders: planned reboot of a cordoned node; a one-sample readiness blip elsewhere
    i_m0 = c.at(c.alert_ts - c.rng.uniform(55, 75) * 60)
    i_r0 = i_m0 + int(c.rng.integers(4, 8))
    i_r1 = i_r0 + int(c.rng.integers(6, 10))
    i_m1 = i_r1 + int(c.rng.integers(4, 10))
    z.unschedulable[i_m0:i_m1] = 1
    z.taints.append(("node.kubernetes.io/unschedulable", "NoSchedule",
                     (np.arange(c.n) >= i_m0) & (np.arange(c.n) < i_m1)))
    z.ready[i_r0:i_r1] = 2
    z.ne_up[i_r0:i_r1 - 2] = 0
    z.kubelet_up[i_r0:i_r1 - 1] = 0
    z.reboots.append(i_r1 - 2)
    i_y = c.at(c.alert_ts - c.rng.uniform(85, 150) * 60)
    y.ready[i_y] = 2
    labels = _ksm(c, node=x.name, condition="Ready", status="true")
    return _Outcome(
        r.alert, "warning", labels, 0.0,
        truth_labels={"node": x.name},
        truth_names=[x.name, f"{x.ip}:9100"],
        notes=[
            f"naive: the alert's node label ({x.name}) names the culprit; its pod/namespace "
            f"labels are the kube-state-metrics pod ({c.ksm_pod})",
            f"injected: {x.name} runs out of memory (MemAvailable -> ~1.5%, load climbing, "
            "MemoryPressure), then stops answering: node-exporter and kubelet targets down, "
            "Ready Unknown, unreachable taints; its pods go unready and are replaced after 5 "
            f"min ({', '.join(replaced) or 'none'})",
            f"confounders: {z.name} cordoned and rebooted ~1 h earlier (NotReady while "
            f"unschedulable: excluded by the rule); {y.name} had a one-sample readiness blip"],
        avoid_pods={p.name for p in c.pods_on(x)}, avoid_nodes={x.name, z.name})


def _k_target_down(c: _Case) -> _Outcome:
    r = rule("TargetDown", "warning")
    app = c.fresh_app(["checkout", "frontend", "auth", "cart", "payments-api", "mailer",
                       "catalog-api"])
    k = int(c.rng.integers(5, 9))
    d = c.deploy(app, k)
    pods = c.deploy_pods(d)
    pod = pods[int(c.rng.integers(k))]
    ctr = pod.ctrs[0]
    i_down = c.i_true(r)
    pod.up[i_down:] = 0
    ctr.unready[i_down + 1:] = True
    mode = str(c.rng.choice(["deadlock", "busy"]))
    if mode == "deadlock":
        ctr.cpu[i_down - 1:] = 0.002 + np.abs(c.wiggle(0.0005)[i_down - 1:])
    else:
        lim = float(ctr.cpu_lim or 1.0)
        ctr.cpu[i_down - 2:] = 0.97 * lim
        thr = np.clip(0.03 + c.wiggle(0.01), 0, 0.2)
        thr[i_down - 2:] = 0.6 + c.wiggle(0.02)[i_down - 2:]
        ctr.throttle = thr
    for p in pods:
        if p is not pod:
            p.ctrs[0].cpu[i_down + 1:] *= k / (k - 1)
    # confounders: one failed scrape of a sibling earlier; another service's pod restarting
    sib = next(p for p in pods if p is not pod)
    forbid = c.at(c.alert_ts - r.for_s - 3600)
    choices = [i for i in range(c.at(c.alert_ts - 150 * 60), c.at(c.alert_ts - 30 * 60))
               if abs(i - forbid) > 6]
    sib.up[int(c.rng.choice(choices))] = 0
    other = [p for p in c.pods if p.workload != d.name and p.port and p.ip
             and p.owner_kind == "ReplicaSet"]
    note = ""
    if other:
        q = other[int(c.rng.integers(len(other)))]
        i_q = c.at(c.alert_ts - c.rng.uniform(12, 25) * 60)
        c.restart(q.ctrs[0], i_q, "Error", down=int(c.rng.integers(3, 7)))
        note = f"{q.name} ({q.workload}) failed its liveness probe and restarted (target down " \
               f"~2-3 min) {(c.alert_ts - c.t[i_q]) / 60:.0f} min before; "
    labels = {"job": d.name, "namespace": d.namespace, "service": d.name}
    inst = f"{pod.ip}:{pod.port}"
    return _Outcome(
        r.alert, "warning", labels, 100.0 / k,
        truth_labels={"namespace": pod.namespace, "pod": pod.name, "instance": inst},
        truth_names=[pod.name, inst],
        notes=[
            f"naive: the alert names only job/service {d.name} in {d.namespace} ({k} targets, "
            f"{100 / k:.3g}% down): it does not say which pod; the culprit is {pod.name} "
            f"({inst})",
            f"injected: {pod.name} wedges ({mode}: "
            + ("CPU drops to ~0" if mode == "deadlock" else "CPU pegged at its limit, heavily "
               "throttled")
            + "); its /metrics scrape fails (up=0) and readiness fails, the container keeps "
            "running (no restart); siblings take its load",
            "confounders: " + note + f"{sib.name} missed one scrape earlier"],
        avoid_pods={p.name for p in pods})


def _k_cpu_throttling(c: _Case) -> _Outcome:
    r = rule("CPUThrottlingHigh", "info")
    app = c.fresh_app(["checkout", "cart", "frontend", "payments-api", "auth", "catalog-api",
                       "ledger"])
    d = c.deploy(app, int(c.rng.integers(2, 4)))
    pods = c.deploy_pods(d)
    pod = pods[int(c.rng.integers(len(pods)))]
    ctr = pod.ctrs[0]
    lim = float(ctr.cpu_lim or 1.0)
    i_true = c.i_true(r)
    r0, r1, m = 0.0, 0.0, 0
    for _ in range(100):
        r0, r1 = c.rng.uniform(0.02, 0.07), c.rng.uniform(0.42, 0.72)
        ratios = [(j * r1 + (9 - j) * r0) / 9 for j in range(10)]
        m = next(j for j in range(10) if ratios[j] > 0.25)
        if ratios[m] > 0.265 and ratios[m - 1] < 0.235:
            break
    i_s = i_true - m + 1
    thr = np.clip(r0 + c.wiggle(0.006), 0.005, 0.2)
    thr[i_s:] = np.clip(r1 + c.wiggle(0.012)[i_s:], 0.3, 0.9)
    thr[max(i_s - 10, 0):i_s] = r0
    thr[i_s:i_s + 10] = r1
    ctr.throttle = thr
    ctr.saturated = True
    ctr.cpu = np.where(np.arange(c.n) < i_s, np.clip(0.5 * lim * c.day + c.wiggle(0.03 * lim),
                                                     0.05 * lim, 0.8 * lim),
                       0.96 * lim + c.wiggle(0.005 * lim))
    # confounders: a container throttled 12-20% all along; a CPU-heavy pod without a limit
    others = [p for p in c.pods if p.workload != d.name and p.ctrs[0].cpu_lim]
    note = ""
    if others:
        q = others[int(c.rng.integers(len(others)))]
        q.ctrs[0].throttle = np.clip(c.rng.uniform(0.12, 0.18) + c.wiggle(0.015), 0.05, 0.22)
        note = f"{q.name} is throttled ~12-20% throughout; "
    hog = c.deploy(_APPS["search-api"], 1, nodes=[pod.node]) if not any(
        dd.app.name == "search-api" for dd in c.deploys) else None
    if hog is not None:
        hp = c.deploy_pods(hog)[0]
        hp.ctrs[0].cpu = hp.ctrs[0].cpu * 3
        note += f"{hp.name} on the same node burns ~1 core with no CPU limit (no throttling)"
    assert pod.node is not None
    labels = {"container": ctr.name, "instance": f"{pod.node.ip}:10250",
              "namespace": pod.namespace, "pod": pod.name, "service": "kubelet"}
    value = float(np.mean(thr[c.i_alert - 8:c.i_alert + 1]))
    return _Outcome(
        r.alert, "info", labels, value,
        truth_labels={"namespace": pod.namespace, "pod": pod.name, "container": ctr.name},
        truth_names=[pod.name],
        notes=[
            f"naive: the alert's namespace/pod/container name the culprit ({pod.name}); its "
            f"instance label is the node's kubelet ({pod.node.name})",
            f"injected: {pod.name} demand rises past its {lim:g}-core limit: usage pinned at "
            f"~96% of the limit, {r1:.0%} of CFS periods throttled (from {r0:.0%})",
            "confounders: " + note],
        avoid_pods={pod.name})


def _k_node_memory(c: _Case) -> _Outcome:
    r = rule("NodeMemoryHighUtilization", "warning")
    x, w = c.pick_nodes(2)
    x.itype, x.cpus = "m5.xlarge", 4
    x.mem_total = 16 * Gi * 0.955
    big_app = c.fresh_app(["ledger", "search-api"])
    big = c.deploy(big_app, 2, nodes=[x, c._least_loaded(exclude=[x])])
    bp = c.deploy_pods(big)[0]
    bp.ctrs[0].mem = (c.rng.uniform(0.4, 0.44) * x.mem_total) * (1 + c.wiggle(0.0001))
    leak_app = _APPS["report-worker"]
    if any(dd.app is leak_app for dd in c.deploys):
        leak_d = next(dd for dd in c.deploys if dd.app is leak_app)
        lp = c.deploy_pods(leak_d)[0]
        lp.node = x
    else:
        leak_d = c.deploy(leak_app, 2, nodes=[x, c._least_loaded(exclude=[x])])
        lp = c.deploy_pods(leak_d)[0]
    for p in c.pods_on(x):
        if p is not lp and p is not bp:
            p.ctrs[0].mem = float(np.mean(p.ctrs[0].mem)) * (1 + c.wiggle(0.001))
    x.sys_mem = float(np.mean(x.sys_mem)) + c.wiggle(0.5 * Mi)
    t = c.t
    i_true = c.i_true(r)
    others = x.sys_mem + sum((p.ctrs[0].mem for p in c.pods_on(x) if p is not lp),
                             np.zeros(c.n))
    t_cross = t[i_true] - c.rng.uniform(12, STEP - 12)
    frac = (t_cross - t[i_true - 1]) / STEP
    o_cross = others[i_true - 1] + frac * (others[i_true] - others[i_true - 1])
    l0 = c.rng.uniform(0.35, 0.6) * Gi
    slope = c.rng.uniform(0.09, 0.15) * x.mem_total / 3600  # bytes/s: 9-15% of the node per h
    t_f = t_cross - (0.9 * x.mem_total - o_cross - l0) / slope
    leak = np.where(t < t_f, l0, l0 + slope * (t - t_f)) + c.wiggle(0.5 * Mi)
    lp.ctrs[0].mem = leak
    util = 100 * (others + leak) / x.mem_total
    assert util[i_true] > 90 > util[i_true - 1], (util[i_true - 1], util[i_true])
    assert (util[i_true:] > 90).all() and util.max() < 98
    # confounder: a memory spike on another node near the onset
    spiky = [p for p in c.pods_on(w)]
    note = ""
    if spiky:
        q = spiky[int(c.rng.integers(len(spiky)))]
        t0 = c.alert_ts - r.for_s + c.rng.uniform(-900, 600)
        bump = np.clip(1 - np.abs(t - t0) / c.rng.uniform(600, 900), 0, 1)
        q.ctrs[0].mem = q.ctrs[0].mem + min(2.5 * Gi, 0.25 * w.mem_total) * bump
        note = f"{q.name} on {w.name} swells by ~{min(2.5, 0.25 * w.mem_total / Gi):.1f}GiB " \
               "for ~20 min around the onset; "
    labels = _ne(c, x)
    return _Outcome(
        r.alert, "warning", labels, float(util[c.i_alert]),
        truth_labels={"namespace": lp.namespace, "pod": lp.name},
        truth_names=[lp.name],
        notes=[
            f"naive: the alert names node {x.name} ({x.ip}:9100) - the symptom - and, via its "
            f"pod label, the node-exporter pod {x.ne_pod}; the culprit is pod {lp.name} on it",
            f"injected: {lp.name} (no memory limit) grows linearly from {leak[0] / Gi:.1f}GiB "
            f"to {leak[c.i_alert] / Gi:.1f}GiB; node memory use crosses 90%",
            "confounders: " + note + f"{bp.name} on the same node holds "
            f"{np.mean(bp.ctrs[0].mem) / Gi:.1f}GiB, flat"],
        avoid_pods={p.name for p in c.pods_on(x)}, avoid_nodes={x.name})


def _add_job_run(c: _Case, cron: _Cron, spec: tuple[str, str, str, float, float, float],
                 sched_ts: float, attempts: Sequence[tuple[int, str]], gaps: Sequence[int],
                 ) -> tuple[_Job, list[_Pod]]:
    """A Job created at sched_ts whose pods run `attempts` (samples, outcome: Completed,
    Error or OOMKilled) one after another, `gaps` samples apart."""
    _, base, image, cpu, mem, mem_lim = spec
    name = f"{cron.name}-{int(sched_ts // 60)}"
    app = _App(cron.namespace, base, image, cpu, mem, 0.25, None, 256 * Mi, mem_lim, None)
    n = c.n
    idx = np.arange(n)
    i0 = int(np.floor((sched_ts - c.t[0]) / STEP)) + 1  # may lie before the window

    def ts(i: int) -> float:
        return float(c.t[0] + STEP * i)

    job = _Job(cron.namespace, name, cron.name, alive=idx >= i0, start_ts=sched_ts + 1,
               active=np.zeros(n), succeeded=np.zeros(n), failed=np.zeros(n))
    pods, i = [], i0
    for k, (length, outcome) in enumerate(attempts):
        created = i
        pod = c.new_pod(cron.namespace, f"{name}-{c.suffix()}", app, None, owner_kind="Job",
                        owner_name=name, workload=name,
                        created=created if created >= 0 else None,
                        created_ts=ts(created) - c.rng.uniform(1, 5))
        pod.node = c._least_loaded()
        ctr = pod.ctrs[0]
        ctr.warmup = False
        ctr.restarts0, ctr.last_term = 0, []
        end = created + 1 + length
        ctr.run[:] = -1
        ctr.run[max(created + 1, 0):max(end, 0)] = 0
        if outcome == "OOMKilled":
            seg = slice(max(created + 1, 0), max(end, 0))
            ctr.mem[seg] = np.linspace(0.4 * mem_lim, 0.995 * mem_lim, len(ctr.mem[seg]))
        pod.phase[max(end, 0):] = SUCCEEDED if outcome == "Completed" else FAILED
        if created >= 0:
            pod.phase[created] = PENDING
        ctr.terminated = {outcome: idx >= end}
        job.active[max(created, 0):max(end, 0)] = 1
        if outcome == "Completed":
            job.succeeded[max(end, 0):] = 1
            job.complete_at, job.complete_ts = max(end, 0), ts(end) - 3
        else:
            job.failed[max(end, 0):] += 1
        pods.append(pod)
        i = end + (gaps[k] if k < len(gaps) else 0)
    cron.last_schedule[idx >= i0] = sched_ts
    cron.active = np.maximum(cron.active, job.active)
    c.jobs.append(job)
    return job, pods


def _k_job_failed(c: _Case) -> _Outcome:
    r = rule("KubeJobFailed", "warning")
    order = c.rng.permutation(len(_CRONS))
    spec, spec2 = _CRONS[order[0]], _CRONS[order[1]]
    i_fail = c.i_true(r)
    reason = str(c.rng.choice(["OOMKilled", "Error"]))
    runs = [int(v) for v in c.rng.integers(2, 6, size=4)]
    gaps = [1, 1, 2]
    i0 = i_fail - sum(1 + v for v in runs) - sum(gaps)
    sched = float(c.t[i0 - 1] + c.rng.uniform(1, 20))
    minute = int(sched // 60) % 60

    def cron_of(sp: tuple[str, str, str, float, float, float], minute: int) -> _Cron:
        cr = _Cron(c.p + sp[0], c.p + sp[1], f"{minute} * * * *", c.full(0), c.full(0))
        c.crons.append(cr)
        return cr

    cron = cron_of(spec, minute)
    cron.last_schedule[:] = sched - 4 * 3600
    for k in (3, 2, 1):
        _add_job_run(c, cron, spec, sched - k * 3600, [(int(c.rng.integers(8, 16)),
                                                        "Completed")], [])
    job, pods = _add_job_run(c, cron, spec, sched, [(v, reason) for v in runs], gaps)
    job.failed_at = i_fail
    # confounder: another CronJob whose run failed once and succeeded on retry, nearby
    sched2 = sched + c.rng.uniform(-20, 10) * 60
    cron2 = cron_of(spec2, int(sched2 // 60) % 60)
    cron2.last_schedule[:] = sched2 - 2 * 3600
    _add_job_run(c, cron2, spec2, sched2 - 3600, [(int(c.rng.integers(6, 12)), "Completed")],
                 [])
    job2, _ = _add_job_run(c, cron2, spec2, sched2, [(3, "Error"), (7, "Completed")], [1])
    labels = _ksm(c, namespace=job.namespace, job_name=job.name, condition="true")
    return _Outcome(
        r.alert, "warning", labels, 1.0,
        truth_labels={"namespace": job.namespace, "job_name": job.name},
        truth_names=[job.name, cron.name, *(p.name for p in pods)],
        notes=[
            f"naive: the alert's job_name ({job.name}) names the failed Job; beware its job "
            f"label (kube-state-metrics) and pod label (the kube-state-metrics pod "
            f"{c.ksm_pod})",
            f"injected: run {job.name} of CronJob {cron.name}: 4 pods each end {reason} "
            "(backoffLimit 3) -> Failed; the 3 previous hourly runs completed",
            f"confounders: {job2.name} of {cron2.name} had a failed pod but completed on retry"],
        avoid_pods={p.name for p in pods})


_BUILDERS: dict[str, Callable[[_Case], _Outcome]] = {
    "disk_filling": _k_disk_filling, "inodes": _k_inodes, "crashloop": _k_crashloop,
    "rollout_stuck": _k_rollout_stuck, "node_not_ready": _k_node_not_ready,
    "target_down": _k_target_down, "cpu_throttling": _k_cpu_throttling,
    "node_memory": _k_node_memory, "job_failed": _k_job_failed}


def _confound(c: _Case, out: _Outcome) -> list[str]:
    """Unrelated noise near the alert: one restart, one CPU spike, one node load blip."""
    notes = []
    pods = [p for p in c.pods if p.name not in out.avoid_pods and p.owner_kind == "ReplicaSet"
            and p.alive.all() and (p.ctrs[0].run >= 0).all()]
    if pods:
        p = pods[int(c.rng.integers(len(pods)))]
        i = c.at(c.alert_ts - c.rng.uniform(10, 100) * 60)
        c.restart(p.ctrs[0], i, "Error")
        notes.append(f"{p.name} restarted once (Error) {(c.alert_ts - c.t[i]) / 60:.0f} min "
                     "before the alert")
        pods.remove(p)
    if pods:
        p = pods[int(c.rng.integers(len(pods)))]
        t0 = c.alert_ts + c.rng.uniform(-1200, 300)
        bump = np.clip(1 - np.abs(c.t - t0) / c.rng.uniform(240, 450), 0, 1)
        p.ctrs[0].cpu = p.ctrs[0].cpu * (1 + 1.5 * bump)
        notes.append(f"{p.name} has a CPU spike at alert{(t0 - c.alert_ts) / 60:+.0f} min")
    nodes = [n for n in c.nodes if n.name not in out.avoid_nodes]
    if nodes:
        node = nodes[int(c.rng.integers(len(nodes)))]
        t0 = c.alert_ts + c.rng.uniform(-900, 120)
        node.extra_load = node.extra_load + 1.5 * node.cpus * np.clip(
            1 - np.abs(c.t - t0) / 300, 0, 1)
        notes.append(f"{node.name} has a load blip near the alert")
    return notes


# --- the public interface --------------------------------------------------------------------


@dataclass
class AlertCase:
    """One incident: the alert as Alertmanager delivers it, and the series behind it."""

    name: str
    seed: int
    kind: str
    alert: dict[str, Any]
    expr: str
    alert_at: datetime
    truth_labels: dict[str, str]
    truth_names: list[str]
    families: list[MetricFamily]
    notes: list[str]


def generate_case(seed: int, *, prefix: str, anchor: datetime, spread: timedelta,
                  kind: str | None = None) -> AlertCase:
    """Case `seed` (kind KINDS[seed % len(KINDS)] unless given), alerting at a time drawn from
    [anchor, anchor + spread], its resources named with `prefix`."""
    kind = kind or KINDS[seed % len(KINDS)]
    if kind not in _BUILDERS:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    if anchor.tzinfo is None:
        raise ValueError("anchor must be timezone-aware")
    pick = np.random.default_rng([seed, zlib.crc32(prefix.encode()), 1])
    alert_ts = int(anchor.timestamp() + pick.uniform(0, max(spread.total_seconds(), 0.0)))
    c = _Case(seed, prefix, alert_ts)
    out = _BUILDERS[kind](c)
    extra = _confound(c, out)
    families = _render(c)
    r = rule(out.alertname, out.severity)
    labels = dict(sorted({**out.labels, **r.labels, "alertname": r.alert}.items()))
    alert_at = datetime.fromtimestamp(alert_ts, tz=UTC)
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": {k: render_template(v, out.labels, out.value)
                        for k, v in sorted(r.annotations.items())},
        "startsAt": alert_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": f"{GENERATOR_BASE}/graph?g0.expr={urllib.parse.quote_plus(r.expr)}"
                        "&g0.tab=1",
        "fingerprint": fingerprint(labels),
    }
    notes = [*out.notes, f"truth: {out.truth_labels}",
             "noise: " + "; ".join(extra) if extra else "noise: none"]
    return AlertCase(name=f"{prefix}{kind}-{seed}", seed=seed, kind=kind, alert=alert,
                     expr=r.expr, alert_at=alert_at, truth_labels=dict(out.truth_labels),
                     truth_names=list(out.truth_names), families=families, notes=notes)


def merge_families(cases: Iterable[AlertCase]) -> list[MetricFamily]:
    """One family per metric name across `cases` (a series given twice is an error: the
    cases' prefixes collide)."""
    heads: dict[str, MetricFamily] = {}
    samples: dict[str, list[tuple[dict[str, str], Sequence[tuple[float, float]]]]] = {}
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    for case in cases:
        for fam in case.families:
            heads.setdefault(fam.name, fam)
            into = samples.setdefault(fam.name, [])
            for labels, points in fam.samples:
                key = (fam.name, frozenset(labels.items()))
                if key in seen:
                    raise ValueError(f"series {fam.name}{labels} in two cases (case "
                                     f"{case.name}): give the cases distinct prefixes")
                seen.add(key)
                into.append((labels, points))
    return [MetricFamily(name=name, type=head.type, help=head.help, samples=samples[name])
            for name, head in heads.items()]


# --- self-check ------------------------------------------------------------------------------


def _query(client: Any, expr: str, ts: float) -> list[dict[str, Any]]:
    resp = client.get("/api/v1/query", params={"query": expr, "time": f"{ts:.3f}"})
    resp.raise_for_status()
    return list(resp.json()["data"]["result"])


def _query_range(client: Any, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    resp = client.get("/api/v1/query_range", params={
        "query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(STEP)})
    resp.raise_for_status()
    return list(resp.json()["data"]["result"])


def _matches(series: Mapping[str, str], want: Mapping[str, str]) -> bool:
    return all(series.get(k) == v for k, v in want.items())


def _check(n_cases: int, first: int = 0) -> int:
    import httpx

    anchor = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=30)
    began = time.perf_counter()
    cases = []
    if n_cases < len(KINDS):
        print(f"note: {n_cases} cases cover only {n_cases} of the {len(KINDS)} kinds")
    for i in range(first, first + n_cases):
        t0 = time.perf_counter()
        cases.append(generate_case(i, prefix=f"c{i:02d}-", anchor=anchor,
                                   spread=timedelta(hours=4), kind=KINDS[i % len(KINDS)]))
        took = time.perf_counter() - t0
        if took > 1.0:
            print(f"warning: {cases[-1].name} took {took:.2f}s to generate")
    gen = time.perf_counter() - began
    prints = [c.alert["fingerprint"] for c in cases]
    assert len(set(prints)) == len(prints), "two cases share an alert fingerprint"
    families = merge_families(cases)
    n_series = sum(len(f.samples) for f in families)
    n_points = sum(len(p) for f in families for _, p in f.samples)
    text = openmetrics(families)
    print(f"generated {n_cases} cases in {gen:.2f}s ({gen / n_cases:.2f}s each): "
          f"{n_series} series, {n_points} samples, {len(text) / 1e6:.0f} MB OpenMetrics")
    rows, failures = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with running_prometheus(Path(tmp), text, max_block_duration="240h",
                                ready_timeout=60) as url, httpx.Client(base_url=url,
                                                                       timeout=120) as client:
            print(f"backfilled and started Prometheus in {time.perf_counter() - t0:.1f}s")
            for case in cases:
                r = rule(case.alert["labels"]["alertname"], case.alert["labels"]["severity"])
                want = {k: v for k, v in case.alert["labels"].items()
                        if k not in ("alertname", *r.labels)}
                at = case.alert_at.timestamp()
                onset = at - r.for_s
                fired = [s for s in _query(client, case.expr, at) if _matches(s["metric"], want)]
                before = [s for s in _query(client, case.expr, onset - 3600)
                          if _matches(s["metric"], want)]
                ranged = [s for s in _query_range(client, case.expr, onset - 3600, at)
                          if _matches(s["metric"], want)]
                lag = math.nan
                if ranged:
                    stamps = {float(ts) for ts, _ in ranged[0]["values"]}
                    since = at
                    while since - STEP in stamps:
                        since -= STEP
                    lag = onset - since if at in stamps else math.nan
                sel = ",".join(f'{k}="{v}"' for k, v in case.truth_labels.items())
                truth = _query(client, f"count({{{sel}}})", at)
                names = {v for f in case.families for labels, _ in f.samples
                         for v in labels.values()}
                named = all(nm in names for nm in case.truth_names)
                ok = bool(fired) and not before and 0 <= lag <= 180 and bool(truth) and named
                failures += not ok
                value = float(fired[0]["value"][1]) if fired else math.nan
                rows.append((case.name, f"{r.alert}/{r.labels['severity']}",
                             f"{len(fired)} ({value:.4g})", str(len(before)),
                             "-" if math.isnan(lag) else f"{lag:.0f}s",
                             truth[0]["value"][1] if truth else "0",
                             "yes" if named else "NO", "ok" if ok else "FAIL",
                             ", ".join(case.truth_names[:2])))
    head = ("case", "alert", "@alert (value)", "1h before", "pending lag", "truth series",
            "names in data", "", "truth")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    for row in (head, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())
    print(f"{len(rows) - failures}/{len(rows)} cases fire from their data "
          f"({time.perf_counter() - began:.1f}s)")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--check", action="store_true",
                        help="backfill every kind into a real Prometheus and evaluate the rules")
    parser.add_argument("--cases", type=int, default=2 * len(KINDS))
    parser.add_argument("--first", type=int, default=0, help="seed of the first case")
    parser.add_argument("--show", type=int, default=None, help="print case N's alert and notes")
    args = parser.parse_args(argv)
    if args.show is not None:
        import json

        anchor = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0)
        case = generate_case(args.show, prefix="", anchor=anchor, spread=timedelta(0))
        print(json.dumps(case.alert, indent=2))
        print("truth:", case.truth_labels, case.truth_names)
        print("\n".join(case.notes))
        return 0
    if args.check:
        return _check(max(args.cases, 1), args.first)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
