"""What ties an alert to an open incident (`knowledge.relate`), on the shapes that made wrong
merges: a node's disk and the node going down, pods on a node whose disk fills, a claim beside
a StatefulSet pod that is down with its node, a crash loop beside a node outage. Each test also
checks the tie that must still hold, so a rule that stopped relating anything would fail."""

from __future__ import annotations

from knowledge.relate import (
    Candidate,
    Related,
    Topology,
    about,
    choose,
    clients_failing,
    down_with_node,
    mostly_down_with_node,
    recurred,
    seconds,
)

NODE, OTHER = "prod-worker-2", "prod-worker-3"
TOPOLOGY = Topology(
    pods={
        "payments/payments-api-7d9f8c6b5d-abcde": (NODE, "Deployment", "payments-api"),
        "payments/payments-api-7d9f8c6b5d-fghjk": (OTHER, "Deployment", "payments-api"),
        "search/elasticsearch-0": (NODE, "StatefulSet", "elasticsearch"),
        "search/elasticsearch-1": (OTHER, "StatefulSet", "elasticsearch"),
        "monitoring/node-exporter-bdljq": (NODE, "DaemonSet", "node-exporter"),
    },
    hosts={"10.0.1.15": NODE})
WINDOW = 300.0


def node_down() -> list[dict[str, str]]:
    return [{"alertname": "KubeNodeNotReady", "node": NODE},
            {"alertname": "KubeNodeUnreachable", "node": NODE},
            {"alertname": "KubePodNotReady", "namespace": "search", "pod": "elasticsearch-0"}]


def disk_filling() -> dict[str, str]:
    return {"alertname": "NodeFilesystemSpaceFillingUp", "job": "node-exporter",
            "namespace": "monitoring", "pod": "node-exporter-bdljq",
            "instance": "10.0.1.15:9100", "device": "/dev/nvme0n1p1", "mountpoint": "/"}


def incident(*alerts: dict[str, str], at: float = 0.0) -> Candidate:
    related = Related()
    for labels in alerts:
        related.add(about(labels, TOPOLOGY))
    return Candidate(key=alerts[0]["alertname"], related=related, first=at, latest=at,
                     ended=None)


def joins(labels: dict[str, str], *candidates: Candidate, at: float = 60.0) -> object | None:
    found = choose(about(labels, TOPOLOGY), at, list(candidates), window=WINDOW)
    return found[0].key if found else None


def test_a_disk_filling_on_a_down_node_is_its_own_problem() -> None:
    down = incident(*node_down())
    assert joins(disk_filling(), down) is None
    # The node's own whole-host alerts and what runs on it still join its outage.
    assert joins({"alertname": "KubePodNotReady", "namespace": "payments",
                  "pod": "payments-api-7d9f8c6b5d-abcde"}, down) == "KubeNodeNotReady"
    assert joins({"alertname": "KubeletDown", "node": NODE}, down) == "KubeNodeNotReady"


def test_a_node_going_down_after_its_disk_filled_is_a_new_incident() -> None:
    disk = incident(disk_filling())
    assert joins({"alertname": "KubeNodeNotReady", "node": NODE}, disk) is None
    # The same disk, worse, is the same incident.
    assert joins({**disk_filling(), "alertname": "NodeFilesystemAlmostOutOfSpace"},
                 disk) == "NodeFilesystemSpaceFillingUp"


def test_a_pod_on_a_node_whose_disk_fills_goes_to_the_node_outage_not_the_disk() -> None:
    disk, down = incident(disk_filling()), incident(*node_down())
    pod = {"alertname": "KubePodCrashLooping", "namespace": "payments",
           "pod": "payments-api-7d9f8c6b5d-abcde"}
    assert joins(pod, disk) is None
    unready = {**pod, "alertname": "KubePodNotReady"}
    assert joins(unready, disk, down) == "KubeNodeNotReady"
    # Nor does the disk join an incident of the pods on its node.
    assert joins(disk_filling(), incident(pod)) is None


def test_a_claim_does_not_join_its_statefulset_down_elsewhere_with_a_node() -> None:
    down = incident(*node_down(), {"alertname": "KubeStatefulSetReplicasMismatch",
                                   "namespace": "search", "statefulset": "elasticsearch"})
    claim = {"alertname": "KubePersistentVolumeFillingUp", "namespace": "search",
             "persistentvolumeclaim": "data-elasticsearch-1"}
    assert joins(claim, down) is None
    # Its own pod's incident it joins.
    crash = incident({"alertname": "KubePodCrashLooping", "namespace": "search",
                      "pod": "elasticsearch-1"})
    assert joins(claim, crash) == "KubePodCrashLooping"


