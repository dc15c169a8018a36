"""The Helm chart (charts/sre-copilot): linted and rendered by Helm's own Go code (helm-python-sdk),
every rendered object checked against the Kubernetes API schemas (kubernetes-validate), the
prometheus-operator objects against the CRD fields the chart uses, and the alert rules run by
promtool."""

from __future__ import annotations

import base64
import copy
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from bot.metrics import Metrics
from bot.settings import Settings
from tests.conftest import need
from tests.fakes.alertmanager_server import copilot_server, free_port

MISSING: str | None = None
try:
    import helm_python as helm
    import kubernetes_validate  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - depends on the machine
    MISSING = f"{exc.name} is not installed (pip install -e '.[dev]')"

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "sre-copilot"
PRODUCTION = CHART / "ci" / "production-values.yaml"
RELEASE, NAMESPACE = "copilot", "ops"
FULLNAME = "copilot-sre-copilot"
# The oldest Kubernetes minor the chart is checked against, and the newest the validator ships.
K8S_VERSIONS = ("1.30.0", "1.37.0")
RUNBOOK_URL = "https://github.com/sre-copilot/sre-copilot#operations"
POSTGRES = "postgresql+psycopg://copilot:pw@postgres.db.svc:5432/copilot"
ALERTS = {
    "SRECopilotDown", "SRECopilotInstanceDown", "SRECopilotWebhooksWaiting",
    "SRECopilotInboxItemsFailed", "SRECopilotInboxErrors", "SRECopilotChatPostsFailed",
    "SRECopilotUpstreamErrors", "SRECopilotModelSlow", "SRECopilotModelTokenBurn",
}
SQLITE_MESSAGE = ("without a database URL the copilot uses SQLite in the pod's data volume, "
                  "which does not scale out")

# --- prometheus-operator objects -------------------------------------------------------------
# kubernetes-validate ships the core API only. These schemas are the part of prometheus-operator's
# CRDs (monitoring.coreos.com_servicemonitors.yaml / _prometheusrules.yaml, v1) that the chart
# writes, with the CRDs' own types and duration pattern; unknown fields are refused so a typo
# does not pass unnoticed.
DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?"
                                         r"(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object", "required": ["name", "namespace"], "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string", "minLength": 1},
        "labels": STRING_MAP, "annotations": STRING_MAP,
    },
}


def _crd_object(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {"apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": kind},
                       "metadata": METADATA, "spec": spec},
    }


SERVICE_MONITOR = _crd_object("ServiceMonitor", {
    "type": "object", "required": ["selector", "endpoints"], "additionalProperties": False,
    "properties": {
        "jobLabel": {"type": "string"},
        "selector": {"type": "object", "additionalProperties": False,
                     "properties": {"matchLabels": STRING_MAP}},
        "namespaceSelector": {"type": "object", "additionalProperties": False,
                              "properties": {"any": {"type": "boolean"},
                                             "matchNames": {"type": "array",
                                                            "items": {"type": "string"}}}},
        "endpoints": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False,
            "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                           "interval": DURATION, "scrapeTimeout": DURATION}}},
    },
})
PROMETHEUS_RULE = _crd_object("PrometheusRule", {
    "type": "object", "required": ["groups"], "additionalProperties": False,
    "properties": {"groups": {"type": "array", "items": {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1}, "interval": DURATION,
            "rules": {"type": "array", "items": {
                "type": "object", "required": ["expr"], "additionalProperties": False,
                # "Only one of `record` and `alert` must be set."
                "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                "properties": {
                    "alert": {"type": "string"}, "record": {"type": "string"},
                    "expr": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "for": DURATION, "keep_firing_for": DURATION,
                    "labels": STRING_MAP, "annotations": STRING_MAP,
                }}},
        }}}},
})
CRD_SCHEMAS = {"ServiceMonitor": SERVICE_MONITOR, "PrometheusRule": PROMETHEUS_RULE}


# --- helpers ---------------------------------------------------------------------------------
Doc = dict[str, Any]


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    need(MISSING is None, MISSING or "")
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def production_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(PRODUCTION.read_text())
    return values


def render(chart: helm.Chart, values: dict[str, Any] | None = None) -> tuple[list[Doc], str]:
    """The objects `helm install` would send (hooks included), and the rendered NOTES.txt."""
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[Doc] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc is not None)
    return docs, notes


