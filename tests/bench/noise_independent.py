"""Synthetic kube-prometheus alert streams with ground truth, built apart from the method judged.

Owns a simulated cluster (nodes, namespaces, workloads, pods, PVCs), real incidents firing the
cascades kube-prometheus's own rules would fire, and noise episodes (watchdog, info, flapping,
chronic, blip), each alert tagged with its truth. Deterministic per seed; stdlib only; no I/O.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

RUNBOOK = "https://runbooks.prometheus-operator.dev/runbooks/{}/{}"
KSM = "kube-state-metrics"

# alertname|summary|description, worded as the kubernetes-, node- and etcd-mixins word them;
# a line starting with a space continues the one above. {value} stands for the sample value.
RULE_TABLE = """
Watchdog|An alert that should always be firing to certify that Alertmanager is working properly.
 |This is an alert meant to ensure that the entire alerting pipeline is functional.
InfoInhibitor|Info-level alert inhibition.|This is an alert that is used to inhibit info alerts.
TargetDown|One or more targets are unreachable.|{value}% of the {job}/{service} targets in
 {namespace} namespace are down.
KubeNodeNotReady|Node is not ready.|{node} has been unready for more than 15 minutes.
KubeNodeUnreachable|Node is unreachable.|{node} is unreachable and some workloads may be
 rescheduled.
KubePodNotReady|Pod has been in a non-ready state for more than 15 minutes.|Pod {namespace}/{pod}
 has been in a non-ready state for longer than 15 minutes.
KubePodCrashLooping|Pod is crash looping.|Pod {namespace}/{pod} ({container}) is in waiting state
 (reason: "CrashLoopBackOff").
KubeDeploymentReplicasMismatch|Deployment has not matched the expected number of replicas.
 |Deployment {namespace}/{deployment} has not matched the expected number of replicas for longer
 than 15 minutes.
KubeStatefulSetReplicasMismatch|StatefulSet has not matched the expected number of replicas.
 |StatefulSet {namespace}/{statefulset} has not matched the expected number of replicas for
 longer than 15 minutes.
KubePersistentVolumeFillingUp|PersistentVolume is filling up.|The PersistentVolume claimed by
 {persistentvolumeclaim} in Namespace {namespace} is only {value}% free.
KubeJobFailed|Job failed to complete.|Job {namespace}/{job_name} failed to complete. Removing
 failed job after investigation should clear this alert.
KubeAPIErrorBudgetBurn|The API server is burning too much error budget.|The API server is
 burning too much error budget.
KubeMemoryOvercommit|Cluster has overcommitted memory resource requests.|Cluster has overcommitted
 memory resource requests for Pods by {value} bytes and cannot tolerate node failure.
KubeCPUOvercommit|Cluster has overcommitted CPU resource requests.|Cluster has overcommitted CPU
 resource requests for Pods by {value} CPU shares and cannot tolerate node failure.
KubeHpaMaxedOut|HPA is running at max replicas|HPA {namespace}/{horizontalpodautoscaler} has been
 running at max replicas for longer than 15 minutes.
CPUThrottlingHigh|Processes experience elevated CPU throttling.|{value}% throttling of CPU in
 namespace {namespace} for container {container} in pod {pod}.
NodeFilesystemSpaceFillingUp|Filesystem is predicted to run out of space within the next 24
 hours.|Filesystem on {device}, mounted on {mountpoint}, at {instance} has only {value}% available
 space left and is filling up.
NodeFilesystemAlmostOutOfSpace|Filesystem has less than 5% space left.|Filesystem on {device},
 mounted on {mountpoint}, at {instance} has only {value}% available space left.
NodeNetworkReceiveErrs|Network interface is reporting many receive errors.|{instance} interface
 {device} has encountered {value} receive errors in the last two minutes.
etcdHighNumberOfFailedGRPCRequests|etcd cluster has high number of failed grpc requests.|etcd
 cluster "{job}": {value}% of requests for {grpc_method} failed on etcd instance {instance}.
