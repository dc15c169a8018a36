"""Which alerts share a cause: what an alert is about (its subjects, from its labels and from the
cluster's topology as kube-state-metrics tells it) and how strongly an alert is tied to an open
incident. Pure functions over plain data, so the intake (`knowledge.correlation`) and the noise
benchmark (`tests/bench/noise.py`) judge with the same code.

A subject is `(kind, name)`: a node, a pod, a workload (`namespace/name`), a volume claim, a
service, a component, an object a label of the rule's own names (an aggregated API, an
Alertmanager integration, an autoscaler), or — when an alert names nothing more specific — its
rule. *Own* subjects
are named by the alert's labels; *derived* ones come from the topology: a pod's node and
workload, a StatefulSet claim's pod and workload, a scrape job's workload (kube-prometheus names
a job after its app), a CronJob run's CronJob. A workload-level alert (replicas mismatch) reaches
the nodes its pods run on only weakly: a workload spans many nodes, and most of them are fine.

Ties, strongest first: the same subject named by both sides (3); one side names what the other
reaches through the topology — a node and a pod on it, a workload and one of its pods (2); both
reach the same workload or component — two pods of one Deployment (1); a workload and a node one
of its pods runs on (1); two alerts on the control plane (1, and for a few windows while it
still alerts: its trouble lasts); and, weakest and only with no other tie, timing: a
Deployment in another namespace going unready just after a StatefulSet stopped serving, while
that incident is young (0: a shared backend's clients; kube-state-metrics has no call graph).
Timing is the caller's: it offers only incidents whose
alerts started within the correlation window — or, for a lasting subject, a few windows — and,
however long ago, those on which the same alert in another severity still fires
(`still_firing`), a critical alert still fires that reaches the alert's subject
(`still_grave`: a full claim's pod), or an alert still fires about the same part of a host
(`still_lit`: a filesystem predicted to fill, then almost full) or about the same pod
(`still_unwell`: unready, then its container waiting); and, even resolved, those
whose SLO burned over a shorter window inside the alert's long one (`slo_burned`).

Whole incidents, not single alerts, are judged when their alerts came first and formed an
incident of their own before what explains them arrived: a shared backend's clients
(`clients_failing`) and what a node took down with it (`down_with_node`).

Causes and effects are kept apart where one cannot be the other's: a node down takes the pods,
targets and replicas on it, not its disks (a disk does not fill because the node went down,
nor is a node outage a disk's problem that began before it); a disk predicted to fill does not
crash a container; a crash loop is never a node outage's (a down node's kubelet restarts
nothing, and pods elsewhere go unready, not crash-looping); a claim is one pod's, not its
whole StatefulSet's. These were set on the noise benchmark's development seeds (ours 1–60,
the independent generator's 1–60): each shape was a wrong merge there.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

Subject = tuple[str, str]

# Subjects an open incident keeps as its own for longer than the correlation window: a node,
# a claim or a rule stays one problem while it lasts (a claim's warning, then its critical).
LASTING = frozenset({"node", "pvc", "rule", "workload", "service"})
# etcd, the API server, the scheduler and the controller manager fail together.
CONTROL_PLANE = ("etcd", "KubeAPI", "KubeClient", "KubeControllerManager", "KubeScheduler")
_CRON_RUN = re.compile(r"-(\d{8,})$")  # a CronJob's Job: <cronjob>-<scheduled minute>
_METRICS_SERVICE = re.compile(r"^(?P<workload>[a-z0-9-]+)-metrics$")
_IP_INSTANCE = re.compile(r"^\d+\.\d+\.\d+\.\d+(:\d+)?$")
WORKLOAD_LABELS = ("deployment", "statefulset", "daemonset", "cronjob")
# kube-prometheus's alerts that a pod or a workload's replicas are not serving.
UNAVAILABLE = frozenset({"KubePodNotReady", "KubeDeploymentReplicasMismatch",
                         "KubeStatefulSetReplicasMismatch", "KubeDaemonSetRolloutStuck",
                         "KubeDeploymentRolloutStuck", "TargetDown"})
# Kubernetes names a Deployment's pod <deployment>-<template hash>-<5 characters>, a
# StatefulSet's <statefulset>-<ordinal>, a DaemonSet's or Job's <owner>-<5 characters>.
_POD_NAMES = ((re.compile(r"^(?P<owner>.+)-[a-z0-9]{6,10}-[a-z0-9]{5}$"), "deployment"),
              (re.compile(r"^(?P<owner>.+)-\d+$"), "statefulset"),
              (re.compile(r"^(?P<owner>.+)-[a-z0-9]{5}$"), ""))
# kube-state-metrics' labels for the objects its series describe, other than a pod.
KSM_OBJECTS = ("node", *WORKLOAD_LABELS, "job_name", "persistentvolumeclaim", "replicaset",
               "horizontalpodautoscaler", "resourcequota", "poddisruptionbudget")
# Labels naming a part of a host — a filesystem, a disk, a network interface.
NODE_PARTS = ("mountpoint", "device", "interface", "nic", "cpu", "chip", "sensor")
HOSTS = ("node", "instance")
# Labels kube-prometheus' rules keep that name an object of their own: an aggregated API
# (`name`), an Alertmanager integration, an autoscaler, a quota, a disruption budget, an etcd
# peer (`To`).
OBJECT_LABELS = ("name", "integration", "horizontalpodautoscaler", "resourcequota",
                 "poddisruptionbudget", "To")
# An aggregated API's APIService is named <version>.<group> (v1beta1.metrics.k8s.io), and its
# server, by convention, after the group's first label or two (metrics-server,
# custom-metrics-apiserver). kube-state-metrics exports no APIService, so its `spec.service`
# is out of reach: the names are the only relation there is.
_API_SERVICE = re.compile(r"^v\d+(?:(?:alpha|beta)\d*)?\.(?P<group>[a-z0-9-]+(?:\.[a-z0-9-]+)+)$")
_API_SERVER = re.compile(r"^(?P<stem>[a-z0-9-]+?)-?(?:api-?)?server$")
# Scrape jobs with a target on every node (kube-prometheus's names).
NODE_AGENTS = frozenset({"kubelet", "node-exporter", "kube-proxy", "cadvisor"})
ANY = "*"
HOST_EXPORTERS = frozenset({"node-exporter", "node_exporter"})
SCRAPE_LABELS = frozenset({"pod", "container", "service", "namespace", "endpoint"})
# Alerts only a running kubelet raises: a down node cannot be their cause.
NEEDS_KUBELET = frozenset({"KubePodCrashLooping", "KubeContainerWaiting"})
# kube-state-metrics' alerts about a pod's own state (with its `pod` label).
POD_STATE = UNAVAILABLE | NEEDS_KUBELET
# kube-prometheus's alerts that say a node is down (not merely unwell).
NODE_DOWN = frozenset({"KubeNodeNotReady", "KubeNodeUnreachable", "KubeletDown", "NodeDown",
                       "KubeletInstanceUnreachable"})
# What the kubelet does, or says, when its node runs short of memory, disk or PIDs: it evicts
# pods, it sets a pressure condition. kube-prometheus rates both info, yet neither is a
# threshold hovering at its edge — Kubernetes acted — so a warning about that node just
# before was no one-off. Such an alert joins an incident about its node (`acted_on`), never
# one of its own.
ACTED = frozenset({"KubeNodeEviction", "KubeNodePressure"})
# What the kubelet ran short of, from the eviction signal or the node condition it names, and
# the words in the names of the alerts about that resource (node-exporter's, kube-prometheus'):
# a node whose disk fills may run short of memory too, and that is another problem.
SHORT_OF = (("memory", ("memory",), ("Memory", "OOM")),
            ("disk", ("nodefs", "imagefs", "disk"), ("Filesystem", "Disk", "Inode")),
            ("pids", ("pid",), ("Pid", "Process")))
NOUN = {"instance": "target", "node": "node", "pod": "pod", "workload": "workload",
        "pvc": "volume claim", "service": "service", "component": "", "rule": "alert rule",
        "host": "node", "object": "", "api": "aggregated API"}


@dataclass(frozen=True)
class Topology:
    """What kube-state-metrics says: each pod (`namespace/pod`) → (node, owner kind, owner name,
    with a ReplicaSet's owner Deployment named). Empty when Prometheus has no kube-state-metrics:
    then only labels relate alerts."""

    pods: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=dict)  # an exporter's host or IP → node
    # The pods that mount each claim (`namespace/claim` → `namespace/pod`s), from
    # kube_pod_spec_volumes_persistentvolumeclaims_info: the only tie a Deployment's claim
    # has, since only a StatefulSet's is named after its pod.
    claims: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def job_owner(self, namespace: str, job: str) -> str:
        """The workload a scrape job is named after: kube-prometheus names a job after its
        app's Service, which a chart often names `<workload>-metrics`; where the job's name is
        no workload of the namespace but begins with one's name, it is that one's (the
        longest such name)."""
        known = {w for p, (_node, _kind, w) in self.pods.items()
                 if p.startswith(namespace + "/")}
        if job in known:
            return job
        return max((w for w in known if job.startswith(w + "-")), key=len, default=job)

    def nodes_of(self, workloads: set[str]) -> set[str]:
        return {node for p, (node, _kind, w) in self.pods.items()
                if f"{p.split('/', 1)[0]}/{w}" in workloads}


@dataclass(frozen=True)
class About:
    """An alert's subjects: named by its labels (`own`), reached through the topology
    (`derived`, each with the words that say how), and weakly (`weak`: a workload's nodes)."""

    rule: str
    own: frozenset[Subject]
    derived: dict[Subject, str]
    weak: frozenset[Subject] = frozenset()
    identity: str = ""  # its labels but rule and severity: one alert's warning and critical
    part: str = ""  # what on its node it is about: a filesystem, a device ("" for the node)
    severity: str = ""
    run: str = ""  # the CronJob whose run (a Job of its own) it is about
    scheduled: int = 0  # that run's scheduled minute (since the epoch), from its Job's name
    # A StatefulSet it says is not serving (a backend), or a Deployment it says is unready
    # (`READINESS`: what fails when a backend does).
    backend: frozenset[Subject] = frozenset()
    client: frozenset[Subject] = frozenset()
    # A burn-rate alert's long window, in seconds (its `long` label), 0 for any other alert.
    burn: float = 0.0
    short_of: str = ""  # what the kubelet ran short of (`ACTED`), if it says
    # Where a claim's pods run: its kubelet's `node` label, for each pod it reaches (pod, node).
    places: frozenset[Subject] = frozenset()
    # A node agent's scrape target down (TargetDown of the kubelet's or node-exporter's job):
    # one runs on every node.
    agent: bool = False


def _owner_kind(pod: str) -> tuple[str, str] | None:
    """The workload a pod's name says owns it, by Kubernetes' naming, and its kind where the
    name tells it (a Deployment's, a StatefulSet's; "" for a DaemonSet's or a Job's)."""
    for pattern, kind in _POD_NAMES:
        if (m := pattern.match(pod)) is not None:
            return m.group("owner"), kind
    return None


def owner_by_name(pod: str) -> str | None:
    """The workload a pod's name says owns it, by Kubernetes' naming; None if it says none."""
    named = _owner_kind(pod)
    return named[0] if named else None


def about(labels: dict[str, str], topology: Topology | None = None) -> About:
    topology = topology or Topology()
    name = labels.get("alertname", "")
    own: set[Subject] = set()
    derived: dict[Subject, str] = {}
    if labels.get("job") in HOST_EXPORTERS and name != "TargetDown":
        # node-exporter's series are about its node: the pod, namespace and service labels a
        # Kubernetes scrape adds are the exporter's own, and name its node through the topology.
        exporter = f"{labels.get('namespace', '')}/{labels.get('pod', '')}"
        labels = {k: v for k, v in labels.items() if k not in SCRAPE_LABELS}
        if exporter in topology.pods and not labels.get("node"):
            labels["node"] = topology.pods[exporter][0]
    if labels.get("job") == "kube-state-metrics":
        # kube-state-metrics' series are about what it watches. The scrape adds its own
        # target's labels (kube-prometheus-stack keeps them beside the series' own, honorLabels):
        # its instance, endpoint and service always, and its pod and container where the
        # series names none. A series about a node, a workload, a claim or a quota names that
        # object, so the pod beside it is kube-state-metrics' own, which every such alert
        # would share; a series naming no other object is about its pod.
        other = any(labels.get(k) for k in KSM_OBJECTS)
        dropped = {"instance", "endpoint", "service"} | ({"pod", "container"} if other
                                                         else set())
        labels = {k: v for k, v in labels.items() if k not in dropped}
    elif labels.get("job") in NODE_AGENTS and labels.get("node"):
        # The kubelet's (cAdvisor's) target is the node it runs on, which `node` names.
        labels = {k: v for k, v in labels.items() if k != "instance"}
    ns = labels.get("namespace", "")
    # A claim's or a pod's `node` label says where the kubelet that reported it runs: the pod's
    # node is a relation, and a claim's problem is its own, wherever it is mounted.
    if labels.get("node") and not labels.get("persistentvolumeclaim"):
        if labels.get("pod"):
            derived[("node", labels["node"])] = f"pod {labels['pod']} runs on node {labels['node']}"
        else:
            own.add(("node", labels["node"]))
    # A scrape's `instance` is its target: a node for a host exporter (or an address the
    # topology knows as a node), else the target itself.
    instance = labels.get("instance", "")
    host = instance.rsplit(":", 1)[0] if not instance.startswith("http") else ""
    if host in topology.hosts:
        own.add(("node", topology.hosts[host]))
    elif host and labels.get("job") in HOST_EXPORTERS and not _IP_INSTANCE.match(instance):
        own.add(("node", host))
    elif instance:
        own.add(("instance", instance))
    for kind in WORKLOAD_LABELS:
        if labels.get(kind):
            own.add(("workload", f"{ns}/{labels[kind]}"))
    run, scheduled = "", 0
    if labels.get("job_name"):
        cronjob = f"{ns}/{_CRON_RUN.sub('', labels['job_name'])}"
        own.add(("workload", cronjob))
        if (m := _CRON_RUN.search(labels["job_name"])) is not None:
            run, scheduled = cronjob, int(m.group(1))
    # A scrape's `service` is the Service it found the target by — kube-prometheus names it
    # after the job; only a service label of the rule's own says what the alert is about.
    if labels.get("service") and labels.get("service") != labels.get("job") \
            and labels.get("job") not in ("kube-state-metrics", "kubelet"):
        own.add(("service", f"{ns}/{labels['service']}" if ns else labels["service"]))
    if labels.get("persistentvolumeclaim"):
        claim = labels["persistentvolumeclaim"]
        own.add(("pvc", f"{ns}/{claim}"))
        mounted = topology.claims.get(f"{ns}/{claim}", ())
        for key in mounted:
            pod = key.split("/", 1)[1]
            derived[("pod", key)] = f"claim {claim} is mounted by pod {pod}"
            if owner := (topology.pods[key][2] if key in topology.pods else owner_by_name(pod)):
                derived[("workload", f"{ns}/{owner}")] = f"claim {claim} is {owner}'s"
        if not mounted and not topology.pods:
            # No kube-state-metrics: a StatefulSet's claim is <template>-<pod>, and its pod
            # <statefulset>-<ordinal> — every way of reading the name that fits.
            parts = claim.split("-")
            for i in range(1, len(parts) - 1):
                pod = "-".join(parts[i:])
                if re.fullmatch(r".+-\d+", pod) and (owner := owner_by_name(pod)):
                    derived[("pod", f"{ns}/{pod}")] = f"claim {claim} is pod {pod}'s"
                    derived[("workload", f"{ns}/{owner}")] = f"claim {claim} is {owner}'s"
            if not any(kind == "pod" for kind, _ in derived):
                # A Deployment's claim names no pod; charts name it after their Deployment
                # (<fullname>, or <fullname>-data): its pods are the workload's so named.
                for owner in {claim, claim.rsplit("-", 1)[0]}:
                    derived[("workload", f"{ns}/{owner}")] = \
                        f"claim {claim} is named after {owner}"
        for pod, (_node, _kind, workload) in topology.pods.items():
            # A StatefulSet's claim is named <template>-<pod>.
            if not mounted and pod.startswith(ns + "/") \
                    and claim.endswith("-" + pod.split("/", 1)[1]):
                derived[("pod", pod)] = f"claim {claim} is pod {pod}'s"
                derived[("workload", f"{ns}/{workload}")] = f"claim {claim} is {workload}'s"
    if labels.get("pod"):
        pod = f"{ns}/{labels['pod']}"
        own.add(("pod", pod))
        if pod in topology.pods:
            node, _kind, workload = topology.pods[pod]
            derived[("node", node)] = f"pod {labels['pod']} runs on node {node}"
            derived[("workload", f"{ns}/{workload}")] = f"pod {labels['pod']} is {workload}'s"
        elif (owner := owner_by_name(labels["pod"])) is not None:
            # Not in kube-state-metrics (or no Prometheus): Kubernetes' own naming says whose.
            derived[("workload", f"{ns}/{owner}")] = f"pod {labels['pod']} is {owner}'s"
    for key in OBJECT_LABELS:
        if labels.get(key):
            own.add(("object", f"{key} {labels[key]}"))
    if (api := _API_SERVICE.match(labels.get("name", ""))) is not None:
        group = api.group("group").split(".")
        own.update(("api", "-".join(group[:n])) for n in (1, 2))
    if name == "TargetDown" and labels.get("job") and labels["job"] not in NODE_AGENTS:
        own.add(("workload", f"{ns}/{topology.job_owner(ns, labels['job'])}"))
        if not topology.pods and (m := _METRICS_SERVICE.match(labels["job"])) is not None:
            # No kube-state-metrics to list the workloads: the job may be named after a chart's
            # `<workload>-metrics` Service, or be a workload so named (kube-state-metrics).
            own.add(("workload", f"{ns}/{m.group('workload')}"))
    if name.startswith(CONTROL_PLANE):
        derived[("component", "control-plane")] = "the control plane"
    for kind, workload in [*own, *derived]:
        if kind == "workload" and (server := _API_SERVER.match(workload.split("/")[-1])):
            derived[("api", server.group("stem"))] = \
                f"{workload} serves the {server.group('stem')} API, by its name"
    weak: set[Subject] = set()
    # A workload-level alert (replicas missing, its scrape targets down) may be a node's doing
    # wherever one of its pods runs; a claim's or a pod's alert is about that claim or pod.
    if not any(kind in ("pod", "pvc") for kind, _ in own):
        workloads = {s for kind, s in own if kind == "workload"}
        weak |= {("host", node) for node in topology.nodes_of(workloads)}
        if name == "TargetDown" and labels.get("job") in NODE_AGENTS:
            weak.add(("host", ANY))  # one runs on every node: any node's failure takes one down
    placed = (f"{ns}/{labels['pod']}" in topology.pods if labels.get("pod")
              else bool(weak))
    if name in UNAVAILABLE and not placed and not labels.get("node"):
        # Where it runs is unknown (no kube-state-metrics for it): a pod, or a workload's
        # replicas, going unready while a node is down most likely ran there.
        weak.add(("host", ANY))
    if not own:
        own.add(("rule", f"{name}/{labels.get('job', '')}"))
    backend: set[Subject] = set()
    client: set[Subject] = set()
    if name in UNAVAILABLE or name in NEEDS_KUBELET:
        kinds = {f"{ns}/{labels[k]}": k for k in WORKLOAD_LABELS if labels.get(k)}
        if labels.get("pod") and f"{ns}/{labels['pod']}" in topology.pods:
            _node, kind, owner = topology.pods[f"{ns}/{labels['pod']}"]
            kinds[f"{ns}/{owner}"] = kind.lower()
        elif labels.get("pod") and (named := _owner_kind(labels["pod"])) is not None \
                and named[1]:
            # Not in kube-state-metrics: Kubernetes' naming tells a Deployment's pod
            # (<name>-<template hash>-<suffix>) and a StatefulSet's (<name>-<ordinal>).
            kinds[f"{ns}/{named[0]}"] = named[1]
        backend = {("workload", w) for w, k in kinds.items() if k == "statefulset"}
        if name in READINESS:
            client = {("workload", w) for w, k in kinds.items() if k == "deployment"}
    identity = ",".join(f"{k}={v}" for k, v in sorted(labels.items())
                        if k not in ("alertname", "severity"))
    burn = next((seconds(labels[k]) for k in BURN_WINDOWS if labels.get(k)), 0.0)
    part = ",".join(f"{k}={labels[k]}" for k in NODE_PARTS if labels.get(k))
    # The kubelet that reports a claim's volume (its `node` label) is where the claim is
    # mounted: where the pods it reaches run.
    places = frozenset((pod, labels["node"]) for kind, pod in derived if kind == "pod"
                       and labels.get("persistentvolumeclaim") and labels.get("node"))
    return About(rule=name, own=frozenset(own), derived=derived, weak=frozenset(weak),
                 identity=identity, part=part, severity=labels.get("severity", ""), run=run,
                 scheduled=scheduled, backend=frozenset(backend), client=frozenset(client),
                 burn=burn, short_of=_short_of(labels) if name in ACTED else "",
                 places=places, agent=name == "TargetDown" and labels.get("job") in NODE_AGENTS)


def _short_of(labels: dict[str, str]) -> str:
    said = f"{labels.get('eviction_signal', '')} {labels.get('condition', '')}".lower()
    return next((what for what, words, _ in SHORT_OF if any(w in said for w in words)), "")


@dataclass
class Related:
    """The subjects of an incident's alerts, counted, for tying the next alert to it: named
    (`own`), of alerts still firing (`active`), reached through the topology (`derived`, and
    per rule in `symptoms`: two pods of one workload tie only when they show one symptom) and
    weakly (`weak`)."""

    own: Counter[Subject] = field(default_factory=Counter)
    active: Counter[Subject] = field(default_factory=Counter)
    derived: Counter[Subject] = field(default_factory=Counter)
    symptoms: Counter[Subject] = field(default_factory=Counter)  # (rule, workload)
    weak: Counter[Subject] = field(default_factory=Counter)
    identities: Counter[Subject] = field(default_factory=Counter)  # ("identity", labels)
    parts: Counter[Subject] = field(default_factory=Counter)  # (node, what on it)
    firing: Counter[Subject] = field(default_factory=Counter)  # (rule, severity|labels)
    # What its critical alerts still firing reach through the topology (a full claim's pod),
    # downward only: a pod's node is where it runs, not what its trouble causes.
    grave: Counter[Subject] = field(default_factory=Counter)
    runs: Counter[Subject] = field(default_factory=Counter)  # (cronjob, scheduled minute)
    # StatefulSets it says stopped serving: (workload, since when, in whole seconds).
    backends: Counter[Subject] = field(default_factory=Counter)
    # SLOs it says burned: (rule|labels but the windows, the long window in whole seconds).
    burns: Counter[Subject] = field(default_factory=Counter)
    # The parts of hosts (a filesystem, a device) its alerts still firing are about.
    lit: Counter[Subject] = field(default_factory=Counter)
    # The workloads its claims' critical alerts reach: (workload, since, in whole seconds).
    filled: Counter[Subject] = field(default_factory=Counter)
    placed: Counter[Subject] = field(default_factory=Counter)  # (pod, node): `About.places`
    unwell: Counter[Subject] = field(default_factory=Counter)  # pods its alerts still firing

    PARTS = ("own", "active", "derived", "symptoms", "weak", "identities", "parts", "firing",
             "grave", "runs", "backends", "burns", "lit", "filled", "placed", "unwell")

    def add(self, a: About, starts_at: float = 0.0) -> None:
        self.own.update(a.own)
        self.active.update(a.own)
        self.derived.update(a.derived.keys())
        self.symptoms.update((a.rule, s[1]) for s in a.derived if s[0] == "workload")
        self.symptoms.update((a.rule, s[1]) for s in a.own if s[0] == "node")
        self.weak.update(a.weak)
        self.identities[("identity", a.identity)] += 1
        self.parts.update((s[1], a.part) for s in a.own if s[0] in HOSTS)
        self.lit.update(_lit(a))
        self.unwell.update(_unwell(a))
        self.symptoms[("rule", a.rule)] += 1
        self.firing[_rule_on(a)] += 1
        if a.severity == "critical":
            self.grave.update(_below(a))
            if any(kind == "pvc" for kind, _ in a.own):
                self.filled.update((w, str(int(starts_at))) for kind, w in a.derived
                                   if kind == "workload")
        self.placed.update(a.places)
        if a.run:
            self.runs[(a.run, str(a.scheduled))] += 1
        self.backends.update((w, str(int(starts_at))) for _, w in a.backend)
        if a.burn:
            self.burns[_slo(a), str(int(a.burn))] += 1

    def resolved(self, a: About) -> None:
        """One of its alerts resolved: its subjects are no longer active."""
        self.active.subtract(a.own)
        self.active = +self.active
        self.lit.subtract(_lit(a))
        self.lit = +self.lit
        self.unwell.subtract(_unwell(a))
        self.unwell = +self.unwell
        self.firing.subtract([_rule_on(a)])
        self.firing = +self.firing
        if a.severity == "critical":
            self.grave.subtract(_below(a))
            self.grave = +self.grave

    def relisted(self, a: About) -> None:
        """One of its alerts, taken as ended when Alertmanager left it out, is listed firing
        again (it was muted): its subjects are active again."""
        self.active.update(a.own)
        self.lit.update(_lit(a))
        self.unwell.update(_unwell(a))
        self.firing[_rule_on(a)] += 1
        if a.severity == "critical":
            self.grave.update(_below(a))

    def copy(self) -> Related:
        return Related(**{part: Counter(getattr(self, part)) for part in self.PARTS})

    def to_json(self) -> dict[str, list[list[object]]]:
        return {part: [[k, n, c] for (k, n), c in sorted(getattr(self, part).items())]
                for part in self.PARTS}

    @classmethod
    def from_json(cls, data: dict[str, list[list[object]]] | None) -> Related:
        made = cls()
        for part in cls.PARTS:
            for kind, name, count in (data or {}).get(part, []):
                getattr(made, part)[(str(kind), str(name))] = int(str(count))
        return made


@dataclass(frozen=True)
class Tie:
    """How an alert is tied to an incident: its strength, how many of the incident's alerts
    share the subject, the subject and, in words, why."""

    strength: int
    shared: int
    subject: Subject
    why: str
    # Where the alert's pods run is unknown (no kube-state-metrics): tied to a node down only
    # because it could have run there.
    guess: bool = False

    @property
    def rank(self) -> tuple[int, int]:
        return self.strength, self.shared


def tie(a: About, incident: Related, *, lasting_only: bool = False,
        starts_at: float | None = None, follows: float = 0.0) -> Tie | None:
    """The strongest tie between an alert and an incident's subjects, or None. With
    `lasting_only` (the incident's alerts started longer ago than the window, but it is still
    open), only a lasting subject — a node, a workload, a claim, a rule — counts.

    Effects join their cause freely: a pod's alert joins the incident about its node, its
    workload or its claim. A cause joins an incident about effects only if it explains all of
    them: a node that fails while one of a Deployment's pods crash-loops there, or a claim
    filling up on a pod that is down with its node, is a problem of its own."""
    best: Tie | None = None

    def offer(t: Tie) -> None:
        nonlocal best
        if best is None or t.rank > best.rank:
            best = t

    if a.rule in NEEDS_KUBELET and any(rule in NODE_DOWN for rule, _ in incident.symptoms):
        # A down node's kubelet restarts no container, and a node down leaves pods elsewhere
        # unready, not crash-looping: a crash loop is not a node outage's.
        return None
    pods = sum(count for (kind, _), count in incident.own.items() if kind == "pod")
    # Pods with a cause of their own named beside them (a claim, a workload, a rule).
    explained = any(kind not in ("pod", "node") for kind, _ in incident.own)
    names_pod = any(kind == "pod" for kind, _ in a.own)
    crash_looping = any(incident.symptoms[("rule", r)] for r in NEEDS_KUBELET)
    for s in a.own:
        if not incident.own[s]:
            continue
        # On one host, a full disk and a clock that drifts are two problems. The host down
        # takes what runs on it and the host as a whole, not a disk or a network card: a
        # disk does not fill because its node went down, and a node down is not a disk's
        # problem that started before it.
        if s[0] in HOSTS and not incident.parts[(s[1], a.part)] and (
                a.part or not _down(incident, s[1])):
            continue
        # Past the window only the same alert counts (a claim's warning, then its critical):
        # a node's disk filling and, twenty minutes on, the node going down are two problems.
        if not lasting_only:
            offer(Tie(3, incident.own[s], s, f"both about {_said(s)}"))
        elif s[0] in LASTING and incident.identities[("identity", a.identity)]:
            offer(Tie(3, incident.own[s], s, f"the same alert about {_said(s)}, worse"))
    # Past the window, a relation holds only to what is still alerting: a crash loop that
    # starts after its Deployment's replicas came back is not the node failure that took them.
    lasting_kinds = ("node", "workload")
    claim_pods = {p for p in a.derived if p[0] == "pod"} \
        if any(kind == "pvc" for kind, _ in a.own) else set()
    for s, how in a.derived.items():  # the alert reaches the incident's subject
        if not incident.own[s] or (lasting_only and (s[0] not in lasting_kinds
                                                     or not incident.active[s])):
            continue
        # A pod's alert joins its node's incident when the node is down or unwell as a whole
        # (memory, load), not for one part of it: a disk predicted to fill, or nearly full,
        # does not make a container crash. Past the window only a node down counts.
        if s[0] == "node" and not _down(incident, s[1]) and (
                lasting_only or not incident.parts[(s[1], "")]):
            continue
        if s[0] == "pod" and not names_pod and incident.own[s] < pods:
            continue  # a claim joins only an incident about its own pod
        if s[0] == "workload" and claim_pods and not any(incident.own[p] for p in claim_pods):
            continue  # ... not its StatefulSet's, whose other pods are down for their own cause
        offer(Tie(2, incident.own[s], s, how))
    for s in a.own:  # the incident reaches the alert's subject
        if not incident.derived[s] or (lasting_only and s[0] not in lasting_kinds):
            continue
        if s[0] == "node" and (incident.derived[s] < pods or explained or a.part
                               or (a.rule in NODE_DOWN and crash_looping)
                               or (a.rule not in NODE_DOWN and _down(incident, s[1]))):
            continue  # a node joins only an incident whose pods all run on it, unexplained
        offer(Tie(2, incident.derived[s], s, f"{_said(s)} and what runs on it"
                  if s[0] == "node" else f"{_said(s)} and its parts"))
    if lasting_only:
        for s in a.derived:  # the control plane's trouble lasts: still alerting, it is one
            if s[0] == "component" and incident.derived[s]:
                offer(Tie(1, incident.derived[s], s, f"both on {_said(s)}"))
        return best
    for s in a.derived:
        if s[0] == "component" and incident.derived[s]:
            offer(Tie(1, incident.derived[s], s, f"both on {_said(s)}"))
        elif s[0] == "workload" and incident.symptoms[(a.rule, s[1])]:
            offer(Tie(1, incident.symptoms[(a.rule, s[1])], s,
                      f"{a.rule} on pods of {_said(s)}"))
    for _kind, node in a.weak:
        if node == ANY:
            for (rule, n), count in incident.symptoms.items():
                if rule in NODE_DOWN:
                    offer(Tie(1, count, ("node", n), f"it has a target on node {n}, which "
                                                     "is down", guess=True))
        elif _down(incident, node):
            offer(Tie(1, incident.own[("node", node)], ("node", node),
                      f"a pod of the workload runs on node {node}, which is down"))
    # A node down joins an incident about workloads with a pod on it only while nothing else
    # explains them: not replicas missing behind a full claim or crash-looping containers.
    has_cause = crash_looping or any(kind == "pvc" for kind, _ in incident.own)
    # Where its pods run is unknown (no kube-state-metrics), the node is only guessed to hold
    # them: only an incident that says nothing but that pods are unavailable is so guessed.
    only_unready = a.rule in NODE_DOWN and pods > 0 and all(
        rule in UNAVAILABLE | NODE_DOWN for (kind, rule), n in incident.symptoms.items()
        if kind == "rule" and n)
    for (_kind, node), count in incident.weak.items():
        if a.rule in NODE_DOWN and not has_cause and (("node", node) in a.own or (
                node == ANY and only_unready)):
            offer(Tie(1, count, ("node", node) if node != ANY else next(iter(a.own)),
                      "the incident's targets run on it"))
    if best is None and starts_at is not None and a.client:
        # A Deployment in another namespace going unready within `follows` seconds after a
        # StatefulSet stopped serving: its clients fail with a shared backend (their readiness
        # checks it). Not before: an effect does not come first.
        spaces = {w[1].split("/", 1)[0] for w in a.client}
        since: dict[str, float] = {}
        for (w, stopped), _count in incident.backends.items():
            since[w] = min(since.get(w, float("inf")), float(stopped))
        for w, t in sorted(since.items()):
            if w.split("/", 1)[0] not in spaces and 0 <= starts_at - t <= follows:
                offer(Tie(0, incident.backends[(w, str(int(t)))], ("workload", w),
                          f"{a.rule} on {_said(min(a.client))} {starts_at - t:.0f} s after "
                          f"StatefulSet {w} stopped serving"))
    return best


# What a client shows when its backend stops serving: its readiness check fails. (A crash loop
# is a workload's own trouble first: a bad rollout's.)
READINESS = frozenset({"KubePodNotReady", "KubeDeploymentReplicasMismatch"})
FOLLOWS = 0.75  # of the window: how soon after a backend's first alert its clients' come


def young(starts_at: float, first: float, window: float) -> float | None:
    """The alert's start if it came while the incident was young (within `FOLLOWS` windows of
    its first alert), else None: a backend's clients join only an incident that began with
    the backend, not one hours old whose StatefulSet stopped serving later (a claim filling up,
    then full) — on the noise benchmark's development seeds, the latter's ties were as often
    an unrelated bad rollout starting then."""
    return starts_at if 0 <= starts_at - first <= FOLLOWS * window else None


ROLLOUT = frozenset({"KubeDeploymentRolloutStuck", "KubeDeploymentGenerationMismatch",
                     "KubeStatefulSetUpdateNotRolledOut", "KubeStatefulSetGenerationMismatch",
                     "KubeDaemonSetRolloutStuck"})


def serves_clients(incident: Related) -> bool:
    """Whether the incident says a StatefulSet stopped serving, not down with its node (the
    replica's peers still serve): its clients' failures may be gathered into it."""
    return bool(incident.backends) and not any(rule in NODE_DOWN
                                               for rule, _ in incident.symptoms)


def may_be_client(incident: Related) -> bool:
    """Whether the incident may be a backend's clients failing: pods unready, no rollout."""
    return bool(incident.symptoms[("rule", "KubePodNotReady")]) and not incident.backends \
        and not any(incident.symptoms[("rule", r)] for r in ROLLOUT)


def workloads_of(a: About) -> set[str]:
    return {s[1] for s in (*a.own, *a.derived) if s[0] == "workload"}


def clients_failing(backend: Related, alerts: list[tuple[About, float]], *,
                    window: float) -> str | None:
    """Why an incident's alerts (each with its start) are all a shared backend's clients
    failing with it, or None. Alertmanager sends each namespace's group on its own clock, so
    a client's card may go out before its backend's alerts arrive, or its alerts (a pod
    unready, its replicas missing, its scrape target down) tie to one another before the tie
    to the backend is seen. The backend's incident says a StatefulSet stopped serving, not one
    of its replicas down with its node (`serves_clients`); every alert of the incident is
    about Deployments of another namespace each of whose unready pods went unready within
    `FOLLOWS` windows after it stopped — an effect does not come first — and none started more
    than a window before it stopped; no rollout is under way (a bad rollout's pods fail on
    their own). However old the backend's incident: a claim that filled hours in stops its
    StatefulSet then."""
    follows = FOLLOWS * window
    stopped = sorted((float(t), w) for (w, t) in backend.backends)
    if not alerts or not serves_clients(backend) or any(
            a.rule in ROLLOUT or (a.rule in NEEDS_KUBELET and t < stopped[0][0])
            for a, t in alerts):
        return None  # a rollout, or a crash loop from before it stopped: their own trouble
    named: dict[str, str] = {}  # client workload → why
    for a, starts_at in alerts:
        if a.rule != "KubePodNotReady":
            continue
        after = [(t, b) for t, b in stopped for _, w in a.client
                 if b.split("/", 1)[0] != w.split("/", 1)[0] and 0 <= starts_at - t <= follows]
        if not after:  # not a Deployment's pod, or unready before (or long after) it stopped
            return None
        t, b = after[0]
        for _, w in sorted(a.client):
            named.setdefault(w, f"{a.rule} on {_said(('workload', w))} {starts_at - t:.0f} s "
                                f"after StatefulSet {b} stopped serving")
    if not named or any(not workloads_of(a) or not workloads_of(a) <= set(named)
                        or starts_at < stopped[0][0] - window for a, starts_at in alerts):
        return None
    return "; ".join(named[w] for w in sorted(named))


def troubled_client(a: About, starts_at: float, incident: Related) -> str | None:
    """The workload this alert says is in trouble of its own — a crash loop, a rollout —
    if the incident holds it only as a shared backend's client (a Deployment of another
    namespace going unready after the backend stopped) and its trouble began before the
    backend stopped serving, or is a rollout stuck, whenever it is heard of: its unready
    replicas were its own, the timing a coincidence. A rollout is a change to the workload
    itself (a new ReplicaSet whose pods do not come up); a shared backend's clients fail with
    no rollout under way. Kubernetes says a rollout is stuck only after its progress deadline
    (10 minutes by default), so the alert comes well after the replicas went unready."""
    if a.rule not in NEEDS_KUBELET | ROLLOUT or not serves_clients(incident):
        return None
    stopped = min(float(t) for _, t in incident.backends)
    spaces = {w.split("/", 1)[0] for w, _ in incident.backends}
    if starts_at >= stopped and a.rule not in ROLLOUT:
        return None
    for w in sorted(workloads_of(a)):
        if w.split("/", 1)[0] not in spaces and (incident.own[("workload", w)] or any(
                incident.symptoms[(rule, w)] for rule in READINESS)):
            return w
    return None


def stranded_workload(a: About, incident: Related, topology: Topology) -> str | None:
    """The workload this alert says is crash-looping, if the incident is a node's outage that
    holds that workload's alerts while nothing places one of its pods on a node that went down
    (no kube-state-metrics for them: an unplaced pod unready while a node is down most likely
    ran there, `about` assumes). A down node's kubelet restarts nothing, so its crash loop is
    the workload's own trouble, and it explains the missing replicas that the node was only
    guessed to. (A stuck rollout names its workload, so it joins the node's incident itself.)"""
    if a.rule not in NEEDS_KUBELET:
        return None
    down = {node for (rule, node), n in incident.symptoms.items() if rule in NODE_DOWN and n}
    if not down:
        return None
    for w in sorted(workloads_of(a)):
        if (incident.own[("workload", w)] or incident.derived[("workload", w)]) \
                and not topology.nodes_of({w}) & down:
            return w
    return None


def strands(crash: About, other: About, workload: str) -> bool:
    """Whether `other`, an alert a node outage holds, leaves it with `crash`, the crash loop of
    `workload` (`stranded_workload`): the workload's own alerts (its replicas missing) and the
    crash-looping pod's do; another pod of it unready does not — a pod that can still
    crash-loop is on a node that is up, but that one went unready with the node."""
    if workload not in workloads_of(other):
        return False
    pods = {s for s in other.own if s[0] == "pod"}
    return not pods or bool(pods & crash.own)


def down_nodes(a: About) -> set[str]:
    """The nodes an alert says are down (`NODE_DOWN`)."""
    return {s[1] for s in a.own if s[0] == "node"} if a.rule in NODE_DOWN else set()


def _reaches(a: About, node: str) -> bool:
    return ("node", node) in a.own or ("node", node) in a.derived \
        or bool({("host", node), ("host", ANY)} & a.weak)


NODE_AGENT_LEAD = 0.25  # of the window: see `_took`


def _took(down: Related, node: str, down_at: float, first: float, a: About, starts_at: float,
          *, window: float) -> bool:
    """Whether one alert may be what the node took down with it (`down_with_node`)."""
    # A node agent's scrape target down leads by more: TargetDown's `for:` is 10 minutes,
    # KubeNodeNotReady's 15, and the node controller waits its grace (40 s) before it marks
    # the node — a quarter of the default window over the 5 minutes that is.
    lead = NODE_AGENT_LEAD * window if a.agent else 0.0
    since = max(first, down_at - window) - window - lead
    return a.rule in UNAVAILABLE | NODE_DOWN and since <= starts_at <= down_at + window \
        and _reaches(a, node) and tie(a, down) is not None


def mostly_down_with_node(down: Related, node: str, down_at: float, first: float,
                          alerts: list[tuple[About, float, bool]], *,
                          window: float) -> tuple[list[int], str] | None:
    """The alerts of an incident (each with its start and whether it still fires) that a
    node going down took with it — by index — and why, when they are most of its alerts but
    not all: a namespace's card may hold something else — a replica that restarted minutes
    before, resolved since — beside the node's pods unready. Most, so that a node outage does
    not pull one pod out of another problem (a bad rollout whose replica ran there). Only
    those still firing, and placed on the node, move."""
    # Placed there by name or by kube-state-metrics: a guess of where it ran (no topology)
    # does not take an alert out of an incident it was tied into.
    took = [i for i, (a, t, firing) in enumerate(alerts)
            if firing and ("node", node) in (*a.own, *a.derived)
            and _took(down, node, down_at, first, a, t, window=window)]
    if len(took) == len(alerts) or 2 * len(took) <= len(alerts):
        return None
    why = down_with_node(down, node, down_at, first, [alerts[i][:2] for i in took],
                         window=window)
    return (took, why) if why is not None else None


def down_with_node(down: Related, node: str, down_at: float, first: float,
                   alerts: list[tuple[About, float]], *, window: float) -> str | None:
    """Why an incident's alerts (each with its start) are all what a node going down at
    `down_at` took with it, or None. Alertmanager sends each namespace's group on its own
    clock, so the unready pods of a namespace may have a card before the node's alert arrives
    in another namespace's group. Every alert says something is unavailable (`UNAVAILABLE`,
    or the node down), reaches the node — a pod on it, the node itself, a workload or scrape
    job with a target there — and is tied to the down node's incident (`tie`: no crash loop,
    no disk); at least one reaches it through a pod or by name (a workload spans many nodes;
    a pod kube-state-metrics does not place most likely ran there, as `tie` takes it).
    All started within a window of the node's incident — of its first alert (kube-prometheus'
    TargetDown fires minutes before KubeNodeNotReady) or of the node going down, whichever is
    later — and no later than a window after the node went down."""
    if not alerts or not _down(down, node):
        return None
    pods: list[str] = []
    for a, starts_at in alerts:
        if not _took(down, node, down_at, first, a, starts_at, window=window):
            return None
        pods += sorted(s[1] for s in a.own if s[0] == "pod" and (
            ("node", node) in a.derived or ("host", ANY) in a.weak))
        if ("node", node) in a.own:
            pods.append(f"node {node}")
        if a.agent:  # one runs on every node: the down node's is down
            pods.append("a node agent's scrape target")
    if not pods:
        return None
    named = ", ".join(pods[:3]) + (f" and {len(pods) - 3} more" if len(pods) > 3 else "")
    return f"{named} unavailable with node {node}, which went down"


# Labels naming the window a burn-rate alert measures over (kube-prometheus' and Pyrra's `long`
# and `short`, Sloth's `sloth_window`), the longer first: one SLO burning shows in several
# windows, hours apart.
BURN_WINDOWS = ("long", "window", "sloth_window", "short")
_DURATION = re.compile(r"(\d+)(ms|[smhdwy])")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def seconds(duration: str) -> float:
    """A Prometheus duration ("1h", "30m", "1d", "1h30m") in seconds; 0 if it is none."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        return 0.0
    return sum(int(n) * _UNIT[u] for n, u in parts)


def _unwindowed(identity: str) -> str:
    return ",".join(p for p in identity.split(",") if p.split("=", 1)[0] not in BURN_WINDOWS)


def _slo(a: About) -> str:
    return f"{a.rule}|{_unwindowed(a.identity)}"


def slo_burned(a: About, incident: Related, since_first: float) -> Tie | None:
    """However late, even after the incident ended: an SLO burning over a long window (a day)
    that holds the incident — it began less than that window ago — in which the same SLO burned
    over a shorter one. The long window's errors are that burn's: kube-prometheus' 1-day alert
    fires half an hour after the 1-hour one has resolved, on the same slow writes."""
    if not a.burn or not 0 <= since_first <= a.burn:
        return None
    slo = _slo(a)
    count = sum(n for (k, w), n in incident.burns.items() if k == slo and float(w) < a.burn)
    if not count:
        return None
    s = min(a.own)
    # Weaker than a burn still firing (`still_firing`): the latest incident of an SLO that
    # burned twice in a day holds the new burn's errors more surely than the older one.
    return Tie(2, count, s, f"{a.rule}: the same SLO burning over a longer window, which holds "
                            "its earlier burn")


def _rule_on(a: About) -> Subject:
    """An alert by rule, severity and labels: `still_firing` looks for its other severities."""
    return a.rule, f"{a.severity}|{a.identity}"


def still_firing(a: About, incident: Related) -> Tie | None:
    """However late: the same alert in another severity still firing on the incident — a claim
    predicted to fill, hours later nearly full, is one problem getting worse. (Alertmanager
    mutes the warning once the critical fires; the copilot takes it as ended only after the
    notification that brought the critical: `correlation.apply_listing`.)"""
    rule, key = _rule_on(a)
    same = key.split("|", 1)[1]
    count = sum(n for (r, k), n in incident.firing.items()
                if r == rule and k.split("|", 1)[1] == same and k != key)
    s = min(a.own)
    if count:
        return Tie(3, count, s, f"the same alert about {_said(s)}, "
                                f"{a.severity or 'unrated'} now, its earlier severity still firing")
    # One SLO burning over another window (the 6-hour one after the 1-hour one).
    slo = _unwindowed(same)
    if slo == same:
        return None
    count = sum(n for (r, k), n in incident.firing.items()
                if r == rule and _unwindowed(k.split("|", 1)[1]) == slo)
    if not count:
        return None
    return Tie(3, count, s, f"{rule}: the same SLO burning over another window, still firing")


def _lit(a: About) -> list[Subject]:
    return [(s[1], a.part) for s in a.own if s[0] in HOSTS and a.part]


def still_lit(a: About, incident: Related) -> Tie | None:
    """However late: an alert about a part of a host (a filesystem, a device) that another
    alert of the incident, still firing, is about — a root filesystem predicted to fill, an
    hour later almost out of space, is one problem getting worse."""
    for s in sorted(a.own):
        if s[0] in HOSTS and a.part and (n := incident.lit[(s[1], a.part)]):
            return Tie(3, n, s, f"{_said(s)}'s {a.part}, which an alert of it still fires on")
    return None


def _unwell(a: About) -> list[Subject]:
    """The pods whose state the alert is about (unready, crash-looping, waiting) — not a pod
    that is merely the scrape target of a rule about something else (Alertmanager's
    notifications, Prometheus' rules)."""
    return [s for s in a.own if s[0] == "pod" and a.rule in POD_STATE]


def still_unwell(a: About, incident: Related) -> Tie | None:
    """However late: a pod another alert of the incident still says is unwell — a rollout's
    new pods unready, and an hour on (the rule's `for:`) their containers waiting on a config
    error, are one problem the pod still shows. The pod itself, named by both: a workload
    outlives its pods' troubles (a node outage holding one replica's alert says nothing of
    the next rollout's)."""
    s = next((s for s in sorted(_unwell(a)) if incident.unwell[s]), None)
    if s is None or (a.rule in NEEDS_KUBELET and any(
            _down(incident, node) for kind, node in incident.own if kind == "node")):
        # A crash loop is never a node outage's: a down node's kubelet restarts nothing.
        return None
    # Weaker than a tie of what a subject is (a claim's pod, its workload): a pod unready in
    # the minutes a node went down may have run there, whatever it showed before.
    return Tie(1, incident.unwell[s], s, f"{_said(s)}, which an alert of it still says is "
                                         "unwell")


def _below(a: About) -> list[Subject]:
    """What an alert's subject reaches downward: a claim's pod and workload, a pod's workload."""
    return [s for s in a.derived if s[0] in ("pod", "workload")]


def still_grave(a: About, incident: Related) -> Tie | None:
    """However late: the alert is about what a critical alert of the incident, still firing,
    reaches — a pod whose claim is full crash-looping half an hour after the claim went
    critical."""
    s = next((s for s in sorted(a.own) if incident.grave[s]), None)
    if s is None:
        return None
    return Tie(2, incident.grave[s], s, f"{_said(s)} is reached by its critical alert, "
                                        "still firing")


def named_claim(a: About, starts_at: float, incident: Related) -> Tie | None:
    """However late: a pod of the Deployment a claim of the incident is named after (`about`:
    without kube-state-metrics, nothing else says which pods mount it), crash-looping since
    the claim went critical (full) and while it still is. A claim predicted to fill takes no
    pod down, a pod that failed before the claim filled failed for something else, and
    another replica merely unready says nothing of mounting it (one pod mounts a claim
    written to; a full disk makes it crash)."""
    if a.rule not in NEEDS_KUBELET or not any(kind == "pod" for kind, _ in a.own) or any(
            kind == "pod" for kind, _ in incident.derived):
        return None  # a claim that names its pods reaches them by name (`still_grave`, `tie`)
    for s in sorted(a.derived):
        if s[0] == "workload" and incident.grave[s] and any(
                w == s[1] and float(since) <= starts_at for w, since in incident.filled):
            return Tie(2, incident.grave[s], s, f"{_said(s)}'s claim, named after it, is "
                                                "full, and this pod of it failed since")
    return None


def recurred(a: About, incident: Related, since_first: float, window: float) -> Tie | None:
    """Soon after the incident ended: the same alert about a CronJob's next run (a Job of its
    own, named after its scheduled minute) is its trouble back, not a new one. Next: scheduled
    after the incident's runs, no further from the last of them than the alert is from the
    incident's first alert (and a window)."""
    s = ("workload", a.run)
    if not a.run or not incident.symptoms[("rule", a.rule)] or not incident.own[s]:
        return None
    last = max((int(m) for run, m in incident.runs if run == a.run), default=None)
    # The name counts the cluster's minutes; the copilot's clock is its window's (5 minutes by
    # default), so a test that runs it faster, its windows scaled, scales these with them.
    if last is None or not 0 < (a.scheduled - last) * window / 5 <= since_first + window:
        return None
    return Tie(3, incident.own[s], s, f"{a.rule} on the next run of CronJob {a.run}, soon "
                                      "after the last one's ended")


def acted_on(a: About, incident: Related) -> Tie | None:
    """The kubelet acted on a node (`ACTED`: evicting pods, a pressure condition) that the
    incident's alerts are about: the tie that lets it join — even an incident that was a quiet
    one-off, its warning resolved moments before (memory high for five minutes, then pods
    evicted, is a leak the kubelet stopped, not a blip)."""
    if a.rule not in ACTED:
        return None
    names = [rule for (kind, rule), n in incident.symptoms.items() if kind == "rule" and n]
    about_it = next((alerts for what, _, alerts in SHORT_OF if what == a.short_of), ())
    if about_it and not any(word in rule for rule in names for word in about_it):
        return None  # short of memory, and the incident is about its disk
    t = tie(a, incident)
    if t is not None and t.subject[0] in HOSTS:
        return Tie(3, t.shared, t.subject, f"{a.rule}: the kubelet acted on {_said(t.subject)}")
    # Without kube-state-metrics a node-exporter target is only an address; the kubelet's
    # target on that address names its node, so the alert says which node the address is.
    node = next((name for kind, name in a.own if kind == "node"), None)
    ips = {name.rsplit(":", 1)[0] for kind, name in a.own
           if kind == "instance" and _IP_INSTANCE.match(name)}
    for (kind, name), n in sorted(incident.own.items()):
        if node and n and kind == "instance" and name.rsplit(":", 1)[0] in ips:
            return Tie(3, n, ("instance", name),
                       f"{a.rule}: the kubelet acted on node {node} ({name.rsplit(':', 1)[0]})")
    return None


def _down(incident: Related, node: str) -> bool:
    """Whether the incident holds an alert that says this node is down."""
    return any(incident.symptoms[(rule, node)] for rule in NODE_DOWN)


def _said(s: Subject) -> str:
    noun = NOUN.get(s[0], s[0])
    return f"{noun} {s[1]}".strip()


def explain(incident: Related, alerts: int, *, first: str) -> str:
    """Why an incident's alerts belong together, in a line: the subject most of them share,
    how many name it and how many reach it through the topology, and the alert that started it
    (`first`, e.g. "KubeNodeNotReady at 10:02 UTC")."""
    if alerts <= 1:
        subject = next(iter(sorted(incident.own)), None)
        return f"one alert so far, about {_said(subject)}; since {first}" if subject else \
            f"one alert so far; since {first}"
    shared: Counter[Subject] = Counter()
    for part in (incident.own, incident.derived):
        for s, count in part.items():
            if s[0] not in ("pod", "rule"):
                shared[s] += count
    if not shared:
        shared = Counter({s: c for s, c in incident.own.items()})
    (subject, _), = shared.most_common(1)
    named, reached = incident.own[subject], incident.derived[subject]
    how = []
    if named:
        how.append(f"{named} name{'s' if named == 1 else ''} it")
    if reached:
        what = {"node": "on pods that run on it", "workload": "on its pods",
                "pvc": "on the pod that mounts it"}.get(subject[0], "through the topology")
        how.append(f"{reached} {what}")
    return (f"{alerts} alerts share {_said(subject)}" + (f" ({', '.join(how)})" if how else "")
            + f"; since {first}")


@dataclass
class Candidate:
    """An incident an alert may join: its subjects, when its alerts started (first, latest)
    and when its last alert resolved (None while any fires)."""

    key: object
    related: Related
    first: float
    latest: float
    ended: float | None
    # A quiet one-off (its lone warning resolved before its card was due): joined only by its
    # CronJob's next run failing (`recurred`), which makes it a real incident.
    quiet: bool = False


def choose(a: About, starts_at: float, candidates: list[Candidate], *, window: float,
           lasting: int = 4, revive: float = 0.0) -> tuple[Candidate, Tie] | None:
    """The incident an alert belongs to, with why, or None for a new one. Within the window
    (start times at most `window` apart) any tie counts; up to `lasting` windows, while the
    incident is open, only a lasting one. A tie within the window beats a lasting one, then
    the stronger, then the one shared with more alerts, then the latest incident."""
    ranked = ranked_ties(a, starts_at, candidates, window=window, lasting=lasting,
                         revive=revive)
    return (ranked[0][0], ranked[0][1]) if ranked else None


# A tie as `ranked_ties` sorts it: its sort key, the incident, the tie, whether within the window.
_Found = tuple[tuple[bool, bool, bool, int, int, float], "Candidate", Tie, bool]


def ranked_ties(a: About, starts_at: float, candidates: list[Candidate], *, window: float,
                lasting: int = 4, revive: float = 0.0) -> list[tuple[Candidate, Tie, bool]]:
    """Every incident the alert is tied to, best first (see `choose`), each with whether the
    tie is within the window. A quiet one-off is tied only to its CronJob's next run failing
    within `revive` seconds of its end (the flap span): a Job's failure is no threshold at its
    edge, and a CronJob that fails run after run — each failed Job deleted by the next, its
    alert short — is failing, not flapping — or to the kubelet acting on its node no later
    than a window after its end (`acted_on`)."""
    # Sorted by: a tie at all beyond timing, the same alert escalating, within the window,
    # the tie's strength and share, the latest incident. Three exceptions follow the sort:
    # its node's warning gives way to a critical still firing about its pod (its claim full);
    # a pod known to run on a node gone down goes with that node, whatever else it is tied to;
    # and a guess of the node it runs on gives way to its own workload's open incident.
    found: list[_Found] = []
    for c in candidates:
        if c.first <= starts_at and (c.ended is None or starts_at <= c.ended + window) and (
                t := acted_on(a, c.related)):
            # While its alerts fire, or a window after (quiet one-offs too), however long
            # its warning fired first.
            found.append(((True, False, True, *t.rank, c.latest), c, t, True))
            continue
        if a.rule in ACTED:
            continue  # the kubelet acting is tied only to trouble with what it ran short of
        if c.quiet:
            if c.ended is not None and c.ended < starts_at <= c.ended + revive and (
                    t := recurred(a, c.related, starts_at - c.first, window)):
                found.append(((t.strength > 0, False, False, *t.rank, c.latest), c, t, False))
            continue
        if c.ended is not None and starts_at > c.ended + window:
            if (t := slo_burned(a, c.related, starts_at - c.first)) or (
                    starts_at <= c.ended + lasting * window
                    and (t := recurred(a, c.related, starts_at - c.first, window))):
                found.append(((t.strength > 0, False, False, *t.rank, c.latest), c, t, False))
            continue
        gap = max(starts_at - c.latest, c.first - starts_at)
        near = gap <= window
        if (t := still_firing(a, c.related)) is not None:
            # The same alert in another severity (or the same SLO over another window), still
            # firing there, beats any tie of timing: a claim's warning and, eight minutes on,
            # its critical are one problem even when a crash loop of its pod began between.
            found.append(((True, True, near, *t.rank, c.latest), c, t, near))
            continue
        if near:
            t = max((t for t in (tie(a, c.related, starts_at=young(starts_at, c.first, window),
                                     follows=FOLLOWS * window),
                                 named_claim(a, starts_at, c.related)) if t is not None),
                    key=lambda t: t.rank, default=None)
        else:  # the strongest of the late ties: a burn still firing beats the control plane
            t = max((late for late in (
                tie(a, c.related, lasting_only=True) if gap <= lasting * window else None,
                still_firing(a, c.related), still_grave(a, c.related), still_lit(a, c.related),
                still_unwell(a, c.related),
                named_claim(a, starts_at, c.related),
                slo_burned(a, c.related, starts_at - c.first)) if late is not None),
                key=lambda late: late.rank, default=None)
        if t is not None:
            found.append(((t.strength > 0, False, near, *t.rank, c.latest), c, t, near))
    # Any tie of what the alerts are about beats one of timing alone (a backend's clients).
    found.sort(key=lambda f: f[0], reverse=True)
    if found and found[0][3] and found[0][2].subject[0] == "node" \
            and not _down(found[0][1].related, found[0][2].subject[1]):
        # A pod on a node unwell (not down) in the same minute: its own named cause, a
        # critical still firing that reaches it (its claim full), comes first.
        _first(found, lambda f: not f[3] and f[2].subject[0] == "pod"
               and still_grave(a, f[1].related) is not None)
    pods = [pod for kind, pod in a.own if kind == "pod"]
    placed = {node for c in candidates for pod, node in c.related.placed if pod in pods}
    if a.rule in UNAVAILABLE and pods:
        # A pod placed on a node down in the same minutes is unready for that (the node
        # controller marks its pods so), whatever it was doing before: its crash loop, or its
        # full claim, can no longer be seen from a node that is gone. Placed by the topology,
        # or, without kube-state-metrics, by the kubelet that reports its claim.
        _first(found, lambda f: f[3] and f[2].subject[0] == "node"
               and _down(f[1].related, f[2].subject[1]) and (
                   (not f[2].guess and f[2].strength >= 2) or f[2].subject[1] in placed))
        if found and _crash_loops_elsewhere(a, found[0][1].related):
            # Its workload crash-loops, and not this pod: a pod that can crash-loop is on a
            # node that is up, so one merely unready while a node is down ran there — as
            # `strands` leaves it when the crash loop comes second.
            _first(found, lambda f: f[3] and f[2].guess and _down(f[1].related,
                                                                   f[2].subject[1]))
    if found and found[0][2].guess and found[0][2].subject[1] not in placed:
        # A guess of where it runs does not outweigh what it is about: its own workload's
        # incident, still open though begun longer than the window ago.
        _first(found, lambda f: not f[3] and f[1].ended is None and f[2].strength >= 2)
    return [(c, t, near) for _, c, t, near in found]


def _crash_loops_elsewhere(a: About, incident: Related) -> bool:
    """Whether the incident says the alert's workload crash-loops, on pods other than its."""
    return not any(incident.own[s] for s in a.own if s[0] == "pod") and any(
        incident.symptoms[(rule, w)] for rule in NEEDS_KUBELET for w in workloads_of(a))


def _first(found: list[_Found], pick: Callable[[_Found], bool]) -> None:
    """Move the best-ranked tie that `pick` takes, if any, to the front."""
    chosen = next((f for f in found if pick(f)), None)
    if chosen is not None:
        found.remove(chosen)
        found.insert(0, chosen)
