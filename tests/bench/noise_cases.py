"""The project's own generator of alert streams for the noise benchmark (issue 23): kube-prometheus
alerts over a simulated cluster, with the ground truth of which alerts belong to which real
incident and which are noise. `tests/bench/noise_independent.py` is a second generator written
without seeing this one or the method; the benchmark runs both.

Shapes: a node going NotReady (its pods alert in several namespaces), a crash-looping deployment,
a PVC filling, a node disk filling, an API-server error burn; two unrelated problems in one
namespace at once; and noise — Watchdog and InfoInhibitor, info alerts, flapping, chronic and
one-off warnings that resolve in under two minutes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

RUNBOOKS = "https://runbooks.prometheus-operator.dev/runbooks"
NAMESPACES = ("shop", "payments", "search", "auth", "data", "ingest")
NODES = tuple(f"ip-10-0-{i}-{10 + i}.ec2.internal" for i in range(6))
SPAN = (-600.0, 3600.0)  # the most a problem's alerts run before and after its start


@dataclass(frozen=True)
class StreamAlert:
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float | None
    truth: str | None  # the real incident ("I1", …), or None for noise
    noise: str | None  # None for a real incident's alert; else watchdog|info|flapping|chronic|blip


@dataclass(frozen=True)
class Stream:
    seed: int
    duration_s: float
    alerts: list[StreamAlert]
    incidents: dict[str, str]
    pods: dict[str, tuple[str, str, str]]  # "ns/pod" -> (node, workload kind, workload name)
    claims: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "ns/claim" -> its pods


@dataclass
class _Cluster:
    rng: random.Random
    pods: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)  # workloads a problem was already made of
    claims: dict[str, tuple[str, ...]] = field(default_factory=dict)  # as kube-state-metrics says
    # When each workload's or node's disk's problems run: one Prometheus series cannot fire
    # twice at once, and a workload failing twice at once is one problem, not two.
    busy: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def free(self, key: str, t: float) -> bool:
        return all(t + SPAN[1] < start or end < t + SPAN[0]
                   for start, end in self.busy.get(key, []))

    def hold(self, key: str, t: float) -> None:
        self.busy.setdefault(key, []).append((t + SPAN[0], t + SPAN[1]))

    def build(self) -> None:
        for ns in NAMESPACES:
            for w in range(self.rng.randint(2, 4)):
                kind = "StatefulSet" if w == 0 and ns in ("data", "search") else "Deployment"
                name = f"{ns}-{['api', 'worker', 'db', 'cache'][w]}"
                # As Kubernetes names a Deployment's pods: its ReplicaSet's pod-template hash,
                # then five random characters of the pod's own.
                template = self.rng.randbytes(3).hex()
                for r in range(self.rng.randint(2, 4)):
                    pod = (f"{name}-{r}" if kind == "StatefulSet"
                           else f"{name}-{template}-{self.rng.randbytes(4).hex()[:5]}")
                    self.pods[f"{ns}/{pod}"] = (self.rng.choice(NODES), kind, name)

    def on_node(self, node: str) -> list[str]:
        return [p for p, (n, _, _) in self.pods.items() if n == node]

    def down(self, node: str, t: float) -> bool:
        return any(start <= t <= end for start, end in self.busy.get(f"down {node}", []))

    def workloads_free(self, ns: str, t: float) -> bool:
        return any(self.free(w, t) for p, (_, _, w) in self.pods.items()
                   if p.startswith(ns + "/"))

    def of_workload(self, ns: str, t: float) -> tuple[str, list[str]]:
        """A workload of `ns` no earlier problem was made of, else one with no problem at the
        time: two incidents on one workload at once would be one problem, whatever the
        ground truth says."""
        names = sorted({w for p, (_, _, w) in self.pods.items() if p.startswith(ns + "/")})
        name = self.rng.choice([n for n in names if n not in self.used]
                               or [n for n in names if self.free(n, t)] or names)
        self.used.add(name)
        self.hold(name, t)
        return name, [p for p, (_, _, w) in self.pods.items() if w == name]


def _alert(name: str, severity: str, start: float, end: float | None, truth: str | None,
           noise: str | None, group: str, summary: str, **labels: str) -> StreamAlert:
    return StreamAlert(
        labels={"alertname": name, "severity": severity, **labels},
        annotations={"summary": summary, "description": summary + ".",
                     "runbook_url": f"{RUNBOOKS}/{group}/{name.lower()}"},
        starts_at=start, ends_at=end, truth=truth, noise=noise)


def _pod_labels(pod: str) -> dict[str, str]:
    ns, name = pod.split("/", 1)
    return {"namespace": ns, "pod": name, "container": name.split("-")[1], "job":
            "kube-state-metrics"}


def _node_down(c: _Cluster, tid: str, t: float) -> tuple[list[StreamAlert], str]:
    node = c.rng.choice([n for n in NODES if len({p.split("/")[0] for p in c.on_node(n)}) >= 3]
                        or list(NODES))
    end = t + c.rng.uniform(900, 3000)
    c.busy.setdefault(f"down {node}", []).append((t, end))
    out = [_alert("KubeNodeNotReady", "warning", t, end, tid, None, "kubernetes",
                  f"{node} is unready", node=node, job="kube-state-metrics"),
           _alert("KubeNodeUnreachable", "warning", t + 20, end, tid, None, "kubernetes",
                  f"{node} is unreachable", node=node, job="kube-state-metrics")]
    for pod in c.on_node(node)[:12]:
        start = t + c.rng.uniform(60, 420)
        out.append(_alert("KubePodNotReady", "warning", start, end + c.rng.uniform(0, 120), tid,
                          None, "kubernetes", f"Pod {pod} has been in a non-ready state",
                          **_pod_labels(pod)))
    spans = len({p.split("/")[0] for p in c.on_node(node)})
    return out, f"node {node} NotReady: its pods in {spans} namespaces"


def _crashloop(c: _Cluster, tid: str, t: float, ns: str) -> tuple[list[StreamAlert], str]:
    name, pods = c.of_workload(ns, t)
    end = t + c.rng.uniform(600, 2400)
    # A node that is down restarts nothing: its pods' crash loops cannot begin then.
    starts = [(p, t + c.rng.uniform(0, 180)) for p in pods]
    out = [_alert("KubePodCrashLooping", "warning", start, end, tid, None, "kubernetes",
                  f"Pod {p} is restarting", **_pod_labels(p)) for p, start in starts
           if not c.down(c.pods[p][0], start)]
    out.append(_alert("KubeDeploymentReplicasMismatch", "warning", t + 300, end, tid, None,
                      "kubernetes", f"Deployment {ns}/{name} has not matched its replicas",
                      namespace=ns, deployment=name, job="kube-state-metrics"))
    return out, f"{ns}/{name} crash-looping"


def _pvc_filling(c: _Cluster, tid: str, t: float, ns: str) -> tuple[list[StreamAlert], str]:
    name, pods = c.of_workload(ns, t)
    # A StatefulSet's claim is named after its pod (<template>-<pod>); a Deployment's after
    # the Deployment, and only kube-state-metrics says which of its pods mounts it.
    pvc = (f"data-{pods[0].split('/', 1)[1]}" if c.pods[pods[0]][1] == "StatefulSet"
           else f"{name}-data")
    c.claims[f"{ns}/{pvc}"] = (pods[0],)
    end = t + c.rng.uniform(1200, 3600)
    return [_alert("KubePersistentVolumeFillingUp", "critical", t, end, tid, None, "kubernetes",
                   f"PersistentVolume claimed by {pvc} is filling up", namespace=ns,
                   persistentvolumeclaim=pvc, job="kubelet"),
            _alert("KubePersistentVolumeFillingUp", "warning", t - 600, end, tid, None,
                   "kubernetes", f"PersistentVolume claimed by {pvc} will fill up",
                   namespace=ns, persistentvolumeclaim=pvc, job="kubelet"),
            _alert("KubePodCrashLooping", "warning", t + 240, end, tid, None, "kubernetes",
                   f"Pod {pods[0]} is restarting", **_pod_labels(pods[0]))
            ][:2 if c.down(c.pods[pods[0]][0], t + 240) else 3], f"PVC {ns}/{pvc} full"


def _disk_filling(c: _Cluster, tid: str, t: float) -> tuple[list[StreamAlert], str]:
    node = c.rng.choice([n for n in NODES if c.free(f"disk {n}", t)] or NODES)
    c.hold(f"disk {node}", t)
    end = t + c.rng.uniform(900, 3600)
    inst = {"instance": f"{node}:9100", "job": "node-exporter", "namespace": "monitoring",
            "mountpoint": "/var/lib/containerd", "device": "/dev/nvme0n1p1"}
    return [_alert("NodeFilesystemSpaceFillingUp", "warning", t, end, tid, None, "node",
                   f"Filesystem on {node} is predicted to run out of space", **inst),
            _alert("NodeFilesystemAlmostOutOfSpace", "critical", t + c.rng.uniform(120, 400),
                   end, tid, None, "node", f"Filesystem on {node} has less than 3% space left",
                   **inst)], f"disk filling on {node}"


def _api_burn(c: _Cluster, tid: str, t: float) -> tuple[list[StreamAlert], str]:
    end = t + c.rng.uniform(600, 1800)
    return [_alert("KubeAPIErrorBudgetBurn", sev, t + d, end, tid, None, "kubernetes",
                   "The API server is burning too much error budget", long=lw, short=sw,
                   job="apiserver", namespace="default")
            for sev, d, lw, sw in (("critical", 0, "1h", "5m"), ("critical", 60, "6h", "30m"),
                                   ("warning", 200, "1d", "2h"))], "API server error burn"


def _noise(c: _Cluster, t: float, kind: str, duration: float) -> list[StreamAlert]:
    ns = c.rng.choice(NAMESPACES)
    pod = c.rng.choice([p for p in c.pods if p.startswith(ns + "/")])
    if kind == "info":
        return [_alert("KubeQuotaAlmostFull", "info", t, t + c.rng.uniform(600, 7200), None,
                       "info", "kubernetes", f"Namespace {ns} is using 91% of its quota",
                       namespace=ns, resource="requests.cpu", job="kube-state-metrics")]
    if kind == "flapping":
        out, at = [], t
        for _ in range(c.rng.randint(4, 9)):
            end = at + c.rng.uniform(90, 300)
            out.append(_alert("CPUThrottlingHigh", "info" if c.rng.random() < 0.5 else "warning",
                              at, end, None, "flapping", "kubernetes",
                              f"Processes in {pod} are CPU throttled", **_pod_labels(pod)))
            at = end + c.rng.uniform(120, 500)
        return out
    if kind == "chronic":
        return [_alert("KubeMemoryOvercommit", "warning", t, min(duration, t + 4 * 3600), None,
                       "chronic", "kubernetes", "Cluster has overcommitted memory requests",
                       job="kube-state-metrics")]
    return [_alert("KubeContainerWaiting", "warning", t, t + c.rng.uniform(30, 110), None, "blip",
                   "kubernetes", f"Container in {pod} has been waiting", **_pod_labels(pod))]


def generate(seed: int, *, incidents: int = 12, noise_episodes: int = 60,
             duration_s: float = 6 * 3600) -> Stream:
    rng = random.Random(seed)
    c = _Cluster(rng)
    c.build()
    alerts = [_alert("Watchdog", "none", 0.0, None, None, "watchdog", "general",
                     "An alert that should always be firing", namespace="monitoring"),
              _alert("InfoInhibitor", "none", 0.0, None, None, "info", "general",
                     "Info-level alert inhibition", namespace="monitoring")]
    truth: dict[str, str] = {}
    makers = ("node", "crash", "pvc", "disk", "api")
    slots = sorted(rng.uniform(600, duration_s - 3600) for _ in range(incidents - 1))
    for i, t in enumerate(slots, start=1):
        tid, kind = f"I{i}", makers[(i + seed) % len(makers)]
        ns = rng.choice(NAMESPACES)
        made = (_node_down(c, tid, t) if kind == "node" else _crashloop(c, tid, t, ns)
                if kind == "crash" else _pvc_filling(c, tid, t, ns) if kind == "pvc"
                else _disk_filling(c, tid, t) if kind == "disk" else _api_burn(c, tid, t))
        alerts += made[0]
        truth[tid] = made[1]
    # Two unrelated problems in one namespace at once: grouping by namespace merges them. The
    # second starts two minutes into a crash loop or a full PVC, in that one's namespace.
    # (The first such problem whose namespace has a workload with no problem then.)
    twins = [a for a in alerts if a.truth and a.labels.get("namespace") in NAMESPACES
             and a.labels["alertname"] in ("KubePodCrashLooping",
                                           "KubePersistentVolumeFillingUp")]
    twin = next((a for a in twins if c.workloads_free(a.labels["namespace"],
                                                      a.starts_at + 120)), twins[0])
    tid, ns = f"I{incidents}", twin.labels["namespace"]
    made = _crashloop(c, tid, twin.starts_at + 120, ns) if "PersistentVolume" in \
        twin.labels["alertname"] else _pvc_filling(c, tid, twin.starts_at + 120, ns)
    alerts += made[0]
    truth[tid] = made[1] + f" (while {twin.truth} is open in {ns})"
    for _ in range(noise_episodes):
        alerts += _noise(c, rng.uniform(0, duration_s - 600),
                         rng.choice(("info", "flapping", "chronic", "blip", "blip")), duration_s)
    return Stream(seed=seed, duration_s=duration_s,
                  alerts=sorted(alerts, key=lambda a: a.starts_at), incidents=truth,
                  pods=dict(c.pods), claims=dict(c.claims))