def test_a_deployments_claim_joins_the_pod_kube_state_metrics_says_mounts_it() -> None:
    # A Deployment's claim is not named after its pod: only
    # kube_pod_spec_volumes_persistentvolumeclaims_info ties the two.
    pod = "payments/payments-api-7d9f8c6b5d-abcde"
    mounts = Topology(pods=TOPOLOGY.pods, hosts=TOPOLOGY.hosts,
                      claims={"payments/payments-uploads": (pod,)})
    claim = {"alertname": "KubePersistentVolumeFillingUp", "namespace": "payments",
             "persistentvolumeclaim": "payments-uploads", "severity": "critical"}
    crash = {"alertname": "KubePodCrashLooping", "namespace": "payments",
             "pod": pod.split("/", 1)[1]}

    def joined(topology: Topology) -> object | None:
        related = Related()
        related.add(about(crash, topology))
        found = choose(about(claim, topology), 60.0,
                       [Candidate("crash", related, 0.0, 0.0, None)], window=WINDOW)
        return found[0].key if found else None

    assert joined(mounts) == "crash"
    assert about(claim, mounts).derived[("pod", pod)] == (
        "claim payments-uploads is mounted by pod payments-api-7d9f8c6b5d-abcde")
    assert ("workload", "payments/payments-api") in about(claim, mounts).derived
    # Without the mount, the claim says nothing of the pod, and the two stay apart.
    assert joined(TOPOLOGY) is None


def test_without_kube_state_metrics_a_metrics_services_target_is_its_workloads() -> None:
    # ingress-nginx's chart names its metrics Service, and so the job, `<workload>-metrics`;
    # kube-state-metrics is a workload whose own name ends so.
    def joined(target: dict[str, str], pod: dict[str, str]) -> object | None:
        related = Related()
        related.add(about(target, Topology()))
        found = choose(about(pod, Topology()), 240.0,
                       [Candidate("TargetDown", related, 0.0, 0.0, None)], window=WINDOW)
        return found[0].key if found else None

    down = {"alertname": "TargetDown", "namespace": "ingress-nginx",
            "job": "ingress-nginx-controller-metrics",
            "service": "ingress-nginx-controller-metrics"}
    unready = {"alertname": "KubePodNotReady", "namespace": "ingress-nginx",
               "pod": "ingress-nginx-controller-27cjckjgml-c67hb", "job": "kube-state-metrics"}
    assert joined(down, unready) == "TargetDown"
    ksm = {"alertname": "TargetDown", "namespace": "monitoring", "job": "kube-state-metrics",
           "service": "kube-state-metrics"}
    assert joined(ksm, {"alertname": "KubeDeploymentReplicasMismatch", "namespace": "monitoring",
                        "deployment": "kube-state-metrics"}) == "TargetDown"
    # Another workload of the namespace is not the target's.
    assert joined(down, {**unready, "pod": "default-backend-5b7d8c9f6d-x2x9k"}) is None


def test_a_node_down_does_not_join_replicas_missing_behind_a_full_claim() -> None:
    mismatch = {"alertname": "KubeStatefulSetReplicasMismatch", "namespace": "search",
                "statefulset": "elasticsearch"}
    claim = {"alertname": "KubePersistentVolumeFillingUp", "namespace": "search",
             "persistentvolumeclaim": "data-elasticsearch-1"}
    ready = {"alertname": "KubeNodeNotReady", "node": NODE}
    assert joins(ready, incident(claim, mismatch)) is None
    # Replicas missing with nothing else to explain them are the node's doing.
    assert joins(ready, incident(mismatch)) == "KubeStatefulSetReplicasMismatch"


def test_a_crash_loop_is_not_a_node_outage_even_through_its_workload() -> None:
    down = incident(*node_down(), {"alertname": "KubeStatefulSetReplicasMismatch",
                                   "namespace": "search", "statefulset": "elasticsearch"})
    crash = {"alertname": "KubePodCrashLooping", "namespace": "search", "pod": "elasticsearch-1"}
    assert joins(crash, down) is None
    # A second crash-looping pod of the workload joins the first one's incident.
    first = incident({**crash, "pod": "elasticsearch-0"})
    assert joins(crash, first, down) == "KubePodCrashLooping"


def test_past_the_window_a_pod_joins_its_node_only_while_the_node_is_down() -> None:
    unready = {"alertname": "KubePodNotReady", "namespace": "payments",
               "pod": "payments-api-7d9f8c6b5d-abcde"}
    late = 3 * WINDOW
    memory = incident({"alertname": "NodeMemoryHighUtilization", "instance": "10.0.1.15:9100",
                       "job": "node-exporter"})
    assert joins(unready, memory, at=60.0) == "NodeMemoryHighUtilization"  # the whole host
    assert joins(unready, memory, at=late) is None
    assert joins(unready, incident(*node_down()), at=late) == "KubeNodeNotReady"


