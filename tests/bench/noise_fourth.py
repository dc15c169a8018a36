"""Fourth, independent evaluation-case generator for alert-noise correlation.

What this module owns: a seeded simulation of a Kubernetes cluster monitored by
kube-prometheus-stack (release name ``kube-prometheus-stack`` in namespace ``monitoring``),
and the stream of Prometheus/Alertmanager alert *episodes* its default rules would fire
over a few hours, each episode labelled with ground truth: the real incident that caused
it (``truth``) or the kind of noise it is (``noise``).

Provenance: written from the public rule definitions of kube-prometheus / kubernetes-mixin /
node-mixin / the etcd mixin (rule names, severities, ``for:`` durations and the labels each
expression keeps) and from how Kubernetes behaves, WITHOUT reading the correlation method
this judges nor the other generators or the scorer in this directory.

Modelling notes (why the streams look the way they do):

* An alert fires ``for:`` after its condition becomes true, at the next rule evaluation
  (30 s interval), and resolves at the first evaluation after the condition clears.
  Conditions shorter than ``for:`` never fire.  Symptoms therefore trail their cause by
  several minutes and spread out in time.
* Labels are what the expression keeps when scraped by kube-prometheus-stack: kube-state-
  metrics alerts carry the KSM scrape target (``container``/``endpoint``/``instance``/
  ``pod``/``service``) plus the object's ``namespace`` (``honorLabels``); cluster-scoped
  objects (nodes, PVs) therefore carry ``namespace="monitoring"``; aggregated rules
  (``KubeCPUOvercommit``, ``KubeVersionMismatch``...) carry no namespace at all.
* ``InfoInhibitor`` is derived from the other alerts exactly as its expression says: per
  namespace, an info alert (pending or firing) with no warning/critical firing there.
* Identical label sets cannot fire twice at once in Prometheus; overlapping episodes of
  the same label set are merged and keep the attribution of the first one.
"""

from __future__ import annotations

import argparse
import math
import random
from collections import Counter
from dataclasses import dataclass, field

# --------------------------------------------------------------------------------------
# Public interface
# --------------------------------------------------------------------------------------


@dataclass
class StreamAlert:
    labels: dict[str, str]
    starts_at: float
    ends_at: float | None
    truth: str | None
    noise: str | None


@dataclass
class Stream:
    seed: int
    duration_s: float
    alerts: list[StreamAlert]
    incidents: dict[str, str]
    pods: dict[str, tuple[str, str, str]]
    claims: dict[str, tuple[str, ...]]


# --------------------------------------------------------------------------------------
# Constants of the simulated monitoring stack
# --------------------------------------------------------------------------------------

MIN = 60.0
HOUR = 3600.0
EVAL_S = 30.0  # kube-prometheus-stack default evaluationInterval

REL = "kube-prometheus-stack"
MON = "monitoring"
KSM_SVC = f"{REL}-kube-state-metrics"
NE_SVC = f"{REL}-prometheus-node-exporter"
KUBELET_SVC = f"{REL}-kubelet"
ETCD_SVC = f"{REL}-kube-etcd"
PROM_JOB = f"{REL}-prometheus"
AM_JOB = f"{REL}-alertmanager"
PROM_STS = f"prometheus-{REL}-prometheus"
AM_STS = f"alertmanager-{REL}-alertmanager"

# Alphabet Kubernetes uses for generated name suffixes (no vowels, no confusable digits).
K8S_ALNUM = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True)
class Cause:
    """Who an alert episode belongs to: a real incident id or a noise kind."""

    truth: str | None = None
    noise: str | None = None


def plus(t: float | None, d: float) -> float | None:
    """Shift an end time that may be open (None = still true at stream end)."""
    return None if t is None else t + d


# --------------------------------------------------------------------------------------
# Cluster model
# --------------------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    ip: str
    role: str  # "control-plane" | "worker"
    pod_cidr: int  # third octet of the node's 10.244.x.0/24 pod range


@dataclass
class Workload:
    namespace: str
    kind: str  # Deployment | StatefulSet | DaemonSet | CronJob
    name: str
    container: str
    replicas: int = 1
    pods: list[str] = field(default_factory=list)  # pod names (current generation)
    rs_hash: str = ""
    service: str | None = None  # scraped by a ServiceMonitor: TargetDown job/service
    hpa: tuple[int, int] | None = None  # (minReplicas, maxReplicas)
    claim_templates: list[str] = field(default_factory=list)  # StatefulSet only
    pvc: str | None = None  # a Deployment's mounted claim
    deps: list[str] = field(default_factory=list)  # keys of workloads it calls
    period_min: int = 0  # CronJob schedule period
    local_pv: bool = False  # StatefulSet on node-local volumes: pinned to its node
    system: bool = False  # platform component (kube-system, monitoring, ...)
    job: str | None = None  # scrape job label when it differs from the Service name

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def scrape_job(self) -> str | None:
        return self.job or self.service


# Application namespace templates: (kind, name, replicas, options).
# deps use "db:<name>" for data-tier StatefulSets/Deployments and "app:<name>" for services.
APP_TEMPLATES: dict[str, list[tuple[str, str, int, dict]]] = {
    "checkout": [
        ("Deployment", "checkout-api", 3, {"hpa": (3, 10), "svc": 1, "deps": ["db:pgbouncer",
                                                                         "db:redis"]}),
        ("Deployment", "cart-worker", 2, {"deps": ["db:kafka", "db:redis"]}),
        ("CronJob", "abandoned-cart-sweeper", 0, {"period": 30}),
    ],
    "payments": [
        ("Deployment", "payments-api", 3, {"hpa": (3, 8), "svc": 1, "deps": ["db:pgbouncer"]}),
        ("Deployment", "fraud-scorer", 2, {"svc": 1, "deps": ["db:redis"]}),
        ("CronJob", "settlement-export", 0, {"period": 60}),
    ],
    "catalog": [
        ("Deployment", "catalog-api", 3, {"hpa": (2, 8), "svc": 1, "deps": ["db:pgbouncer"]}),
        ("Deployment", "image-resizer", 1, {"pvc": "image-cache"}),
        ("CronJob", "catalog-reindex", 0, {"period": 30}),
    ],
    "search": [
        ("StatefulSet", "opensearch", 3, {"claims": ["data"], "svc": 1}),
        ("Deployment", "search-api", 3, {"svc": 1, "deps": ["app:opensearch"]}),
        ("CronJob", "index-snapshot", 0, {"period": 60}),
    ],
    "identity": [
        ("Deployment", "auth-api", 3, {"hpa": (3, 6), "svc": 1, "deps": ["db:pgbouncer",
                                                                    "db:redis"]}),
        ("Deployment", "session-gateway", 2, {"deps": ["app:auth-api"]}),
        ("CronJob", "token-janitor", 0, {"period": 20}),
    ],
    "orders": [
        ("Deployment", "orders-api", 4, {"hpa": (4, 12), "svc": 1, "deps": ["db:pgbouncer",
                                                                       "db:kafka"]}),
        ("Deployment", "orders-consumer", 3, {"deps": ["db:kafka", "db:pgbouncer"]}),
        ("CronJob", "orders-archiver", 0, {"period": 60}),
    ],
    "notifications": [
        ("Deployment", "notifier", 2, {"deps": ["db:kafka"]}),
        ("Deployment", "email-sender", 2, {"svc": 1, "deps": ["db:redis"]}),
        ("CronJob", "digest-mailer", 0, {"period": 60}),
    ],
    "analytics": [
        ("StatefulSet", "clickhouse", 1, {"claims": ["data"], "svc": 1}),
        ("Deployment", "events-collector", 3, {"hpa": (3, 9), "svc": 1,
                                               "deps": ["db:kafka", "app:clickhouse"]}),
        ("CronJob", "hourly-rollup", 0, {"period": 30}),
    ],
    "frontend": [
        ("Deployment", "web", 4, {"hpa": (4, 16), "svc": 1, "deps": ["app:bff"]}),
        ("Deployment", "bff", 3, {"hpa": (3, 10), "svc": 1,
                                  "deps": ["app:checkout-api", "app:catalog-api",
                                           "app:auth-api", "app:orders-api"]}),
    ],
    "inventory": [
        ("Deployment", "inventory-api", 3, {"svc": 1, "deps": ["db:pgbouncer"]}),
        ("Deployment", "stock-sync", 1, {"pvc": "stock-sync-spool", "deps": ["db:kafka"]}),
        ("CronJob", "stock-reconcile", 0, {"period": 30}),
    ],
    "shipping": [
        ("Deployment", "shipping-api", 2, {"svc": 1, "deps": ["db:pgbouncer",
                                                              "app:orders-api"]}),
        ("Deployment", "label-renderer", 2, {}),
        ("CronJob", "carrier-sync", 0, {"period": 20}),
    ],
}

CLUSTER_PREFIXES = ["lon1-prod", "fra2-prod", "ams1-live", "sto1-prod", "dub3-prod"]
DATA_NAMESPACES = ["data", "databases", "datastores"]


