"""What an alert or a series is about, from its labels: the resource it names (a filesystem on a
host, a pod, a scrape target, a probed URL, a service) and how people say it.

Label meanings follow the exporters that set them. node_exporter's and the blackbox exporter's
series are about the node or the probed target, so the `pod`/`service`/`namespace` labels that a
Kubernetes scrape adds (the exporter's own pod) do not name the subject; kube-state-metrics'
series are about the Kubernetes object they carry, so its `instance`/`job` (kube-state-metrics
itself) do not. The scrape `job` names a subject only when nothing more specific is there.
"""

from __future__ import annotations

# Labels that identify a resource, most specific first.
IDENTIFYING = ("pod", "container", "persistentvolumeclaim", "mountpoint", "device", "target",
               "url", "instance", "node", "deployment", "statefulset", "daemonset", "job_name",
               "cronjob", "service", "namespace", "job")
NOUN = {"pod": "pod", "container": "container", "persistentvolumeclaim": "volume claim",
        "mountpoint": "filesystem", "device": "device", "target": "target", "url": "URL",
        "instance": "instance", "node": "node", "deployment": "deployment",
        "statefulset": "statefulset", "daemonset": "daemonset", "job_name": "job",
        "cronjob": "cronjob", "service": "service", "namespace": "namespace",
        "job": "scrape job"}
# Labels a Kubernetes scrape adds about the exporter's own pod, for exporters whose series are
# about something else (the node, the probed target).
_SCRAPE_POD = ("pod", "container", "service", "namespace", "endpoint")
_ABOUT_HOST = ("node-exporter", "node_exporter", "node", "blackbox", "blackbox-exporter")
_ABOUT_OBJECTS = ("kube-state-metrics",)
_EXPORTER_CONTAINERS = ("kube-state-metrics", "kube-rbac-proxy-main", "kube-rbac-proxy-self",
                        "kube-rbac-proxy")
SERVICE_LABELS = ("service", "app_kubernetes_io_name", "app.kubernetes.io/name", "app")


def identity(labels: dict[str, str], metric: str | None = None) -> dict[str, str]:
    """The identifying labels of a series or an alert, most specific first."""
    metric = metric or labels.get("__name__", "")
    job = labels.get("job", "")
    skip: tuple[str, ...] = ()
    if job in _ABOUT_HOST or metric.startswith(("node_", "probe_")):
        skip = _SCRAPE_POD
    elif job in _ABOUT_OBJECTS or metric.startswith("kube_"):
        skip = ("instance", "job", "endpoint") + (("service",) if job in _ABOUT_OBJECTS
                                                  else ())
        # A series about a node, a deployment or a job carries kube-state-metrics' own pod
        # and container (the scrape's labels, where the object has none of its own); a pod's
        # series keep their pod, but a container label may still be the exporter's.
        exporter_container = labels.get("container") in _EXPORTER_CONTAINERS
        if metric and not metric.startswith("kube_pod_"):
            skip += ("pod", "container")
        elif exporter_container:
            skip += ("container",)
            if not metric and "kube-state-metrics" in labels.get("pod", ""):
                skip += ("pod",)
        if metric.startswith(("kube_node_", "kube_persistentvolume_")) or (
                "node" in labels and labels.get("container") in _EXPORTER_CONTAINERS):
            skip += ("namespace",)  # cluster-scoped: the namespace is kube-state-metrics'
        if metric.startswith("kube_persistentvolumeclaim"):
            skip = tuple(k for k in skip if k != "namespace")
    return {k: labels[k] for k in IDENTIFYING if labels.get(k) and k not in skip}


def name_of(labels: dict[str, str], metric: str | None = None) -> str:
    """A resource as people say it: `filesystem /data on 10.0.0.7:9100`, `pod shop/web-1`,
    `127.0.0.1:9121 (job redis)`, `service checkout`."""
    ident = identity(labels, metric)
    if not ident:
        return ""
    ns = f"{ident['namespace']}/" if "namespace" in ident else ""
    host = ident.get("instance") or ident.get("node")
    if "mountpoint" in ident:
        return f"filesystem {ident['mountpoint']}" + (f" on {host}" if host else "")
    if "pod" in ident:
        pod = f"pod {ns}{ident['pod']}"
        return f"container {ident['container']} of {pod}" if "container" in ident else pod
    if "persistentvolumeclaim" in ident:
        return f"volume claim {ns}{ident['persistentvolumeclaim']}"
    if "device" in ident and host:
        return f"device {ident['device']} on {host}"
    for key in ("deployment", "statefulset", "daemonset", "job_name", "cronjob"):
        if key in ident:
            return f"{NOUN[key]} {ns}{ident[key]}"
    if "instance" in ident:
        return ident["instance"] + (f" (job {ident['job']})" if "job" in ident else "")
    if "node" in ident:
        return f"node {ident['node']}"
    if "service" in ident:  # an application service goes by its name
        return ident["service"]
    if "job" in ident:  # a scrape job (its targets' trouble, as `TargetDown` says it)
        return f"scrape job {ident['job']}" + (f" in {ident['namespace']}"
                                               if "namespace" in ident else "")
    first = next(iter(ident))
    return f"{NOUN.get(first, first)} {ident[first]}"


def service_of(labels: dict[str, str]) -> str | None:
    """The application service a label set names (`service`, `app.kubernetes.io/name`, `app`),
    not the scrape job."""
    for name in SERVICE_LABELS:
        if labels.get(name):
            return labels[name]
    return None


def subject_of(labels: dict[str, str]) -> str | None:
    """What an alert is about, for an incident: its service when it names one and nothing more
    specific (a pod, a filesystem, a target) is there; else that resource's name."""
    ident = identity(labels)
    specific = {"pod", "container", "persistentvolumeclaim", "mountpoint", "device", "target",
                "url", "instance", "node", "deployment", "statefulset", "daemonset",
                "job_name", "cronjob"}
    service = service_of(labels)
    if service and "service" in ident and not (specific & set(ident)):
        return service
    return name_of(labels) or service


def host_of(instance: str) -> str:
    """The host part of an `instance` (`10.0.0.7:9100` → `10.0.0.7`; a URL → its host)."""
    text = instance
    if "://" in text:
        text = text.split("://", 1)[1].split("/", 1)[0]
    if text.startswith("["):
        return text.split("]", 1)[0].lstrip("[")
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text
