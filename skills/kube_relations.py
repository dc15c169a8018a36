"""What kube-state-metrics says about how Kubernetes objects hang together: which node each pod
runs on and which workload owns it (`kube_pod_info`, `kube_pod_owner`, `kube_replicaset_owner`),
which pods mount each volume claim (`kube_pod_spec_volumes_persistentvolumeclaims_info`),
and which node-exporter instance is which node (`kube_node_info`'s internal IP,
`node_uname_info`'s nodename). Read from the series' labels over the investigated range, so a
pod that was replaced during the incident is still placed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from knowledge.relate import Topology
from skills.families import host_of
from skills.prometheus.client import PrometheusClient, PrometheusError


@dataclass
class Placement:
    """Pods → node and owner; claims → the pods that mount them; nodes ↔ node-exporter
    instances."""

    node_of: dict[tuple[str, str], str] = field(default_factory=dict)  # (ns, pod) → node
    owner_of: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # → kind, name
    instance_of: dict[str, str] = field(default_factory=dict)  # node → instance
    node_at: dict[str, str] = field(default_factory=dict)  # instance host → node
    mounted_by: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (ns, claim) → pods

    def pods_on(self, node: str) -> list[tuple[str, str]]:
        return sorted(p for p, n in self.node_of.items() if n == node)

    def pods_of(self, namespace: str, kind: str, name: str) -> list[tuple[str, str]]:
        """The pods a workload owns: directly, or (Deployment) through its ReplicaSets, named
        `<deployment>-<hash>` as Kubernetes names them."""
        found = []
        rs = re.compile(re.escape(name) + r"-[a-z0-9]{5,10}$")
        for (ns, pod), (owner_kind, owner) in self.owner_of.items():
            if ns != namespace:
                continue
            if owner_kind.lower() == kind.lower() and owner == name:
                found.append((ns, pod))
            elif kind.lower() == "deployment" and owner_kind == "ReplicaSet" and rs.match(owner):
                found.append((ns, pod))
        return sorted(found)

    def node_of_instance(self, instance: str) -> str | None:
        return self.node_at.get(host_of(instance)) or self.node_at.get(instance)


async def placement(prom: PrometheusClient, *, start: datetime, end: datetime) -> Placement:
    """Everything kube-state-metrics and node_exporter say of placement in the range (empty
    outside Kubernetes: the series are simply not there)."""
    out = Placement()
    try:
        found = await prom.series(["kube_pod_info", "kube_pod_owner", "kube_node_info",
                                   "node_uname_info", "kube_replicaset_owner",
                                   "kube_pod_spec_volumes_persistentvolumeclaims_info"],
                                  start=start, end=end)
    except PrometheusError:
        return out
    rs_owner: dict[tuple[str, str], str] = {}
    for s in found:
        name = s.get("__name__")
        if name == "kube_replicaset_owner" and s.get("owner_kind") == "Deployment":
            rs_owner[(s.get("namespace", ""), s.get("replicaset", ""))] = s.get("owner_name",
                                                                                  "")
    for s in found:
        name = s.get("__name__")
        key = (s.get("namespace", ""), s.get("pod", ""))
        if name == "kube_pod_info" and s.get("node"):
            out.node_of[key] = s["node"]
            if s.get("created_by_kind") and key not in out.owner_of:
                out.owner_of[key] = (s["created_by_kind"], s.get("created_by_name", ""))
        elif name == "kube_pod_owner" and s.get("owner_kind"):
            kind, owner = s["owner_kind"], s.get("owner_name", "")
            if kind == "ReplicaSet" and (key[0], owner) in rs_owner:
                kind, owner = "Deployment", rs_owner[(key[0], owner)]
            out.owner_of[key] = (kind, owner)
        elif name == "kube_pod_spec_volumes_persistentvolumeclaims_info" \
                and s.get("persistentvolumeclaim") and s.get("pod"):
            out.mounted_by.setdefault((key[0], s["persistentvolumeclaim"]), set()).add(key[1])
        elif name == "kube_node_info" and s.get("node"):
            if s.get("internal_ip"):
                out.node_at[s["internal_ip"]] = s["node"]
        elif name == "node_uname_info" and s.get("nodename") and s.get("instance"):
            out.node_at.setdefault(host_of(s["instance"]), s["nodename"])
            out.instance_of[s["nodename"]] = s["instance"]
    for host, node in out.node_at.items():
        out.instance_of.setdefault(node, host)
    return out


def topology(found: Placement) -> Topology:
    """The placement as the intake's correlation reads it (`knowledge.relate.Topology`): each
    pod's node and owning workload (a ReplicaSet's pod under its Deployment, as Kubernetes
    names ReplicaSets `<deployment>-<hash>` when kube_replicaset_owner is missing), and which
    node each exporter host is, and which pods mount each claim."""
    pods: dict[str, tuple[str, str, str]] = {}
    for (ns, pod), node in found.node_of.items():
        kind, owner = found.owner_of.get((ns, pod), ("", ""))
        if kind == "ReplicaSet":
            kind, owner = "Deployment", re.sub(r"-[a-z0-9]{5,10}$", "", owner)
        pods[f"{ns}/{pod}"] = (node, kind, owner or pod)
    claims = {f"{ns}/{claim}": tuple(f"{ns}/{pod}" for pod in sorted(mounted))
              for (ns, claim), mounted in found.mounted_by.items()}
    return Topology(pods=pods, hosts=dict(found.node_at), claims=claims)
