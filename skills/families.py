"""What the copilot knows of common metric families by their names: which labels identify a
resource (instance, pod, mountpoint…), whether a metric is a counter, which way it goes wrong,
what kind of cause it speaks of, and how to say its numbers.

Covers Prometheus's own `up` and exporters' `*_up`, node_exporter (`node_*`), cAdvisor
(`container_*`), kube-state-metrics (`kube_*`), the blackbox exporter (`probe_*`), redis_exporter
(`redis_*`), OpenTelemetry HTTP semantic conventions (`http_server_request_duration_seconds*`),
Spring/Micrometer (`http_server_requests_seconds*`), Istio/Envoy (`istio_*`), and the
`http_requests_total` conventions of the service engine. Unknown names fall back to Prometheus's
naming conventions (`_total` counters, `_bytes`, `_seconds`) and the scraped metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from knowledge.subjects import IDENTIFYING, NOUN, host_of, identity, name_of

__all__ = ["IDENTIFYING", "NOUN", "Family", "family_of", "host_of", "identity", "is_noise",
           "name_of"]

Direction = Literal["up", "down", "both"]

# Labels that split a metric without naming another resource (summed or kept as detail).
DETAIL = {"le", "quantile", "mode", "cpu", "code", "status", "method", "reason", "phase",
          "condition", "state", "fstype", "type", "route", "handler", "path",
          "response_code", "outcome", "uri", "http_response_status_code",
          "http_request_method", "collector", "scrape_job"}
# Series about the exporter or the scrape itself, not the thing it watches.
NOISE = re.compile(r"^(go_|promhttp_|process_(?!cpu_seconds|resident_memory)|scrape_(?!samples)"
                   r"|prometheus_|net_conntrack_dialer|node_scrape_collector_|"
                   r"node_textfile_|.*_build_info$|.*_info$|node_exporter_|"
                   r"redis_exporter_build|blackbox_exporter_)")


@dataclass(frozen=True)
class Family:
    """How to read one metric: `counter` values are rated before scoring."""

    kind: str  # the cause kind it speaks of: disk, cpu, memory, down, errors, latency, …
    direction: Direction
    what: str  # a few words, e.g. "filesystem space available"; "": say the metric's name
    unit: str = ""  # bytes, seconds, ratio, percent, cores, or "" (a number)
    counter: bool = False


# (pattern, family), first match wins. Directions say which way is bad.
CATALOGUE: list[tuple[re.Pattern[str], Family]] = [(re.compile(p), f) for p, f in [
    (r"^up$", Family("down", "down", "target answering scrapes")),
    (r"^probe_success$", Family("down", "down", "probe success")),
    (r"^probe_http_status_code$", Family("errors", "both", "HTTP status of the probe")),
    (r"^probe_duration_seconds$", Family("latency", "up", "probe duration", "seconds")),
    (r"^probe_ssl_earliest_cert_expiry$", Family("errors", "down", "certificate expiry")),
    (r"^[a-z0-9]+_up$", Family("down", "down", "exporter's target up")),
    (r"^node_filesystem_(avail|free)_bytes$", Family("disk", "down",
                                                     "filesystem space available", "bytes")),
    (r"^node_filesystem_files_free$", Family("disk", "down", "free inodes")),
    (r"^node_filesystem_readonly$", Family("disk", "up", "filesystem read-only")),
    (r"^node_filesystem_device_error$", Family("disk", "up", "filesystem device error")),
    (r"^node_disk_.*_total$", Family("disk", "up", "disk I/O", "", True)),
    (r"^node_cpu_seconds_total$", Family("cpu", "both", "CPU time by mode", "cores", True)),
    (r"^node_load(1|5|15)$", Family("cpu", "up", "load average")),
    (r"^node_pressure_cpu_.*_total$", Family("cpu", "up", "CPU pressure", "", True)),
    (r"^node_pressure_memory_.*_total$", Family("memory", "up", "memory pressure", "", True)),
    (r"^node_pressure_io_.*_total$", Family("disk", "up", "I/O pressure", "", True)),
    (r"^node_memory_MemAvailable_bytes$", Family("memory", "down", "memory available",
                                                 "bytes")),
    (r"^node_memory_(MemFree|Cached|Buffers)_bytes$", Family("memory", "down",
                                                            "memory free", "bytes")),
    (r"^node_memory_", Family("memory", "both", "memory", "bytes")),
    (r"^node_vmstat_oom_kill$", Family("memory", "up", "OOM kills", "", True)),
    (r"^node_network_.*(errs|drop).*_total$", Family("network", "up", "network errors", "",
                                                     True)),
    (r"^node_network_.*_total$", Family("network", "both", "network traffic", "", True)),
    (r"^node_network_up$", Family("network", "down", "network interface up")),
    (r"^node_timex_", Family("clock", "both", "clock")),
    (r"^node_filefd_allocated$", Family("saturation", "up", "file descriptors")),
    (r"^node_", Family("unknown", "both", "")),
    (r"^container_cpu_cfs_throttled_.*_total$", Family("cpu", "up", "CPU throttling", "",
                                                      True)),
    (r"^container_cpu_.*_total$", Family("cpu", "up", "container CPU", "cores", True)),
    (r"^container_memory_(working_set|rss|usage)_bytes$", Family("memory", "up",
                                                                "container memory", "bytes")),
    (r"^container_oom_events_total$", Family("memory", "up", "OOM events", "", True)),
    (r"^container_fs_usage_bytes$", Family("disk", "up", "container filesystem use",
                                           "bytes")),
    (r"^container_network_.*(errors|dropped).*_total$", Family("network", "up",
                                                                "container network errors",
                                                                "", True)),
    (r"^container_", Family("unknown", "both", "")),
    (r"^kube_pod_container_status_restarts_total$", Family("restarts", "up", "restarts", "",
                                                           True)),
    (r"^kube_pod_container_status_(waiting|terminated|last_terminated)",
     Family("restarts", "up", "container state")),
    (r"^kube_pod_container_status_ready$", Family("down", "down", "container ready")),
    (r"^kube_pod_status_ready$", Family("down", "down", "pod ready")),
    (r"^kube_pod_status_phase$", Family("down", "both", "pod phase")),
    (r"^kube_deployment_status_replicas_(available|ready)$", Family("down", "down",
                                                                    "replicas available")),
    (r"^kube_deployment_status_replicas_unavailable$", Family("down", "up",
                                                             "replicas unavailable")),
    (r"^kube_.*_(observed_)?generation$", Family("deploy", "up", "rollout generation")),
    (r"^kube_node_status_condition$", Family("down", "both", "node condition")),
    (r"^kube_node_spec_unschedulable$", Family("down", "up", "node unschedulable")),
    (r"^kube_job_(failed|status_failed)$", Family("errors", "up", "job failed")),
    (r"^kube_persistentvolume_status_phase$", Family("disk", "both", "volume phase")),
    (r"^kubelet_volume_stats_available_bytes$", Family("disk", "down", "volume space available",
                                                       "bytes")),
    (r"^kube_", Family("unknown", "both", "")),
    (r"^redis_connected_clients$", Family("saturation", "both", "connected clients")),
    (r"^redis_memory_used_bytes$", Family("memory", "up", "memory used", "bytes")),
    (r"^redis_rejected_connections_total$", Family("saturation", "up", "rejected connections",
                                                   "", True)),
    (r"^redis_", Family("unknown", "both", "")),
    (r"^(http_server_request_duration_seconds|http_server_requests_seconds|"
     r"http_request_duration_seconds)_(bucket|count|sum)$",
     Family("latency", "up", "request duration", "", True)),
    (r"^istio_request_duration_milliseconds_(bucket|count|sum)$",
     Family("latency", "up", "request duration", "", True)),
    (r"^(istio_requests_total|http_requests_total|http_client_requests_total)$",
     Family("traffic", "both", "requests", "", True)),
    (r"^process_cpu_seconds_total$", Family("cpu", "up", "process CPU", "cores", True)),
    (r"^process_resident_memory_bytes$", Family("memory", "up", "process memory", "bytes")),
    (r"^process_open_fds$", Family("saturation", "up", "open file descriptors")),
]]


def family_of(metric: str, *, metadata_type: str | None = None) -> Family:
    """The family of `metric`; unknown names by their naming conventions and scraped type."""
    for pattern, fam in CATALOGUE:
        if pattern.search(metric):
            return fam
    counter = (metadata_type == "counter" if metadata_type else
               bool(re.search(r"(_total|_count|_sum|_bucket)$", metric)))
    unit = "bytes" if "_bytes" in metric else "seconds" if "_seconds" in metric else ""
    return Family("unknown", "both", "", unit, counter)


def is_noise(metric: str) -> bool:
    """Series about the exporter or the scrape, not the watched thing (`up` is kept), and
    Prometheus's own derived series: alert states and recording rules (`level:metric:op`),
    which only repeat the raw series they are computed from."""
    return metric != "up" and (bool(NOISE.match(metric)) or ":" in metric
                               or metric in ("ALERTS", "ALERTS_FOR_STATE"))


BAD_PHASES = ("Pending", "Failed", "Unknown")
GOOD_WHEN_TRUE = ("kube_pod_status_ready", "kube_pod_status_scheduled",
                  "kube_pod_status_containers_ready", "kube_pod_status_initialized")
NODE_PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


def direction_for(metric: str, labels: dict[str, str], fam: Family) -> Direction:
    """Which way one series goes wrong, where its labels say more than its name: a pod's
    `condition="false"` readiness rising is bad, a node's `Ready` falling is, a `Pending` phase
    count rising is."""
    condition, status = labels.get("condition", ""), labels.get("status", "")
    if metric == "kube_node_status_condition":
        bad_when_true = condition != "Ready"
        if status == "true":
            return "up" if bad_when_true else "down"
        return "down" if bad_when_true and status == "false" else "up"
    if condition in ("true", "false", "unknown") and metric.startswith("kube_"):
        if metric in GOOD_WHEN_TRUE:  # ready, scheduled: falling is bad
            return "down" if condition == "true" else "up"
        # failed and the like: the `true` series goes the family's way, `false` the other
        if condition == "false":
            return "down" if fam.direction == "up" else "up"
        return fam.direction if condition == "true" else "up"
    if metric == "kube_pod_status_phase" and labels.get("phase"):
        return "up" if labels["phase"] in BAD_PHASES else "down"
    return fam.direction
