"""A third, independent generator of Alertmanager alert streams with ground truth (noise bench).

What this module owns: a seeded Kubernetes cluster watched by kube-prometheus-stack (3 control-plane
nodes, 5-8 workers, 6-8 application namespaces plus kube-system and monitoring; Deployments,
StatefulSets with volume claims, DaemonSets, CronJobs; the pods kube-state-metrics lists), a
catalogue of real incidents and of noise, and the alerts the stack's default rules
(kubernetes-mixin, node-mixin, etcd, Alertmanager and general rules) would send for them: labelled
as those rules' expressions label them, timed by each rule's `for:`, and judged as an SRE would
after the post-mortem (the incident that caused an alert, or the kind of noise it is).

It was written without reading the method it judges (knowledge/relate.py, knowledge/noise.py,
knowledge/correlation.py) or the other generators (tests/bench/noise*.py).

Assumptions on the scrape setup, as the chart ships them: release `kube-prometheus-stack` in
`monitoring`; kube-state-metrics scraped with honorLabels and no relabelling, so a workload or node
alert carries the kube-state-metrics pod, container and (when the metric has none) namespace;
node-exporter's instance is the node's address:9100; etcd, controller-manager and scheduler
scraped through explicit endpoints (no pod label); Prometheus's external label `prometheus`;
`starts_at` is when a rule fired (after its `for:`), rules evaluated every 30 s.

    .venv/bin/python -m tests.bench.noise_third [--seeds 1,2,3]
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

MIN = 60.0
HOUR = 3600.0
REL = "kube-prometheus-stack"
PROM = f"monitoring/{REL}-prometheus"
KSM = "kube-state-metrics"
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes draws pod-name suffixes from


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


@dataclass(frozen=True)
class Rule:
    alertname: str
    severity: str
    for_s: float
    extra: tuple[tuple[str, str], ...] = ()


def _r(name: str, severity: str, for_min: float, **extra: str) -> Rule:
    return Rule(name, severity, for_min * MIN, tuple(extra.items()))


CRASHLOOP = _r("KubePodCrashLooping", "warning", 15)
POD_NOT_READY = _r("KubePodNotReady", "warning", 15)
DEPLOY_MISMATCH = _r("KubeDeploymentReplicasMismatch", "warning", 15)
ROLLOUT_STUCK = _r("KubeDeploymentRolloutStuck", "warning", 15)
STS_MISMATCH = _r("KubeStatefulSetReplicasMismatch", "warning", 15)
DS_STUCK = _r("KubeDaemonSetRolloutStuck", "warning", 15)
CONTAINER_WAITING = _r("KubeContainerWaiting", "warning", 60)
JOB_FAILED = _r("KubeJobFailed", "warning", 15)
HPA_MAXED = _r("KubeHpaMaxedOut", "warning", 15)
CPU_OVERCOMMIT = _r("KubeCPUOvercommit", "warning", 10)
MEM_OVERCOMMIT = _r("KubeMemoryOvercommit", "warning", 10)
CPU_QUOTA_OVERCOMMIT = _r("KubeCPUQuotaOvercommit", "warning", 5)
MEM_QUOTA_OVERCOMMIT = _r("KubeMemoryQuotaOvercommit", "warning", 5)
QUOTA_ALMOST_FULL = _r("KubeQuotaAlmostFull", "info", 15)
QUOTA_FULLY_USED = _r("KubeQuotaFullyUsed", "info", 15)
CPU_THROTTLING = _r("CPUThrottlingHigh", "info", 15)
PV_FILLING_WARN = _r("KubePersistentVolumeFillingUp", "warning", 60)
PV_FILLING_CRIT = _r("KubePersistentVolumeFillingUp", "critical", 1)
CLIENT_ERRORS = _r("KubeClientErrors", "warning", 15)
BURN_1H = _r("KubeAPIErrorBudgetBurn", "critical", 2, long="1h", short="5m")
BURN_6H = _r("KubeAPIErrorBudgetBurn", "critical", 15, long="6h", short="30m")
BURN_1D = _r("KubeAPIErrorBudgetBurn", "warning", 60, long="1d", short="2h")
AGG_API_ERRORS = _r("KubeAggregatedAPIErrors", "warning", 10)
AGG_API_DOWN = _r("KubeAggregatedAPIDown", "warning", 5)
NODE_NOT_READY = _r("KubeNodeNotReady", "warning", 15)
NODE_UNREACHABLE = _r("KubeNodeUnreachable", "warning", 15)
NODE_PRESSURE = _r("KubeNodePressure", "info", 10)
NODE_EVICTION = _r("KubeNodeEviction", "info", 0)
TOO_MANY_PODS = _r("KubeletTooManyPods", "info", 15)
PLEG = _r("KubeletPlegDurationHigh", "warning", 5)
STARTUP_LATENCY = _r("KubeletPodStartUpLatencyHigh", "warning", 15)
KUBELET_UNREACHABLE = _r("KubeletInstanceUnreachable", "warning", 15)
CM_UNREACHABLE = _r("KubeControllerManagerInstanceUnreachable", "warning", 15)
SCHED_UNREACHABLE = _r("KubeSchedulerInstanceUnreachable", "warning", 15)
TARGET_DOWN = _r("TargetDown", "warning", 10)
WATCHDOG = _r("Watchdog", "none", 0)
INFO_INHIBITOR = _r("InfoInhibitor", "none", 0)
FS_FILLING_WARN = _r("NodeFilesystemSpaceFillingUp", "warning", 60)
FS_FILLING_CRIT = _r("NodeFilesystemSpaceFillingUp", "critical", 60)
FS_OUT_WARN = _r("NodeFilesystemAlmostOutOfSpace", "warning", 30)
FS_OUT_CRIT = _r("NodeFilesystemAlmostOutOfSpace", "critical", 30)
RX_ERRS = _r("NodeNetworkReceiveErrs", "warning", 60)
CONNTRACK = _r("NodeHighNumberConntrackEntriesUsed", "warning", 0)
CLOCK_SKEW = _r("NodeClockSkewDetected", "warning", 10)
CLOCK_NOT_SYNC = _r("NodeClockNotSynchronising", "warning", 10)
NODE_CPU_HIGH = _r("NodeCPUHighUsage", "info", 15)
NODE_SATURATION = _r("NodeSystemSaturation", "warning", 15)
MAJ_FAULTS = _r("NodeMemoryMajorPagesFaults", "warning", 15)
NODE_MEM_HIGH = _r("NodeMemoryHighUtilization", "warning", 15)
ETCD_FSYNC_WARN = _r("etcdHighFsyncDurations", "warning", 10)
ETCD_FSYNC_CRIT = _r("etcdHighFsyncDurations", "critical", 10)
ETCD_COMMIT = _r("etcdHighCommitDurations", "warning", 10)
ETCD_GRPC_SLOW = _r("etcdGRPCRequestsSlow", "critical", 10)
ETCD_LEADER_CHANGES = _r("etcdHighNumberOfLeaderChanges", "warning", 5)
ETCD_COMM_SLOW = _r("etcdMemberCommunicationSlow", "warning", 10)
AM_FAILED = _r("AlertmanagerFailedToSendAlerts", "warning", 5)
AM_CLUSTER_FAILED = _r("AlertmanagerClusterFailedToSendAlerts", "critical", 5)


# --- the cluster -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    name: str
    ip: str
    control_plane: bool


@dataclass
class Workload:
    namespace: str
    kind: str  # Deployment | StatefulSet | DaemonSet | CronJob
    name: str
    container: str
    replicas: int = 1
    pods: list[str] = field(default_factory=list)  # "namespace/pod" keys
    claim: str = ""  # volumeClaimTemplate of a StatefulSet
    svc: str = ""  # the Service a ServiceMonitor scrapes ("" when not scraped)
    hpa: bool = False
    deps: list[str] = field(default_factory=list)  # shared dependencies it calls
    period_min: int = 0  # CronJob schedule
    offset_min: int = 0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Cluster:
    nodes: list[Node]
    namespaces: list[str]  # application namespaces
    data_ns: str
    protected: str  # the worker hosting the monitoring stack; never taken down
    epoch: int  # stream start, seconds since 1970 (CronJob job names)
    device: str
    fstype: str
    nic: str
    workloads: list[Workload] = field(default_factory=list)
    pods: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)
    exporters: dict[str, str] = field(default_factory=dict)  # node -> node-exporter pod
    quotas: dict[str, str] = field(default_factory=dict)  # namespace -> ResourceQuota
    ksm_pod: str = ""
    ksm_ip: str = ""
    am_pod: str = ""
    am_ip: str = ""

    @property
    def workers(self) -> list[Node]:
        return [n for n in self.nodes if not n.control_plane]

    @property
    def control_plane(self) -> list[Node]:
        return [n for n in self.nodes if n.control_plane]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def node_of(self, pod_key: str) -> Node:
        return self.node(self.pods[pod_key][0])

    def owner_key(self, pod_key: str) -> str:
        return f"{pod_key.split('/')[0]}/{self.pods[pod_key][2]}"

    def pods_on(self, node: str) -> list[str]:
        return [k for k, (n, kind, _) in self.pods.items() if n == node and kind != "Job"]

    def add_pod(self, rng: random.Random, ns: str, pod: str, node: str, kind: str,
                owner: str) -> str:
        key = f"{ns}/{pod}"
        self.pods[key] = (node, kind, owner)
        h = f"{rng.getrandbits(128):032x}"
        self.uids[key] = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        return key

    def of_kind(self, kind: str, ns: str | None = None) -> list[Workload]:
        return [w for w in self.workloads if w.kind == kind and ns in (None, w.namespace)]


BUSINESS: dict[str, list[tuple[str, str, str]]] = {
    "checkout": [("Deployment", "checkout-api", "api"), ("Deployment", "cart-service", "cart"),
                 ("Deployment", "pricing", "pricing"),
                 ("CronJob", "abandoned-cart-mailer", "mailer")],
    "payments": [("Deployment", "payments-api", "api"), ("Deployment", "fraud-scorer", "scorer"),
                 ("Deployment", "ledger-writer", "writer"),
                 ("CronJob", "settlement-export", "export")],
    "catalog": [("Deployment", "catalog-api", "api"), ("Deployment", "image-resizer", "resizer"),
                ("StatefulSet", "catalog-search", "opensearch"),
                ("CronJob", "sitemap-builder", "builder")],
    "identity": [("Deployment", "auth-server", "auth"),
                 ("Deployment", "session-gateway", "gateway"),
                 ("StatefulSet", "keycloak-db", "postgres"),
                 ("CronJob", "token-cleanup", "cleanup")],
    "orders": [("Deployment", "orders-api", "api"),
               ("Deployment", "order-events-consumer", "consumer"),
               ("StatefulSet", "orders-cache", "redis"),
               ("CronJob", "order-reconciler", "reconciler")],
    "notifications": [("Deployment", "notifier", "notifier"),
                      ("Deployment", "email-sender", "sender"),
                      ("CronJob", "digest-mailer", "mailer")],
    "search": [("Deployment", "search-api", "api"), ("Deployment", "indexer", "indexer"),
               ("StatefulSet", "opensearch", "opensearch"),
               ("CronJob", "reindex", "reindex")],
    "shipping": [("Deployment", "shipping-api", "api"),
                 ("Deployment", "label-renderer", "renderer"),
                 ("CronJob", "carrier-sync", "sync")],
    "analytics": [("Deployment", "events-collector", "collector"),
                  ("Deployment", "report-api", "api"),
                  ("StatefulSet", "clickhouse", "clickhouse"),
                  ("CronJob", "nightly-rollup", "rollup")],
    "media": [("Deployment", "media-api", "api"), ("Deployment", "transcoder", "transcoder"),
              ("StatefulSet", "minio", "minio"), ("CronJob", "orphan-sweeper", "sweeper")],
}
SHARED = ("postgres", "redis", "rabbitmq")


def _suffix(rng: random.Random, n: int = 5) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def _place(cl: Cluster, rng: random.Random, w: Workload, hosts: list[Node]) -> None:
    cl.workloads.append(w)
    if w.kind == "DaemonSet":
        for n in cl.nodes:
            key = cl.add_pod(rng, w.namespace, f"{w.name}-{_suffix(rng)}", n.name, w.kind, w.name)
            w.pods.append(key)
        return
    if w.kind == "CronJob":
        return
    spread = rng.sample(hosts, min(w.replicas, len(hosts)))
    rs = _suffix(rng, 10)
    for i in range(w.replicas):
        pod = f"{w.name}-{rs}-{_suffix(rng)}" if w.kind == "Deployment" else f"{w.name}-{i}"
        w.pods.append(cl.add_pod(rng, w.namespace, pod, spread[i % len(spread)].name, w.kind,
                                 w.name))


def _build_cluster(rng: random.Random) -> Cluster:
    prefix = rng.choice(["prod", "prd-eu1", "live", "k8s-prod", "core"])
    net, sub = rng.randint(0, 31), rng.randint(1, 3)
    nodes = [Node(f"{prefix}-cp-{i}", f"10.{net}.0.{10 + i}", True) for i in range(1, 4)]
    hosts = rng.sample(range(20, 250), 8)
    pooled = rng.random() < 0.5
    for i in range(rng.randint(5, 8)):
        name = (f"{prefix}-pool-{rng.choice('ab')}-{_suffix(rng)}" if pooled
                else f"{prefix}-worker-{i + 1:02d}")
        nodes.append(Node(name, f"10.{net}.{sub}.{hosts[i]}", False))
    platform = ["ingress-nginx"] + (["logging"] if rng.random() < 0.6 else [])
    data_ns = rng.choice(["data", "databases", "platform-data"])
    business = rng.sample(sorted(BUSINESS), rng.randint(6, 8) - 1 - len(platform))
    epoch = 1_704_067_200 + rng.randrange(150) * 86400 + rng.randrange(1440) * 60
    disk = rng.choice([("/dev/nvme0n1p1", "ext4"), ("/dev/sda1", "ext4"), ("/dev/vda1", "xfs")])
    cl = Cluster(nodes, [data_ns, *platform, *business], data_ns, "", epoch, disk[0], disk[1],
                 rng.choice(["eth0", "ens5", "enp0s3"]))
    workers = cl.workers
    cl.protected = workers[0].name
    mon = [workers[0]]

    def pod_ip() -> str:
        return f"10.244.{rng.randint(0, 15)}.{rng.randint(2, 250)}"

    system = [
        Workload("kube-system", "Deployment", "coredns", "coredns", 2, svc=f"{REL}-coredns"),
        Workload("kube-system", "Deployment", "metrics-server", "metrics-server"),
        Workload("kube-system", "Deployment", "calico-kube-controllers", "calico-kube-controllers"),
        Workload("kube-system", "DaemonSet", "kube-proxy", "kube-proxy"),
        Workload("kube-system", "DaemonSet", "calico-node", "calico-node"),
        Workload("monitoring", "DaemonSet", f"{REL}-prometheus-node-exporter", "node-exporter"),
        Workload("ingress-nginx", "Deployment", "ingress-nginx-controller", "controller",
                 rng.randint(2, 3), svc="ingress-nginx-controller-metrics"),
    ]
    for w in system:
        _place(cl, rng, w, workers)
    if "logging" in platform:
        _place(cl, rng, Workload("logging", "DaemonSet", "fluent-bit", "fluent-bit",
                                 svc="fluent-bit"), workers)
    monitoring = [
        Workload("monitoring", "Deployment", f"{REL}-kube-state-metrics", KSM),
        Workload("monitoring", "Deployment", f"{REL}-operator", REL),
        Workload("monitoring", "Deployment", f"{REL}-grafana", "grafana"),
        Workload("monitoring", "StatefulSet", f"prometheus-{REL}-prometheus", "prometheus",
                 claim=f"prometheus-{REL}-prometheus-db"),
        Workload("monitoring", "StatefulSet", f"alertmanager-{REL}-alertmanager", "alertmanager",
                 claim=f"alertmanager-{REL}-alertmanager-db"),
    ]
    for w in monitoring:
        _place(cl, rng, w, mon)
    cl.ksm_pod, cl.ksm_ip = monitoring[0].pods[0].split("/")[1], pod_ip()
    cl.am_pod, cl.am_ip = monitoring[4].pods[0].split("/")[1], pod_ip()
    for key in system[5].pods:
        cl.exporters[cl.pods[key][0]] = key.split("/")[1]

    data = [
        Workload(data_ns, "StatefulSet", "postgres", "postgres", rng.choice([1, 2, 3]),
                 claim="data", svc="postgres-metrics"),
        Workload(data_ns, "StatefulSet", "redis", "redis", rng.choice([1, 3]), claim="data"),
        Workload(data_ns, "StatefulSet", "rabbitmq", "rabbitmq", 3, claim="data",
                 svc="rabbitmq"),
        Workload(data_ns, "Deployment", "pgbouncer", "pgbouncer", 2),
        Workload(data_ns, "CronJob", "pg-backup", "backup", period_min=1440,
                 offset_min=rng.randrange(1440)),
    ]
    for w in data:
        _place(cl, rng, w, workers)
    apps: list[Workload] = []
    for ns in business:
        for idx, (kind, name, container) in enumerate(BUSINESS[ns]):
            if idx >= 2 and rng.random() < 0.2:
                continue
            w = Workload(ns, kind, name, container)
            if kind == "Deployment":
                w.replicas = rng.choice([2, 2, 3, 3, 4, 4, 5, 6])
                w.svc = name if rng.random() < 0.55 else ""
                w.hpa = w.replicas >= 3 and rng.random() < 0.45
                w.deps = [d for d, p in zip(SHARED, (0.5, 0.35, 0.25), strict=True)
                          if rng.random() < p]
                apps.append(w)
            elif kind == "StatefulSet":
                w.replicas, w.claim = rng.choice([1, 3]), "data"
                w.svc = f"{name}-metrics" if rng.random() < 0.5 else ""
            else:
                w.period_min = rng.choice([15, 30, 60, 60, 120, 1440])
                w.offset_min = rng.randrange(1440) if w.period_min == 1440 else 0
            _place(cl, rng, w, workers)
        if rng.random() < 0.7:
            cl.quotas[ns] = rng.choice(["compute-resources", f"{ns}-quota", "team-quota"])
    for dep in SHARED:
        while len([w for w in apps if dep in w.deps]) < 2:
            rng.choice([w for w in apps if dep not in w.deps]).deps.append(dep)
    return cl


# --- recording alerts ------------------------------------------------------------------------


class Recorder:
    """Alerts as Alertmanager receives them; one Prometheus series fires once at a time."""

    def __init__(self, rng: random.Random, duration: float) -> None:
        self.rng = rng
        self.duration = duration
        self.alerts: list[StreamAlert] = []
        self.fors: list[float] = []
        self._series: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}

    @staticmethod
    def full(rule: Rule, labels: dict[str, str]) -> dict[str, str]:
        return {"alertname": rule.alertname, **labels, **dict(rule.extra),
                "severity": rule.severity, "prometheus": PROM}

    def fits(self, rule: Rule, labels: dict[str, str], fire: float, end: float) -> bool:
        spans = self._series.get(tuple(sorted(self.full(rule, labels).items())), [])
        gap = max(rule.for_s, 30.0)  # to fire again the rule must be pending for `for:` again
        return not any(fire < e + gap and s < end + gap for s, e in spans)

    def place(self, rule: Rule, labels: dict[str, str], fire: float, end: float, *,
              truth: str | None = None, noise: str | None = None) -> bool:
        """An alert firing over [fire, end] (seconds from the stream's start)."""
        end = max(end, fire + 30.0)
        if fire >= self.duration or end <= 0 or not self.fits(rule, labels, fire, end):
            return False
        full = self.full(rule, labels)
        self._series.setdefault(tuple(sorted(full.items())), []).append((fire, end))
        ends = None if end >= self.duration else round(end, 1)
        self.alerts.append(StreamAlert(full, round(max(fire, 0.0), 1), ends, truth, noise))
        self.fors.append(rule.for_s)
        return True

    def emit(self, rule: Rule, labels: dict[str, str], active: float, until: float, *,
             truth: str | None = None, noise: str | None = None) -> bool:
        """The rule's condition holds over [active, until]; it fires after `for:` if it lasts."""
        fire = active + rule.for_s + self.rng.uniform(0.0, 30.0)
        end = until + self.rng.uniform(0.0, 30.0)
        if end <= fire:
            return False
        return self.place(rule, labels, fire, end, truth=truth, noise=noise)


class Ledger:
    """Which node, pod, claim or workload a problem holds, and when (exclusive or shared)."""

    def __init__(self) -> None:
        self._held: list[tuple[str, float, float, bool]] = []

    def free(self, keys: list[tuple[str, bool]], start: float, end: float) -> bool:
        return not any(k == key and s < end and start < e and (excl or x)
                       for key, excl in keys for k, s, e, x in self._held)

    def claim(self, keys: list[tuple[str, bool]], start: float, end: float) -> bool:
        if not self.free(keys, start, end):
            return False
        self._held.extend((k, start, end, x) for k, x in keys)
        return True


@dataclass
class Ctx:
    rng: random.Random
    cl: Cluster
    rec: Recorder
    ledger: Ledger
    duration: float

    def u(self, lo: float, hi: float) -> float:
        return self.rng.uniform(lo, hi)


@dataclass(frozen=True)
class Hint:
    ns: str | None = None
    node: str | None = None
    t0: float | None = None


def _ksm(cl: Cluster, **metric: str) -> dict[str, str]:
    """A kube-state-metrics series: the metric's labels win over the scrape target's."""
    return {"container": KSM, "endpoint": "http", "instance": f"{cl.ksm_ip}:8080", "job": KSM,
            "namespace": "monitoring", "pod": cl.ksm_pod, "service": f"{REL}-{KSM}", **metric}


def _kubelet(node: Node, **metric: str) -> dict[str, str]:
    return {"endpoint": "https-metrics", "instance": f"{node.ip}:10250", "job": "kubelet",
            "metrics_path": "/metrics", "namespace": "kube-system", "node": node.name,
            "service": f"{REL}-kubelet", **metric}


def _node_exporter(cl: Cluster, node: Node, **metric: str) -> dict[str, str]:
    return {"container": "node-exporter", "endpoint": "http-metrics",
            "instance": f"{node.ip}:9100", "job": "node-exporter", "namespace": "monitoring",
            "pod": cl.exporters[node.name], "service": f"{REL}-prometheus-node-exporter",
            **metric}


def _etcd(node: Node, **metric: str) -> dict[str, str]:
    return {"endpoint": "http-metrics", "instance": f"{node.ip}:2381", "job": "kube-etcd",
            "namespace": "kube-system", "service": f"{REL}-kube-etcd", **metric}


def _throttled(cl: Cluster, pod_key: str) -> dict[str, str]:
    ns, pod = pod_key.split("/")
    w = next(w for w in cl.workloads if pod_key in w.pods)
    return {"container": w.container, "instance": f"{cl.node_of(pod_key).ip}:10250",
            "namespace": ns, "pod": pod, "service": f"{REL}-kubelet"}


def _not_ready(pod_key: str) -> dict[str, str]:
    ns, pod = pod_key.split("/")
    return {"job": KSM, "namespace": ns, "pod": pod}


def _crashing(cl: Cluster, pod_key: str, container: str,
              reason: str = "CrashLoopBackOff") -> dict[str, str]:
    ns, pod = pod_key.split("/")
    return _ksm(cl, container=container, namespace=ns, pod=pod, reason=reason,
                uid=cl.uids[pod_key])


def _target_down(job: str, ns: str, service: str | None = None) -> dict[str, str]:
    return {"job": job, "namespace": ns, "service": service or job}


# --- real incidents ----------------------------------------------------------------------------

Incident = Callable[[Ctx, str, Hint], "str | None"]


def _node_down(x: Ctx, iid: str, hint: Hint) -> str | None:
    cl = x.cl
    cands = [n for n in cl.workers if n.name != cl.protected and hint.node in (None, n.name)]
    for _ in range(30):
        node = x.rng.choice(cands)
        t0 = hint.t0 if hint.t0 is not None else x.u(15 * MIN, x.duration - 50 * MIN)
        t1 = t0 + x.u(25 * MIN, 100 * MIN)
        victims = cl.pods_on(node.name)
        owners = sorted({cl.owner_key(p) for p in victims})
        keys = [("nodedown", True), (f"node:{node.name}", True),
                *((f"pod:{p}", True) for p in victims), *((f"wl:{o}", True) for o in owners)]
        if x.ledger.claim(keys, t0 - 5 * MIN, t1 + 15 * MIN):
            break
    else:
        return None

    def e(rule: Rule, labels: dict[str, str], active: float, until: float) -> None:
        x.rec.emit(rule, labels, active, until, truth=iid)

    lost = t0 + x.u(40, 55)  # node-monitor-grace-period
    e(NODE_NOT_READY, _ksm(cl, condition="Ready", node=node.name, status="true"),
      lost + x.u(0, 30), t1 + x.u(10, 40))
    e(NODE_UNREACHABLE, _ksm(cl, effect="NoSchedule", key="node.kubernetes.io/unreachable",
                             node=node.name), lost + x.u(0, 30), t1 + x.u(5, 40))
    e(KUBELET_UNREACHABLE, _kubelet(node), t0 + x.u(0, 30), t1 + x.u(0, 30))
    if 100 / len(cl.nodes) > 10:  # TargetDown: more than 10 % of a job's targets down
        e(TARGET_DOWN, _target_down("kubelet", "kube-system", f"{REL}-kubelet"),
          t0 + x.u(0, 30), t1 + x.u(0, 40))
        e(TARGET_DOWN, _target_down("node-exporter", "monitoring",
                                    f"{REL}-prometheus-node-exporter"),
          t0 + x.u(0, 30), t1 + x.u(0, 40))
        if cl.of_kind("DaemonSet", "logging"):
            e(TARGET_DOWN, _target_down("fluent-bit", "logging"), t0 + x.u(0, 30),
              t1 + x.u(10, 60))
    for p in victims:  # Running but not ready, or stuck Terminating once evicted
        e(POD_NOT_READY, _not_ready(p), lost + x.u(5, 40), t1 + x.u(40, 150))
    for o in owners:
        ns, name = o.split("/")
        kind = next(w.kind for w in cl.workloads if w.key == o)
        if kind == "StatefulSet":
            e(STS_MISMATCH, _ksm(cl, namespace=ns, statefulset=name), lost + x.u(5, 40),
              t1 + x.u(60, 200))
        elif kind == "DaemonSet":
            e(DS_STUCK, _ksm(cl, daemonset=name, namespace=ns), lost + x.u(5, 40),
              t1 + x.u(40, 150))
    spaces = sorted({p.split("/")[0] for p in victims})
    return (f"Worker node {node.name} went down for {round((t1 - t0) / MIN)} min (kubelet "
            f"stopped reporting); its pods in {len(spaces)} namespaces went unready")


def _bad_rollout(x: Ctx, iid: str, hint: Hint) -> str | None:
    cl = x.cl
    cands = [w for w in cl.of_kind("Deployment", hint.ns)
             if w.replicas >= 2 and w.namespace in cl.namespaces]
    for _ in range(30):
        if not cands:
            return None
        w = x.rng.choice(cands)
        t0 = hint.t0 if hint.t0 is not None else x.u(10 * MIN, x.duration - 45 * MIN)
        t1 = t0 + x.u(22 * MIN, 80 * MIN)
        surge, unavailable = math.ceil(w.replicas / 4), w.replicas // 4
        healthy = [n for n in cl.workers
                   if x.ledger.free([(f"node:{n.name}", False)], t0 - 5 * MIN, t1 + 15 * MIN)]
        if not healthy:
            continue
        hosts = [x.rng.choice(healthy) for _ in range(surge + unavailable)]
        if hint.node is not None:
            if hint.node not in [n.name for n in healthy]:
                return None
            hosts[0] = cl.node(hint.node)
        keys = [(f"wl:{w.key}", True), *((f"node:{n.name}", False) for n in hosts)]
        if x.ledger.claim(keys, t0 - 5 * MIN, t1 + 15 * MIN):
            break
    else:
        return None
    rs = _suffix(x.rng, 10)
    new = [cl.add_pod(x.rng, w.namespace, f"{w.name}-{rs}-{_suffix(x.rng)}", n.name,
                      "Deployment", w.name) for n in hosts]
    for p in new:
        x.rec.emit(POD_NOT_READY, _not_ready(p), t0 + x.u(15, 45), t1 + x.u(5, 30), truth=iid)
        x.rec.emit(CRASHLOOP, _crashing(cl, p, w.container), t0 + x.u(50, 150),
                   t1 + x.u(240, 300), truth=iid)  # max_over_time(...[5m]) outlives the pod
    if unavailable:
        x.rec.emit(DEPLOY_MISMATCH, _ksm(cl, deployment=w.name, namespace=w.namespace),
                   t0 + 10 * MIN + x.u(0, 40), t1 + x.u(40, 120), truth=iid)
    x.rec.emit(ROLLOUT_STUCK, _ksm(cl, condition="Progressing", deployment=w.name,
                                   namespace=w.namespace, reason="ProgressDeadlineExceeded",
                                   status="false"),
               t0 + 10 * MIN + x.u(0, 30), t1 + x.u(5, 30), truth=iid)  # progressDeadline
    if w.svc and len(new) / (w.replicas - unavailable + len(new)) > 0.1:
        x.rec.emit(TARGET_DOWN, _target_down(w.svc, w.namespace), t0 + x.u(40, 100),
                   t1 + x.u(20, 60), truth=iid)
    cause = x.rng.choice(["a missing environment variable", "a config key renamed",
                          "a schema migration not yet applied", "a nil dereference at start"])
    return (f"Bad rollout of Deployment {w.key}: the new ReplicaSet's pods crash-loop on "
            f"{cause} until it is rolled back")


def _pick_clients(x: Ctx, dep: str, t0: float, t1: float) -> list[Workload]:
    clients = [w for w in x.cl.of_kind("Deployment") if dep in w.deps]
    x.rng.shuffle(clients)
    chosen: list[Workload] = []
    for w in clients:
        keys = [(f"wl:{w.key}", True), *((f"pod:{p}", True) for p in w.pods),
                *((f"node:{x.cl.pods[p][0]}", False) for p in w.pods)]
        if len(chosen) < 4 and x.ledger.claim(keys, t0 - 5 * MIN, t1 + 15 * MIN):
            chosen.append(w)
    return chosen


def _clients_fail(x: Ctx, iid: str, clients: list[Workload], t0: float, t1: float) -> None:
    """Callers of a failed dependency: readiness fails everywhere, liveness kills some."""
    for w in clients:
        tc = t0 + x.u(30, 180)
        liveness = x.rng.random() < 0.5
        for p in w.pods:
            x.rec.emit(POD_NOT_READY, _not_ready(p), tc + x.u(0, 30), t1 + x.u(30, 120),
                       truth=iid)
            if liveness:
                x.rec.emit(CRASHLOOP, _crashing(x.cl, p, w.container), tc + x.u(60, 200),
                           t1 + x.u(300, 420), truth=iid)
        x.rec.emit(DEPLOY_MISMATCH, _ksm(x.cl, deployment=w.name, namespace=w.namespace),
                   tc + x.u(10, 40), t1 + x.u(60, 180), truth=iid)
        if liveness and w.svc:
            x.rec.emit(TARGET_DOWN, _target_down(w.svc, w.namespace), tc + x.u(60, 120),
                       t1 + x.u(60, 120), truth=iid)


def _pvc_fill(x: Ctx, iid: str, hint: Hint) -> str | None:
    cl = x.cl
    cands = [(w, p) for w in cl.of_kind("StatefulSet", hint.ns) if w.namespace in cl.namespaces
             for p in w.pods if hint.node in (None, cl.pods[p][0])]
    for _ in range(30):
        if not cands:
            return None
        w, pod_key = x.rng.choice(cands)
        node = cl.node_of(pod_key)
        pvc = f"{w.claim}-{pod_key.split('/')[1]}"
        warn = hint.t0 if hint.t0 is not None else x.u(5 * MIN, x.duration - 100 * MIN)
        stage = x.rng.choices(["warning", "critical", "full"], [0.2, 0.3, 0.5])[0]
        crit = warn + x.u(30 * MIN, 110 * MIN)  # below 3 % free
        full = crit + x.u(4 * MIN, 20 * MIN)
        fix = {"warning": warn + x.u(20 * MIN, 80 * MIN), "critical": crit + x.u(8, 35) * MIN,
               "full": full + x.u(20 * MIN, 60 * MIN)}[stage]
        keys = [(f"pvc:{pvc}", True), (f"pod:{pod_key}", True), (f"wl:{w.key}", True),
                (f"node:{node.name}", False)]
        clients: list[Workload] = []
        if x.ledger.claim(keys, warn - HOUR, fix + 15 * MIN):
            if stage == "full" and w.namespace == cl.data_ns and w.name in SHARED:
                clients = _pick_clients(x, w.name, full, fix)
            break
    else:
        return None
    labels = _kubelet(node, namespace=w.namespace, persistentvolumeclaim=pvc)
    x.rec.place(PV_FILLING_WARN, labels, warn, fix + x.u(60, 150), truth=iid)
    if stage != "warning":
        x.rec.emit(PV_FILLING_CRIT, labels, crit, fix + x.u(60, 150), truth=iid)
    if stage == "full":
        x.rec.emit(CRASHLOOP, _crashing(cl, pod_key, w.container), full + x.u(60, 150),
                   fix + x.u(360, 480), truth=iid)
        x.rec.emit(POD_NOT_READY, _not_ready(pod_key), full + x.u(10, 40), fix + x.u(60, 180),
                   truth=iid)
        x.rec.emit(STS_MISMATCH, _ksm(cl, namespace=w.namespace, statefulset=w.name),
                   full + x.u(10, 40), fix + x.u(60, 200), truth=iid)
        _clients_fail(x, iid, clients, full, fix)
    tail = {"warning": "expanded before it got critical",
            "critical": "expanded just before it filled",
            "full": "filled up and the pod crash-looped until the claim was expanded"}[stage]
    more = f"; its clients in {len(clients)} other workloads failed" if clients else ""
    return f"Volume claim {w.namespace}/{pvc} of StatefulSet {w.name} filling up, {tail}{more}"


def _node_disk_fill(x: Ctx, iid: str, hint: Hint) -> str | None:
    cl = x.cl
    cands = [n for n in cl.workers if n.name != cl.protected and hint.node in (None, n.name)]
    for _ in range(30):
        node = x.rng.choice(cands)
        warn = hint.t0 if hint.t0 is not None else x.u(5 * MIN, x.duration - 110 * MIN)
        variant = x.rng.choices(["warning", "chatty", "host"], [0.2, 0.35, 0.45])[0]
        pressure = warn + x.u(10 * MIN, 50 * MIN)  # below 10 %: DiskPressure, evictions
        chatty = [p for p in cl.pods_on(node.name)
                  if cl.pods[p][1] == "Deployment" and p.split("/")[0] in cl.namespaces]
        if variant == "chatty" and not chatty:
            continue
        fix = {"warning": warn + x.u(15 * MIN, 45 * MIN), "chatty": pressure + x.u(60, 150),
               "host": pressure + x.u(25 * MIN, 110 * MIN)}[variant]
        noisy = x.rng.choice(chatty) if variant == "chatty" else ""
        keys = [(f"disk:{node.name}", True), (f"node:{node.name}", False)]
        if noisy:
            keys += [(f"pod:{noisy}", True), (f"wl:{cl.owner_key(noisy)}", True)]
        if x.ledger.claim(keys, warn - HOUR, fix + 15 * MIN):
            break
    else:
        return None

    def e(rule: Rule, labels: dict[str, str], active: float, until: float) -> None:
        x.rec.emit(rule, labels, active, until, truth=iid)

    fs = _node_exporter(cl, node, device=cl.device, fstype=cl.fstype, mountpoint="/")
    settle = fix + x.u(30, 120)
    x.rec.place(FS_FILLING_WARN, fs, warn, settle, truth=iid)
    if variant != "warning":
        e(NODE_EVICTION, {"eviction_signal": "nodefs.available", "instance": f"{node.ip}:10250",
                          "node": node.name}, pressure + x.u(20, 60),
          min(fix, pressure + x.u(5 * MIN, 30 * MIN)) + 15 * MIN)  # rate(...[15m])
    if variant == "host":
        e(NODE_PRESSURE, _ksm(cl, condition="DiskPressure", node=node.name, status="true"),
          pressure + x.u(10, 40), fix + 5 * MIN + x.u(0, 60))  # pressure transition period
        e(FS_FILLING_CRIT, fs, pressure, settle)
        five = pressure + x.u(10 * MIN, 40 * MIN)
        e(FS_OUT_WARN, fs, five, settle)
        e(FS_OUT_CRIT, fs, five + x.u(8 * MIN, 25 * MIN), settle)
    what = {"warning": "cleaned up while only the early warning fired",
            "chatty": f"by the container logs of {noisy}, which the kubelet evicted",
            "host": "by host logs and core dumps; the kubelet evicted pods until it was cleaned"}
    return f"Root disk of node {node.name} filling {what[variant]}"


def _cronjob_fail(x: Ctx, iid: str, hint: Hint) -> str | None:
    cl = x.cl
    cands = [w for w in cl.of_kind("CronJob", hint.ns) if w.namespace in cl.namespaces]
    for _ in range(30):
        if not cands:
            return None
        w = x.rng.choice(cands)
        period, base = w.period_min * MIN, w.offset_min * MIN - cl.epoch
        runs = [t for t in (base % period + k * period for k in range(400))
                if 5 * MIN <= t < x.duration - 40 * MIN]
        if hint.t0 is not None:
            runs = [t for t in runs if t >= hint.t0 - 5 * MIN][:1]
        if not runs:
            continue
        first = x.rng.choice(runs[: len(runs) // 2 + 1])
        pull = period >= HOUR and x.rng.random() < 0.3
        fix = first + (x.u(70 * MIN, 160 * MIN) if pull else x.u(40 * MIN, 150 * MIN))
        host = x.rng.choice(cl.workers)
        keys = [(f"wl:{w.key}", True)] + ([(f"node:{host.name}", False)] if pull else [])
        if x.ledger.claim(keys, first - 5 * MIN, fix + 45 * MIN):
            break
    else:
        return None

    def job(t: float) -> str:
        return f"{w.name}-{(cl.epoch + int(t)) // 60}"  # minutes since epoch of the schedule

    if pull:
        pod = cl.add_pod(x.rng, w.namespace, f"{job(first)}-{_suffix(x.rng)}", host.name, "Job",
                         w.name)
        x.rec.emit(CONTAINER_WAITING, _crashing(cl, pod, w.container, "ImagePullBackOff"),
                   first + x.u(20, 60), fix, truth=iid)
        return (f"CronJob {w.key}: job {job(first)} stuck pulling a mistyped image tag "
                f"(later runs skipped, concurrencyPolicy Forbid)")
    failing = [t for t in runs if first <= t < fix] or [first]
    failed_at = [t + x.u(60, 660) for t in failing]  # backoffLimit retries, then Failed
    for i, t in enumerate(failing):
        # failedJobsHistoryLimit 1: the next failure deletes this job; the last one stays
        # until someone deletes it after the fix.
        until = failed_at[i + 1] if i + 1 < len(failed_at) else fix + x.u(5 * MIN, 40 * MIN)
        x.rec.emit(JOB_FAILED, _ksm(cl, condition="true", job_name=job(t), namespace=w.namespace),
                   failed_at[i] + x.u(0, 30), until, truth=iid)
    runs_text = "its one run" if len(failing) == 1 else f"{len(failing)} runs in a row"
    return f"CronJob {w.key} failing ({runs_text}) until its bug was fixed"


def _control_plane(x: Ctx, iid: str, hint: Hint) -> str | None:
    cl = x.cl
    t0 = hint.t0 if hint.t0 is not None else x.u(10 * MIN, x.duration - 60 * MIN)
    t1 = t0 + x.u(25 * MIN, 90 * MIN)
    if x.rng.random() < 0.45:
        w = next(w for w in cl.of_kind("Deployment", "kube-system")
                 if w.name == "metrics-server")
        pod = w.pods[0]
        keys = [("aggapi", True), (f"wl:{w.key}", True), (f"pod:{pod}", True),
                (f"node:{cl.pods[pod][0]}", False)]
        if not x.ledger.claim(keys, t0 - 5 * MIN, t1 + 20 * MIN):
            return None
        x.rec.emit(CRASHLOOP, _crashing(cl, pod, w.container), t0 + x.u(60, 150),
                   t1 + x.u(300, 420), truth=iid)
        x.rec.emit(POD_NOT_READY, _not_ready(pod), t0 + x.u(10, 40), t1 + x.u(30, 90),
                   truth=iid)
        x.rec.emit(DEPLOY_MISMATCH, _ksm(cl, deployment=w.name, namespace="kube-system"),
                   t0 + x.u(10, 40), t1 + x.u(30, 90), truth=iid)
        api = "v1beta1.metrics.k8s.io"
        x.rec.emit(AGG_API_DOWN, {"name": api, "namespace": "kube-system"}, t0 + x.u(90, 150),
                   t1 + x.u(8 * MIN, 9 * MIN), truth=iid)  # avg_over_time(...[10m]) < 85 %
        for cp in cl.control_plane:
            x.rec.emit(AGG_API_ERRORS, {"instance": f"{cp.ip}:6443", "name": api,
                                        "reason": "FailedDiscoveryCheck"},
                       t0 + x.u(30, 90), t1 + x.u(60, 120), truth=iid)
        return ("metrics-server OOM-killed in a crash loop: the metrics.k8s.io aggregated API "
                "went down (HPAs blind)")
    member = x.rng.choice(cl.control_plane)
    leader = x.rng.random() < 0.6
    keys = [("etcd", True)] + ([("apiserver", True)] if leader else [])
    if not x.ledger.claim(keys, t0 - 5 * MIN, t1 + 2 * HOUR):
        return None

    def e(rule: Rule, labels: dict[str, str], active: float, until: float) -> None:
        x.rec.emit(rule, labels, active, until, truth=iid)

    e(ETCD_FSYNC_WARN, _etcd(member), t0 + x.u(30, 120), t1 + x.u(120, 300))
    if x.rng.random() < 0.5:
        e(ETCD_FSYNC_CRIT, _etcd(member), t0 + x.u(2 * MIN, 10 * MIN), t1 + x.u(60, 240))
    e(ETCD_COMMIT, _etcd(member), t0 + x.u(60, 200), t1 + x.u(120, 300))
    if leader:  # a slow leader slows every write: all members answer slowly
        for m in cl.control_plane:
            e(ETCD_GRPC_SLOW, _etcd(m, grpc_method="Txn", grpc_service="etcdserverpb.KV"),
              t0 + x.u(60, 240), t1 + x.u(60, 300))
        if x.rng.random() < 0.6:
            e(ETCD_LEADER_CHANGES, {"endpoint": "http-metrics", "job": "kube-etcd",
                                    "namespace": "kube-system",
                                    "service": f"{REL}-kube-etcd"},
              t0 + x.u(5 * MIN, 12 * MIN), min(t1, t0 + x.u(20 * MIN, 35 * MIN)) + 15 * MIN)
        e(BURN_1H, {}, t0 + x.u(6 * MIN, 20 * MIN), t1 + x.u(3 * MIN, 6 * MIN))
        e(BURN_6H, {}, t0 + x.u(15 * MIN, 35 * MIN), t1 + x.u(15 * MIN, 30 * MIN))
        e(BURN_1D, {}, t0 + x.u(25 * MIN, 50 * MIN), t1 + x.u(60 * MIN, 120 * MIN))
    role = "the leader's" if leader else "a follower's"
    return (f"Slow disk under etcd on {member.name} ({role} WAL fsync)"
            + ("; API server latency SLO burning" if leader else ""))


def _cascade(x: Ctx, iid: str, hint: Hint) -> str | None:
    cl = x.cl
    for _ in range(30):
        w = x.rng.choice([s for s in cl.of_kind("StatefulSet", cl.data_ns) if s.name in SHARED])
        t0 = hint.t0 if hint.t0 is not None else x.u(10 * MIN, x.duration - 60 * MIN)
        t1 = t0 + x.u(25 * MIN, 80 * MIN)
        broken = w.pods[:1] if w.name == "postgres" else w.pods
        keys = [(f"wl:{w.key}", True), *((f"pod:{p}", True) for p in broken),
                *((f"node:{cl.pods[p][0]}", False) for p in broken)]
        if x.ledger.claim(keys, t0 - 5 * MIN, t1 + 15 * MIN):
            break
    else:
        return None
    clients = _pick_clients(x, w.name, t0, t1)
    for p in broken:
        x.rec.emit(CRASHLOOP, _crashing(cl, p, w.container), t0 + x.u(60, 150),
                   t1 + x.u(360, 450), truth=iid)
        x.rec.emit(POD_NOT_READY, _not_ready(p), t0 + x.u(10, 40), t1 + x.u(60, 150), truth=iid)
    x.rec.emit(STS_MISMATCH, _ksm(cl, namespace=w.namespace, statefulset=w.name),
               t0 + x.u(10, 40), t1 + x.u(90, 200), truth=iid)
    _clients_fail(x, iid, clients, t0, t1)
    spaces = sorted({c.namespace for c in clients})
    cause = {"postgres": "primary OOM-killed by a runaway query",
             "redis": "out of memory after maxmemory was lowered",
             "rabbitmq": "a quorum-queue upgrade bug"}[w.name]
    fallout = (f"its clients in {', '.join(spaces)} failed with it" if spaces
               else "its clients rode it out on retries")
    return f"Shared {w.name} in {w.namespace} crash-looping ({cause}); {fallout}"


def _memory_leak(x: Ctx, iid: str, hint: Hint) -> str | None:
    cl = x.cl
    cands = [p for w in cl.of_kind("Deployment", hint.ns) if w.namespace in cl.namespaces
             for p in w.pods if cl.pods[p][0] != cl.protected]
    for _ in range(30):
        pod = x.rng.choice(cands)
        node = cl.node_of(pod)
        t0 = hint.t0 if hint.t0 is not None else x.u(10 * MIN, x.duration - 90 * MIN)
        evict = t0 + x.u(18 * MIN, 60 * MIN)
        keys = [(f"pod:{pod}", True), (f"wl:{cl.owner_key(pod)}", True),
                (f"mem:{node.name}", True), (f"node:{node.name}", False)]
        if x.ledger.claim(keys, t0 - 5 * MIN, evict + 20 * MIN):
            break
    else:
        return None
    x.rec.emit(NODE_MEM_HIGH, _node_exporter(cl, node), t0, evict + x.u(30, 90), truth=iid)
    if x.rng.random() < 0.4:
        x.rec.emit(MAJ_FAULTS, _node_exporter(cl, node), t0 + x.u(5 * MIN, 15 * MIN),
                   evict + x.u(60, 120), truth=iid)
    x.rec.emit(NODE_PRESSURE, _ksm(cl, condition="MemoryPressure", node=node.name,
                                   status="true"),
               evict - x.u(2 * MIN, 10 * MIN), evict + 5 * MIN + x.u(0, 30), truth=iid)
    x.rec.emit(NODE_EVICTION, {"eviction_signal": "memory.available",
                               "instance": f"{node.ip}:10250", "node": node.name},
               evict + x.u(15, 45), evict + x.u(14 * MIN, 16 * MIN), truth=iid)
    return (f"Memory leak in {pod} (no memory limit) exhausted node {node.name} until the "
            f"kubelet evicted it")


def _alertmanager(x: Ctx, iid: str, hint: Hint) -> str | None:
    t0 = hint.t0 if hint.t0 is not None else x.u(10 * MIN, x.duration - 60 * MIN)
    t1 = t0 + x.u(25 * MIN, 120 * MIN)
    if not x.ledger.claim([("alertmanager", True)], t0 - 5 * MIN, t1 + 20 * MIN):
        return None
    integration = x.rng.choice(["slack", "pagerduty", "opsgenie", "email"])
    reason = x.rng.choice(["clientError", "serverError", "other"])
    cl = x.cl
    x.rec.emit(AM_FAILED, {"container": "alertmanager", "endpoint": "http-web",
                           "instance": f"{cl.am_ip}:9093", "integration": integration,
                           "job": f"{REL}-alertmanager", "namespace": "monitoring",
                           "pod": cl.am_pod, "reason": reason,
                           "service": f"{REL}-alertmanager"},
               t0 + x.u(20, 90), t1 + x.u(13 * MIN, 15 * MIN), truth=iid)  # rate(...[15m])
    x.rec.emit(AM_CLUSTER_FAILED, {"integration": integration, "namespace": "monitoring",
                                   "service": f"{REL}-alertmanager"},
               t0 + x.u(30, 100), t1 + x.u(13 * MIN, 15 * MIN), truth=iid)
    return f"Alertmanager could not deliver to {integration} ({reason}) until its secret was fixed"


def _hpa_saturation(x: Ctx, iid: str, hint: Hint) -> str | None:
    cl = x.cl
    cands = [w for w in cl.of_kind("Deployment", hint.ns) if w.hpa]
    for _ in range(30):
        if not cands:
            return None
        w = x.rng.choice(cands)
        t0 = hint.t0 if hint.t0 is not None else x.u(10 * MIN, x.duration - 60 * MIN)
        t1 = t0 + x.u(35 * MIN, 100 * MIN)
        hot = x.rng.sample(w.pods, x.rng.randint(1, len(w.pods)))
        keys = [(f"wl:{w.key}", True), *((f"pod:{p}", True) for p in hot),
                *((f"node:{cl.pods[p][0]}", False) for p in hot)]
        if x.ledger.claim(keys, t0 - 5 * MIN, t1 + 15 * MIN):
            break
    else:
        return None
    x.rec.emit(HPA_MAXED, _ksm(cl, horizontalpodautoscaler=w.name, namespace=w.namespace), t0,
               t1 + x.u(30, 90), truth=iid)
    for p in hot:
        x.rec.emit(CPU_THROTTLING, _throttled(cl, p), t0 + x.u(MIN, 8 * MIN),
                   t1 + x.u(3 * MIN, 8 * MIN), truth=iid)
    return f"Traffic surge held {w.key} at its HPA maximum, pods throttled, until max was raised"


KINDS: dict[str, Incident] = {
    "node_down": _node_down, "bad_rollout": _bad_rollout, "pvc_fill": _pvc_fill,
    "node_disk_fill": _node_disk_fill, "cronjob_fail": _cronjob_fail,
    "control_plane": _control_plane, "cascade": _cascade, "memory_leak": _memory_leak,
    "alertmanager": _alertmanager, "hpa_saturation": _hpa_saturation,
}


def _incidents(x: Ctx) -> dict[str, str]:
    rng, cl = x.rng, x.cl
    found: dict[str, str] = {}
    target = rng.randint(11, 13)

    def attempt(kind: str, hint: Hint) -> bool:
        iid = f"I{len(found) + 1}"
        description = KINDS[kind](x, iid, hint)
        if description is not None:
            found[iid] = description
        return description is not None

    # Two unrelated problems in one namespace at overlapping times.
    spaces = [ns for ns in cl.namespaces if ns in BUSINESS]
    ns = rng.choice(spaces)
    partners = [k for k, kind in (("cronjob_fail", "CronJob"), ("pvc_fill", "StatefulSet"))
                if cl.of_kind(kind, ns)] + (["hpa_saturation"] if any(
                    w.hpa for w in cl.of_kind("Deployment", ns)) else [])
    t0 = rng.uniform(25 * MIN, x.duration - 120 * MIN)
    attempt("bad_rollout", Hint(ns=ns, t0=t0))
    attempt(rng.choice(partners or ["bad_rollout"]),
            Hint(ns=ns, t0=t0 + rng.uniform(-10, 25) * MIN))
    base = ["node_down", "bad_rollout", "pvc_fill", "cronjob_fail", "control_plane", "cascade"]
    if rng.random() < 0.5:  # an unrelated problem on a node while its disk fills
        node = rng.choice([n for n in cl.workers if n.name != cl.protected]).name
        t = rng.uniform(30 * MIN, x.duration - 140 * MIN)
        if attempt("node_disk_fill", Hint(node=node, t0=t)):
            other = Hint(node=node, t0=t + rng.uniform(0, 40) * MIN)
            attempt("pvc_fill", other) or attempt("bad_rollout", other)
    else:
        base.append("node_disk_fill")
    extras = ["bad_rollout", "pvc_fill", "cronjob_fail", "memory_leak", "alertmanager",
              "hpa_saturation", "node_down", "node_disk_fill", "control_plane", "cascade",
              "bad_rollout", "memory_leak"]
    rng.shuffle(extras)
    for kind in base + extras:
        if len(found) >= target:
            break
        attempt(kind, Hint())
    return found


# --- noise -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    labels: dict[str, str]
    keys: list[tuple[str, bool]]


@dataclass(frozen=True)
class Spot:
    """Where and when a real incident showed itself: noise is sometimes put next to it."""

    start: float
    namespaces: list[str]
    nodes: list[str]


NAMESPACED = ("pod", "deploy", "sts", "ds", "hpa", "svc", "quota")
INFO_TABLE = [(CPU_THROTTLING, "pod"), (CPU_THROTTLING, "pod"), (QUOTA_ALMOST_FULL, "quota"),
              (NODE_CPU_HIGH, "node"), (TOO_MANY_PODS, "kubelet"), (QUOTA_FULLY_USED, "quota"),
              (CPU_THROTTLING, "pod"), (NODE_CPU_HIGH, "node")]
FLAP_TABLE = [(HPA_MAXED, "hpa"), (CPU_THROTTLING, "pod"), (CONNTRACK, "node"),
              (BURN_1H, "cluster"), (CLOCK_SKEW, "node"), (PLEG, "kubelet"),
              (NODE_SATURATION, "node"), (QUOTA_ALMOST_FULL, "quota"), (CLIENT_ERRORS, "cp"),
              (ETCD_COMMIT, "cp"), (NODE_MEM_HIGH, "node"), (HPA_MAXED, "hpa")]
BLIP_TABLE = [(BURN_1H, "cluster"), (CLIENT_ERRORS, "cp"), (CONNTRACK, "node"),
              (TARGET_DOWN, "svc"), (DEPLOY_MISMATCH, "deploy"), (POD_NOT_READY, "pod"),
              (STS_MISMATCH, "sts"), (HPA_MAXED, "hpa"), (CPU_THROTTLING, "pod"),
              (PLEG, "kubelet"), (STARTUP_LATENCY, "kubelet"), (ETCD_COMM_SLOW, "cp"),
              (ETCD_COMMIT, "cp"), (CLOCK_SKEW, "node"), (NODE_SATURATION, "node"),
              (RX_ERRS, "node"), (MAJ_FAULTS, "node"), (AGG_API_ERRORS, "cp"),
              (QUOTA_ALMOST_FULL, "quota"), (DS_STUCK, "ds"), (TARGET_DOWN, "svc")]


def _target(x: Ctx, rule: Rule, kind: str, ns: str | None, node: str | None) -> Target | None:
    cl, rng = x.cl, x.rng
    if kind in ("node", "kubelet", "cp"):
        nodes = {"cp": cl.control_plane, "node": cl.nodes}.get(kind, cl.workers)
        n = rng.choice([m for m in nodes if node in (None, m.name)] or nodes)
        if kind == "node":
            extra = {"device": cl.nic} if rule is RX_ERRS else {}
            return Target(_node_exporter(cl, n, **extra), [(f"node:{n.name}", False)])
        if kind == "kubelet":
            labels = {"instance": f"{n.ip}:10250", "node": n.name}
            return Target(labels | ({"quantile": "0.99"} if rule is PLEG else {}),
                          [(f"node:{n.name}", False)])
        keys = [("etcd", False), ("apiserver", False), ("aggapi", False)]
        if rule is CLIENT_ERRORS:
            return Target({"instance": f"{n.ip}:6443", "job": "apiserver",
                           "namespace": "default"}, keys)
        if rule is AGG_API_ERRORS:
            return Target({"instance": f"{n.ip}:6443", "name": "v1beta1.metrics.k8s.io",
                           "reason": "FailedDiscoveryCheck"}, keys)
        if rule is ETCD_COMM_SLOW:
            return Target(_etcd(n, To=f"{rng.getrandbits(64):x}"), keys)
        return Target(_etcd(n), keys)
    if kind == "cluster":
        return Target({}, [("apiserver", False)])
    if kind == "quota":
        spaces = [s for s in cl.quotas if ns in (None, s)]
        if not spaces:
            return None
        s = rng.choice(spaces)
        resource = rng.choice(["requests.cpu", "requests.memory", "limits.memory", "pods"])
        labels = _ksm(cl, namespace=s, resource=resource, resourcequota=cl.quotas[s])
        del labels["instance"], labels["job"]  # max without (instance, job, type)
        return Target(labels, [(f"quota:{s}", False)])
    wanted = {"pod": ("Deployment", "StatefulSet", "DaemonSet"), "deploy": ("Deployment",),
              "sts": ("StatefulSet",), "ds": ("DaemonSet",), "hpa": ("Deployment",),
              "svc": ("Deployment", "StatefulSet", "DaemonSet")}[kind]
    ws = [w for w in cl.workloads if w.kind in wanted and ns in (None, w.namespace)
          and (kind != "hpa" or w.hpa) and (kind != "svc" or w.svc)]
    if not ws:
        return None
    w = rng.choice(ws)
    keys = [(f"wl:{w.key}", False), *((f"node:{cl.pods[p][0]}", False) for p in w.pods)]
    if kind == "pod":
        p = rng.choice(w.pods)
        keys += [(f"pod:{p}", False)]
        labels = _throttled(cl, p) if rule is CPU_THROTTLING else _not_ready(p)
        return Target(labels, keys)
    if kind == "svc":
        return Target(_target_down(w.svc, w.namespace), keys)
    field_name = {"deploy": "deployment", "sts": "statefulset", "ds": "daemonset",
                  "hpa": "horizontalpodautoscaler"}[kind]
    return Target(_ksm(cl, namespace=w.namespace, **{field_name: w.name}), keys)


def _flaps(x: Ctx, rule: Rule, start: float) -> list[tuple[float, float]]:
    """A threshold hovering at its edge: several short firings within about an hour."""
    spans, t = [], start
    for i in range(x.rng.randint(3, 5)):
        if i >= 3 and t > start + 55 * MIN:
            break
        length = x.u(40, 360)
        spans.append((t, t + length))
        t += length + max(rule.for_s, 30.0) + x.u(30, 480)
    return spans


def _episode(x: Ctx, kind: str, spot: Spot | None) -> bool:
    rule, target_kind = x.rng.choice({"info": INFO_TABLE, "flapping": FLAP_TABLE,
                                      "blip": BLIP_TABLE}[kind])
    lo, hi = 2 * MIN, x.duration - 5 * MIN
    ns = node = None
    if spot is not None:
        lo, hi = max(lo, spot.start - 20 * MIN), min(hi, spot.start + 40 * MIN)
        if target_kind in NAMESPACED and spot.namespaces:
            ns = x.rng.choice(spot.namespaces)
        if target_kind in ("node", "kubelet") and spot.nodes:
            node = x.rng.choice(spot.nodes)
    if hi <= lo:
        return False
    fire = x.u(lo, hi)
    if kind == "info":
        spans = [(fire, fire + x.u(12 * MIN, 170 * MIN))]
    elif kind == "flapping":
        spans = _flaps(x, rule, fire)
    else:
        spans = [(fire, fire + x.u(20, 120))]
    target = _target(x, rule, target_kind, ns, node)
    if target is None:
        return False
    start, end = spans[0][0] - rule.for_s - MIN, spans[-1][1] + MIN
    if not x.ledger.free(target.keys, start, end) or not all(
            x.rec.fits(rule, target.labels, s, e) for s, e in spans):
        return False
    for s, e in spans:
        x.rec.place(rule, target.labels, s, e, noise=kind)
    return True


def _chronic(x: Ctx) -> bool:
    """A warning that fires for hours: overcommit, an unscrapable component, a bad clock."""
    rng, cl = x.rng, x.cl
    start = -x.u(HOUR, 10 * HOUR) if rng.random() < 0.5 else x.u(0, x.duration * 0.6)
    end = max(start, 0.0) + x.u(2.5 * HOUR, 8 * HOUR)
    pick = rng.choice(["overcommit", "overcommit", "quota", "component", "clock", "hpa"])
    if pick in ("overcommit", "quota"):
        rule = rng.choice([CPU_OVERCOMMIT, MEM_OVERCOMMIT] if pick == "overcommit"
                          else [CPU_QUOTA_OVERCOMMIT, MEM_QUOTA_OVERCOMMIT])
        return x.rec.place(rule, {}, start, end, noise="chronic")
    if pick == "component":  # bound to 127.0.0.1 by kubeadm: never scrapable
        comp, port, rule = rng.choice([("kube-controller-manager", 10257, CM_UNREACHABLE),
                                       ("kube-scheduler", 10259, SCHED_UNREACHABLE)])
        down = _target_down(comp, "kube-system", f"{REL}-{comp}")
        since = -x.u(2 * 86400, 30 * 86400)
        if not x.rec.fits(TARGET_DOWN, down, since, math.inf):
            return False
        x.rec.place(TARGET_DOWN, down, since, math.inf, noise="chronic")
        for cp in cl.control_plane:
            x.rec.place(rule, {"endpoint": "http-metrics", "instance": f"{cp.ip}:{port}",
                               "job": comp, "namespace": "kube-system",
                               "service": f"{REL}-{comp}"}, since, math.inf, noise="chronic")
        return True
    target = _target(x, CLOCK_NOT_SYNC if pick == "clock" else HPA_MAXED,
                     "node" if pick == "clock" else "hpa", None, None)
    if target is None or not x.ledger.free(target.keys, max(start, 0.0) - HOUR, end):
        return False
    return x.rec.place(CLOCK_NOT_SYNC if pick == "clock" else HPA_MAXED, target.labels, start,
                       end, noise="chronic")


def _info_inhibitors(x: Ctx) -> int:
    """InfoInhibitor: per namespace, while info alerts are active and nothing louder fires."""
    quiet: dict[str, list[tuple[float, float]]] = {}
    loud: dict[str, list[tuple[float, float]]] = {}
    for a, for_s in zip(x.rec.alerts, x.rec.fors, strict=True):
        ns = a.labels.get("namespace", "")
        end = x.duration if a.ends_at is None else a.ends_at
        if a.labels["severity"] == "info":  # ALERTS{severity="info"} counts pending ones too
            quiet.setdefault(ns, []).append((max(a.starts_at - for_s, 0.0), end))
        elif a.labels["severity"] in ("warning", "critical"):
            loud.setdefault(ns, []).append((a.starts_at, end))
    placed = 0
    for ns in sorted(quiet):
        for s, e in _minus(_union(quiet[ns]), _union(loud.get(ns, []))):
            if e - s >= 60 and x.rec.place(INFO_INHIBITOR, {"namespace": ns} if ns else {},
                                           s, e if e < x.duration else math.inf,
                                           noise="watchdog"):
                placed += 1
    return placed


def _union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _minus(spans: list[tuple[float, float]],
           holes: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for s, e in spans:
        for hs, he in holes:
            if he <= s or hs >= e:
                continue
            if hs > s:
                out.append((s, hs))
            s = max(s, he)
        if s < e:
            out.append((s, e))
    return out


def _spots(x: Ctx, incidents: dict[str, str]) -> list[Spot]:
    spots = []
    for iid in incidents:
        mine = [a for a in x.rec.alerts if a.truth == iid]
        if not mine:
            continue
        spaces = sorted({a.labels["namespace"] for a in mine if "namespace" in a.labels})
        nodes = {a.labels["node"] for a in mine if "node" in a.labels}
        nodes |= {x.cl.pods[f"{a.labels['namespace']}/{a.labels['pod']}"][0] for a in mine
                  if f"{a.labels.get('namespace')}/{a.labels.get('pod')}" in x.cl.pods}
        spots.append(Spot(min(a.starts_at for a in mine), spaces, sorted(nodes)))
    return spots


def _noise(x: Ctx, spots: list[Spot]) -> int:
    rng = x.rng
    x.rec.place(WATCHDOG, {}, -x.u(HOUR, 30 * 86400), math.inf, noise="watchdog")
    episodes = 1
    total = rng.randint(56, 64)
    plan = {"chronic": rng.randint(3, 5), "info": rng.randint(12, 16),
            "flapping": rng.randint(9, 12)}
    plan["blip"] = total - 2 - sum(plan.values())
    for kind, wanted in plan.items():
        placed = tries = 0
        while placed < wanted and tries < wanted * 40:
            tries += 1
            if kind == "chronic":
                placed += _chronic(x)
                continue
            spot = rng.choice(spots) if spots and rng.random() < 0.3 else None
            placed += _episode(x, kind, spot)
        episodes += placed
    return episodes + (_info_inhibitors(x) > 0)


# --- the stream ------------------------------------------------------------------------------


def _generate(seed: int) -> tuple[Stream, int]:
    rng = random.Random(seed)
    duration = float(round(rng.uniform(5 * HOUR, 6 * HOUR)))
    x = Ctx(rng, _build_cluster(rng), Recorder(rng, duration), Ledger(), duration)
    found = _incidents(x)
    episodes = _noise(x, _spots(x, found))
    x.rec.alerts.sort(key=lambda a: (a.starts_at, sorted(a.labels.items())))
    firsts: dict[str, float] = {}
    for a in x.rec.alerts:
        if a.truth is not None:
            firsts.setdefault(a.truth, a.starts_at)
    rename = {old: f"I{i}" for i, old in enumerate(sorted(firsts, key=firsts.__getitem__), 1)}
    for a in x.rec.alerts:
        if a.truth is not None:
            a.truth = rename[a.truth]
    incidents = {rename[old]: found[old] for old in sorted(rename, key=rename.__getitem__)}
    incidents = dict(sorted(incidents.items(), key=lambda kv: int(kv[0][1:])))
    return Stream(seed, duration, x.rec.alerts, incidents, dict(x.cl.pods)), episodes


def generate(seed: int) -> Stream:
    """The alert stream for `seed`: the same seed gives the same stream."""
    return _generate(seed)[0]


def _where(stream: Stream, a: StreamAlert, exporters: dict[str, str]) -> tuple[str, str]:
    """The node an alert's source sits on ("" when none) and the pod it is about."""
    pod = a.labels.get("pod", "")
    if a.labels.get("job") in (KSM, "node-exporter") and a.labels.get("container") in (
            KSM, "node-exporter"):
        pod = ""  # the scrape target's pod label, not the subject
    hosts = [v[0] for k, v in stream.pods.items() if k.split("/")[1] == pod]
    node = (a.labels.get("node") or exporters.get(a.labels.get("pod", ""))
            or (hosts[0] if hosts else ""))
    return node, pod


def check(stream: Stream) -> list[str]:
    """What is physically or formally wrong with a stream (empty when nothing)."""
    problems = []
    names = {key.split("/")[1] for key in stream.pods}
    exporters = {k.split("/")[1]: v[0] for k, v in stream.pods.items()
                 if v[2] == f"{REL}-prometheus-node-exporter"}
    downs = [(a.labels["node"], a.starts_at - 17 * MIN, a.ends_at or stream.duration_s, a.truth)
             for a in stream.alerts if a.labels["alertname"] == "KubeNodeNotReady"]
    held: dict[str, list[tuple[float, float, str]]] = {}
    for a in stream.alerts:
        node, pod = _where(stream, a, exporters)
        end = a.ends_at or stream.duration_s
        for down, s, e, truth in downs:
            if node == down and a.truth != truth and s < a.starts_at < e:
                problems.append(f"alert from {node} while it is down: {a.labels}")
        claim = a.labels.get("persistentvolumeclaim", "")
        for thing in (pod, claim):
            if thing and a.truth is not None:
                for s, e, truth in held.get(thing, []):
                    if truth != a.truth and s < end and a.starts_at < e:
                        problems.append(f"{thing} in {truth} and {a.truth} at once")
                held.setdefault(thing, []).append((a.starts_at, end, a.truth))
    seen: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for a in stream.alerts:
        if (a.truth is None) == (a.noise is None):
            problems.append(f"truth and noise both or neither: {a.labels}")
        if a.truth is not None and a.truth not in stream.incidents:
            problems.append(f"unknown incident {a.truth}")
        if "pod" in a.labels and a.labels["pod"] not in names:
            problems.append(f"pod not in topology: {a.labels['pod']}")
        end = math.inf if a.ends_at is None else a.ends_at
        spans = seen.setdefault(tuple(sorted(a.labels.items())), [])
        if any(a.starts_at < e and s < end for s, e in spans):
            problems.append(f"overlapping firings: {a.labels}")
        spans.append((a.starts_at, end))
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()
    for seed in (int(s) for s in args.seeds.split(",")):
        stream, episodes = _generate(seed)
        kinds: dict[str, int] = {}
        for a in stream.alerts:
            kinds[a.noise or "incident"] = kinds.get(a.noise or "incident", 0) + 1
        print(f"seed {seed}: {len(stream.alerts)} alerts, {len(stream.incidents)} incidents, "
              f"{episodes} noise episodes, {stream.duration_s / HOUR:.2f} h, "
              f"{len(stream.pods)} pods; alerts by kind {kinds}; problems {check(stream)}")
        for iid, text in stream.incidents.items():
            print(f"  {iid}: {text}")


if __name__ == "__main__":
    main()