"""
RULES = {name.strip(): (summary.strip(), text.strip()) for name, summary, text in (
    line.split("|") for line in RULE_TABLE.strip().replace("\n ", " ").splitlines())}

# namespace -> "name=replicas" per Deployment, "name=replicas/claim" per StatefulSet with that
# volumeClaimTemplate (kube-prometheus naming); each workload has a Service of its own name.
WORKLOADS = {
    "kube-system": "coredns=2 metrics-server=1",
    "monitoring": "kube-state-metrics=1 prometheus-k8s=2/prometheus-k8s-db",
    "ingress-nginx": "ingress-nginx-controller=3",
    "payments": "payments-api=3 payments-worker=2 payments-db=2/data",
    "checkout": "checkout-web=3 cart=2 redis=1/data",
    "search": "search-api=2 elasticsearch=3/data",
    "data": "ingest=2 kafka=3/data",
}
CLAIMS = {(ns, s.split("=")[0]): s.split("/")[1] for ns, specs in WORKLOADS.items()
          for s in specs.split() if "/" in s}
HPAS = (("ingress-nginx", "ingress-nginx-controller"), ("payments", "payments-api"),
        ("checkout", "checkout-web"), ("search", "search-api"))
CRONJOBS = (("payments", "ledger-reconcile"), ("checkout", "cart-expiry"),
            ("search", "reindex"), ("data", "etl-hourly"))
SYSTEM = {"kube-system", "monitoring"}
NOISE_KINDS, NOISE_WEIGHTS = ("info", "flapping", "chronic", "blip"), (30, 12, 8, 50)

Span = tuple[float, float]  # (offset, length) in seconds
Firing = tuple[str, str, dict[str, str], str]  # (alertname, severity, labels, sample value)
Ledger = dict[frozenset[tuple[str, str]], list[Span]]  # label set -> when it fired


@dataclass(frozen=True)
class StreamAlert:
    """One firing as Alertmanager would receive it, with the judge's ground truth attached."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float | None
    truth: str | None
    noise: str | None


@dataclass(frozen=True)
class Stream:
    """A simulated stretch of alerting over one cluster, alerts sorted by start."""

    seed: int
    duration_s: float
    alerts: list[StreamAlert]
    incidents: dict[str, str]
    pods: dict[str, tuple[str, str, str]]


@dataclass
class _Cluster:
    """What kube-state-metrics would expose: nodes, pods and the workloads owning them."""

    cps: list[str]
    workers: list[str]
    ips: dict[str, str]
    pods: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    apps: dict[tuple[str, str], tuple[str, list[str]]] = field(default_factory=dict)

    def owners_on(self, node: str) -> dict[tuple[str, str], list[str]]:
        found = {k: [p for p in pods if self.pods[f"{k[0]}/{p}"][0] == node]
                 for k, (_, pods) in self.apps.items()}
        return {k: pods for k, pods in found.items() if pods}

    def exporter(self, node: str) -> dict[str, str]:  # target labels on node-mixin alerts
        pod = next(k.split("/")[1] for k, v in self.pods.items()
                   if v[0] == node and v[2] == "node-exporter")
        return {"namespace": "monitoring", "pod": pod, "container": "node-exporter",
                "job": "node-exporter", "service": "node-exporter",
                "instance": f"{self.ips[node]}:9100"}


def _cluster(rng: random.Random) -> _Cluster:
    def suffix(size: int) -> str:  # the vowel-free alphabet of Kubernetes-generated names
        return "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(size))

    cps = [f"prod-cp-{i}" for i in (1, 2, 3)]
    workers = [f"prod-worker-{i}" for i in range(1, rng.randint(5, 7) + 1)]
    c = _Cluster(cps, workers, {n: f"10.0.{int(n in workers)}.{11 + i}"
                                for i, n in enumerate(cps + workers)})
    for node in cps + workers:
        c.pods[f"kube-system/kube-proxy-{suffix(5)}"] = (node, "DaemonSet", "kube-proxy")
        c.pods[f"monitoring/node-exporter-{suffix(5)}"] = (node, "DaemonSet", "node-exporter")
        if node in cps:  # static control-plane pods: their mirror pods are owned by the Node
            c.pods |= {f"kube-system/{part}-{node}": (node, "Node", node)
                       for part in ("etcd", "kube-apiserver")}
    for ns, specs in WORKLOADS.items():
        for name, _, spec in (s.partition("=") for s in specs.split()):
            replicas, _, claim = spec.partition("/")
            kind = "StatefulSet" if claim else "Deployment"
            template = suffix(10)  # pod-template-hash of the current ReplicaSet
            pods = [f"{name}-{i}" if claim else f"{name}-{template}-{suffix(5)}"
                    for i in range(int(replicas))]
            nodes = rng.sample(workers, len(pods))  # anti-affinity: one replica per node at most
            c.pods |= {f"{ns}/{p}": (n, kind, name) for p, n in zip(pods, nodes, strict=True)}
            c.apps[(ns, name)] = (kind, pods)
    return c