def kinds(docs: list[Doc]) -> list[str]:
    return sorted(doc["kind"] for doc in docs)


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {kinds(docs)}"
    return found[0]


def container(workload: Doc) -> Doc:
    containers: list[Doc] = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env(c: Doc) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in c.get("env", [])}


SCENARIOS: dict[str, dict[str, Any] | None] = {
    "default": None,
    "production": None,  # ci/production-values.yaml, read at run time
    # The other branches of the templates: a chart-created Secret and hook Secret, a PVC, an
    # ingress without TLS, closed egress without extra rules, a PDB by maxUnavailable.
    "everything-else": {"replicaCount": 2,
                        "secrets": {"DATABASE_URL": POSTGRES, "SLACK_BOT_TOKEN": "xoxb-1"},
                        "persistence": {"enabled": True, "storageClass": "fast", "size": "20Gi"},
                        "ingress": {"enabled": True}, "serviceMonitor": {"enabled": True},
                        "prometheusRule": {"enabled": True,
                                           "additionalRules": [{"record": "x:y:rate5m",
                                                                "expr": "sum(up)"}]},
                        "networkPolicy": {"enabled": True, "restrictEgress": True},
                        "serviceAccount": {"create": False, "name": "copilot"},
                        "podDisruptionBudget": {"maxUnavailable": 1},
                        "extraEnv": [{"name": "SRE_COPILOT_CHAT_WORKERS", "value": "8"}]},
}


def scenario_values(name: str) -> dict[str, Any] | None:
    return production_values() if name == "production" else copy.deepcopy(SCENARIOS[name])


# --- lint --------------------------------------------------------------------------------------
@pytest.mark.parametrize("values_file", [None, PRODUCTION], ids=["default", "production"])
def test_helm_lint_is_clean(values_file: Path | None) -> None:
    need(MISSING is None, MISSING or "")
    values = yaml.safe_load(values_file.read_text()) if values_file else None
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE,
                       kube_version=f"v{K8S_VERSIONS[0]}")
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    # Severity 1 is "info" (e.g. "icon is recommended"); warnings and errors are not allowed.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


# --- every object is valid -----------------------------------------------------------------------
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_object_is_valid(chart: helm.Chart, scenario: str) -> None:
    docs, _ = render(chart, scenario_values(scenario))
    assert docs
    problems: list[str] = []
    for doc in docs:
        assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        if doc["kind"] in CRD_SCHEMAS:
            # Not a core kind: the validator must say so (not pass it); the CRD schema checks it.
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(doc, K8S_VERSIONS[0], strict=True)
            validator = jsonschema.Draft202012Validator(CRD_SCHEMAS[doc["kind"]])
            problems.extend(f"{doc['kind']}/{doc['metadata']['name']}: "
                            f"{'.'.join(str(p) for p in err.path)}: {err.message}"
                            for err in validator.iter_errors(doc))
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                where = ".".join(str(p) for p in err.path)
                problems.append(f"{doc['kind']}/{doc['metadata']['name']} is not valid for "
                                f"Kubernetes {version}: {where}: {err.message}")
    assert not problems, "\n".join(problems)


def test_crd_schemas_refuse_what_the_operator_refuses() -> None:
    """The CRD schemas above are not vacuous: they refuse a bad duration, a rule that is both
    alert and record, and an unknown field."""
    for schema in CRD_SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    rule: dict[str, Any] = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": {"name": "x", "namespace": "ops"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0",
                                                     "for": "5m"}]}]},
    }
    jsonschema.validate(rule, PROMETHEUS_RULE)
    bad_rules: list[dict[str, Any]] = [
        {"alert": "A", "expr": "up == 0", "for": "5 minutes"},
        {"alert": "A", "record": "a:b", "expr": "up"},
        {"alert": "A", "expr": "up", "severity": "critical"},
    ]
    for bad in bad_rules:
        broken = copy.deepcopy(rule)
        broken["spec"]["groups"][0]["rules"] = [bad]
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, PROMETHEUS_RULE)