def test_kube_state_metrics_own_target_labels_relate_nothing() -> None:
    # kube-prometheus-stack scrapes kube-state-metrics with honorLabels: a node's or a
    # workload's series also carries kube-state-metrics' own pod, instance and service.
    scrape = {"job": "kube-state-metrics", "container": "kube-state-metrics",
              "endpoint": "http", "instance": "10.244.2.64:8080",
              "pod": "kube-prometheus-stack-kube-state-metrics-8xrhfsh4kh-6frq8",
              "service": "kube-prometheus-stack-kube-state-metrics"}
    ready = about({"alertname": "KubeNodeNotReady", **scrape, "namespace": "monitoring",
                   "node": NODE}, TOPOLOGY)
    assert ready.own == {("node", NODE)} and not ready.derived
    mismatch = {"alertname": "KubeDeploymentReplicasMismatch", **scrape,
                "namespace": "payments", "deployment": "payments-api"}
    assert about(mismatch, TOPOLOGY).own == {("workload", "payments/payments-api")}
    # Two such alerts about unrelated objects (no pod of the Deployment on that node) are not
    # one incident...
    assert joins(mismatch, incident({"alertname": "KubeNodeNotReady", **scrape,
                                     "namespace": "monitoring", "node": "prod-worker-9"})) is None
    # ...while a pod's own series keeps its pod, kube-state-metrics' own pod included.
    crash = about({"alertname": "KubePodCrashLooping", **scrape, "namespace": "monitoring",
                   "container": "kube-state-metrics", "reason": "CrashLoopBackOff"}, TOPOLOGY)
    assert ("pod", f"monitoring/{scrape['pod']}") in crash.own
    assert not any(kind == "instance" for kind, _ in crash.own)


def test_the_kubelets_target_is_its_node() -> None:
    claim = about({"alertname": "KubePersistentVolumeFillingUp", "job": "kubelet",
                   "instance": "10.16.1.140:10250", "node": NODE, "namespace": "search",
                   "persistentvolumeclaim": "data-elasticsearch-1"}, TOPOLOGY)
    assert claim.own == {("pvc", "search/data-elasticsearch-1")}


def test_alerts_naming_one_object_by_a_label_of_their_own_are_one_problem() -> None:
    # kube-prometheus' per-pod and cluster-wide delivery failures both name the integration;
    # the aggregated API's down and its errors on each API server both name the APIService.
    per_pod = incident({"alertname": "AlertmanagerFailedToSendAlerts", "integration": "pagerduty",
                        "namespace": "monitoring", "job": "alertmanager-main",
                        "pod": "alertmanager-main-0", "instance": "10.244.7.7:9093"})
    assert joins({"alertname": "AlertmanagerClusterFailedToSendAlerts",
                  "integration": "pagerduty", "namespace": "monitoring",
                  "service": "alertmanager-main"}, per_pod) == "AlertmanagerFailedToSendAlerts"
    assert joins({"alertname": "AlertmanagerClusterFailedToSendAlerts", "integration": "email",
                  "namespace": "monitoring", "service": "alertmanager-main"}, per_pod) is None
    down = incident({"alertname": "KubeAggregatedAPIDown", "name": "v1beta1.metrics.k8s.io",
                     "namespace": "kube-system"})
    assert joins({"alertname": "KubeAggregatedAPIErrors", "name": "v1beta1.metrics.k8s.io",
                  "instance": "10.0.0.11:6443", "reason": "FailedDiscoveryCheck"},
                 down) == "KubeAggregatedAPIDown"
    # A reason is a category, not an object: two crash loops do not share one.
    loop = incident({"alertname": "KubePodCrashLooping", "namespace": "payments",
                     "pod": "payments-api-7d9f8c6b5d-abcde", "reason": "CrashLoopBackOff"})
    assert joins({"alertname": "KubePodCrashLooping", "namespace": "search",
                  "pod": "elasticsearch-1", "reason": "CrashLoopBackOff"}, loop) is None


def test_an_aggregated_api_and_the_server_named_after_it_are_one_problem() -> None:
    down = incident({"alertname": "KubeAggregatedAPIDown", "name": "v1beta1.metrics.k8s.io",
                     "namespace": "kube-system"})
    server = {"alertname": "KubePodCrashLooping", "namespace": "kube-system",
              "pod": "metrics-server-5f9c7d8b6-x2x7k", "job": "kube-state-metrics",
              "reason": "CrashLoopBackOff"}
    assert joins(server, down) == "KubeAggregatedAPIDown"
    # The other way round, and by the replicas' alert: the Deployment is named.
    loop = incident(server)
    assert joins({"alertname": "KubeAggregatedAPIErrors", "name": "v1beta1.metrics.k8s.io",
                  "instance": "10.0.0.11:6443", "reason": "FailedDiscoveryCheck"},
                 loop) == "KubePodCrashLooping"
    assert joins({"alertname": "KubeDeploymentReplicasMismatch", "namespace": "kube-system",
                  "deployment": "metrics-server", "job": "kube-state-metrics"},
                 down) == "KubeAggregatedAPIDown"
    custom = incident({"alertname": "KubeAggregatedAPIDown",
                       "name": "v1beta1.custom.metrics.k8s.io", "namespace": "monitoring"})
    assert joins({"alertname": "KubePodNotReady", "namespace": "monitoring",
                  "pod": "custom-metrics-apiserver-7c9d5b9f8-abcde"},
                 custom) == "KubeAggregatedAPIDown"
    # A server of another name, or a workload that serves no API, is not the metrics API's.
    for other in ("auth-server-6d8f7c9b5-abcde", "metrics-collector-6d8f7c9b5-abcde"):
        assert joins({**server, "pod": other}, down) is None


