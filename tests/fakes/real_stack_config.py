"""The configuration files of the real alerting stack (`tests.fakes.real_stack`): kube-prometheus's
rules as plain Prometheus rule files with `for:` shortened, a few community rules for Redis and
the blackbox exporter, the scrape configuration, the blackbox modules and an Alertmanager
configuration shaped like kube-prometheus's default one.

Everything here is pure data: functions return dicts that the stack writes as YAML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import SHARED

RULES_DIR = SHARED / "data" / "alert-rules"

# Where each job's targets "live": kube-prometheus's targets carry a `namespace` label (its
# Alertmanager groups by it and its inhibit rules match on it), so ours do too.
NAMESPACES = {"node-exporter": "monitoring", "blackbox": "monitoring", "redis": "default",
              "prometheus-k8s": "monitoring", "alertmanager-main": "monitoring"}

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
                 "y": 31536000}


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as `1h30m` or `0s`."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def shorten(rule: Mapping[str, Any], cap_seconds: float) -> dict[str, Any]:
    """The rule with `for:` at most `cap_seconds`; its expression and everything else as is."""
    out = dict(rule)
    if "for" in out and duration_seconds(str(out["for"])) > cap_seconds:
        out["for"] = f"{cap_seconds:g}s"
    return out


def rule_files(rules_dir: Path, cap_seconds: float) -> dict[str, dict[str, Any]]:
    """Each PrometheusRule manifest in `rules_dir` as a plain rule file (`{"groups": [...]}`),
    by file name. All groups are kept, recording rules included: alerts such as the node
    exporter's use them."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(rules_dir.glob("*.yaml")):
        manifest = yaml.safe_load(path.read_text())
        if not isinstance(manifest, dict) or manifest.get("kind") != "PrometheusRule":
            continue
        groups = [{**group, "rules": [shorten(r, cap_seconds) for r in group["rules"]]}
                  for group in manifest["spec"]["groups"]]
        files[path.name] = {"groups": groups}
    return files


def _community(alert: str, expr: str, summary: str, description: str,
               section: str) -> dict[str, Any]:
    # awesome-prometheus-alerts writes `for: 0m`, `severity: critical` for these, a summary
    # naming the instance and a description with the value and labels. It writes no
    # runbook_url: ours points at the rule's section of its catalogue.
    return {
        "alert": alert, "expr": expr, "for": "0m", "labels": {"severity": "critical"},
        "annotations": {
            "summary": f"{summary} (instance {{{{ $labels.instance }}}})",
            "description": f"{description}\n  VALUE = {{{{ $value }}}}\n"
                           "  LABELS = {{ $labels }}",
            "runbook_url": f"https://samber.github.io/awesome-prometheus-alerts/rules#{section}",
        },
    }


def community_rules() -> dict[str, Any]:
    """The standard community alerts (awesome-prometheus-alerts) for Redis and the blackbox
    exporter, which kube-prometheus does not ship."""
    return {"groups": [
        {"name": "redis", "rules": [
            _community("RedisDown", "redis_up == 0", "Redis down", "Redis instance is down",
                       "redis"),
        ]},
        {"name": "blackbox", "rules": [
            _community("BlackboxProbeFailed", "probe_success == 0", "Blackbox probe failed",
                       "Probe failed", "blackbox"),
            _community("BlackboxProbeHttpFailure",
                       "probe_http_status_code <= 199 OR probe_http_status_code >= 400",
                       "Blackbox probe HTTP failure", "HTTP status code is not 200-399",
                       "blackbox"),
        ]},
    ]}


def _static(job: str, targets: Sequence[str]) -> list[dict[str, Any]]:
    return [{"targets": list(targets), "labels": {"namespace": NAMESPACES[job]}}]


def prometheus_config(*, rule_paths: Sequence[Path], alertmanager: str, node_exporter: str,
                      redis_exporter: str, blackbox: str, probe_targets: Sequence[str],
                      prometheus: str) -> dict[str, Any]:
    """Scrape and evaluate every second; job names as kube-prometheus's rules select them."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                   "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_paths],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {"job_name": "node-exporter", "static_configs": _static("node-exporter",
                                                                    [node_exporter])},
            {"job_name": "redis", "static_configs": _static("redis", [redis_exporter])},
            {
                "job_name": "blackbox", "metrics_path": "/probe",
                "params": {"module": ["http_2xx"]},
                "static_configs": _static("blackbox", probe_targets),
                # The exporter's documented relabelling: the URL becomes the probe's `target`
                # parameter and the `instance` label; the scrape goes to the exporter.
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": blackbox},
                ],
            },
            # Prometheus and Alertmanager watch themselves under kube-prometheus's job names,
            # so its self-monitoring rules see real series.
            {"job_name": "prometheus-k8s", "static_configs": _static("prometheus-k8s",
                                                                     [prometheus])},
            {"job_name": "alertmanager-main", "static_configs": _static("alertmanager-main",
                                                                        [alertmanager])},
        ],
    }


def blackbox_config() -> dict[str, Any]:
    return {"modules": {"http_2xx": {"prober": "http", "timeout": "1s",
                                     "http": {"preferred_ip_protocol": "ip4"}}}}


def alertmanager_config(*, webhook_url: str, webhook_token: str | None,
                        group_wait: str = "1s", group_interval: str = "1s",
                        repeat_interval: str = "12h") -> dict[str, Any]:
    """kube-prometheus's default Alertmanager configuration (manifests/alertmanager-secret.yaml)
    with short timers, `alertname` added to the grouping, and its `Default` and `Critical`
    receivers both posting to `webhook_url`. `Watchdog` keeps a receiver of its own that
    notifies nobody; `InfoInhibitor` goes to `null`."""
    webhook: dict[str, Any] = {"url": webhook_url, "send_resolved": True}
    if webhook_token is not None:
        webhook["http_config"] = {"authorization": {"type": "Bearer",
                                                    "credentials": webhook_token}}
    return {
        "global": {"resolve_timeout": "5m"},
        "inhibit_rules": [
            {"equal": ["namespace", "alertname"], "source_matchers": ["severity = critical"],
             "target_matchers": ["severity =~ warning|info"]},
            {"equal": ["namespace", "alertname"], "source_matchers": ["severity = warning"],
             "target_matchers": ["severity = info"]},
            {"equal": ["namespace"], "source_matchers": ["alertname = InfoInhibitor"],
             "target_matchers": ["severity = info"]},
        ],
        "receivers": [
            {"name": "Default", "webhook_configs": [webhook]},
            {"name": "Watchdog"},
            {"name": "Critical", "webhook_configs": [webhook]},
            {"name": "null"},
        ],
        "route": {
            "group_by": ["namespace", "alertname"],
            "group_wait": group_wait, "group_interval": group_interval,
            "repeat_interval": repeat_interval, "receiver": "Default",
            "routes": [
                {"matchers": ["alertname = Watchdog"], "receiver": "Watchdog"},
                {"matchers": ["alertname = InfoInhibitor"], "receiver": "null"},
                {"matchers": ["severity = critical"], "receiver": "Critical"},
            ],
        },
    }