class Cluster:
    """Nodes, workloads and the pod/claim registry handed back in the Stream."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.nodes: list[Node] = []
        self.workloads: dict[str, Workload] = {}
        self.pods: dict[str, tuple[str, str, str]] = {}
        self.pod_ips: dict[str, str] = {}
        self.uids: dict[str, str] = {}
        self.quotas: dict[str, str] = {}  # namespace -> ResourceQuota name
        self.app_namespaces: list[str] = []
        self.data_ns = ""
        self._ip_next: dict[str, int] = {}
        self.epoch0 = 0  # unix time of stream start, for CronJob job names

    # -- naming helpers ----------------------------------------------------------------

    def suffix(self, n: int = 5) -> str:
        return "".join(self.rng.choice(K8S_ALNUM) for _ in range(n))

    def rs_hash(self) -> str:
        return self.suffix(self.rng.choice([9, 10]))

    def uid(self, pod_key: str) -> str:
        if pod_key not in self.uids:
            h = f"{self.rng.getrandbits(128):032x}"
            self.uids[pod_key] = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
        return self.uids[pod_key]

    @property
    def workers(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "worker"]

    @property
    def control_plane(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "control-plane"]

    @property
    def namespaces(self) -> set[str]:
        return {w.namespace for w in self.workloads.values() if w.pods}

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    # -- pods ----------------------------------------------------------------------------

    def register(self, ns: str, pod: str, node: str, kind: str, owner: str) -> str:
        key = f"{ns}/{pod}"
        self.pods[key] = (node, kind, owner)
        if node:
            n = self.node(node) if any(x.name == node for x in self.nodes) else None
            cidr = n.pod_cidr if n else 200
            i = self._ip_next.get(node, 2)
            self._ip_next[node] = i + 1
            self.pod_ips[key] = f"10.244.{cidr}.{i}"
        return key

    def spawn(self, wl: Workload, node: str, *, ordinal: int | None = None,
              rs_hash: str | None = None) -> str:
        """Create one pod of a workload with a realistic generated name."""
        if wl.kind == "Deployment":
            name = f"{wl.name}-{rs_hash or wl.rs_hash}-{self.suffix()}"
        elif wl.kind == "StatefulSet":
            name = f"{wl.name}-{ordinal if ordinal is not None else len(wl.pods)}"
        elif wl.kind == "DaemonSet":
            name = f"{wl.name}-{self.suffix()}"
        else:
            raise ValueError(wl.kind)
        self.register(wl.namespace, name, node, wl.kind, wl.name)
        return name

    def pods_on(self, node: str) -> list[tuple[str, Workload]]:
        out = []
        for wl in self.workloads.values():
            for p in wl.pods:
                if self.pods[f"{wl.namespace}/{p}"][0] == node:
                    out.append((f"{wl.namespace}/{p}", wl))
        return out

    def node_of(self, pod_key: str) -> Node:
        return self.node(self.pods[pod_key][0])

    def ds_pod_on(self, wl: Workload, node: str) -> str:
        return next(p for p in wl.pods if self.pods[f"{wl.namespace}/{p}"][0] == node)

    def dependents(self, wl: Workload) -> list[Workload]:
        return [w for w in self.workloads.values() if wl.key in w.deps]

    def spread(self, n: int) -> list[str]:
        """Pick worker nodes for n replicas, spreading like the default topology spread."""
        workers = [w.name for w in self.workers]
        self.rng.shuffle(workers)
        return [workers[i % len(workers)] for i in range(n)]

    # -- claims --------------------------------------------------------------------------

    def claims(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for wl in self.workloads.values():
            if wl.kind == "StatefulSet":
                for tmpl in wl.claim_templates:
                    for i in range(wl.replicas):
                        out[f"{wl.namespace}/{tmpl}-{wl.name}-{i}"] = (
                            f"{wl.namespace}/{wl.name}-{i}",)
            elif wl.pvc:
                users = tuple(sorted(k for k, v in self.pods.items()
                                     if v[1] == "Deployment" and v[2] == wl.name
                                     and k.startswith(f"{wl.namespace}/")))
                out[f"{wl.namespace}/{wl.pvc}"] = users
        return out

    def claim_of(self, wl: Workload, pod: str) -> str:
        if wl.kind == "StatefulSet":
            return f"{wl.claim_templates[0]}-{pod}"
        assert wl.pvc
        return wl.pvc


def build_cluster(rng: random.Random) -> Cluster:
    cl = Cluster(rng)
    cl.epoch0 = 1_700_000_000 + rng.randrange(0, 40_000_000) // 60 * 60
    prefix = rng.choice(CLUSTER_PREFIXES)
    octet = rng.choice([20, 40, 96, 112])
    zones = "abc"
    n_workers = rng.randint(4, 9)
    cidr = 0
    for i in range(3):
        z = zones[i % 3]
        cl.nodes.append(Node(f"{prefix}-cp-{i + 1:02d}{z}",
                             f"10.{octet}.{i % 3}.{rng.randint(10, 250)}",
                             "control-plane", cidr))
        cidr += 1
    for i in range(n_workers):
        z = zones[i % 3]
        cl.nodes.append(Node(f"{prefix}-wk-{i + 1:02d}{z}",
                             f"10.{octet}.{16 + i % 3}.{rng.randint(10, 250)}",
                             "worker", cidr))
        cidr += 1

    def add(wl: Workload, *, all_nodes: bool = False) -> Workload:
        cl.workloads[wl.key] = wl
        if wl.kind == "Deployment":
            wl.rs_hash = cl.rs_hash()
            for node in cl.spread(wl.replicas):
                wl.pods.append(cl.spawn(wl, node))
        elif wl.kind == "StatefulSet":
            for i, node in enumerate(cl.spread(wl.replicas)):
                wl.pods.append(cl.spawn(wl, node, ordinal=i))
        elif wl.kind == "DaemonSet":
            targets = cl.nodes if all_nodes else cl.workers
            wl.replicas = len(targets)
            for n in targets:
                wl.pods.append(cl.spawn(wl, n.name))
        return wl

    # kube-system: static control-plane pods, DNS, CNI, proxies.
    for n in cl.control_plane:
        for comp in ("kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler"):
            cl.register("kube-system", f"{comp}-{n.name}", n.name, "Node", n.name)
    add(Workload("kube-system", "Deployment", "coredns", "coredns", 2,
                 service=f"{REL}-coredns", job="coredns", system=True))
    add(Workload("kube-system", "Deployment", "metrics-server", "metrics-server", 1,
                 system=True))
    add(Workload("kube-system", "DaemonSet", "kube-proxy", "kube-proxy", system=True),
        all_nodes=True)
    cni = rng.choice(["calico-node", "cilium"])
    add(Workload("kube-system", "DaemonSet", cni, cni.split("-")[0], system=True),
        all_nodes=True)
    add(Workload("kube-system", "DaemonSet", "ebs-csi-node", "ebs-plugin", system=True))

    # monitoring: the kube-prometheus-stack itself.
    add(Workload(MON, "Deployment", KSM_SVC, "kube-state-metrics", 1, service=KSM_SVC,
                 job="kube-state-metrics", system=True))
    add(Workload(MON, "Deployment", f"{REL}-operator", "kube-prometheus-stack", 1,
                 service=f"{REL}-operator", system=True))
    add(Workload(MON, "Deployment", f"{REL}-grafana", "grafana", 1, system=True))
    add(Workload(MON, "DaemonSet", NE_SVC, "node-exporter", service=NE_SVC,
                 job="node-exporter", system=True), all_nodes=True)
    add(Workload(MON, "StatefulSet", PROM_STS, "prometheus", rng.choice([1, 2]),
                 service=PROM_JOB, claim_templates=[f"{PROM_STS}-db"], system=True))
    add(Workload(MON, "StatefulSet", AM_STS, "alertmanager", rng.choice([2, 3]),
                 service=AM_JOB, claim_templates=[f"{AM_STS}-db"], system=True))

    # Optional platform namespaces.
    if rng.random() < 0.8:
        add(Workload("ingress-nginx", "Deployment", "ingress-nginx-controller", "controller",
                     rng.choice([2, 3]), service="ingress-nginx-controller-metrics",
                     hpa=(2, 6), system=True))
    if rng.random() < 0.7:
        add(Workload("logging", "DaemonSet", "fluent-bit", "fluent-bit",
                     service="fluent-bit", system=True), all_nodes=True)
        if rng.random() < 0.5:
            add(Workload("logging", "StatefulSet", "loki", "loki", 1, service="loki",
                         claim_templates=["storage"], system=True))
    if rng.random() < 0.6:
        for name in ("cert-manager", "cert-manager-cainjector", "cert-manager-webhook"):
            add(Workload("cert-manager", "Deployment", name, name.replace("cert-manager-", ""),
                         1, system=True))

    # Data tier, shared by application namespaces.
    cl.data_ns = rng.choice(DATA_NAMESPACES)
    d = cl.data_ns
    pg_local = rng.random() < 0.3
    add(Workload(d, "StatefulSet", "postgres", "postgres", rng.choice([1, 1, 2]),
                 service="postgres-exporter", claim_templates=["pgdata"], local_pv=pg_local))
    add(Workload(d, "Deployment", "pgbouncer", "pgbouncer", 2, deps=[f"{d}/postgres"]))
    add(Workload(d, "StatefulSet", "redis", "redis", rng.choice([1, 3]),
                 service="redis-exporter", claim_templates=["redis-data"]))
    add(Workload(d, "StatefulSet", "kafka", "kafka", 3, service="kafka-exporter",
                 claim_templates=["data"], local_pv=rng.random() < 0.3))

    # Application namespaces.
    names = rng.sample(sorted(APP_TEMPLATES), rng.randint(4, 8))
    cl.app_namespaces = [*names, d]
    app_index: dict[str, str] = {}
    pending_deps: list[tuple[Workload, list[str]]] = []
    for ns in names:
        for kind, name, replicas, opt in APP_TEMPLATES[ns]:
            if kind == "CronJob":
                wl = Workload(ns, "CronJob", name, name.split("-")[0],
                              period_min=opt["period"])
                cl.workloads[wl.key] = wl
                continue
            r = replicas + rng.choice([0, 0, 1]) if replicas > 1 else replicas
            wl = Workload(ns, kind, name, name, r,
                          service=name if opt.get("svc") else None,
                          hpa=opt.get("hpa"), pvc=opt.get("pvc"),
                          claim_templates=list(opt.get("claims", [])),
                          local_pv=kind == "StatefulSet" and rng.random() < 0.3)
            if wl.hpa:
                wl.replicas = max(wl.replicas, wl.hpa[0])
            add(wl)
            app_index[name] = wl.key
            pending_deps.append((wl, opt.get("deps", [])))
        if rng.random() < 0.6:
            cl.quotas[ns] = rng.choice(["compute-resources", f"{ns}-quota", "team-quota"])
    for wl, deps in pending_deps:
        for dep in deps:
            kind, name = dep.split(":")
            key = f"{d}/{name}" if kind == "db" else app_index.get(name)
            if key and key in cl.workloads:
                wl.deps.append(key)
    return cl


# --------------------------------------------------------------------------------------
# Alert recording and rule-shaped emitters
# --------------------------------------------------------------------------------------


class Sim:
    """One seeded simulation: cluster + recorder + the rule emitters both sides share."""

    def __init__(self, seed: int):
        self.seed = seed
        self.rng = random.Random(seed)
        self.duration = self.rng.choice([4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0]) * HOUR
        self.cl = build_cluster(self.rng)
        self.alerts: list[StreamAlert] = []
        self.pending_from: dict[int, float] = {}  # id(alert) -> when it went pending
        self.incidents: dict[str, str] = {}
        self.inc_ns: dict[str, str] = {}  # primary namespace per incident
        self.inc_t0: dict[str, float] = {}
        self.inc_kind: dict[str, str] = {}
        self.busy: dict[str, list[tuple[float, float]]] = {}
        ksm_pod = self.cl.workloads[f"{MON}/{KSM_SVC}"].pods[0]
        self.ksm_target = {
            "container": "kube-state-metrics", "endpoint": "http",
            "instance": f"{self.cl.pod_ips[f'{MON}/{ksm_pod}']}:8080",
            "job": "kube-state-metrics", "pod": ksm_pod, "service": KSM_SVC,
        }

    # -- time helpers ----------------------------------------------------------------

    def u(self, a: float, b: float) -> float:
        return self.rng.uniform(a, b)

    def um(self, a: float, b: float) -> float:
        """Uniform duration in minutes, returned in seconds."""
        return self.rng.uniform(a, b) * MIN

    # -- reservations keep two incidents from driving the same object at once ---------

    def free(self, key: str, start: float, end: float | None) -> bool:
        e = self.duration * 2 if end is None else end
        return all(e <= s or start >= f for s, f in self.busy.get(key, []))

    def reserve(self, key: str, start: float, end: float | None) -> None:
        e = self.duration * 2 if end is None else end
        self.busy.setdefault(key, []).append((start, e))

    # -- the one place alert episodes are created ---------------------------------------

    def add(self, alertname: str, severity: str, labels: dict[str, str],
            cond_start: float, cond_end: float | None, for_s: float, cause: Cause,
            ) -> StreamAlert | None:
        """Record the episode a rule produces for a condition true on [start, end)."""
        fire = cond_start + for_s + self.rng.uniform(0, EVAL_S)
        if cond_end is not None and cond_end <= cond_start + for_s:
            return None  # pending only, never fired
        if fire >= self.duration:
            return None
        end = None if cond_end is None else cond_end + self.rng.uniform(0, EVAL_S)
        if end is not None and end >= self.duration:
            end = None
        full = {"alertname": alertname, **labels, "severity": severity}
        a = StreamAlert(full, max(0.0, round(fire, 1)),
                        None if end is None else round(end, 1), cause.truth, cause.noise)
        if a.ends_at is not None and a.ends_at <= a.starts_at:
            return None
        self.alerts.append(a)
        self.pending_from[id(a)] = max(0.0, cond_start)
        return a

    # -- label builders -----------------------------------------------------------------

    def ksm(self, ns: str, **extra: str) -> dict[str, str]:
        """Labels of a kube-state-metrics series scraped with honorLabels."""
        return {**self.ksm_target, "namespace": ns, **extra}

    def kubelet(self, node: Node, **extra: str) -> dict[str, str]:
        return {"endpoint": "https-metrics", "instance": f"{node.ip}:10250", "job": "kubelet",
                "metrics_path": "/metrics", "namespace": "kube-system", "node": node.name,
                "service": KUBELET_SVC, **extra}

    def node_exporter(self, node: Node, **extra: str) -> dict[str, str]:
        ds = self.cl.workloads[f"{MON}/{NE_SVC}"]
        return {"container": "node-exporter", "endpoint": "http-metrics",
                "instance": f"{node.ip}:9100", "job": "node-exporter", "namespace": MON,
                "pod": self.cl.ds_pod_on(ds, node.name), "service": NE_SVC, **extra}

    def etcd(self, node: Node) -> dict[str, str]:
        return {"endpoint": "http-metrics", "instance": f"{node.ip}:2381", "job": "kube-etcd",
                "namespace": "kube-system", "pod": f"etcd-{node.name}", "service": ETCD_SVC}

    def prom_target(self, pod: str) -> dict[str, str]:
        return {"container": "prometheus", "endpoint": "http-web",
                "instance": f"{self.cl.pod_ips[f'{MON}/{pod}']}:9090", "job": PROM_JOB,
                "namespace": MON, "pod": pod, "service": PROM_JOB}

    def am_target(self, pod: str) -> dict[str, str]:
        return {"container": "alertmanager", "endpoint": "http-web",
                "instance": f"{self.cl.pod_ips[f'{MON}/{pod}']}:9093", "job": AM_JOB,
                "namespace": MON, "pod": pod, "service": AM_JOB}

    # -- kubernetes-mixin rules ---------------------------------------------------------

    def crashloop(self, pod_key: str, container: str, s: float, e: float | None,
                  c: Cause) -> None:
        # max_over_time(...[5m]) keeps the condition true 5 minutes past the last backoff.
        ns, pod = pod_key.split("/", 1)
        self.add("KubePodCrashLooping", "warning",
                 self.ksm(ns, pod=pod, container=container, reason="CrashLoopBackOff",
                          uid=self.cl.uid(pod_key)),
                 s, plus(e, 5 * MIN), 15 * MIN, c)

    def container_waiting(self, pod_key: str, container: str, reason: str, s: float,
                          e: float | None, c: Cause) -> None:
        ns, pod = pod_key.split("/", 1)
        self.add("KubeContainerWaiting", "warning",
                 self.ksm(ns, pod=pod, container=container, reason=reason,
                          uid=self.cl.uid(pod_key)), s, e, HOUR, c)

    def not_ready(self, pod_key: str, s: float, e: float | None, c: Cause) -> None:
        ns, pod = pod_key.split("/", 1)
        self.add("KubePodNotReady", "warning",
                 {"job": "kube-state-metrics", "namespace": ns, "pod": pod}, s, e, 15 * MIN, c)

    def replicas_mismatch(self, wl: Workload, s: float, e: float | None, c: Cause) -> None:
        if wl.kind == "Deployment":
            self.add("KubeDeploymentReplicasMismatch", "warning",
                     self.ksm(wl.namespace, deployment=wl.name), s, e, 15 * MIN, c)
        elif wl.kind == "StatefulSet":
            self.add("KubeStatefulSetReplicasMismatch", "warning",
                     self.ksm(wl.namespace, statefulset=wl.name), s, e, 15 * MIN, c)
        elif wl.kind == "DaemonSet":
            self.ds_stuck(wl, s, e, c)

    def rollout_stuck(self, wl: Workload, s: float, e: float | None, c: Cause) -> None:
        self.add("KubeDeploymentRolloutStuck", "warning",
                 self.ksm(wl.namespace, deployment=wl.name, condition="Progressing",
                          status="false"), s, e, 15 * MIN, c)

    def ds_stuck(self, wl: Workload, s: float, e: float | None, c: Cause) -> None:
        self.add("KubeDaemonSetRolloutStuck", "warning",
                 self.ksm(wl.namespace, daemonset=wl.name), s, e, 15 * MIN, c)

    def job_failed(self, ns: str, job: str, s: float, e: float | None, c: Cause) -> None:
        self.add("KubeJobFailed", "warning", self.ksm(ns, job_name=job, condition="true"),
                 s, e, 15 * MIN, c)

    def hpa_maxed(self, wl: Workload, s: float, e: float | None, c: Cause) -> None:
        self.add("KubeHpaMaxedOut", "warning",
                 self.ksm(wl.namespace, horizontalpodautoscaler=wl.name), s, e, 15 * MIN, c)

    def hpa_mismatch(self, wl: Workload, s: float, e: float | None, c: Cause) -> None:
        self.add("KubeHpaReplicasMismatch", "warning",
                 self.ksm(wl.namespace, horizontalpodautoscaler=wl.name), s, e, 15 * MIN, c)

    def throttling(self, pod_key: str, container: str, s: float, e: float | None,
                   c: Cause) -> None:
        # sum without (id, metrics_path, name, image, endpoint, job, node) of cadvisor series.
        ns, pod = pod_key.split("/", 1)
        node = self.cl.node_of(pod_key)
        self.add("CPUThrottlingHigh", "info",
                 {"container": container, "instance": f"{node.ip}:10250", "namespace": ns,
                  "pod": pod, "service": KUBELET_SVC}, s, e, 15 * MIN, c)

    def pv_filling(self, wl: Workload, pod: str, severity: str, s: float, e: float | None,
                   c: Cause) -> None:
        node = self.cl.node_of(f"{wl.namespace}/{pod}")
        labels = self.kubelet(node, namespace=wl.namespace,
                              persistentvolumeclaim=self.cl.claim_of(wl, pod))
        for_s = HOUR if severity == "warning" else MIN
        self.add("KubePersistentVolumeFillingUp", severity, labels, s, e, for_s, c)

    def target_down(self, job: str, ns: str, service: str, s: float, e: float | None,
                    c: Cause) -> None:
        self.add("TargetDown", "warning", {"job": job, "namespace": ns, "service": service},
                 s, e, 10 * MIN, c)

    def wl_target_down(self, wl: Workload, down: int, total: int, s: float, e: float | None,
                       c: Cause) -> None:
        """TargetDown needs more than 10% of a job's targets down."""
        if wl.service and wl.scrape_job and total and down / total > 0.10:
            self.target_down(wl.scrape_job, wl.namespace, wl.service, s, e, c)

    def node_ksm(self, alertname: str, severity: str, node: Node, for_s: float, s: float,
                 e: float | None, c: Cause, **extra: str) -> None:
        # Node series have no namespace of their own: the KSM target's namespace stays.
        self.add(alertname, severity, self.ksm(MON, node=node.name, **extra), s, e, for_s, c)

    def node_exp(self, alertname: str, severity: str, node: Node, for_s: float, s: float,
                 e: float | None, c: Cause, **extra: str) -> None:
        self.add(alertname, severity, self.node_exporter(node, **extra), s, e, for_s, c)

    # -- workload helpers ---------------------------------------------------------------

    def pick(self, pred, ns: str | None, start: float, end: float | None) -> Workload | None:
        """A free workload matching pred, preferring namespace ns when given."""
        cands = [w for w in self.cl.workloads.values()
                 if pred(w) and self.free(f"wl:{w.key}", start, end)]
        if ns is not None:
            cands = [w for w in cands if w.namespace == ns]
        return self.rng.choice(cands) if cands else None

    def new_pods(self, wl: Workload, n: int, rs_hash: str | None = None) -> list[str]:
        out = []
        for node in self.cl.spread(n):
            pod = self.cl.spawn(wl, node, rs_hash=rs_hash)
            out.append(f"{wl.namespace}/{pod}")
        return out

    def pod_keys(self, wl: Workload) -> list[str]:
        return [f"{wl.namespace}/{p}" for p in wl.pods]

    def client_cascade(self, clients: list[Workload], s: float, e: float | None,
                       c: Cause, *, allow_early: bool = True) -> None:
        """Callers of a broken dependency fail readiness (or crash) minutes apart."""
        for cw in clients:
            if not self.free(f"wl:{cw.key}", s, e):
                continue
            self.reserve(f"wl:{cw.key}", s, e)
            lag = self.um(0.3, 7)
            ce = plus(e, self.um(0.5, 6))
            if allow_early and e is not None and self.rng.random() < 0.25:
                # A fallback / circuit breaker lets this client recover before the cause.
                early = s + lag + self.um(17, 28)
                if early < e:
                    ce = early
            mode = "crash" if self.rng.random() < 0.35 else "readiness"
            starts = []
            for pk in self.pod_keys(cw):
                ps = s + lag + self.u(0, 90)
                starts.append(ps)
                pe = plus(ce, self.u(0, 60))
                self.not_ready(pk, ps, pe, c)
                if mode == "crash":
                    self.crashloop(pk, cw.container, ps + self.u(20, 80), pe, c)
            if cw.kind in ("Deployment", "StatefulSet"):
                self.replicas_mismatch(cw, min(starts), plus(ce, self.u(20, 90)), c)
            if mode == "crash":
                self.wl_target_down(cw, cw.replicas, cw.replicas, min(starts) + 60, ce, c)

    def new_incident(self, kind: str, desc: str, ns: str, t0: float) -> str:
        iid = f"I{len(self.inc_kind) + 1}"
        self.incidents[iid] = desc
        self.inc_ns[iid] = ns
        self.inc_t0[iid] = t0
        self.inc_kind[iid] = kind
        return iid