def test_the_control_plane_stays_one_problem_while_it_alerts() -> None:
    etcd = incident({"alertname": "etcdHighFsyncDurations", "job": "kube-etcd",
                     "instance": "10.0.0.13:2381"}, at=0.0)
    burn = {"alertname": "KubeAPIErrorBudgetBurn", "long": "1h", "short": "5m"}
    # Eight minutes on, past the window, the API server's error budget burning is etcd's.
    assert joins(burn, etcd, at=8 * 60.0) == "etcdHighFsyncDurations"
    # Past the lasting reach it is not.
    assert joins(burn, etcd, at=30 * 60.0) is None


def test_one_slo_burning_over_another_window_is_the_same_problem_however_late() -> None:
    burn = incident({"alertname": "KubeAPIErrorBudgetBurn", "long": "1h", "short": "5m",
                     "severity": "critical"})
    six_hours = {"alertname": "KubeAPIErrorBudgetBurn", "long": "6h", "short": "30m",
                 "severity": "critical"}
    # Forty minutes on, past the lasting reach, while the 1-hour burn still fires.
    assert joins(six_hours, burn, at=40 * 60.0) == "KubeAPIErrorBudgetBurn"
    burn.related.resolved(about({"alertname": "KubeAPIErrorBudgetBurn", "long": "1h",
                                 "short": "5m", "severity": "critical"}, TOPOLOGY))
    # Resolved, it is still inside the 6-hour window: those errors are the 1-hour burn's.
    assert joins(six_hours, burn, at=40 * 60.0) == "KubeAPIErrorBudgetBurn"
    # Seven hours on, the 6-hour window no longer holds it; a shorter window than the
    # incident's never does; nor does another SLO's.
    assert joins(six_hours, burn, at=7 * 3600.0) is None
    assert joins({"alertname": "KubeAPIErrorBudgetBurn", "long": "30m", "short": "5m",
                  "severity": "critical"}, burn, at=40 * 60.0) is None
    assert joins({**six_hours, "slo": "checkout-latency"}, burn, at=40 * 60.0) is None


def test_prometheus_durations() -> None:
    assert [seconds(d) for d in ("5m", "1h", "1d", "1h30m", "3d", "2w")] == [
        300, 3600, 86400, 5400, 3 * 86400, 14 * 86400]
    assert seconds("") == seconds("soon") == seconds("1h soon") == 0


def test_a_critical_alert_still_firing_takes_late_alerts_below_it_not_its_node() -> None:
    full = incident({"alertname": "KubePersistentVolumeFillingUp", "namespace": "search",
                     "persistentvolumeclaim": "data-elasticsearch-0", "severity": "critical"})
    # Forty minutes on, past the lasting reach: the pod that mounts the full claim joins ...
    assert joins({"alertname": "KubePodCrashLooping", "namespace": "search",
                  "pod": "elasticsearch-0"}, full, at=40 * 60.0) \
        == "KubePersistentVolumeFillingUp"
    # ... but a critical pod alert does not take its node's later trouble.
    pod = incident({"alertname": "KubePodCrashLooping", "namespace": "payments",
                    "pod": "payments-api-7d9f8c6b5d-abcde", "severity": "critical"})
    assert joins({"alertname": "NodeMemoryHighUtilization", "instance": "10.0.1.15:9100",
                  "job": "node-exporter"}, pod, at=40 * 60.0) is None


def test_a_filesystem_still_alerting_takes_its_later_alerts_however_late() -> None:
    filling = incident(disk_filling())
    almost_full = {**disk_filling(), "alertname": "NodeFilesystemAlmostOutOfSpace"}
    # Seventy minutes on, past the lasting reach, while "predicted to fill" still fires.
    assert joins(almost_full, filling, at=70 * 60.0) == "NodeFilesystemSpaceFillingUp"
    # Another filesystem of that host, or the host as a whole, is not that problem.
    assert joins({**almost_full, "mountpoint": "/var/lib/kubelet", "device": "/dev/nvme1n1"},
                 filling, at=70 * 60.0) is None
    assert joins({"alertname": "NodeMemoryHighUtilization", "instance": "10.0.1.15:9100",
                  "job": "node-exporter"}, filling, at=70 * 60.0) is None
    # Once it resolved, a later alert on that filesystem is a problem of its own.
    filling.related.resolved(about(disk_filling(), TOPOLOGY))
    assert joins(almost_full, filling, at=70 * 60.0) is None


def test_a_pod_still_unready_takes_its_later_alerts_however_late() -> None:
    unready = {"alertname": "KubePodNotReady", "namespace": "frontend",
               "pod": "web-qwqht8lzn-r7k8l"}
    rollout = incident(unready, {"alertname": "KubeDeploymentRolloutStuck",
                                 "namespace": "frontend", "deployment": "web"})
    waiting = {"alertname": "KubeContainerWaiting", "namespace": "frontend",
               "pod": "web-qwqht8lzn-r7k8l", "reason": "CreateContainerConfigError"}
    # Fifty minutes on (the rule's `for:` is an hour), while the pod is still unready.
    assert joins(waiting, rollout, at=50 * 60.0) == "KubePodNotReady"
    # Another pod of the workload, or the workload itself, is not held that long ...
    assert joins({**waiting, "pod": "web-qwqht8lzn-jd26h"}, rollout, at=50 * 60.0) is None
    # ... nor is the pod once its alert resolved.
    rollout.related.resolved(about(unready, TOPOLOGY))
    assert joins(waiting, rollout, at=50 * 60.0) is None