def _alert(rule: Firing, at: float, length: float, duration: float, truth: str | None,
           noise: str | None) -> StreamAlert:
    name, severity, extra, value = rule
    group = ("general" if name in ("Watchdog", "InfoInhibitor", "TargetDown") else "node"
             if name.startswith("Node") else "etcd" if name.startswith("etcd") else "kubernetes")
    labels = {"alertname": name, "severity": severity, **extra}
    summary, text = RULES[name]
    notes = {"summary": summary, "description": text.format_map(labels | {"value": value}),
             "runbook_url": RUNBOOK.format(group, name.lower())}
    begins, ends = round(at, 1), round(at + max(length, 1.0), 1)
    return StreamAlert(labels, notes, begins, None if ends >= duration else ends, truth, noise)


@dataclass
class _Incident:
    """One real incident: alerts firing within minutes of the cause, clearing once it is fixed."""

    rng: random.Random
    start: float
    truth: str
    duration: float
    life: float  # until someone fixes the cause
    what: str = ""
    alerts: list[StreamAlert] = field(default_factory=list)

    def fire(self, name: str, labels: dict[str, str], lo: float, hi: float, value: str = "",
             severity: str = "warning") -> None:
        if len(self.alerts) < 15:  # beyond this a cascade adds no information
            offset = self.rng.uniform(lo, hi)
            length = max(300.0, self.life - offset + self.rng.uniform(0, 240))
            self.alerts.append(_alert((name, severity, labels, value), self.start + offset,
                                      length, self.duration, self.truth, None))


def _claim(ledger: Ledger, batch: list[StreamAlert], *, once: bool = False) -> bool:
    """Records the batch unless a label set would fire twice at once (Alertmanager would merge
    them); a `once` batch (a blip, a flap) needs label sets never seen, and keeps them for good."""
    spans = [(frozenset(a.labels.items()), a.starts_at, a.ends_at or math.inf) for a in batch]
    for key, start, end in spans:
        taken = ledger.get(key, [])
        if (once and taken) or any(s < end + 60 and start < e + 60 for s, e in taken):
            return False
    for key, start, end in spans:
        ledger.setdefault(key, []).append((-math.inf, math.inf) if once else (start, end))
    return True


def _workload_down(inc: _Incident, c: _Cluster, ns: str, owner: str, pods: list[str],
                   symptom: str, lo: float) -> None:
    """Pods fail, then their owner misses replicas and, often, its Service's targets go down."""
    kind, replicas = c.apps[(ns, owner)]
    for pod in pods:
        labels = {"namespace": ns, "pod": pod}
        if symptom == "KubePodCrashLooping":
            labels |= {"container": owner, "reason": "CrashLoopBackOff", "job": KSM}
        inc.fire(symptom, labels, lo, lo + 240)
    owned = {"namespace": ns, kind.lower(): owner, "job": KSM}
    inc.fire(f"Kube{kind}ReplicasMismatch", owned, lo + 60, 480)
    if inc.rng.random() < 0.5:
        inc.fire("TargetDown", {"namespace": ns, "job": owner, "service": owner}, lo, 300,
                 f"{100 * len(pods) / len(replicas):.4g}")


