"""What an alert or a series is about, read from its labels as the exporters set them."""

from __future__ import annotations

from knowledge.subjects import host_of, identity, name_of, subject_of


def test_node_exporter_series_are_about_the_node_not_the_exporters_pod() -> None:
    labels = {"job": "node-exporter", "instance": "10.0.0.7:9100", "pod": "node-exporter-a",
              "namespace": "monitoring", "service": "node-exporter", "container": "rbac"}
    assert identity(labels, "node_load1") == {"instance": "10.0.0.7:9100",
                                               "job": "node-exporter"}
    assert name_of(labels, "node_load1") == "10.0.0.7:9100 (job node-exporter)"


def test_kube_state_metrics_series_are_about_their_object() -> None:
    ksm = {"job": "kube-state-metrics", "instance": "10.1.0.3:8080", "service": "ksm",
           "container": "kube-state-metrics"}
    pod = {**ksm, "namespace": "shop", "pod": "cart-1"}
    assert name_of(pod, "kube_pod_status_ready") == "pod shop/cart-1"
    node = {**ksm, "namespace": "monitoring", "pod": "kube-state-metrics-x", "node": "n1"}
    assert name_of(node, "kube_node_status_condition") == "node n1"
    deploy = {**ksm, "namespace": "shop", "deployment": "cart", "pod": "kube-state-metrics-x"}
    assert name_of(deploy, "kube_deployment_spec_replicas") == "deployment shop/cart"


def test_an_incidents_subject_is_its_service_or_the_resource_it_names() -> None:
    assert subject_of({"alertname": "HighErrorRate", "service": "checkout"}) == "checkout"
    assert subject_of({"alertname": "BlackboxProbeFailed", "job": "blackbox",
                       "instance": "https://shop.example/health"}) == \
        "https://shop.example/health (job blackbox)"
    assert subject_of({"alertname": "X"}) is None


def test_hosts_of_instances_and_urls() -> None:
    assert host_of("10.0.0.7:9100") == "10.0.0.7"
    assert host_of("https://shop.example:8443/health") == "shop.example"
    assert host_of("[::1]:9100") == "::1"