def test_a_pod_that_is_only_a_rules_scrape_target_is_not_held_unwell() -> None:
    # Prometheus' rules failing name the Prometheus pod that evaluates them; that pod going
    # unready an hour on is not the rules' problem.
    rules = incident({"alertname": "PrometheusRuleFailures", "namespace": "monitoring",
                      "pod": "prometheus-k8s-0", "rule_group": "/etc/prometheus/rules/kpis"})
    assert joins({"alertname": "KubePodNotReady", "namespace": "monitoring",
                  "pod": "prometheus-k8s-0"}, rules, at=60 * 60.0) is None


def test_a_pod_left_unready_by_its_node_going_down_does_not_take_a_later_crash_loop() -> None:
    down = incident(*node_down())
    # Its node is still down: a crash loop hours on cannot be that pod on that node.
    assert joins({"alertname": "KubePodCrashLooping", "namespace": "search",
                  "pod": "elasticsearch-0"}, down, at=3 * 3600.0) is None


def backend_down(at: float = 0.0) -> Candidate:
    """A StatefulSet in `databases` that stopped serving at `at`."""
    related = Related()
    for labels in ({"alertname": "KubeStatefulSetReplicasMismatch", "namespace": "databases",
                    "statefulset": "postgres", "job": "kube-state-metrics"},
                   {"alertname": "KubePodCrashLooping", "namespace": "databases",
                    "pod": "postgres-0", "job": "kube-state-metrics"}):
        related.add(about(labels, TOPOLOGY), at)
    return Candidate(key="postgres", related=related, first=at, latest=at, ended=None)


def test_a_deployment_going_unready_just_after_a_statefulset_stopped_is_its_client() -> None:
    unready = {"alertname": "KubeDeploymentReplicasMismatch", "namespace": "payments",
               "deployment": "payments-api", "job": "kube-state-metrics"}
    found = choose(about(unready, TOPOLOGY), 120.0, [backend_down()], window=WINDOW)
    assert found is not None and found[0].key == "postgres"
    assert "StatefulSet databases/postgres stopped serving" in found[1].why
    # Not before the backend stopped (an effect does not come first), not long after, not a
    # crash loop (a workload's own trouble first), and not once the incident is old.
    assert joins(unready, backend_down(at=200.0), at=120.0) is None
    assert joins(unready, backend_down(), at=290.0) is None
    assert joins({"alertname": "KubePodCrashLooping", "namespace": "payments",
                  "pod": "payments-api-7d9f8c6b5d-abcde", "job": "kube-state-metrics"},
                 backend_down(), at=120.0) is None
    old = backend_down(at=1000.0)
    old.first = 0.0
    assert joins(unready, old, at=1060.0) is None
    # A tie of what the alerts are about wins over timing alone.
    own = incident({"alertname": "KubePodNotReady", "namespace": "payments",
                    "pod": "payments-api-7d9f8c6b5d-abcde"}, at=100.0)
    assert joins(unready, backend_down(), own, at=120.0) == "KubePodNotReady"


def test_a_scrape_job_named_after_its_workloads_metrics_service_is_that_workloads() -> None:
    crashing = incident({"alertname": "KubePodCrashLooping", "namespace": "payments",
                         "pod": "payments-api-7d9f8c6b5d-abcde", "job": "kube-state-metrics",
                         "reason": "CrashLoopBackOff"})
    down = {"alertname": "TargetDown", "namespace": "payments", "job": "payments-api-metrics",
            "service": "payments-api-metrics"}
    assert joins(down, crashing) == "KubePodCrashLooping"
    # A job named after no workload of its namespace stays its own.
    assert joins({**down, "job": "payments-gateway", "service": "payments-gateway"},
                 crashing) is None
    assert ("workload", "search/payments-api-metrics") in about(
        {**down, "namespace": "search"}, TOPOLOGY).own


def test_clients_fail_with_a_statefulset_that_stopped_but_not_with_one_down_with_its_node(
) -> None:
    # elasticsearch-0 unready at 0 s; payments-api's pods unready 60 s later, its scrape target
    # down 90 s before: its clients, unless the StatefulSet's replica is down with its node.
    stopped = Related()
    stopped.add(about({"alertname": "KubePodNotReady", "namespace": "search",
                       "pod": "elasticsearch-0"}, TOPOLOGY), 0.0)
    client = [(about({"alertname": "TargetDown", "namespace": "payments",
                      "job": "payments-api"}, TOPOLOGY), -90.0),
              (about({"alertname": "KubePodNotReady", "namespace": "payments",
                      "pod": "payments-api-7d9f8c6b5d-abcde"}, TOPOLOGY), 60.0)]
    why = clients_failing(stopped, client, window=WINDOW)
    assert why == ("KubePodNotReady on workload payments/payments-api 60 s after StatefulSet "
                   "search/elasticsearch stopped serving")
    # Not a pod of another kind of trouble beside them, not long after, not a node down.
    crash = (about({"alertname": "KubePodCrashLooping", "namespace": "monitoring",
                    "pod": "node-exporter-bdljq"}, TOPOLOGY), 70.0)
    assert clients_failing(stopped, [*client, crash], window=WINDOW) is None
    late = [(a, t + 600) for a, t in client]
    assert clients_failing(stopped, late, window=WINDOW) is None
    down = stopped.copy()
    down.add(about({"alertname": "KubeNodeNotReady", "node": NODE}, TOPOLOGY), 0.0)
    assert clients_failing(down, client, window=WINDOW) is None