def _node_down(inc: _Incident, c: _Cluster, _: str | None) -> None:
    # A node whose pods span two application namespaces, so the cascade crosses namespaces.
    wide = [n for n in c.workers if len({k[0] for k in c.owners_on(n)} - SYSTEM) >= 2]
    node = inc.rng.choice(wide or c.workers)
    inc.fire("KubeNodeNotReady", {"node": node, "condition": "Ready", "status": "true",
                                  "job": KSM}, 0, 0)
    inc.fire("KubeNodeUnreachable", {"node": node, "key": "node.kubernetes.io/unreachable",
                                     "effect": "NoSchedule", "job": KSM}, 20, 90)
    for ns, job in (("kube-system", "kubelet"), ("monitoring", "node-exporter")):
        inc.fire("TargetDown", {"namespace": ns, "job": job, "service": job}, 30, 180,
                 f"{100 / len(c.ips):.4g}")
    owners = c.owners_on(node)
    # Round-robin by namespace, so the 15-alert cap still leaves the cascade crossing namespaces.
    rank = {k: [o for o in owners if o[0] == k[0]].index(k) for k in owners}
    for ns, owner in sorted(owners, key=rank.__getitem__):
        _workload_down(inc, c, ns, owner, owners[(ns, owner)], "KubePodNotReady", 120)
    hit = {a.labels.get("namespace", "") for a in inc.alerts} - SYSTEM - {""}
    inc.what = f"node {node} NotReady (kubelet stopped); lost its pods in {', '.join(sorted(hit))}"


def _crashloop(inc: _Incident, c: _Cluster, team: str | None) -> None:
    ns, name = inc.rng.choice([k for k in sorted(c.apps)
                               if team in (None, k[0]) and c.apps[k][0] == "Deployment"])
    pods = c.apps[(ns, name)][1]
    bad = inc.rng.sample(pods, inc.rng.randint(1, len(pods)))
    _workload_down(inc, c, ns, name, bad, "KubePodCrashLooping", 0)
    inc.what = f"Deployment {ns}/{name} crash-looping after a bad rollout"


def _pvc_full(inc: _Incident, c: _Cluster, team: str | None) -> None:
    ns, name = inc.rng.choice([k for k in sorted(CLAIMS) if team in (None, k[0])])
    rng, pod = inc.rng, inc.rng.choice(c.apps[(ns, name)][1])
    pvc = f"{CLAIMS[(ns, name)]}-{pod}"
    volume = {"namespace": ns, "persistentvolumeclaim": pvc, "job": "kubelet",
              "service": "kubelet", "node": c.pods[f"{ns}/{pod}"][0], "metrics_path": "/metrics"}
    inc.fire("KubePersistentVolumeFillingUp", volume, 0, 0, f"{rng.uniform(6, 14):.3g}")
    inc.fire("KubePersistentVolumeFillingUp", volume, 120, 240, f"{rng.uniform(0.5, 2.9):.2g}",
             "critical")
    _workload_down(inc, c, ns, name, [pod], "KubePodCrashLooping", 240)
    inc.what = f"PVC {ns}/{pvc} ran out of space; {pod} can no longer write and crash-loops"


def _node_disk(inc: _Incident, c: _Cluster, _: str | None) -> None:
    node = inc.rng.choice(c.workers)
    fs = c.exporter(node) | {"device": "/dev/nvme0n1p1", "fstype": "ext4", "mountpoint": "/"}
    for name, severity, lo, free in (("NodeFilesystemSpaceFillingUp", "warning", 0, 20),
                                     ("NodeFilesystemSpaceFillingUp", "critical", 120, 9),
                                     ("NodeFilesystemAlmostOutOfSpace", "warning", 240, 4)):
        inc.fire(name, fs, lo, lo * 1.6, f"{free * inc.rng.uniform(0.7, 1.3):.3g}", severity)
    inc.what = f"root filesystem on {node} filling up with container images and logs"