# --- what a default install gives --------------------------------------------------------------
def test_default_install(chart: helm.Chart) -> None:
    docs, notes = render(chart)
    assert kinds(docs) == ["ConfigMap", "Deployment", "Pod", "Secret", "Service",
                           "ServiceAccount"]  # the Pod is `helm test`'s

    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 40
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"runAsUser": 10001, "runAsGroup": 10001,
                                      "runAsNonRoot": True, "fsGroup": 10001,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    c = container(deployment)
    assert c["image"] == "ghcr.io/sre-copilot/sre-copilot:0.1.0"  # the chart's appVersion
    assert c["command"] + c["args"] == ["sre-copilot", "serve", "--host", "0.0.0.0",
                                        "--port", "8080"]
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    startup = c["startupProbe"]
    assert startup["httpGet"] == {"path": "/healthz", "port": "http"}
    # The embedding model takes ~60 s to load: the startup budget leaves twice that.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    assert c["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"},
                              "limits": {"memory": "1Gi"}}
    # The read-only root leaves two writable places: the data directory and /tmp.
    assert {m["mountPath"]: m["name"] for m in c["volumeMounts"]} == {"/data": "data",
                                                                      "/tmp": "tmp"}
    assert {v["name"]: v for v in pod["volumes"]} == {"data": {"name": "data", "emptyDir": {}},
                                                      "tmp": {"name": "tmp", "emptyDir": {}}}
    assert env(c)["SRE_COPILOT_DATA_DIR"] == "/data"
    # Without an external database there is no hook Job: the pod migrates its own SQLite file.
    assert env(c)["SRE_COPILOT_AUTO_MIGRATE"] == "true"
    assert c["envFrom"] == [{"configMapRef": {"name": FULLNAME}},
                            {"secretRef": {"name": FULLNAME}}]
    annotations = spec["template"]["metadata"]["annotations"]
    assert {"checksum/config", "checksum/secret"} <= set(annotations)

    # Empty settings are left out: the app's own defaults apply.
    assert "data" not in one(docs, "Secret")
    assert one(docs, "ConfigMap")["data"] == {"SRE_COPILOT_LOG_LEVEL": "info",
                                              "SRE_COPILOT_LOG_FORMAT": "json"}
    service = one(docs, "Service")
    assert service["spec"]["ports"] == [{"port": 80, "targetPort": "http", "protocol": "TCP",
                                         "name": "http"}]
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]

    assert f"port-forward svc/{FULLNAME} 8080:80" in notes
    assert f"helm test {RELEASE} --namespace {NAMESPACE}" in notes
    assert "https://<host>/slack/events" in notes
    assert "SQLite" in notes


def test_database_url_runs_migrations_in_a_hook_job(chart: helm.Chart) -> None:
    docs, _ = render(chart, {"secrets": {"DATABASE_URL": POSTGRES, "SLACK_BOT_TOKEN": "xoxb-1"},
                             "config": {"PROMETHEUS_URL": "http://prometheus:9090"}})
    job = one(docs, "Job")
    hook = job["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in hook["helm.sh/hook-delete-policy"]
    c = container(job)
    assert c["command"] + c["args"] == ["sre-copilot", "db", "upgrade"]
    assert c["image"] == container(one(docs, "Deployment"))["image"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # A pre-install hook runs before the release's Secret and ConfigMap exist: it reads the
    # database URL from a hook Secret created just before it, and the config as plain env.
    hook_secret = one(docs, "Secret", f"{FULLNAME}-migrations")
    assert hook_secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        hook["helm.sh/hook-weight"])
    assert base64.b64decode(hook_secret["data"]["DATABASE_URL"]).decode() == POSTGRES
    assert list(hook_secret["data"]) == ["DATABASE_URL"]
    assert c["envFrom"] == [{"secretRef": {"name": f"{FULLNAME}-migrations"}}]
    assert env(c)["PROMETHEUS_URL"] == "http://prometheus:9090"
    # The Service and the PDB must not send traffic to (or count) the Job's pod.
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    selector = one(docs, "Service")["spec"]["selector"]
    assert not selector.items() <= pod_labels.items()

    # Only the hook migrates.
    assert env(container(one(docs, "Deployment")))["SRE_COPILOT_AUTO_MIGRATE"] == "false"
    secret = one(docs, "Secret", FULLNAME)
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "DATABASE_URL": POSTGRES, "SLACK_BOT_TOKEN": "xoxb-1"}

    disabled, _ = render(chart, {"secrets": {"DATABASE_URL": POSTGRES},
                                 "migrations": {"enabled": False}})
    assert "Job" not in kinds(disabled)
    assert env(container(one(disabled, "Deployment")))["SRE_COPILOT_AUTO_MIGRATE"] == "true"