def test_what_a_node_took_down_with_it_is_its_outage_even_when_its_alerts_came_first() -> None:
    # The node's incident began with its kubelet's target down at 0 s; KubeNodeNotReady at
    # 300 s. A namespace's group said before it arrived: a pod on it unready, its workload's
    # replicas missing, a DaemonSet's target down.
    down = Related()
    for labels in node_down():
        down.add(about(labels, TOPOLOGY), 300.0)
    pod = {"alertname": "KubePodNotReady", "namespace": "search", "pod": "elasticsearch-0"}
    replicas = {"alertname": "KubeStatefulSetReplicasMismatch", "namespace": "search",
                "statefulset": "elasticsearch"}

    def took(*alerts: tuple[dict[str, str], float]) -> str | None:
        return down_with_node(down, NODE, 300.0, 0.0, [(about(a, TOPOLOGY), t)
                                                       for a, t in alerts], window=WINDOW)

    assert took((pod, 320.0), (replicas, 330.0)) == (
        f"search/elasticsearch-0 unavailable with node {NODE}, which went down")
    assert took((pod, -250.0)) is not None  # with the incident's first alert, not only after
    # Not a pod on another node, not long before or after, not a workload alone (it spans
    # nodes), not a crash loop or a disk filling (their own trouble).
    assert took(({**pod, "pod": "elasticsearch-1"}, 320.0)) is None
    assert took((pod, -400.0)) is None and took((pod, 700.0)) is None
    assert took((replicas, 330.0)) is None
    assert took((pod, 320.0), ({**pod, "alertname": "KubePodCrashLooping"}, 330.0)) is None
    assert took((pod, 320.0), (disk_filling(), 330.0)) is None
    assert down_with_node(down, OTHER, 300.0, 0.0, [(about(pod, TOPOLOGY), 320.0)],
                          window=WINDOW) is None  # that node is not down
    # Without kube-state-metrics a pod's node is unknown: unready while a node is down, it
    # most likely ran there (as `tie` takes it).
    assert down_with_node(down, NODE, 300.0, 0.0, [(about(pod), 320.0)],
                          window=WINDOW) is not None


def test_a_node_agents_target_down_minutes_before_the_node_is_its_outage() -> None:
    down = incident(*node_down()[:2], at=1000.0)
    kubelet = {"alertname": "TargetDown", "job": "kubelet", "namespace": "kube-system",
               "service": "kube-prometheus-stack-kubelet"}
    # TargetDown's `for:` is 10 minutes, KubeNodeNotReady's 15: it leads by a little more
    # than the five minutes the window is.
    assert down_with_node(down.related, NODE, 1000.0, 1000.0,
                          [(about(kubelet, TOPOLOGY), 1000.0 - 330.0)], window=WINDOW)
    # Not so an application's target down that long before, nor the kubelet's an hour before.
    app = {**kubelet, "job": "checkout-api", "namespace": "checkout",
           "service": "checkout-api"}
    assert down_with_node(down.related, NODE, 1000.0, 1000.0,
                          [(about(app, TOPOLOGY), 1000.0 - 330.0)], window=WINDOW) is None
    assert down_with_node(down.related, NODE, 4600.0, 4600.0,
                          [(about(kubelet, TOPOLOGY), 1000.0)], window=WINDOW) is None


def test_a_node_down_takes_its_pods_from_a_card_mostly_its_own_not_one_from_another() -> None:
    down = incident(*node_down()[:2], at=1000.0)
    search, payments = (about({"alertname": "KubePodNotReady", "namespace": ns, "pod": pod},
                              TOPOLOGY) for ns, pod in (
        ("search", "elasticsearch-0"), ("payments", "payments-api-7d9f8c6b5d-abcde")))
    elsewhere = about({"alertname": "KubePodNotReady", "namespace": "search",
                       "pod": "elasticsearch-1"}, TOPOLOGY)  # on another node
    # A replica on the node restarted minutes before (resolved since), a pod elsewhere, and
    # three alerts of pods unready with the node: the three move, as they are most of it.
    held = [(search, 700.0, False), (payments, 1010.0, True), (elsewhere, 1020.0, True),
            (search, 1030.0, True), (payments, 1040.0, True)]
    took = mostly_down_with_node(down.related, NODE, 1000.0, 1000.0, held, window=WINDOW)
    assert took is not None and took[0] == [1, 3, 4]
    # Half is not most: one pod of another problem's card stays there.
    assert mostly_down_with_node(down.related, NODE, 1000.0, 1000.0, held[1:3],
                                 window=WINDOW) is None