def _control_plane(inc: _Incident, c: _Cluster, _: str | None) -> None:
    rng, method = inc.rng, inc.rng.choice(("Range", "Txn", "Put", "LeaseGrant"))
    for cp in rng.sample(c.cps, rng.randint(1, 3)):
        etcd = {"namespace": "kube-system", "pod": f"etcd-{cp}", "job": "kube-etcd",
                "service": "kube-etcd", "instance": f"{c.ips[cp]}:2379",
                "grpc_method": method, "grpc_service": "etcdserverpb.KV"}
        inc.fire("etcdHighNumberOfFailedGRPCRequests", etcd, 0, 120, f"{rng.uniform(5, 30):.3g}",
                 "critical")
    inc.fire("KubeAPIErrorBudgetBurn", {"long": "1h", "short": "5m"}, 120, 300, "", "critical")
    if rng.random() < 0.6:
        inc.fire("KubeAPIErrorBudgetBurn", {"long": "6h", "short": "30m"}, 240, 480)
    inc.what = "etcd failing gRPC requests on a slow disk; API server burning its error budget"


def _job_failed(inc: _Incident, c: _Cluster, team: str | None) -> None:
    ns, cron = inc.rng.choice([j for j in CRONJOBS if team in (None, j[0])])
    minute, every = inc.rng.randint(29_000_000, 29_400_000), inc.rng.choice((1, 2, 3))
    for run in range(inc.rng.randint(2, 3)):
        job = {"namespace": ns, "job_name": f"{cron}-{minute + run * every}", "condition": "true",
               "job": KSM}  # a CronJob names each Job by its scheduled minute
        inc.fire("KubeJobFailed", job, run * every * 60.0, run * every * 60.0 + 60)
    inc.what = f"CronJob {ns}/{cron} failing on every run (expired credentials)"


BUILDERS = {"node_down": _node_down, "crashloop": _crashloop, "pvc_full": _pvc_full,
            "node_disk": _node_disk, "control_plane": _control_plane, "job_failed": _job_failed}
WEIGHTS = (2, 3, 2, 2, 1, 2)  # how often each shape is drawn beyond the fixed ones


def _incidents(rng: random.Random, c: _Cluster, count: int, duration: float,
               ledger: Ledger) -> list[_Incident]:
    team = rng.choice([ns for ns, _ in CRONJOBS])  # each has a Deployment, a PVC, a CronJob
    # Fixed shapes first: a cascade across namespaces, then two unrelated incidents overlapping
    # in one namespace (grouping by namespace would wrongly merge them); the rest drawn at random.
    plan = [("node_down", None, False), ("crashloop", team, False),
            (rng.choice(("pvc_full", "job_failed")), team, True)]
    plan += [(k, None, False) for k in rng.choices(list(BUILDERS), WEIGHTS, k=max(0, count - 3))]
    placed: list[_Incident] = []
    for kind, ns, follows in plan[:count]:
        for _ in range(40):  # redraw when a label set would fire twice at once
            # A follower starts while its predecessor's first alerts (0-4 min in, 10+ min) fire.
            start = placed[-1].start + rng.uniform(60, 300) if follows else rng.uniform(
                300, max(300.0, duration - 900))
            inc = _Incident(rng, start, f"I{len(placed) + 1}", duration, rng.uniform(900, 3600))
            BUILDERS[kind](inc, c, ns)
            if _claim(ledger, inc.alerts):
                placed.append(inc)
                break
    return placed


def _candidates(rng: random.Random, c: _Cluster, kind: str, ns: str | None) -> list[Firing]:
    """Rules that plausibly make this kind of noise, kept to namespace `ns` when one is given."""
    app = rng.choice([k for k in sorted(c.apps) if ns in (None, k[0])])
    (team, name), (app_kind, pods) = app, c.apps[app]
    pod = {"namespace": team, "pod": rng.choice(pods)}
    host = c.exporter(rng.choice(c.cps + c.workers))
    scaler, pct = (app if app in HPAS else rng.choice(HPAS)), f"{rng.uniform(25, 99):.3g}"
    hpa: Firing = ("KubeHpaMaxedOut", "warning", {"namespace": scaler[0], "job": KSM,
                   "horizontalpodautoscaler": scaler[1]}, "")
    target: Firing = ("TargetDown", "warning", {"namespace": team, "job": name,
                      "service": name}, f"{100 / len(pods):.4g}")
    owner: Firing = (f"Kube{app_kind}ReplicasMismatch", "warning",
                     {"namespace": team, app_kind.lower(): name, "job": KSM}, "")
    nic: Firing = ("NodeNetworkReceiveErrs", "warning", host | {"device": rng.choice(
        ("eth0", "ens5"))}, f"{rng.uniform(20, 400):.0f}")
    rules: list[Firing] = {
        "info": [("CPUThrottlingHigh", "info", pod | {"container": name}, pct)],
        "blip": [("KubePodNotReady", "warning", pod, ""), target, nic, owner],
        "flapping": [target, hpa, nic, ("KubePodNotReady", "warning", pod, "")],
        "chronic": [("KubeMemoryOvercommit", "warning", {}, f"{rng.uniform(1, 9):.4g}G"),
                    ("KubeCPUOvercommit", "warning", {}, f"{rng.uniform(0.5, 6):.2f}"), hpa, nic,
                    target],
    }[kind]
    return [r for r in rules if ns is None or r[2].get("namespace") == ns]