# --------------------------------------------------------------------------------------
# Real incidents.  Each returns the incident id, or None when the cluster offers no target.
# --------------------------------------------------------------------------------------


def inc_node_failure(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    cl, rng = sim.cl, sim.rng
    # One node outage at a time: overlapping ones would share DaemonSet alert label sets.
    if not sim.free("nodefail", t0 - 30 * MIN, t0 + 3 * HOUR):
        return None
    cands = [n for n in cl.workers if sim.free(f"node:{n.name}", t0 - 30 * MIN, t0 + 2 * HOUR)]
    if not cands:
        return None
    node = rng.choice(cands)
    fate = rng.choices(["returns", "replaced", "dead"], [0.5, 0.3, 0.2])[0]
    gone = {"returns": t0 + sim.um(22, 95), "replaced": t0 + sim.um(40, 140),
            "dead": None}[fate]
    why = rng.choice(["kernel panic", "EC2 instance-status check failure",
                      "hypervisor host failure", "kubelet/containerd deadlock under OOM"])
    after = {"returns": "rebooted and rejoined", "replaced": "was terminated and replaced",
             "dead": "stayed down"}[fate]
    iid = sim.new_incident("node_failure",
                           f"Worker node {node.name} became unreachable ({why}) and {after}; "
                           "its pods stuck NotReady/Terminating across namespaces", "", t0)
    c = Cause(truth=iid)
    sim.reserve("nodefail", t0 - 30 * MIN, plus(gone, 30 * MIN))
    sim.reserve(f"node:{node.name}", t0 - 30 * MIN, plus(gone, 30 * MIN))
    unreach = t0 + 40  # node-monitor-grace-period

    if rng.random() < 0.3:
        # Heartbeats flapped for a while before the node died for good.
        sim.node_ksm("KubeNodeReadinessFlapping", "warning", node, 15 * MIN,
                     t0 - sim.um(14, 20), t0 + 15 * MIN, c)
    sim.node_ksm("KubeNodeNotReady", "warning", node, 15 * MIN, unreach, plus(gone, 20), c,
                 condition="Ready", status="true")
    sim.node_ksm("KubeNodeUnreachable", "warning", node, 15 * MIN, unreach + 5,
                 plus(gone, 25), c, key="node.kubernetes.io/unreachable",
                 effect="NoSchedule")
    if 1 / len(cl.nodes) > 0.10:
        sim.target_down("kubelet", "kube-system", KUBELET_SVC, t0 + 20, plus(gone, 60), c)
        sim.target_down("node-exporter", MON, NE_SVC, t0 + 25, plus(gone, 70), c)

    capacity_tight = len(cl.workers) <= 5 or rng.random() < 0.3
    for pod_key, wl in cl.pods_on(node.name):
        end_old = plus(gone, sim.u(20, 120))
        if wl.kind == "DaemonSet":
            sim.not_ready(pod_key, unreach, end_old, c)
            sim.ds_stuck(wl, unreach, plus(end_old, 30), c)
        elif wl.kind == "Deployment":
            # Evicted after the 300 s toleration but stuck Terminating: kubelet is gone.
            sim.not_ready(pod_key, unreach, end_old, c)
            if capacity_tight and rng.random() < 0.5:
                relief = plus(gone, sim.um(1, 5))
                pending = cl.register(wl.namespace, f"{wl.name}-{wl.rs_hash}-{cl.suffix()}",
                                      node.name if fate == "returns" else "",
                                      "Deployment", wl.name)
                sim.not_ready(pending, unreach + 300, relief, c)
                sim.replicas_mismatch(wl, unreach, relief, c)
            else:
                other = rng.choice([n.name for n in cl.workers if n.name != node.name])
                cl.register(wl.namespace, f"{wl.name}-{wl.rs_hash}-{cl.suffix()}", other,
                            "Deployment", wl.name)
        elif wl.kind == "StatefulSet":
            # The controller will not recreate the ordinal until the old pod is gone.
            sim.not_ready(pod_key, unreach, end_old, c)
            back = plus(end_old, sim.u(60, 300))
            sim.replicas_mismatch(wl, unreach, back, c)
            if wl.replicas == 1:
                sim.client_cascade(sim.cl.dependents(wl), unreach, back, c)
    return iid


def inc_cp_node_failure(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    cl, rng = sim.cl, sim.rng
    if not (sim.free("nodefail", t0 - 30 * MIN, t0 + 3 * HOUR)
            and sim.free("controlplane", t0 - 30 * MIN, t0 + 3 * HOUR)):
        return None
    node = rng.choice(cl.control_plane)
    fate = rng.choices(["returns", "replaced"], [0.7, 0.3])[0]
    gone = t0 + (sim.um(20, 80) if fate == "returns" else sim.um(45, 130))
    for lock in ("nodefail", "controlplane"):
        sim.reserve(lock, t0 - 30 * MIN, gone + 30 * MIN)
    why = rng.choice(["underlying host retired by the cloud provider",
                      "root volume went read-only", "kernel soft lockup"])
    after = "rebooted and rejoined" if fate == "returns" else "was rebuilt from the ASG"
    iid = sim.new_incident("cp_node_failure", f"Control-plane node {node.name} lost ({why}) "
                           f"and {after}; etcd member and apiserver instance down",
                           "kube-system", t0)
    c = Cause(truth=iid)
    unreach = t0 + 40
    sim.node_ksm("KubeNodeNotReady", "warning", node, 15 * MIN, unreach, gone + 20, c,
                 condition="Ready", status="true")
    sim.node_ksm("KubeNodeUnreachable", "warning", node, 15 * MIN, unreach + 5, gone + 25, c,
                 key="node.kubernetes.io/unreachable", effect="NoSchedule")
    # One of three apiservers / etcd members is a third of their targets.
    sim.target_down("apiserver", "default", "kubernetes", t0 + 15, gone + 60, c)
    sim.target_down("kube-etcd", "kube-system", ETCD_SVC, t0 + 15, gone + 90, c)
    sim.add("etcdMembersDown", "critical",
            {"job": "kube-etcd", "namespace": "kube-system", "service": ETCD_SVC},
            t0 + 10, gone + sim.u(60, 180), 10 * MIN, c)
    if 1 / len(cl.nodes) > 0.10:
        sim.target_down("kubelet", "kube-system", KUBELET_SVC, t0 + 20, gone + 60, c)
        sim.target_down("node-exporter", MON, NE_SVC, t0 + 25, gone + 70, c)
    if rng.random() < 0.5:
        # Clients pinned to the dead apiserver see errors until they reconnect.
        sim.add("KubeAPIErrorBudgetBurn", "critical", {"long": "1h", "short": "5m"},
                t0 + 20, t0 + sim.um(6, 12), 2 * MIN, c)
    for comp in ("kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler"):
        # Mirror pods (owner kind Node) are never evicted: NotReady until the node is back.
        sim.not_ready(f"kube-system/{comp}-{node.name}", unreach, gone + sim.u(30, 150), c)
    for pod_key, wl in cl.pods_on(node.name):
        end_old = gone + sim.u(20, 120)
        sim.not_ready(pod_key, unreach, end_old, c)
        if wl.kind == "DaemonSet":
            sim.ds_stuck(wl, unreach, end_old + 30, c)
    return iid


def _rollout(sim: Sim, wl: Workload, t0: float, t_fix: float | None, c: Cause,
             waiting_reason: str | None) -> None:
    """A Deployment rollout whose new pods never become ready (maxSurge/Unavailable 25%)."""
    r = wl.replicas
    surge, unavailable = math.ceil(r * 0.25), math.floor(r * 0.25)
    new_hash = sim.cl.rs_hash()
    new = sim.new_pods(wl, surge + unavailable, new_hash)
    deleted = plus(t_fix, sim.u(5, 40))
    for pk in new:
        sim.not_ready(pk, t0 + 5, deleted, c)
        if waiting_reason:
            sim.container_waiting(pk, wl.container, waiting_reason, t0 + sim.u(5, 40),
                                  deleted, c)
        else:
            sim.crashloop(pk, wl.container, t0 + sim.u(30, 90), deleted, c)
    # progressDeadlineSeconds=600 before Progressing=False.
    sim.rollout_stuck(wl, t0 + 600, plus(t_fix, 30), c)
    if unavailable:
        # changes(replicas_updated[10m]) == 0 holds ten minutes after the last new pod.
        sim.replicas_mismatch(wl, t0 + 600, plus(t_fix, sim.u(30, 90)), c)
    sim.wl_target_down(wl, len(new), r - unavailable + len(new), t0 + 60,
                       plus(t_fix, 40), c)


def inc_bad_rollout(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    t_fix = None if rng.random() < 0.15 else t0 + sim.um(25, 110)
    wl = sim.pick(lambda w: w.kind == "Deployment" and w.replicas >= 2 and not w.system,
                  ns, t0 - 20 * MIN, plus(t_fix, 20 * MIN))
    if wl is None:
        return None
    sim.reserve(f"wl:{wl.key}", t0 - 20 * MIN, plus(t_fix, 20 * MIN))
    clients = sim.cl.dependents(wl)
    if clients and rng.random() < 0.4:
        # The new version passes its own probes but breaks every caller.
        why = rng.choice(["wrong upstream port in new config", "incompatible API change",
                          "new TLS settings rejected by clients", "connection pool set to 1"])
        fixed = "rolled back" if t_fix else "not yet rolled back"
        iid = sim.new_incident("bad_rollout_silent",
                               f"Rollout of {wl.key} ({why}) completed but broke its "
                               f"callers in other namespaces; {fixed}", wl.namespace, t0)
        c = Cause(truth=iid)
        wl.rs_hash = sim.cl.rs_hash()
        wl.pods = [p.split("/", 1)[1] for p in sim.new_pods(wl, wl.replicas)]
        sim.client_cascade(clients, t0 + sim.um(1, 4), t_fix, c)
        return iid
    why = rng.choice(["nil-pointer panic on startup", "missing env var in new release",
                      "failed DB migration in init", "liveness probe path renamed"])
    iid = sim.new_incident("bad_rollout",
                           f"Bad rollout of {wl.key}: new ReplicaSet crash-loops ({why})",
                           wl.namespace, t0)
    _rollout(sim, wl, t0, t_fix, Cause(truth=iid), None)
    return iid


def inc_waiting_rollout(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    t_fix = None if rng.random() < 0.25 else t0 + sim.um(30, 120)
    wl = sim.pick(lambda w: w.kind == "Deployment" and w.replicas >= 2 and not w.system,
                  ns, t0 - 20 * MIN, plus(t_fix, 20 * MIN))
    if wl is None:
        return None
    sim.reserve(f"wl:{wl.key}", t0 - 20 * MIN, plus(t_fix, 20 * MIN))
    reason, why = rng.choice([
        ("ImagePullBackOff", "image tag that was never pushed"),
        ("ImagePullBackOff", "registry pull secret expired"),
        ("CreateContainerConfigError", "Secret key referenced by the new spec is missing"),
    ])
    iid = sim.new_incident("waiting_rollout",
                           f"Rollout of {wl.key} stuck: new pods in {reason} ({why})",
                           wl.namespace, t0)
    _rollout(sim, wl, t0, t_fix, Cause(truth=iid), reason)
    return iid


def inc_pvc_full(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    wl = sim.pick(lambda w: bool(w.claim_templates or w.pvc) and w.kind != "DaemonSet",
                  ns, t0 - HOUR, t0 + 3 * HOUR)
    if wl is None:
        return None
    pod = wl.pods[0] if wl.kind == "StatefulSet" and rng.random() < 0.6 else rng.choice(wl.pods)
    pk = f"{wl.namespace}/{pod}"
    t_crit = t0 + sim.um(15, 80)
    t_full = t_crit + sim.um(5, 30)
    if rng.random() < 0.35:
        t_fix: float | None = t_crit + (t_full - t_crit) * sim.u(0.2, 0.9)
    elif rng.random() < 0.85:
        t_fix = t_full + sim.um(20, 80)
    else:
        t_fix = None
    sim.reserve(f"wl:{wl.key}", t0 - HOUR, plus(t_fix, 30 * MIN))
    claim = sim.cl.claim_of(wl, pod)
    why = rng.choice(["WAL/binlog retention growing after a replica slot got stuck",
                      "log compaction disabled by a config change", "runaway temp files",
                      "retention job silently failing for days"])
    iid = sim.new_incident("pvc_full", f"PVC {wl.namespace}/{claim} of {pk} filling up "
                           f"({why})", wl.namespace, t0)
    c = Cause(truth=iid)
    # The 1h warning needs <15% free and a predicted fill within 4 days: true since t0-1h.
    sim.pv_filling(wl, pod, "warning", t0 - HOUR, plus(t_fix, 60), c)
    sim.pv_filling(wl, pod, "critical", t_crit, plus(t_fix, 30), c)
    if t_fix is not None and t_fix < t_full:
        return iid
    # ENOSPC: the process dies on write and restarts into the same full disk.
    back = plus(t_fix, sim.u(60, 240))
    sim.crashloop(pk, wl.container, t_full + sim.u(30, 120), back, c)
    sim.not_ready(pk, t_full, back, c)
    sim.replicas_mismatch(wl, t_full, plus(back, 30), c)
    if wl.replicas == 1 or (wl.kind == "StatefulSet" and pod.endswith("-0")
                            and wl.name in ("postgres", "redis")):
        sim.client_cascade(sim.cl.dependents(wl), t_full + 30, back, c)
    return iid


def inc_db_down(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    t_fix = t0 + sim.um(25, 120) if rng.random() < 0.9 else None
    wl = sim.pick(lambda w: w.kind == "StatefulSet" and bool(sim.cl.dependents(w)),
                  ns, t0 - 20 * MIN, plus(t_fix, 20 * MIN))
    if wl is None:
        return None
    sim.reserve(f"wl:{wl.key}", t0 - 20 * MIN, plus(t_fix, 20 * MIN))
    why = rng.choice(["OOMKilled by a runaway analytical query", "bad config pushed by the "
                      "operator", "corrupted data file after an unclean shutdown",
                      "max_connections exhausted, liveness probe killing it"])
    iid = sim.new_incident("db_down", f"{wl.key} down ({why}); dependent services in "
                           "other namespaces failing", wl.namespace, t0)
    c = Cause(truth=iid)
    n_down = 1 if wl.replicas == 1 else max(math.ceil(wl.replicas / 2), 1)
    for p in wl.pods[:n_down]:
        pk = f"{wl.namespace}/{p}"
        s = t0 + sim.u(10, 120)
        back = plus(t_fix, sim.u(30, 200))
        sim.crashloop(pk, wl.container, s + sim.u(20, 60), back, c)
        sim.not_ready(pk, s, back, c)
    sim.replicas_mismatch(wl, t0 + 60, plus(t_fix, sim.u(120, 300)), c)
    sim.wl_target_down(wl, n_down, wl.replicas, t0 + 60, plus(t_fix, 60), c)
    clients = sim.cl.dependents(wl)
    # pgbouncer in front of postgres passes the failure on to its own callers.
    for cw in list(clients):
        clients.extend(x for x in sim.cl.dependents(cw) if x not in clients)
    sim.client_cascade(clients, t0 + 30, t_fix, c)
    return iid


def _job_pods(sim: Sim, ns: str, job: str, n: int) -> None:
    for _ in range(n):
        node = sim.rng.choice(sim.cl.workers).name
        sim.cl.register(ns, f"{job}-{sim.cl.suffix()}", node, "Job", job)


def inc_cronjob_failing(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    wl = sim.pick(lambda w: w.kind == "CronJob", ns, t0 - HOUR, None)
    if wl is None:
        return None
    sim.reserve(f"wl:{wl.key}", t0 - HOUR, None)
    t_fix = None if rng.random() < 0.5 else t0 + sim.um(60, 240)
    backoff_limit = rng.choice([1, 2, 3, 6])
    runtime = sim.u(20, 90)
    # Job fails once its pods have been retried backoffLimit times (10 s, 20 s, 40 s...).
    fail_after = sum(min(10 * 2 ** i, 360) for i in range(backoff_limit)) \
        + (backoff_limit + 1) * runtime
    period = wl.period_min * MIN
    first = math.ceil((sim.cl.epoch0 + t0) / period) * period - sim.cl.epoch0
    runs = []
    t = first
    while t < sim.duration and (t_fix is None or t < t_fix):
        runs.append(t)
        t += period
    if not runs:
        return None
    why = rng.choice(["object-store credentials rotated without updating the Secret",
                      "schema change broke the job's query", "upstream API now returns 403",
                      "image pinned to a deleted tag's digest", "OOMKilled at new data volume"])
    iid = sim.new_incident("cronjob_failing", f"CronJob {wl.key} failing every run ({why})",
                           wl.namespace, t0)
    c = Cause(truth=iid)
    fails = [r + fail_after for r in runs]
    for i, (r, f) in enumerate(zip(runs, fails, strict=True)):
        job = f"{wl.name}-{int((sim.cl.epoch0 + r) // 60)}"
        _job_pods(sim, wl.namespace, job, backoff_limit + 1)
        if i + 1 < len(fails):
            end: float | None = fails[i + 1] + sim.u(1, 10)  # failedJobsHistoryLimit: 1
        else:
            # The last failed Job stays until someone deletes it after fixing the cause.
            end = plus(t_fix, sim.um(5, 40)) if rng.random() < 0.6 else None
        sim.job_failed(wl.namespace, job, f, end, c)
    return iid


def inc_node_disk_fill(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    cands = [n for n in sim.cl.workers if sim.free(f"node:{n.name}", t0 - HOUR, t0 + 3 * HOUR)]
    if not cands:
        return None
    node = rng.choice(cands)
    t_fix = t0 + sim.um(35, 150) if rng.random() < 0.9 else None
    sim.reserve(f"node:{node.name}", t0 - HOUR, plus(t_fix, 20 * MIN))
    mount, device, fstype = rng.choice([("/", "/dev/nvme0n1p1", "xfs"),
                                        ("/var/lib/containerd", "/dev/nvme1n1", "ext4")])
    inodes = fstype == "ext4" and rng.random() < 0.5  # xfs allocates inodes dynamically
    if inodes:
        why = "millions of tiny files left by a crash-dumping container"
        filling, almost, for_almost = "NodeFilesystemFilesFillingUp", \
            "NodeFilesystemAlmostOutOfFiles", HOUR
        signal, what = "nodefs.inodesFree", "running out of inodes"
    else:
        why = rng.choice(["image GC unable to keep up with a CI runner pulling huge images",
                          "a pod logging at debug level filling container logs",
                          "orphaned containerd snapshots after a runtime crash"])
        filling, almost, for_almost = "NodeFilesystemSpaceFillingUp", \
            "NodeFilesystemAlmostOutOfSpace", 30 * MIN
        signal, what = "nodefs.available", "filling"
    iid = sim.new_incident("node_disk_fill", f"Filesystem {mount} on {node.name} {what} "
                           f"({why}); kubelet DiskPressure and evictions", "", t0)
    c = Cause(truth=iid)
    fs = {"device": device, "fstype": fstype, "mountpoint": mount}
    t10 = t0 + sim.um(10, 40)
    t5 = t10 + sim.um(10, 30)
    t3 = t5 + sim.um(5, 15)
    fix = plus(t_fix, sim.u(30, 120))
    sim.node_exp(filling, "warning", node, HOUR, t0 - HOUR, fix, c, **fs)
    sim.node_exp(filling, "critical", node, HOUR, t10, fix, c, **fs)
    if t_fix is None or t5 < t_fix:
        sim.node_exp(almost, "warning", node, for_almost, t5, fix, c, **fs)
    if t_fix is None or t3 < t_fix:
        sim.node_exp(almost, "critical", node, for_almost, t3, fix, c, **fs)
    # Hard eviction threshold (nodefs.available<10%, inodesFree<5%) -> DiskPressure.
    relief = plus(t_fix, sim.um(1, 5))
    sim.node_ksm("KubeNodePressure", "info", node, 10 * MIN, t10, relief, c,
                 condition="DiskPressure", status="true")
    sim.add("KubeNodeEviction", "info",
            {"eviction_signal": signal, "instance": f"{node.ip}:10250",
             "node": node.name}, t10 + sim.u(0, 60), plus(relief, 15 * MIN), 0, c)
    for pk, wl in sim.cl.pods_on(node.name):
        if wl.kind == "StatefulSet" and wl.local_pv:
            # Pinned by its local volume, it cannot leave a node tainted disk-pressure.
            ev = t10 + sim.um(0.5, 5)
            sim.not_ready(pk, ev, plus(relief, sim.u(30, 120)), c)
            sim.replicas_mismatch(wl, ev, plus(relief, sim.u(60, 180)), c)
    return iid


def inc_etcd_slow(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    if not sim.free("controlplane", t0 - 30 * MIN, t0 + 3 * HOUR):
        return None
    t_fix = t0 + sim.um(30, 120)
    sim.reserve("controlplane", t0 - 30 * MIN, t_fix + 40 * MIN)
    node = rng.choice(sim.cl.control_plane)
    why = rng.choice(["EBS burst credits exhausted on its volume",
                      "a backup agent saturating the disk", "noisy neighbour on the host"])
    iid = sim.new_incident("etcd_slow", f"etcd member on {node.name} has slow disk ({why}); "
                           "leader elections and apiserver errors", "kube-system", t0)
    c = Cause(truth=iid)
    sim.add("etcdHighFsyncDurations", "warning", sim.etcd(node), t0, t_fix, 10 * MIN, c)
    if rng.random() < 0.5:
        sim.add("etcdHighFsyncDurations", "critical", sim.etcd(node), t0 + sim.um(3, 15),
                t_fix - sim.um(0, 10), 10 * MIN, c)
    sim.add("etcdHighCommitDurations", "warning", sim.etcd(node), t0 + sim.um(0, 5), t_fix,
            10 * MIN, c)
    le = {k: v for k, v in sim.etcd(node).items() if k not in ("instance", "pod")}
    sim.add("etcdHighNumberOfLeaderChanges", "warning", le, t0 + sim.um(5, 15),
            t_fix + 15 * MIN, 5 * MIN, c)
    burn_s = t0 + sim.um(5, 15)
    sim.add("KubeAPIErrorBudgetBurn", "critical", {"long": "1h", "short": "5m"}, burn_s,
            t_fix + sim.um(3, 6), 2 * MIN, c)
    sim.add("KubeAPIErrorBudgetBurn", "critical", {"long": "6h", "short": "30m"},
            burn_s + 20 * MIN, t_fix + sim.um(20, 30), 15 * MIN, c)
    for cp in sim.cl.control_plane:
        if rng.random() < 0.7:
            sim.add("KubeClientErrors", "warning",
                    {"instance": f"{cp.ip}:6443", "job": "apiserver", "namespace": "default"},
                    burn_s + sim.um(0, 5), t_fix + sim.um(0, 4), 15 * MIN, c)
    if rng.random() < 0.5:
        sim.add("PrometheusOperatorWatchErrors", "warning",
                {"controller": rng.choice(["prometheus", "alertmanager"]), "namespace": MON},
                burn_s + sim.um(0, 5), t_fix + sim.um(1, 5), 15 * MIN, c)
    if rng.random() < 0.4:
        sim.add("KubeStateMetricsListErrors", "critical", {}, burn_s + sim.um(0, 5),
                t_fix + sim.um(1, 5), 15 * MIN, c)
    return iid


def inc_hpa_surge(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    t_end = t0 + sim.um(35, 150) if rng.random() < 0.85 else None
    wl = sim.pick(lambda w: w.hpa is not None, ns, t0 - 20 * MIN, plus(t_end, 20 * MIN))
    if wl is None:
        return None
    why = rng.choice(["marketing campaign launch", "a partner's retry storm",
                      "scraper bot traffic", "cache stampede after a cache flush"])
    iid = sim.new_incident("hpa_surge", f"Traffic surge ({why}) pinned {wl.key} HPA at max "
                           "replicas with CPU throttling", wl.namespace, t0)
    c = Cause(truth=iid)
    downstream = [sim.cl.workloads[d] for d in wl.deps if sim.cl.workloads[d].hpa is not None]
    chain = [wl, *downstream[:1]]
    for hop, w in enumerate(chain):
        if not sim.free(f"wl:{w.key}", t0 - 20 * MIN, plus(t_end, 20 * MIN)):
            continue
        sim.reserve(f"wl:{w.key}", t0 - 20 * MIN, plus(t_end, 20 * MIN))
        s = t0 + hop * sim.um(3, 12)
        assert w.hpa
        extra = w.hpa[1] - len(w.pods)
        scaled = sim.new_pods(w, max(extra, 0))
        sim.hpa_maxed(w, s + sim.um(4, 10), plus(t_end, sim.um(3, 10)), c)
        pods = sim.pod_keys(w) + scaled
        for pk in rng.sample(pods, min(len(pods), rng.randint(2, 4))):
            sim.throttling(pk, w.container, s + sim.um(0, 4), plus(t_end, sim.u(0, 300)), c)
        if scaled and (len(sim.cl.workers) <= 6 or rng.random() < 0.4):
            # No room for the last replicas: Pending until traffic drops.
            stuck = scaled[-rng.randint(1, min(3, len(scaled))):]
            for pk in stuck:
                sim.not_ready(pk, s + sim.um(4, 9), plus(t_end, sim.um(1, 5)), c)
            sim.replicas_mismatch(w, s + sim.um(5, 10), plus(t_end, sim.um(1, 6)), c)
        if rng.random() < 0.4:
            hot = sim.cl.node_of(pods[0])
            sim.node_exp("NodeCPUHighUsage", "info", hot, 15 * MIN, s + sim.um(1, 5),
                         plus(t_end, sim.u(0, 120)), c)
    return iid


def inc_quota_blocks(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    t_fix = t0 + sim.um(30, 140) if rng.random() < 0.8 else None
    wl = sim.pick(lambda w: w.kind == "Deployment" and w.namespace in sim.cl.quotas
                  and w.replicas >= 2, ns, t0 - 20 * MIN, plus(t_fix, 20 * MIN))
    if wl is None:
        return None
    sim.reserve(f"wl:{wl.key}", t0 - 20 * MIN, plus(t_fix, 20 * MIN))
    quota = sim.cl.quotas[wl.namespace]
    resource = rng.choice(["requests.cpu", "requests.memory", "limits.memory"])
    lowered = rng.random() < 0.5
    story = ("GitOps change lowered the namespace ResourceQuota below current usage"
             if lowered else "new release raised resource requests beyond the quota")
    iid = sim.new_incident("quota_blocks", f"ResourceQuota {wl.namespace}/{quota} "
                           f"({resource}) blocks rollout of {wl.key}: {story}",
                           wl.namespace, t0)
    c = Cause(truth=iid)
    # max without (instance, job, type): the KSM target keeps container/endpoint/pod/service.
    q = {k: v for k, v in sim.ksm(wl.namespace).items() if k not in ("instance", "job")}
    q.update(resource=resource, resourcequota=quota)
    t_roll = t0 + (sim.um(2, 25) if lowered else 0)
    if lowered:
        sim.add("KubeQuotaExceeded", "warning", q, t0, plus(t_fix, 60), 15 * MIN, c)
    else:
        sim.add("KubeQuotaFullyUsed", "info", q, t0 + sim.um(0.5, 2), plus(t_fix, 60),
                15 * MIN, c)
    # New ReplicaSet cannot create pods (FailedCreate); old pods drained by maxUnavailable.
    sim.rollout_stuck(wl, t_roll + 600, plus(t_fix, 40), c)
    if math.floor(wl.replicas * 0.25) >= 1:
        sim.replicas_mismatch(wl, t_roll + 600, plus(t_fix, sim.u(60, 180)), c)
    return iid


def inc_cert_expiry(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    if not sim.free("apiserver-cert", 0, None):
        return None
    sim.reserve("apiserver-cert", 0, None)
    who = rng.choice(["a CI deploy kubeconfig", "the legacy backup operator",
                      "an out-of-cluster exporter"])
    t_fix = t0 + sim.um(40, 180) if rng.random() < 0.5 else None
    iid = sim.new_incident("cert_expiry", f"Client certificate used by {who} against the "
                           "apiserver expires in under 7 days", "default", t0)
    c = Cause(truth=iid)
    for cp in sim.cl.control_plane:
        # Each apiserver sees the expiring client only once it connects there.
        sim.add("KubeClientCertificateExpiration", "warning",
                {"instance": f"{cp.ip}:6443", "job": "apiserver"}, t0 + sim.um(0, 12),
                plus(t_fix, sim.um(5, 8)), 5 * MIN, c)
    return iid


def inc_dns_outage(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    dns = sim.cl.workloads["kube-system/coredns"]
    t_fix = t0 + sim.um(20, 70)
    if not sim.free(f"wl:{dns.key}", t0 - 30 * MIN, t_fix + 30 * MIN):
        return None
    sim.reserve(f"wl:{dns.key}", t0 - 30 * MIN, t_fix + 30 * MIN)
    why = rng.choice(["OOMKilled under an ndots:5 query storm from a new batch job",
                      "bad Corefile edit (forward plugin typo) rolled out"])
    iid = sim.new_incident("dns_outage", f"CoreDNS crash-looping ({why}); cluster DNS "
                           "failing for workloads in many namespaces", "kube-system", t0)
    c = Cause(truth=iid)
    for pk in sim.pod_keys(dns):
        sim.crashloop(pk, dns.container, t0 + sim.u(30, 120), t_fix, c)
        sim.not_ready(pk, t0 + sim.u(0, 60), t_fix + sim.u(20, 60), c)
    sim.replicas_mismatch(dns, t0 + 30, t_fix + sim.u(30, 90), c)
    sim.wl_target_down(dns, dns.replicas, dns.replicas, t0 + 30, t_fix + 40, c)
    apps = [w for w in sim.cl.workloads.values()
            if not w.system and w.kind == "Deployment" and w.deps]
    victims = rng.sample(apps, min(len(apps), rng.randint(2, 5)))
    sim.client_cascade(victims, t0 + sim.um(1, 4), t_fix, c)
    # Alertmanager cannot resolve the chat webhook host either.
    for p in sim.cl.workloads[f"{MON}/{AM_STS}"].pods:
        if rng.random() < 0.7:
            sim.add("AlertmanagerFailedToSendAlerts", "warning",
                    {**sim.am_target(p), "integration": "slack", "reason": "other"},
                    t0 + sim.um(1, 4), t_fix + 15 * MIN, 5 * MIN, c)
    return iid


def inc_am_receiver(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    if not sim.free("alertmanager", t0 - 30 * MIN, t0 + 4 * HOUR):
        return None
    t_fix = t0 + sim.um(30, 150) if rng.random() < 0.85 else None
    sim.reserve("alertmanager", t0 - 30 * MIN, plus(t_fix, 40 * MIN))
    integration, why = rng.choice([("slack", "Slack webhook URL revoked"),
                                   ("pagerduty", "PagerDuty integration key rotated"),
                                   ("webhook", "MS Teams relay returning 401")])
    iid = sim.new_incident("am_receiver", f"Alertmanager cannot deliver notifications: {why}",
                           MON, t0)
    c = Cause(truth=iid)
    clear = plus(t_fix, 15 * MIN)  # rate(...[15m]) drains after the fix
    for p in sim.cl.workloads[f"{MON}/{AM_STS}"].pods:
        sim.add("AlertmanagerFailedToSendAlerts", "warning",
                {**sim.am_target(p), "integration": integration, "reason": "clientError"},
                t0 + sim.um(0, 4), clear, 5 * MIN, c)
    sim.add("AlertmanagerClusterFailedToSendAlerts", "critical",
            {"integration": integration, "namespace": MON, "service": AM_JOB},
            t0 + sim.um(2, 5), clear, 5 * MIN, c)
    return iid


def inc_rule_failure(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    if not sim.free("promrules", t0 - 30 * MIN, t0 + 3 * HOUR):
        return None
    owner = ns if ns in sim.cl.app_namespaces else rng.choice(sim.cl.app_namespaces)
    t_fix = t0 + sim.um(25, 120) if rng.random() < 0.8 else None
    sim.reserve("promrules", t0 - 30 * MIN, plus(t_fix, 30 * MIN))
    rule = rng.choice(["slo-recording-rules", "latency-rules", "business-kpis"])
    iid = sim.new_incident("rule_failure", f"PrometheusRule {owner}/{rule} has a recording "
                           "rule failing every evaluation (many-to-many matching)", owner, t0)
    c = Cause(truth=iid)
    uid = sim.cl.uid(f"rule/{owner}/{rule}")
    group = (f"/etc/prometheus/rules/{PROM_STS}-rulefiles-0/{owner}-{rule}-{uid}.yaml;"
             f"{rule.replace('-rules', '')}.rules")
    for p in sim.cl.workloads[f"{MON}/{PROM_STS}"].pods:
        sim.add("PrometheusRuleFailures", "critical", {**sim.prom_target(p), "rule_group": group},
                t0 + sim.u(0, 60), plus(t_fix, 5 * MIN), 15 * MIN, c)
    return iid


def inc_memory_leak(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    t_fix = t0 + sim.um(35, 130) if rng.random() < 0.85 else None
    wl = sim.pick(lambda w: w.kind == "Deployment" and w.replicas >= 2 and not w.system,
                  ns, t0 - 20 * MIN, plus(t_fix, 20 * MIN))
    if wl is None:
        return None
    sim.reserve(f"wl:{wl.key}", t0 - 20 * MIN, plus(t_fix, 20 * MIN))
    why = rng.choice(["feature flag enabling an unbounded in-memory cache",
                      "memory limit halved in a values.yaml change",
                      "leak in a new client library version"])
    iid = sim.new_incident("memory_leak", f"{wl.key} pods OOMKilled repeatedly ({why})",
                           wl.namespace, t0)
    c = Cause(truth=iid)
    pods = sim.pod_keys(wl)
    rng.shuffle(pods)
    onsets = []
    onset = t0
    for pk in pods[: rng.randint(max(1, len(pods) // 2), len(pods))]:
        onsets.append(onset)
        back = plus(t_fix, sim.u(60, 200))
        sim.crashloop(pk, wl.container, onset + sim.u(40, 120), back, c)
        sim.not_ready(pk, onset, back, c)
        onset += sim.um(2, 10)
    sim.replicas_mismatch(wl, onsets[0], plus(t_fix, sim.u(120, 300)), c)
    sim.wl_target_down(wl, len(onsets), len(pods), onsets[-1], plus(t_fix, 60), c)
    return iid


def inc_conntrack(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    cands = [n for n in sim.cl.workers if sim.free(f"node:{n.name}", t0 - 30 * MIN,
                                                   t0 + 3 * HOUR)]
    if not cands:
        return None
    node = rng.choice(cands)
    t_fix = t0 + sim.um(30, 100)
    sim.reserve(f"node:{node.name}", t0 - 30 * MIN, t_fix + 20 * MIN)
    iid = sim.new_incident("conntrack", f"conntrack table exhausted on {node.name} (UDP-heavy "
                           "workload); pods there failing probes", "", t0)
    c = Cause(truth=iid)
    sim.node_exp("NodeHighNumberConntrackEntriesUsed", "warning", node, 0, t0, t_fix, c)
    victims = [(pk, wl) for pk, wl in sim.cl.pods_on(node.name)
               if wl.kind != "DaemonSet" and not wl.system]
    for pk, wl in rng.sample(victims, min(len(victims), rng.randint(2, 4))):
        s = t0 + sim.um(2, 10)
        sim.not_ready(pk, s, t_fix + sim.um(0.5, 3), c)
        if wl.replicas == 1:
            sim.replicas_mismatch(wl, s, t_fix + sim.um(1, 4), c)
    return iid


def inc_ds_rollout(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    t_fix = t0 + sim.um(25, 120) if rng.random() < 0.85 else None
    wl = sim.pick(lambda w: w.kind == "DaemonSet" and w.name in ("fluent-bit", "ebs-csi-node"),
                  ns, t0 - 20 * MIN, plus(t_fix, 20 * MIN))
    if wl is None or not sim.free("nodefail", t0 - 20 * MIN, plus(t_fix, 20 * MIN)):
        return None
    sim.reserve(f"wl:{wl.key}", t0 - 20 * MIN, plus(t_fix, 20 * MIN))
    iid = sim.new_incident("ds_rollout", f"DaemonSet {wl.key} update crash-loops on the first "
                           "updated node; rollout halted (maxUnavailable 1)", wl.namespace, t0)
    c = Cause(truth=iid)
    node = rng.choice(sim.cl.workers).name
    pk = f"{wl.namespace}/{sim.cl.spawn(wl, node)}"
    sim.crashloop(pk, wl.container, t0 + sim.u(30, 90), t_fix, c)
    sim.not_ready(pk, t0 + 10, plus(t_fix, 60), c)
    sim.ds_stuck(wl, t0 + 300, plus(t_fix, 60), c)
    return iid


def inc_nic_errors(sim: Sim, t0: float, ns: str | None = None) -> str | None:
    rng = sim.rng
    cands = [n for n in sim.cl.workers if sim.free(f"node:{n.name}", t0 - HOUR, t0 + 3 * HOUR)]
    if not cands:
        return None
    node = rng.choice(cands)
    t_fix = t0 + sim.um(45, 160)
    sim.reserve(f"node:{node.name}", t0 - HOUR, t_fix + 20 * MIN)
    dev = rng.choice(["ens5", "eth0", "enp3s0f0"])
    iid = sim.new_incident("nic_errors", f"Degraded NIC on {node.name} ({dev}): receive "
                           "errors, link flaps, node heartbeats flapping until cordoned", "", t0)
    c = Cause(truth=iid)
    sim.node_exp("NodeNetworkReceiveErrs", "warning", node, HOUR, t0 - sim.um(45, 55), t_fix,
                 c, device=dev)
    t = t0 + sim.um(2, 10)
    while t < t_fix - 5 * MIN:
        sim.node_exp("NodeNetworkInterfaceFlapping", "warning", node, 2 * MIN, t,
                     t + sim.um(2.5, 6), c, device=dev)
        t += sim.um(12, 35)
    # Cordoning (unschedulable=1) silences the readiness-flapping rule.
    sim.node_ksm("KubeNodeReadinessFlapping", "warning", node, 15 * MIN, t0 + sim.um(5, 15),
                 t_fix, c)
    pods = [(pk, w) for pk, w in sim.cl.pods_on(node.name) if w.kind != "DaemonSet"]
    if pods:
        pk, _ = rng.choice(pods)
        sim.not_ready(pk, t0 + sim.um(10, 25), t_fix + sim.um(1, 3), c)
    return iid


INCIDENT_KINDS = [
    # (function, weight, max per stream, can target a given namespace)
    (inc_node_failure, 1.0, 2, False),
    (inc_cp_node_failure, 0.4, 1, False),
    (inc_bad_rollout, 2.0, 3, True),
    (inc_waiting_rollout, 1.0, 2, True),
    (inc_pvc_full, 1.2, 2, True),
    (inc_db_down, 0.9, 1, False),
    (inc_cronjob_failing, 1.5, 2, True),
    (inc_node_disk_fill, 0.8, 1, False),
    (inc_etcd_slow, 0.7, 1, False),
    (inc_hpa_surge, 1.0, 2, True),
    (inc_quota_blocks, 0.8, 1, True),
    (inc_cert_expiry, 0.4, 1, False),
    (inc_dns_outage, 0.5, 1, False),
    (inc_am_receiver, 0.5, 1, False),
    (inc_rule_failure, 0.5, 1, True),
    (inc_memory_leak, 1.0, 2, True),
    (inc_conntrack, 0.6, 1, False),
    (inc_ds_rollout, 0.6, 1, False),
    (inc_nic_errors, 0.5, 1, False),
]


def _fired(sim: Sim, iid: str | None) -> bool:
    """Keep an incident only if at least one of its alerts actually fired in the stream."""
    if iid is None:
        return False
    if any(a.truth == iid for a in sim.alerts):
        return True
    del sim.incidents[iid]
    return False


def schedule_incidents(sim: Sim) -> None:
    rng = sim.rng
    target = rng.randint(8, 14)
    used: Counter[str] = Counter()
    collisions = 0
    attempts = 0
    while len(sim.incidents) < target and attempts < 200:
        attempts += 1
        kinds = [k for k in INCIDENT_KINDS if used[k[0].__name__] < k[2]]
        fn = rng.choices(kinds, [k[1] for k in kinds])[0][0]
        t0 = sim.u(0.02, 0.85) * sim.duration
        if _fired(sim, fn(sim, t0)):
            used[fn.__name__] += 1
        # Two unrelated problems in the same namespace, close together in time.
        if len(sim.incidents) >= 3 + 4 * collisions and collisions < 2:
            collisions += 1
            if rng.random() < 0.85 and len(sim.incidents) < target:
                _colliding_incident(sim, used)


def _colliding_incident(sim: Sim, used: Counter[str]) -> None:
    rng = sim.rng
    anchors = [i for i in sim.incidents if sim.inc_ns[i] in sim.cl.app_namespaces]
    if not anchors:
        return
    anchor = rng.choice(anchors)
    ns = sim.inc_ns[anchor]
    for _ in range(8):
        fn = rng.choice([k[0] for k in INCIDENT_KINDS if k[3]])
        t0 = min(max(60.0, sim.inc_t0[anchor] + sim.um(-20, 25)), 0.9 * sim.duration)
        if _fired(sim, fn(sim, t0, ns)):
            used[fn.__name__] += 1
            return


# --------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------


def _app_pod(sim: Sim, ns: str | None = None, kind: str | None = None,
             pred=lambda w: True) -> tuple[str, Workload]:
    """A pod of a workload no incident touches (noise must not reuse incident objects),
    in namespace ns when one is free there."""
    free = [w for w in sim.cl.workloads.values()
            if w.pods and f"wl:{w.key}" not in sim.busy and pred(w)
            and (kind is None or w.kind == kind)]
    in_ns = [w for w in free if w.namespace == ns]
    wl = sim.rng.choice(in_ns or free)
    return f"{wl.namespace}/{sim.rng.choice(wl.pods)}", wl


def _near_incident(sim: Sim) -> tuple[float, str | None]:
    """A time (and namespace) close to a random incident, to make noise overlap it."""
    if not sim.incidents or sim.rng.random() < 0.5:
        return sim.u(0, 0.95) * sim.duration, None
    iid = sim.rng.choice(sorted(sim.incidents))
    ns = sim.inc_ns[iid]
    t = sim.inc_t0[iid] + sim.um(-10, 40)
    return min(max(0.0, t), 0.95 * sim.duration), (ns if ns in sim.cl.namespaces else None)


def noise_chronic(sim: Sim) -> None:
    rng, cl = sim.rng, sim.cl
    c = Cause(noise="chronic")
    pre = -6 * HOUR  # condition true long before the stream began

    def sometimes_ends(p: float) -> float | None:
        return sim.u(0.4, 0.95) * sim.duration if rng.random() < p else None

    options = []
    options.append(lambda: sim.add("KubeCPUOvercommit", "warning", {}, pre,
                                   sometimes_ends(0.2), 10 * MIN, c))
    options.append(lambda: sim.add("KubeMemoryOvercommit", "warning", {}, pre,
                                   sometimes_ends(0.2), 10 * MIN, c))
    # kube-proxy / controller-manager / scheduler metrics bound to 127.0.0.1: never scraped.
    options.append(lambda: sim.target_down("kube-proxy", "kube-system", f"{REL}-kube-proxy",
                                           pre, None, c))
    options.append(lambda: sim.target_down("kube-controller-manager", "kube-system",
                                           f"{REL}-kube-controller-manager", pre, None, c))
    options.append(lambda: sim.target_down("kube-scheduler", "kube-system",
                                           f"{REL}-kube-scheduler", pre, None, c))
    options.append(lambda: sim.node_exp("NodeClockNotSynchronising", "warning",
                                        rng.choice(cl.nodes), 10 * MIN, pre, None, c))
    options.append(lambda: sim.add("KubeVersionMismatch", "warning", {}, pre,
                                   sometimes_ends(0.4), 15 * MIN, c))

    def abandoned() -> None:
        # A forgotten deployment whose image was deleted: waiting for days.
        ns = rng.choice(cl.app_namespaces)
        wl = Workload(ns, "Deployment", rng.choice(["legacy-exporter", "old-reporting",
                                                    "poc-recommender"]), "app", 1)
        if wl.key in cl.workloads:
            return
        cl.workloads[wl.key] = wl
        wl.rs_hash = cl.rs_hash()
        pk = cl.register(ns, f"{wl.name}-{wl.rs_hash}-{cl.suffix()}",
                         rng.choice(cl.workers).name, "Deployment", wl.name)
        wl.pods.append(pk.split("/", 1)[1])
        sim.reserve(f"wl:{wl.key}", 0, None)
        sim.container_waiting(pk, wl.container, "ImagePullBackOff", pre, None, c)
        sim.not_ready(pk, pre, None, c)
        sim.replicas_mismatch(wl, pre, None, c)
    options.append(abandoned)

    def stale_failed_job() -> None:
        wl = sim.pick(lambda w: w.kind == "CronJob", None, 0, None)
        if wl is None:
            return
        sim.reserve(f"wl:{wl.key}", 0, None)
        old = int((cl.epoch0 - rng.randint(2, 30) * HOUR) // 60 // wl.period_min
                  * wl.period_min)
        job = f"{wl.name}-{old}"
        _job_pods(sim, wl.namespace, job, 1)
        sim.job_failed(wl.namespace, job, pre, sometimes_ends(0.25), c)
    options.append(stale_failed_job)

    def prom_disk() -> None:
        prom = cl.workloads[f"{MON}/{PROM_STS}"]
        if f"wl:{prom.key}" in sim.busy:
            return
        sim.reserve(f"wl:{prom.key}", 0, None)
        sim.pv_filling(prom, prom.pods[0], "warning", pre, None, c)
    options.append(prom_disk)

    def hpa_always_max() -> None:
        wl = sim.pick(lambda w: w.hpa is not None, None, 0, None)
        if wl is not None:
            sim.reserve(f"wl:{wl.key}", 0, None)
            sim.hpa_maxed(wl, pre, None, c)
    options.append(hpa_always_max)

    def misscheduled() -> None:
        ds = cl.workloads.get("kube-system/ebs-csi-node")
        if ds:
            sim.add("KubeDaemonSetMisScheduled", "warning",
                    sim.ksm(ds.namespace, daemonset=ds.name), pre, None, 15 * MIN, c)
    options.append(misscheduled)

    def etcd_fragmented() -> None:
        for cp in cl.control_plane:
            sim.add("etcdDatabaseHighFragmentationRatio", "warning", sim.etcd(cp),
                    pre + rng.uniform(0, HOUR), None, 10 * MIN, c)
    options.append(etcd_fragmented)

    def failed_pv() -> None:
        # A Released volume whose reclaim (cloud delete) failed weeks ago.
        pv = f"pvc-{cl.uid('pv/' + str(rng.random()))}"
        sim.add("KubePersistentVolumeErrors", "critical",
                sim.ksm(MON, persistentvolume=pv, phase="Failed"), pre, None, 5 * MIN, c)
    options.append(failed_pv)

    def long_job() -> None:
        # A hand-started backfill Job running for more than 12 hours.
        ns = rng.choice(cl.app_namespaces)
        job = rng.choice(["backfill-ledger-manual", "reindex-full-2", "migrate-blobs-v3"])
        _job_pods(sim, ns, job, 1)
        sim.add("KubeJobNotCompleted", "warning", {"job_name": job, "namespace": ns}, pre,
                sometimes_ends(0.3), 0, c)
    options.append(long_job)

    for fn in rng.sample(options, rng.randint(5, 9)):
        fn()


def noise_info(sim: Sim) -> None:
    rng, cl = sim.rng, sim.cl
    c = Cause(noise="info")
    for _ in range(rng.randint(4, 9)):
        t, ns = _near_incident(sim)
        what = rng.choice(["throttle", "throttle", "cpu", "toomany", "quota", "evict",
                           "pressure"])
        dur = sim.um(10, 120)
        if what == "throttle":
            pk, wl = _app_pod(sim, ns)
            sim.throttling(pk, wl.container, t, t + dur, c)
        elif what == "cpu":
            sim.node_exp("NodeCPUHighUsage", "info", rng.choice(cl.workers), 15 * MIN, t,
                         t + dur, c)
        elif what == "toomany":
            n = rng.choice(cl.workers)
            sim.add("KubeletTooManyPods", "info", {"instance": f"{n.ip}:10250",
                                                   "node": n.name}, t, t + dur, 15 * MIN, c)
        elif what == "quota" and cl.quotas:
            qns = ns if ns in cl.quotas else rng.choice(sorted(cl.quotas))
            q = {k: v for k, v in sim.ksm(qns).items() if k not in ("instance", "job")}
            q.update(resource=rng.choice(["requests.cpu", "pods", "requests.storage"]),
                     resourcequota=cl.quotas[qns])
            sim.add("KubeQuotaAlmostFull", "info", q, t, t + dur * 2, 15 * MIN, c)
        elif what == "evict":
            n = rng.choice(cl.workers)
            sim.add("KubeNodeEviction", "info",
                    {"eviction_signal": "memory.available", "instance": f"{n.ip}:10250",
                     "node": n.name}, t, t + 15 * MIN + sim.um(0, 3), 0, c)
        else:
            n = rng.choice(cl.workers)
            sim.node_ksm("KubeNodePressure", "info", n, 10 * MIN, t, t + sim.um(11, 25), c,
                         condition="MemoryPressure", status="true")


def noise_flapping(sim: Sim) -> None:
    rng, cl = sim.rng, sim.cl
    c = Cause(noise="flapping")
    kinds = ["conntrack", "target", "throttle", "saturation", "pleg", "hpa", "clienterr",
             "ifflap"]
    for kind in rng.sample(kinds, rng.randint(2, 5)):
        node = rng.choice(cl.workers)
        pk, wl = _app_pod(sim)
        _, twl = _app_pod(sim, pred=lambda w: bool(w.service) and not w.system)
        t = sim.u(0, 0.4) * sim.duration
        for _ in range(rng.randint(3, 7)):
            if kind == "conntrack":
                sim.node_exp("NodeHighNumberConntrackEntriesUsed", "warning", node, 0, t,
                             t + sim.um(1, 8), c)
            elif kind == "target":
                # A flaky exporter sidecar timing out its scrapes now and then.
                assert twl.service and twl.scrape_job
                sim.target_down(twl.scrape_job, twl.namespace, twl.service, t,
                                t + sim.um(11, 20), c)
            elif kind == "throttle":
                sim.throttling(pk, wl.container, t, t + sim.um(16, 30), c)
            elif kind == "saturation":
                sim.node_exp("NodeSystemSaturation", "warning", node, 15 * MIN, t,
                             t + sim.um(16, 30), c)
            elif kind == "pleg":
                sim.add("KubeletPlegDurationHigh", "warning",
                        {"instance": f"{node.ip}:10250", "node": node.name,
                         "quantile": "0.99"}, t, t + sim.um(6, 12), 5 * MIN, c)
            elif kind == "hpa":
                hw = next((w for w in cl.workloads.values() if w.hpa
                           and f"wl:{w.key}" not in sim.busy), None)
                if hw is None:
                    break
                sim.hpa_mismatch(hw, t, t + sim.um(16, 25), c)
            elif kind == "clienterr":
                cp = cl.control_plane[0]
                sim.add("KubeClientErrors", "warning",
                        {"instance": f"{cp.ip}:6443", "job": "apiserver",
                         "namespace": "default"}, t, t + sim.um(16, 22), 15 * MIN, c)
            else:
                sim.node_exp("NodeNetworkInterfaceFlapping", "warning", node, 2 * MIN, t,
                             t + sim.um(2.5, 5), c, device="eth1")
            t += sim.um(25, 70)


def noise_blips(sim: Sim) -> None:
    """One-off alerts whose condition clears within ~2 minutes of firing."""
    rng, cl = sim.rng, sim.cl
    c = Cause(noise="blip")
    for _ in range(rng.randint(7, 14)):
        t, ns = _near_incident(sim)
        tail = sim.u(15, 110)
        kind = rng.choice(["crash", "notready", "target", "burn", "pleg", "pgfault",
                           "aggapi", "mismatch", "amconn", "leader"])
        if kind == "crash":
            pk, wl = _app_pod(sim, ns)
            sim.crashloop(pk, wl.container, t, t + 15 * MIN + tail - 5 * MIN, c)
        elif kind == "notready":
            pk, _ = _app_pod(sim, ns)
            sim.not_ready(pk, t, t + 15 * MIN + tail, c)
        elif kind == "target":
            _, wl = _app_pod(sim, ns, pred=lambda w: bool(w.service))
            assert wl.service and wl.scrape_job
            sim.target_down(wl.scrape_job, wl.namespace, wl.service, t,
                            t + 10 * MIN + tail, c)
        elif kind == "burn":
            sim.add("KubeAPIErrorBudgetBurn", "critical", {"long": "1h", "short": "5m"}, t,
                    t + 2 * MIN + tail, 2 * MIN, c)
        elif kind == "pleg":
            n = rng.choice(cl.workers)
            sim.add("KubeletPlegDurationHigh", "warning",
                    {"instance": f"{n.ip}:10250", "node": n.name, "quantile": "0.99"}, t,
                    t + 5 * MIN + tail, 5 * MIN, c)
        elif kind == "pgfault":
            sim.node_exp("NodeMemoryMajorPagesFaults", "warning", rng.choice(cl.workers),
                         15 * MIN, t, t + 15 * MIN + tail, c)
        elif kind == "aggapi":
            cp = rng.choice(cl.control_plane)
            sim.add("KubeAggregatedAPIErrors", "warning",
                    {"instance": f"{cp.ip}:6443", "name": "v1beta1.metrics.k8s.io",
                     "reason": "FailedDiscoveryCheck"}, t, t + 10 * MIN + tail, 10 * MIN, c)
        elif kind == "mismatch":
            _, wl = _app_pod(sim, ns, "Deployment")
            sim.replicas_mismatch(wl, t, t + 15 * MIN + tail, c)
        elif kind == "amconn":
            p = rng.choice(cl.workloads[f"{MON}/{PROM_STS}"].pods)
            sim.add("PrometheusNotConnectedToAlertmanagers", "warning", sim.prom_target(p), t,
                    t + 10 * MIN + tail, 10 * MIN, c)
        else:
            cp = cl.control_plane[0]
            le = {k: v for k, v in sim.etcd(cp).items() if k not in ("instance", "pod")}
            sim.add("etcdHighNumberOfLeaderChanges", "warning", le, t, t + 5 * MIN + tail,
                    5 * MIN, c)


def noise_benign(sim: Sim) -> None:
    """Real conditions nobody needs to act on: maintenance, peaks, slow but healthy work."""
    rng, cl = sim.rng, sim.cl
    c = Cause(noise="benign")
    for _ in range(rng.randint(2, 6)):
        t, ns = _near_incident(sim)
        kind = rng.choice(["drain", "peak", "imagegc", "batch", "sts_restart"])
        if kind == "drain":
            # Planned kernel patching: cordoned, so NodeNotReady stays quiet, but a
            # StatefulSet replica takes a while to rejoin.
            sts = [w for w in cl.workloads.values() if w.kind == "StatefulSet"
                   and w.replicas > 1 and f"wl:{w.key}" not in sim.busy]
            if sts:
                wl = rng.choice(sts)
                pk = f"{wl.namespace}/{wl.pods[-1]}"
                end = t + sim.um(16, 35)
                sim.not_ready(pk, t, end, c)
                sim.replicas_mismatch(wl, t, end + 30, c)
                sim.add("KubePdbNotEnoughHealthyPods", "warning",
                        sim.ksm(wl.namespace, poddisruptionbudget=wl.name), t, end + 20,
                        15 * MIN, c)
        elif kind == "peak":
            wl = sim.pick(lambda w: w.hpa is not None, ns, t - 10 * MIN, t + 90 * MIN)
            if wl is not None:
                sim.hpa_maxed(wl, t, t + sim.um(20, 60), c)
        elif kind == "imagegc":
            n = rng.choice(cl.workers)
            sim.node_exp("NodeFilesystemSpaceFillingUp", "warning", n, HOUR, t - HOUR,
                         t + sim.um(5, 40), c, device="/dev/nvme0n1p1", fstype="xfs",
                         mountpoint="/")
        elif kind == "batch":
            sim.node_exp("NodeSystemSaturation", "warning", rng.choice(cl.workers), 15 * MIN,
                         t, t + sim.um(20, 50), c)
        else:
            wl = sim.pick(lambda w: w.kind == "StatefulSet" and w.replicas > 1, ns, t, t)
            if wl is not None:
                sim.add("KubeStatefulSetUpdateNotRolledOut", "warning",
                        {"job": "kube-state-metrics", "namespace": wl.namespace,
                         "statefulset": wl.name}, t, t + sim.um(17, 40), 15 * MIN, c)


# --------------------------------------------------------------------------------------
# Post-processing: merge impossible duplicates, derive InfoInhibitor, drop empty incidents
# --------------------------------------------------------------------------------------


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def merge_duplicates(sim: Sim) -> None:
    """Prometheus holds one alert per label set: overlapping episodes become one."""
    by_key: dict[tuple, list[StreamAlert]] = {}
    for a in sim.alerts:
        by_key.setdefault(_key(a.labels), []).append(a)
    out: list[StreamAlert] = []
    for eps in by_key.values():
        eps.sort(key=lambda a: a.starts_at)
        cur = eps[0]
        for a in eps[1:]:
            if cur.ends_at is None or a.starts_at <= cur.ends_at:
                if cur.ends_at is not None:
                    cur.ends_at = None if a.ends_at is None else max(cur.ends_at, a.ends_at)
                sim.pending_from[id(cur)] = min(sim.pending_from[id(cur)],
                                                sim.pending_from[id(a)])
                continue
            out.append(cur)
            cur = a
        out.append(cur)
    sim.alerts = out


def _union(iv: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s, e in sorted(iv):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _subtract(a: list[tuple[float, float]], b: list[tuple[float, float]],
              ) -> list[tuple[float, float]]:
    out = []
    for s, e in a:
        cur = s
        for bs, be in b:
            if be <= cur or bs >= e:
                continue
            if bs > cur:
                out.append((cur, bs))
            cur = max(cur, be)
        if cur < e:
            out.append((cur, e))
    return out


def derive_info_inhibitor(sim: Sim) -> None:
    """InfoInhibitor: info alert (pending or firing) in a namespace with no warning/critical
    firing there.  Namespace-less alerts share the empty namespace."""
    end = sim.duration
    info: dict[str, list[tuple[float, float]]] = {}
    loud: dict[str, list[tuple[float, float]]] = {}
    for a in sim.alerts:
        ns = a.labels.get("namespace", "")
        stop = end if a.ends_at is None else a.ends_at
        if a.labels["severity"] == "info":
            info.setdefault(ns, []).append((sim.pending_from[id(a)], stop))
        elif a.labels["severity"] in ("warning", "critical"):
            loud.setdefault(ns, []).append((a.starts_at, stop))
    c = Cause(noise="info_inhibitor")
    for ns in sorted(info):
        spans = _subtract(_union(info[ns]), _union(loud.get(ns, [])))
        for s, e in spans:
            if e - s < 2 * EVAL_S:
                continue  # shorter than rule evaluation granularity
            labels = {"namespace": ns} if ns else {}
            a = StreamAlert({"alertname": "InfoInhibitor", **labels, "severity": "none"},
                            round(s, 1), None if e >= end else round(e, 1), None,
                            c.noise)
            sim.alerts.append(a)


def generate(seed: int) -> Stream:
    sim = Sim(seed)
    schedule_incidents(sim)
    noise_chronic(sim)
    noise_info(sim)
    noise_flapping(sim)
    noise_blips(sim)
    noise_benign(sim)
    sim.add("Watchdog", "none", {}, -HOUR, None, 0, Cause(noise="watchdog"))
    merge_duplicates(sim)
    derive_info_inhibitor(sim)
    alerts = sorted(sim.alerts, key=lambda a: (a.starts_at, a.labels["alertname"]))
    # Number incidents I1..In in the order their first alert fired.
    order: dict[str, str] = {}
    for a in alerts:
        if a.truth and a.truth not in order:
            order[a.truth] = f"I{len(order) + 1}"
    for a in alerts:
        if a.truth:
            a.truth = order[a.truth]
    incidents = {new: sim.incidents[old] for old, new in order.items()}
    return Stream(seed=seed, duration_s=sim.duration, alerts=alerts, incidents=incidents,
                  pods=dict(sim.cl.pods), claims=sim.cl.claims())


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("-v", "--verbose", action="store_true", help="list incidents too")
    args = ap.parse_args()
    for seed in args.seeds:
        s = generate(seed)
        kinds = Counter(a.noise for a in s.alerts if a.noise)
        n_truth = sum(1 for a in s.alerts if a.truth)
        ns = {a.labels.get("namespace", "") for a in s.alerts}
        print(f"seed={seed} duration={s.duration_s / HOUR:.1f}h alerts={len(s.alerts)} "
              f"incidents={len(s.incidents)} incident_alerts={n_truth} "
              f"noise={sum(kinds.values())} namespaces={len(ns)} pods={len(s.pods)}")
        print("  noise: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
        if args.verbose:
            per = Counter(a.truth for a in s.alerts if a.truth)
            for iid, desc in s.incidents.items():
                print(f"  {iid} ({per[iid]} alerts): {desc}")


if __name__ == "__main__":
    main()