def test_without_kube_state_metrics_a_node_down_is_not_guessed_into_an_apis_outage() -> None:
    # Third generator, seed 8: metrics-server crash-loops and the metrics API goes down; in the
    # same minute a node goes down. Where metrics-server's pod runs is unknown, so the node
    # could only be guessed to hold it — not enough to take the API's failing discovery
    # checks for the node's doing.
    def joined(*alerts: dict[str, str]) -> object | None:
        related = Related()
        for labels in alerts:
            related.add(about(labels, Topology()))
        found = choose(about({"alertname": "KubeNodeUnreachable", "node": NODE}, Topology()),
                       60.0, [Candidate("incident", related, 0.0, 0.0, None)], window=WINDOW)
        return found[0].key if found else None

    api = {"alertname": "KubeAggregatedAPIDown", "name": "v1beta1.metrics.k8s.io",
           "namespace": "kube-system"}
    unready = {"alertname": "KubePodNotReady", "namespace": "kube-system",
               "pod": "metrics-server-6d94bc8694-pkbmn", "job": "kube-state-metrics"}
    mismatch = {"alertname": "KubeDeploymentReplicasMismatch", "namespace": "kube-system",
                "deployment": "metrics-server", "job": "kube-state-metrics"}
    assert joined(api, unready, mismatch) is None
    # Pods and replicas unready with nothing else said: the node down may well be why.
    assert joined(unready, mismatch) == "incident"


def test_a_pods_full_claim_outweighs_its_nodes_warning_of_the_same_minute() -> None:
    # Third generator, seed 16: two StatefulSets' claims fill up and, in one minute, both
    # pods go unready on a node whose conntrack table warns. Each pod's claim, critical and
    # still firing, is its named cause; the node's warning is only a coincidence of timing.
    claim = incident({"alertname": "KubePersistentVolumeFillingUp", "namespace": "search",
                      "persistentvolumeclaim": "data-elasticsearch-0", "severity": "critical"})
    conntrack = incident({"alertname": "NodeHighNumberConntrackEntriesUsed",
                          "job": "node-exporter", "namespace": "monitoring",
                          "pod": "node-exporter-bdljq", "instance": "10.0.1.15:9100"}, at=900.0)
    unready = {"alertname": "KubePodNotReady", "namespace": "search", "pod": "elasticsearch-0"}
    assert joins(unready, claim, conntrack, at=1000.0) == "KubePersistentVolumeFillingUp"
    # With no claim of its own in trouble, a pod unready on a node unwell as a whole is the
    # node's; and a node going down takes its pod, full claim or not (the independent
    # generator's seed 19 and ours' seed 26 say so).
    assert joins(unready, conntrack, at=1000.0) == "NodeHighNumberConntrackEntriesUsed"
    down = incident({"alertname": "KubeNodeNotReady", "node": NODE}, at=900.0)
    assert joins(unready, claim, down, at=1000.0) == "KubeNodeNotReady"


def test_a_cronjobs_next_run_is_read_on_the_copilots_clock() -> None:
    # A Job's name says its scheduled minute on the cluster's clock. A test that replays a
    # stream sixty times faster sets the windows sixty times shorter (5 s) and leaves the
    # names as they were: 30 minutes between two runs is then 30 s of the copilot's clock.
    def run(minute: int) -> dict[str, str]:
        return {"alertname": "KubeJobFailed", "namespace": "search",
                "job_name": f"reindex-{minute}", "job": "kube-state-metrics"}

    failed = Related()
    failed.add(about(run(28478970)), 0.0)
    assert recurred(about(run(28479000)), failed, since_first=40 * 60, window=300) is not None
    assert recurred(about(run(28479000)), failed, since_first=40, window=5) is not None
    # A run scheduled twelve days on is still no next run, on either clock.
    assert recurred(about(run(28496446)), failed, since_first=40 * 60, window=300) is None
    assert recurred(about(run(28496446)), failed, since_first=40, window=5) is None


def test_without_kube_state_metrics_a_deployments_full_claim_takes_the_pods_named_alike() -> None:
    # Our generator, no kube-state-metrics: a Deployment's claim names no pod, and the crash
    # loop of `shop-api`'s pod 240 s after `shop-api-data` went critical was a card of its own
    # (2 to 3 real incidents fragmented per seed). Charts name a Deployment's claim after it.
    def claim(severity: str) -> dict[str, str]:
        return {"alertname": "KubePersistentVolumeFillingUp", "namespace": "shop",
                "persistentvolumeclaim": "shop-api-data", "severity": severity,
                "job": "kubelet"}

    def pod(rule: str, name: str = "shop-api-58b791-3c344") -> dict[str, str]:
        return {"alertname": rule, "namespace": "shop", "pod": name,
                "job": "kube-state-metrics"}

    def joined(labels: dict[str, str], at: float, *claims: tuple[str, float]) -> bool:
        related = Related()
        for severity, since in claims:
            related.add(about(claim(severity)), since)
        found = choose(about(labels), at, [Candidate("claim", related, 0.0, 600.0, None)],
                       window=WINDOW)
        return found is not None

    full = (("warning", 0.0), ("critical", 600.0))
    assert about(claim("critical")).derived[("workload", "shop/shop-api")] == (
        "claim shop-api-data is named after shop-api")
    assert joined(pod("KubePodCrashLooping"), 840.0, *full)
    # Late, while the claim is still full: the same.
    assert joined(pod("KubePodCrashLooping"), 2400.0, *full)
    # Not a pod that failed before the claim filled, nor one while the claim only warned,
    # nor another Deployment's pod; nor a replica merely unready (our generator, seed 26: with
    # its node, an hour on), which says nothing of mounting the claim.
    assert not joined(pod("KubePodCrashLooping"), 580.0, *full)
    assert not joined(pod("KubePodNotReady"), 840.0, *full)
    assert not joined(pod("KubePodCrashLooping"), 300.0, ("warning", 0.0))
    assert not joined(pod("KubePodCrashLooping", "shop-web-58b791-3c344"), 840.0, *full)