def test_a_changed_setting_rolls_the_pods(chart: helm.Chart) -> None:
    def checksums(values: dict[str, Any]) -> dict[str, str]:
        docs, _ = render(chart, values)
        annotations: dict[str, str] = one(docs, "Deployment")["spec"]["template"]["metadata"][
            "annotations"]
        return annotations

    base = checksums({"config": {"DIGEST_CRON": "0 9 * * mon"}})
    assert checksums({"config": {"DIGEST_CRON": "0 8 * * mon"}})["checksum/config"] != base[
        "checksum/config"]
    assert checksums({"config": {"DIGEST_CRON": "0 9 * * mon"},
                      "secrets": {"SLACK_BOT_TOKEN": "xoxb-2"}})["checksum/secret"] != base[
        "checksum/secret"]


def test_persistence(chart: helm.Chart) -> None:
    docs, _ = render(chart, {"persistence": {"enabled": True, "storageClass": "fast",
                                             "size": "20Gi"}})
    pvc = one(docs, "PersistentVolumeClaim")
    assert pvc["spec"] == {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                           "resources": {"requests": {"storage": "20Gi"}}}
    deployment = one(docs, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": pvc["metadata"]["name"]}
    # A ReadWriteOnce volume cannot be attached to a surge pod on another node.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}

    existing, _ = render(chart, {"persistence": {"enabled": True, "existingClaim": "mine"}})
    assert "PersistentVolumeClaim" not in kinds(existing)
    volumes = {v["name"]: v for v in one(existing, "Deployment")["spec"]["template"]["spec"][
        "volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "mine"}


# --- what the production values give -----------------------------------------------------------
def test_production_install(chart: helm.Chart) -> None:
    docs, notes = render(chart, production_values())
    assert kinds(docs) == ["ConfigMap", "Deployment", "Ingress", "Job", "NetworkPolicy", "Pod",
                           "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceAccount",
                           "ServiceMonitor"]
    # existingSecret: the chart creates no Secret, not even the migration hook's.
    assert "Secret" not in kinds(docs)

    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    c = container(deployment)
    assert {"secretRef": {"name": "sre-copilot-secrets"}} in c["envFrom"]
    assert "checksum/secret" not in deployment["spec"]["template"]["metadata"]["annotations"]
    assert env(c)["SRE_COPILOT_AUTO_MIGRATE"] == "false"
    assert container(one(docs, "Job"))["envFrom"] == [
        {"secretRef": {"name": "sre-copilot-secrets"}}]
    assert one(docs, "ConfigMap")["data"]["CHROMA_URL"].startswith("http://chroma.")

    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    ingress = one(docs, "Ingress")
    assert [r["host"] for r in ingress["spec"]["rules"]] == ["copilot.example.com"]
    assert ingress["spec"]["tls"] == [{"hosts": ["copilot.example.com"],
                                       "secretName": "sre-copilot-tls"}]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": FULLNAME, "port": {"number": 80}}

    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics",
                                             "interval": "30s", "scrapeTimeout": "10s"}]
    service = one(docs, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
        "labels"].items()

    rule = one(docs, "PrometheusRule")
    [group] = rule["spec"]["groups"]
    assert group["name"] == "sre-copilot"
    assert {r["alert"] for r in group["rules"]} == ALERTS
    for r in group["rules"]:
        assert r["labels"]["severity"] in {"critical", "warning"}, r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
        assert r["annotations"]["runbook_url"] == RUNBOOK_URL
        # Every expression is scoped to this release's scrape job.
        assert f'job="{FULLNAME}", namespace="{NAMESPACE}"' in r["expr"], r["alert"]

    policy = one(docs, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule_ in policy["ingress"] for p in rule_["ports"]] == ["http"]
    egress_ports = {p["port"] for rule_ in policy["egress"] for p in rule_["ports"]}
    assert {53, 5432, 443} <= egress_ports

    base = "https://copilot.example.com"
    for endpoint in ("/slack/events", "/slack/oauth_redirect", "/api/messages",
                     "/webhooks/alertmanager", "/webhooks/pagerduty"):
        assert base + endpoint in notes
    assert "ALERTMANAGER_WEBHOOK_TOKEN" in notes
    assert "port-forward" not in notes
    assert "must hold DATABASE_URL" in notes  # existingSecret with replicas: a reminder


def test_network_policy_leaves_egress_open_by_default(chart: helm.Chart) -> None:
    docs, _ = render(chart, {"networkPolicy": {"enabled": True}})
    policy = one(docs, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert "egress" not in policy
    assert "from" not in policy["ingress"][0]  # anyone may reach the http port, nothing else


# --- values that must be refused ----------------------------------------------------------------
@pytest.mark.parametrize(("values", "message"), [
    ({"replicaCount": "three"}, "at '/replicaCount': got string, want integer"),
    ({"replicaCount": 0}, "at '/replicaCount': minimum"),
    ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy': value must be one of"),
    ({"service": {"type": "ExternalName"}}, "at '/service/type': value must be one of"),
    ({"replicas": 3}, "additional properties 'replicas' not allowed"),
    ({"secrets": {"SLACK_TOKEN": "x"}}, "additional properties 'SLACK_TOKEN' not allowed"),
    ({"serviceMonitor": {"interval": "30 seconds"}}, "at '/serviceMonitor/interval'"),
    ({"preStopSleepSeconds": -1}, "at '/preStopSleepSeconds': minimum"),
], ids=["replicaCount-string", "replicaCount-zero", "pullPolicy", "service-type",
        "unknown-top-level-key", "unknown-secret", "interval", "preStop"])
def test_wrong_values_are_refused(chart: helm.Chart, values: dict[str, Any],
                                  message: str) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        render(chart, values)
    assert message in str(refused.value)
    # `helm lint -f` reports the same, as an error.
    report = helm.lint(CHART, values)
    assert any(message in m["error"] and m["severity"] == 3 for m in report["messages"]), report


@pytest.mark.parametrize(("values", "message"), [
    ({"replicaCount": 3}, SQLITE_MESSAGE),
    ({"replicaCount": 2, "secrets": {"DATABASE_URL": "sqlite:////data/x.sqlite3"}},
     "secrets.DATABASE_URL is a SQLite URL, which does not scale out"),
], ids=["no-database-url", "sqlite-url"])
def test_replicas_need_a_shared_database(chart: helm.Chart, values: dict[str, Any],
                                         message: str) -> None:
    with pytest.raises(helm.HelmRenderError) as refused:
        render(chart, values)
    assert message in str(refused.value)
    assert "PostgreSQL" in str(refused.value)


def test_replicas_with_a_database_url(chart: helm.Chart) -> None:
    for values in ({"replicaCount": 3, "secrets": {"DATABASE_URL": POSTGRES}},
                   {"replicaCount": 3, "existingSecret": "mine"}):
        docs, notes = render(chart, values)
        assert one(docs, "Deployment")["spec"]["replicas"] == 3
        assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
        assert "CHROMA_URL is empty" in notes  # each replica would keep its own index


# --- the alerts, run by Prometheus's own rule engine --------------------------------------------
SEL = f'job="{FULLNAME}", namespace="{NAMESPACE}"'
PROMTOOL_TESTS = f"""
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'sre_copilot_inbox_oldest_age_seconds{{{SEL}, pod="a"}}'
        values: '400x20'
      - series: 'sre_copilot_inbox_depth{{{SEL}, pod="a"}}'
        values: '7x20'
      - series: 'sre_copilot_upstream_errors_total{{{SEL}, pod="a", system="slack"}}'
        values: '0+60x30'
      - series: 'sre_copilot_upstream_errors_total{{{SEL}, pod="a", system="pagerduty"}}'
        values: '0x30'
      - series: 'up{{{SEL}, pod="a", instance="10.0.0.1:8080"}}'
        values: '0x20'
      - series: 'up{{job="other", namespace="{NAMESPACE}", pod="b", instance="10.0.0.2:8080"}}'
        values: '0x20'
      - series: 'sre_copilot_inbox_failed{{{SEL}, pod="a"}}'
        values: '0x20'
      # Processing outcomes as the worker counts them: 1/s done, 0.2/s retried, 0.1/s given up.
      - series: 'sre_copilot_inbox_processed_total{{{SEL}, pod="a", outcome="done"}}'
        values: '0+60x30'
      - series: 'sre_copilot_inbox_processed_total{{{SEL}, pod="a", outcome="retry"}}'
        values: '0+12x30'
      - series: 'sre_copilot_inbox_processed_total{{{SEL}, pod="a", outcome="failed"}}'
        values: '0+6x30'
      - series: 'sre_copilot_outbox_failed{{{SEL}, pod="a"}}'
        values: '2x30'
      # Every model request takes 45-60 s.
      - series: 'sre_copilot_model_request_duration_seconds_bucket{{{SEL}, pod="a", le="30.0"}}'
        values: '0x30'
      - series: 'sre_copilot_model_request_duration_seconds_bucket{{{SEL}, pod="a", le="45.0"}}'
        values: '0x30'
      - series: 'sre_copilot_model_request_duration_seconds_bucket{{{SEL}, pod="a", le="60.0"}}'
        values: '0+6x30'
      - series: 'sre_copilot_model_request_duration_seconds_bucket{{{SEL}, pod="a", le="+Inf"}}'
        values: '0+6x30'
      # 100k tokens a minute, most of them cached input.
      - series: 'sre_copilot_model_tokens_total{{{SEL}, pod="a", kind="cache_read"}}'
        values: '0+90000x30'
      - series: 'sre_copilot_model_tokens_total{{{SEL}, pod="a", kind="output"}}'
        values: '0+10000x30'
    alert_rule_test:
      - eval_time: 12m
        alertname: SRECopilotWebhooksWaiting
        exp_alerts:
          - exp_labels: {{severity: warning}}
            exp_annotations:
              summary: Webhooks are waiting in the SRE Copilot inbox
              description: >-
                The oldest unprocessed webhook (Alertmanager, PagerDuty, changes) has waited
                6m 40s; 7 items are queued. Alerts reach the copilot but are not posted to
                incident threads.
              runbook_url: {RUNBOOK_URL}
      - eval_time: 25m
        alertname: SRECopilotUpstreamErrors
        exp_alerts:
          - exp_labels: {{severity: warning, system: slack}}
            exp_annotations:
              summary: SRE Copilot calls to slack are failing
              description: >-
                Calls from the copilot to slack fail at 1/s over 10 minutes; answers that
                need it are degraded.
              runbook_url: {RUNBOOK_URL}
      - eval_time: 12m
        alertname: SRECopilotDown
        exp_alerts:
          - exp_labels: {{severity: critical}}
            exp_annotations:
              summary: SRE Copilot is down
              description: >-
                No SRE Copilot pod has answered a /metrics scrape for 5 minutes: Slack and
                Teams messages and alert webhooks are not being answered.
              runbook_url: {RUNBOOK_URL}
      - eval_time: 12m
        alertname: SRECopilotInstanceDown
        exp_alerts:
          - exp_labels:
              severity: warning
              job: {FULLNAME}
              namespace: {NAMESPACE}
              pod: a
              instance: 10.0.0.1:8080
            exp_annotations:
              summary: An SRE Copilot pod is down
              description: a (10.0.0.1:8080) has not answered a /metrics scrape for 5 minutes.
              runbook_url: {RUNBOOK_URL}
      - eval_time: 25m
        alertname: SRECopilotInboxErrors
        exp_alerts:
          - exp_labels: {{severity: warning}}
            exp_annotations:
              summary: SRE Copilot fails to process inbox items
              description: >-
                23.08% of webhook processing attempts failed over the last 10 minutes; failed
                items are retried, then given up.
              runbook_url: {RUNBOOK_URL}
      - eval_time: 12m
        alertname: SRECopilotChatPostsFailed
        exp_alerts:
          - exp_labels: {{severity: warning}}
            exp_annotations:
              summary: SRE Copilot gave up posting to chat
              description: >-
                2 message(s) to Slack or Microsoft Teams failed every retry and were given up.
              runbook_url: {RUNBOOK_URL}
      - eval_time: 25m
        alertname: SRECopilotModelSlow
        exp_alerts:
          - exp_labels: {{severity: warning}}
            exp_annotations:
              summary: SRE Copilot's model requests are slow
              description: >-
                The 95th percentile of model request time is 59.25s (over 30 s) for 15 minutes:
                chat answers are late.
              runbook_url: {RUNBOOK_URL}
      - eval_time: 3m
        alertname: SRECopilotWebhooksWaiting
        exp_alerts: []
      - eval_time: 12m
        alertname: SRECopilotInboxItemsFailed
        exp_alerts: []
"""


def test_alert_rules_with_promtool(chart: helm.Chart, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    need(promtool is not None, "promtool (Debian's prometheus package) is not installed")
    assert promtool is not None
    docs, _ = render(chart, production_values())
    rules = {"groups": one(docs, "PrometheusRule")["spec"]["groups"]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    (tmp_path / "tests.yaml").write_text(PROMTOOL_TESTS)
    for args in (["check", "rules", "rules.yaml"], ["test", "rules", "tests.yaml"]):
        done = subprocess.run([promtool, *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


def test_alert_rules_use_only_metrics_the_app_exposes(chart: helm.Chart) -> None:
    """Every `sre_copilot_*` name in the rules (expressions and the queries in descriptions) is
    a series the copilot's registry writes: a renamed metric would silence its alert."""
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    exposed = {family.name + suffix for family in Metrics().registry.collect()
               for suffix in suffixes[family.type]}
    docs, _ = render(chart, production_values())
    used = set(re.findall(r"\bsre_copilot_\w+", yaml.safe_dump(one(docs, "PrometheusRule"))))
    assert used >= {"sre_copilot_outbox_failed", "sre_copilot_upstream_errors_total",
                    "sre_copilot_model_tokens_total"}
    assert used <= exposed, sorted(used - exposed)


# --- the README's deployment commands, as written ------------------------------------------------
def _readme_commands() -> list[list[str]]:
    """The shell commands of the README's Kubernetes block, each split as the shell would."""
    readme = (CHART.parents[1] / "README.md").read_text()
    section = readme.split("## Deployment on Kubernetes", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        for part in line.split("&&"):
            words = shlex.split(part.replace("$(openssl rand -hex 24)", "generated"))
            if words:
                commands.append(words)
    return commands


def _set(values: dict[str, Any], dotted: str, value: str) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        values = values.setdefault(key, {})
    values[last] = value


def test_the_readmes_deployment_commands_as_written(chart: helm.Chart) -> None:
    """The README's block, run as far as this machine can: the image it builds and pushes is
    the one the pods run, the secret it creates is the one the pods and the migration Job
    read and holds only settings the copilot knows, `helm upgrade --install` with its values
    renders objects valid for Kubernetes in its namespace, and `helm test` has its pod."""
    commands = _readme_commands()
    [build] = [c for c in commands if c[:2] == ["docker", "build"]]
    image = build[build.index("-t") + 1]
    assert build[-1] == "." and (CHART.parents[1] / "Dockerfile").is_file()
    assert ["docker", "push", image] in commands
    [create_ns] = [c for c in commands if c[:3] == ["kubectl", "create", "namespace"]]
    namespace = create_ns[3]
    [secret] = [c for c in commands if "secret" in c and "generic" in c]
    assert secret[:3] == ["kubectl", "-n", namespace]
    secret_name = secret[secret.index("generic") + 1]
    keys = {a.split("=", 2)[1] for a in secret if a.startswith("--from-literal=")}
    known = {str(f.validation_alias) if isinstance(f.validation_alias, str)
             else f"SRE_COPILOT_{name.upper()}" for name, f in Settings.model_fields.items()}
    assert keys and keys <= known, keys - known
    assert "DATABASE_URL" in keys  # several replicas need PostgreSQL
    [helm_cmd] = [c for c in commands if c[:3] == ["helm", "upgrade", "--install"]]
    release, chart_path = helm_cmd[3], helm_cmd[4]
    assert (CHART.parents[1] / chart_path).resolve() == CHART
    assert helm_cmd[helm_cmd.index("-n") + 1] == namespace
    values: dict[str, Any] = yaml.safe_load(
        (CHART.parents[1] / helm_cmd[helm_cmd.index("-f") + 1]).read_text())
    for i, word in enumerate(helm_cmd):
        if word == "--set":
            key, value = helm_cmd[i + 1].split("=", 1)
            _set(values, key, value)

    manifests = chart.render(values, name=release, namespace=namespace, is_install=True)
    docs = [d for path, text in manifests.items() if not path.endswith("NOTES.txt")
            for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        assert doc["metadata"]["namespace"] == namespace
        if doc["kind"] not in CRD_SCHEMAS:
            kubernetes_validate.validate(doc, K8S_VERSIONS[0], strict=True)
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == values["replicaCount"] > 1
    pod = container(deployment)
    assert pod["image"] == image  # the tag defaults to the chart's appVersion
    assert {"secretRef": {"name": secret_name}} in pod["envFrom"]
    job = one(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert {"secretRef": {"name": secret_name}} in container(job)["envFrom"]
    assert container(job)["args"] == ["db", "upgrade"]
    assert not [d for d in docs if d["kind"] == "Secret"]  # the README's secret is used
    assert ["helm", "test", release, "-n", namespace] in commands
    assert _pod_container(_test_pod(docs))["image"] == image


# --- helm test ---------------------------------------------------------------------------------
def _test_pod(docs: list[Doc]) -> Doc:
    pod = one(docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    return pod


def _pod_container(pod: Doc) -> Doc:
    [only] = pod["spec"]["containers"]
    c: Doc = only
    return c


def test_helm_test_asks_the_service_from_the_copilots_image(chart: helm.Chart) -> None:
    docs, _ = render(chart, production_values())
    pod, deployment, service = _test_pod(docs), one(docs, "Deployment"), one(docs, "Service")
    probe = _pod_container(pod)
    assert probe["image"] == container(deployment)["image"]  # nothing else to pull
    assert env(probe)["SRE_COPILOT_URL"] == (f"http://{service['metadata']['name']}:"
                                             f"{service['spec']['ports'][0]['port']}")
    assert probe["securityContext"] == container(deployment)["securityContext"]
    assert pod["spec"]["securityContext"] == deployment["spec"]["template"]["spec"][
        "securityContext"]
    # Neither the Service nor the PDB counts it as a copilot pod...
    labels = pod["metadata"]["labels"]
    assert not set(service["spec"]["selector"].items()) <= set(labels.items())
    # ...and the NetworkPolicy, which restricts who reaches the copilot, lets it in.
    policy = one(docs, "NetworkPolicy")
    assert not set(policy["spec"]["podSelector"]["matchLabels"].items()) <= set(labels.items())
    peers = policy["spec"]["ingress"][0]["from"]
    assert any(set(p.get("podSelector", {}).get("matchLabels", {}).items())
               <= set(labels.items()) and "podSelector" in p for p in peers)


def test_helm_tests_script_passes_on_a_ready_copilot_and_fails_otherwise(
        chart: helm.Chart, tmp_path: Path) -> None:
    """The test pod's own script, run here against a real `serve` (its URL pointed at it)."""
    docs, _ = render(chart)
    command = _pod_container(_test_pod(docs))["command"]
    assert command[:2] == ["python", "-c"]
    script = command[2]
    server = ROOT / ".venv" / "bin" / "sre-copilot"
    with copilot_server(str(server), tmp_path / "copilot", token="t",
                        database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.sqlite3'}") as proc:
        ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env={"SRE_COPILOT_URL": proc.base_url}, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    assert "/healthz 200" in ran.stdout and '/readyz 200 {"status":"ready"}' in ran.stdout
    closed = f"http://127.0.0.1:{free_port()}"
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={"SRE_COPILOT_URL": closed}, timeout=60, check=False)
    assert ran.returncode == 1 and f"{closed}/healthz" in ran.stderr


# --- stopping ------------------------------------------------------------------------------------
def test_a_stopping_pod_serves_on_then_drains_within_its_grace_period(chart: helm.Chart
                                                                      ) -> None:
    docs, _ = render(chart)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    hook = container(one(docs, "Deployment"))["lifecycle"]["preStop"]
    assert hook == {"exec": {"command": ["sleep", "5"]}}
    assert pod["terminationGracePeriodSeconds"] > 5 + 30  # the sleep, then the 30 s drain
    docs, _ = render(chart, {"preStopSleepSeconds": 0})
    assert "lifecycle" not in container(one(docs, "Deployment"))
    with pytest.raises(helm.HelmRenderError) as refused:
        render(chart, {"terminationGracePeriodSeconds": 30})
    assert ("terminationGracePeriodSeconds is 30, but a stopping pod needs "
            "preStopSleepSeconds (5) plus up to 30 s to drain: set it above 35") in str(
                refused.value)