def _spans(rng: random.Random, kind: str, duration: float) -> list[Span]:
    """When an episode of this kind fires: offsets from its start, and how long each lasts."""
    if kind == "flapping":  # 4-10 firings within an hour: a threshold hovering at its edge
        n = rng.randint(4, 10)
        slot = rng.uniform(1800, 3600) / n
        return [(i * slot + rng.uniform(0, 0.2 * slot), rng.uniform(0.3, 0.7) * slot)
                for i in range(n)]
    if kind == "chronic":  # already firing when the stream starts, or soon after; for hours
        return [(rng.choice((0.0, rng.uniform(0, 0.4 * duration))), rng.uniform(7200, 2e5))]
    return [(0.0, rng.uniform(30, 110) if kind == "blip" else rng.uniform(300, 7200))]


def _noise(rng: random.Random, c: _Cluster, episodes: int, duration: float, ledger: Ledger,
           anchors: list[tuple[str, float]]) -> list[StreamAlert]:
    out = [_alert((n, "none", {"namespace": "monitoring"}, ""), 0.0, duration + 1, duration, None,
                  k) for n, k in (("Watchdog", "watchdog"), ("InfoInhibitor", "info"))]
    for i in range(episodes - 1):
        kind = "blip" if i == 0 else rng.choices(NOISE_KINDS, NOISE_WEIGHTS)[0]
        # Some noise lands in a real incident's namespace and time window, as it does in life.
        near = anchors and kind != "chronic" and (i == 0 or rng.random() < 0.3)
        anchor = rng.choice(anchors) if near else None
        for _ in range(60):  # redraw when the label set is taken (blips, flaps: ever used)
            rule = rng.choice(_candidates(rng, c, kind, anchor[0] if anchor else None))
            spans = _spans(rng, kind, duration)
            wanted = anchor[1] + rng.uniform(-120, 600) if anchor else rng.uniform(0, duration)
            reach = sum(spans[-1]) + 60 if kind == "flapping" else 120.0  # resolve in-stream
            t0 = 0.0 if kind == "chronic" else min(max(0.0, wanted), max(0.0, duration - reach))
            batch = [_alert(rule, t0 + off, length, duration, None, kind) for off, length in spans]
            if _claim(ledger, batch, once=kind in ("blip", "flapping")):
                out += batch
                break
    return out if episodes > 0 else []


def generate(seed: int, *, incidents: int = 12, noise_episodes: int = 60,
             duration_s: float = 6 * 3600) -> Stream:
    """A deterministic stream for `seed`: real incidents first, then noise fitted around them."""
    rng, ledger = random.Random(seed), Ledger()
    cluster = _cluster(rng)
    placed = _incidents(rng, cluster, incidents, duration_s, ledger)
    real = [a for inc in placed for a in inc.alerts]
    anchors = [(a.labels["namespace"], a.starts_at) for a in real if "namespace" in a.labels]
    noise = _noise(rng, cluster, noise_episodes, duration_s, ledger, anchors)
    alerts = sorted(real + noise, key=lambda a: (a.starts_at, sorted(a.labels.items())))
    return Stream(seed, duration_s, alerts, {i.truth: i.what for i in placed}, dict(cluster.pods))