def test_a_crash_looping_pod_unready_when_its_node_goes_down_is_the_nodes() -> None:
    # Our generator, seeds 19, 23, 53, 59, reading kube-state-metrics: payments-api
    # crash-loops; its pod on prod-worker-2 goes unready minutes after that node went down.
    # The node controller marks a down node's pods unready; both generators' truth is the node.
    pod = {"alertname": "KubePodCrashLooping", "namespace": "payments",
           "pod": "payments-api-7d9f8c6b5d-abcde"}
    crash = incident(pod, {**pod, "pod": "payments-api-7d9f8c6b5d-fghjk"}, at=0.0)
    down = incident(*node_down()[:2], at=30.0)
    unready = {**pod, "alertname": "KubePodNotReady"}
    assert joins(unready, crash, down, at=90.0) == "KubeNodeNotReady"
    # Its crash loop's other replica, on a node that is up, stays with the crash loop; and
    # with no node down, the unready pod is its crash loop's.
    assert joins({**unready, "pod": "payments-api-7d9f8c6b5d-fghjk"}, crash, down,
                 at=90.0) == "KubePodCrashLooping"
    assert joins(unready, crash, at=90.0) == "KubePodCrashLooping"


def test_without_kube_state_metrics_a_claims_kubelet_places_its_pod_on_a_down_node() -> None:
    # Independent generator, seed 19, no kube-state-metrics: elasticsearch-1's claim fills
    # and the pod crash-loops; twenty minutes on its node goes down and the pod goes unready.
    # The claim's alert came from the kubelet of prod-worker-2 (its `node` label), so the pod
    # runs there: it is the node's, not a guess the pod's own incident outweighs.
    def claim(node: str) -> Candidate:
        related = Related()
        for labels in ({"alertname": "KubePersistentVolumeFillingUp", "namespace": "search",
                        "persistentvolumeclaim": "data-elasticsearch-1", "job": "kubelet",
                        "node": node, "severity": "critical"},
                       {"alertname": "KubePodCrashLooping", "namespace": "search",
                        "pod": "elasticsearch-1"}):
            related.add(about(labels), 0.0)
        return Candidate("claim", related, 0.0, 100.0, None)

    down = Related()
    for labels in node_down()[:2]:
        down.add(about(labels), 1200.0)
    unready = about({"alertname": "KubePodNotReady", "namespace": "search",
                     "pod": "elasticsearch-1"})

    def joined(node: str) -> object:
        found = choose(unready, 1300.0, [claim(node), Candidate("down", down, 1200.0, 1220.0,
                                                                None)], window=WINDOW)
        return found[0].key if found else None

    assert joined(NODE) == "down"
    # Mounted on another node: only a guess places the pod on the down one, and its own
    # incident, still open, outweighs it.
    assert joined(OTHER) == "claim"


def test_a_pod_merely_unready_while_its_workload_crash_loops_elsewhere_goes_with_the_down_node(
        ) -> None:
    # Our generator's seed 14 through the product, no kube-state-metrics: ingest-db's replicas
    # crash-loop (one came first and opened an incident, its replicas missing beside it) and
    # its pod on the down node, merely unready, came second. Which came first must not
    # matter: with the crash loop second, `strands` leaves that pod with the node.
    def pod(rule: str, name: str) -> dict[str, str]:
        return {"alertname": rule, "namespace": "ingest", "pod": f"ingest-db-8f624d-{name}",
                "job": "kube-state-metrics"}

    looping, down = Related(), Related()
    looping.add(about(pod("KubePodCrashLooping", "d3f8d")), 60.0)
    looping.add(about({"alertname": "KubeDeploymentReplicasMismatch", "namespace": "ingest",
                       "deployment": "ingest-db", "job": "kube-state-metrics"}), 40.0)
    for labels in node_down()[:2]:
        down.add(about(labels), 0.0)
    candidates = [Candidate("down", down, 0.0, 20.0, None),
                  Candidate("looping", looping, 40.0, 60.0, None)]

    def joined(labels: dict[str, str]) -> object:
        found = choose(about(labels), 30.0, candidates, window=WINDOW)
        return found[0].key if found else None

    assert joined(pod("KubePodNotReady", "c2432")) == "down"
    # The crash-looping pod's own unready is its crash loop's.
    assert joined(pod("KubePodNotReady", "d3f8d")) == "looping"
