"""Taking a rule's expression apart: the value it watches, its threshold and filters, and the
series it reads — on kube-prometheus's own rules (../shared/data/alert-rules when present, else
the few quoted here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from skills.alert_context import expr_from_url
from skills.promql import NotPromQL, anatomy

RULES = Path(__file__).resolve().parents[3] / "shared" / "data" / "alert-rules"


def test_a_filesystem_rule_watches_the_free_share_against_its_threshold() -> None:
    a = anatomy('(node_filesystem_avail_bytes{job="node-exporter",fstype!=""} / '
                'node_filesystem_size_bytes{job="node-exporter",fstype!=""} * 100 < 3 and '
                'node_filesystem_readonly{job="node-exporter",fstype!=""} == 0)')
    assert a.comparison == ("<", "3") and a.threshold == 3.0
    assert a.metrics == ["node_filesystem_avail_bytes", "node_filesystem_size_bytes"]
    assert a.filters == ('node_filesystem_readonly{job="node-exporter",fstype!=""} == 0',)
    assert a.quantity.startswith("node_filesystem_avail_bytes")


def test_a_number_on_the_left_is_read_the_other_way_round() -> None:
    assert anatomy("5 < rate(errors_total[5m])").comparison == (">", "5")


def test_selectors_keep_their_range_function_and_take_the_alerts_labels() -> None:
    a = anatomy('100 * (count by (job) (up == 0) / count by (job) (up)) > 10')
    assert [s.promql() for s in a.selectors] == ["up", "up"]  # not `up{}`: not PromQL
    assert a.selectors[0].series_promql({"job": "redis"}) == 'up{job="redis"}'
    cpu = anatomy('sum without (mode) (avg without (cpu) (rate(node_cpu_seconds_total'
                  '{job="node-exporter",mode!~"idle|iowait"}[2m]))) * 100 > 90')
    sel = cpu.selectors[0]
    assert sel.function == "rate" and sel.series_promql({"instance": "n1:9100"}) == (
        'rate(node_cpu_seconds_total{job="node-exporter",mode!~"idle|iowait",'
        'instance="n1:9100"}[2m])')


def test_garbage_is_a_clear_error() -> None:
    with pytest.raises(NotPromQL):
        anatomy("sum(rate(x[5m]) by")


def test_the_expression_comes_from_the_alerts_generator_url() -> None:
    url = ("http://prometheus:9090/graph?g0.expr=redis_up+%3D%3D+0&g0.tab=1")
    assert expr_from_url(url) == "redis_up == 0"
    assert expr_from_url("http://prometheus:9090/graph") is None and expr_from_url(None) is None


def test_every_kube_prometheus_alert_parses() -> None:
    files = sorted(RULES.glob("*.yaml"))
    if not files:
        pytest.skip("../shared/data/alert-rules is not here (a user's clone)")
    count = 0
    for f in files:
        for group in yaml.safe_load(f.read_text())["spec"]["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    a = anatomy(rule["expr"])
                    # every rule reads series, but Watchdog's `vector(1)`, always firing
                    assert a.quantity and (a.selectors or a.expr == "vector(1)"), rule["alert"]
                    count += 1
    assert count == 139
