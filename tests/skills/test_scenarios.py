"""The incident scenario generator (`tests/fakes/scenarios.py`): one case of each kind, all
backfilled into one real Prometheus, and the designed effect checked through PromQL — the fault
is visible where it should be, the alert service's signal is off, the noise is what it claims.
What the evidence engine is evaluated against must itself be right."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from skills.prometheus.client import PrometheusClient
from tests.fakes.prometheus_server import openmetrics, running_prometheus
from tests.fakes.scenarios import KINDS, Case, generate_case, merge_families

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("SCENARIO_SEED", "5"))  # try others: SCENARIO_SEED=17 pytest …
ANCHOR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def make_cases() -> dict[str, Case]:
    return {kind: generate_case(SEED + i, kind=kind, prefix=f"s{i}-", anchor=ANCHOR,
                                spread=timedelta(hours=2))
            for i, kind in enumerate(KINDS)}


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    return make_cases()


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory,
                   cases: dict[str, Case]) -> Iterator[str]:
    text = openmetrics(merge_families(cases.values()))
    with running_prometheus(tmp_path_factory.mktemp("scenarios"), text) as url:
        yield url


# --------------------------------------------------------------------------- PromQL helpers


def ts(t: datetime) -> float:
    return t.timestamp()


async def curve(url: str, promql: str, start: datetime, end: datetime) -> np.ndarray:
    """One series' values over [start, end] at 30 s (NaN where absent); no series: empty."""
    async with PrometheusClient(url) as prom:
        series = await prom.query_range(promql, start=start, end=end, step=30)
    assert len(series) <= 1, f"{promql} gave {len(series)} series"
    return series[0].values if series else np.array([])


def errors(svc: str) -> str:
    return (f'(sum(rate(http_requests_total{{service="{svc}",code=~"5.."}}[5m])) or vector(0))'
            f' / sum(rate(http_requests_total{{service="{svc}"}}[5m]))')


def p99(svc: str) -> str:
    return ('histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket'
            f'{{service="{svc}"}}[5m])))')


def client_errors(svc: str, target: str) -> str:
    sel = f'service="{svc}",target="{target}"'
    return (f'(sum(rate(http_client_requests_total{{{sel},code=~"5.."}}[5m])) or vector(0))'
            f' / sum(rate(http_client_requests_total{{{sel}}}[5m]))')


def cpu(svc: str) -> str:
    return f'sum(rate(process_cpu_seconds_total{{service="{svc}"}}[2m]))'


async def before_after(url: str, promql: str, case: Case, *,
                       minutes: float = 10) -> tuple[float, float]:
    """Median over the hour ending 10 min before onset; max over `minutes` after onset."""
    before = await curve(url, promql, case.onset - timedelta(minutes=70),
                         case.onset - timedelta(minutes=10))
    after = await curve(url, promql, case.onset, case.onset + timedelta(minutes=minutes))
    assert before.size and after.size, f"no data for {promql}"
    return float(np.nanmedian(before)), float(np.nanmax(after))


def callers(case: Case, target: str) -> list[str]:
    return [a for a, b in case.edges if b == target]


async def alert_is_anomalous(url: str, case: Case) -> None:
    svc = case.alert_service
    e0, e1 = await before_after(url, errors(svc), case)
    l0, l1 = await before_after(url, p99(svc), case)
    why = f"{case.name}: alert on {svc}: errors {e0:.4f} -> {e1:.4f}, p99 {l0:.3f} -> {l1:.3f}"
    if case.kind == "none":  # a mild blip: visible, but nothing like an outage
        assert e1 > 1.3 * e0 or l1 > 1.1 * l0, why
        assert e1 < 0.05, why
        return
    crashed = False
    if case.kind == "memory" and svc == case.root_service:
        resets = await curve(url, f'resets(process_cpu_seconds_total{{service="{svc}"}}[15m])',
                             case.onset, case.alert_at + timedelta(minutes=5))
        crashed = resets.size > 0 and float(np.nanmax(resets)) >= 1
    assert crashed or e1 > max(2 * e0, e0 + 0.005) or l1 > 1.3 * l0, why


# --------------------------------------------------------------------------- the tests


def test_cases_are_deterministic_and_well_formed(cases: dict[str, Case]) -> None:
    again = make_cases()
    for kind, case in cases.items():
        assert case.kind == kind
        assert case.truth() == again[kind].truth()
        for (m1, l1, _t1, v1), (m2, l2, _t2, v2) in zip(case.series, again[kind].series,
                                                      strict=True):
            assert (m1, l1) == (m2, l2) and np.array_equal(v1, v2, equal_nan=True)
        assert all(s.startswith(f"s{KINDS.index(kind)}-") for s in case.services)
        assert 3 <= len(case.services) - len(case.externals) <= 12
        assert case.alert_service in case.services and case.alert_service not in case.externals
        assert case.start <= case.alert_at - timedelta(hours=3)
        assert case.end >= case.alert_at + timedelta(minutes=10)
        assert timedelta(0) < case.alert_at - case.onset <= timedelta(minutes=10)
        assert case.end <= ANCHOR
        if kind == "none":
            assert case.root_service is None and not case.acceptable_kinds
        else:
            assert case.root_service in case.services
            assert case.root_kind in case.acceptable_kinds
        for metric, _labels, times, values in case.series:
            if metric.endswith(("_total", "_bucket", "_count", "_sum")):
                # counters only go down at a process restart
                v = values[~np.isnan(values)]
                drops = int(np.sum(np.diff(v) < 0))
                assert drops <= 8, f"{metric} {_labels} drops {drops} times"
            assert np.all(np.diff(times) == 15)


async def test_every_case_alerts_where_the_symptom_is(prometheus_url: str,
                                                      cases: dict[str, Case]) -> None:
    await asyncio.gather(*(alert_is_anomalous(prometheus_url, c) for c in cases.values()))


async def test_externals_and_missing_process_metrics_have_no_series(
        prometheus_url: str, cases: dict[str, Case]) -> None:
    async with PrometheusClient(prometheus_url) as prom:
        for case in cases.values():
            window = dict(start=case.start, end=case.end)
            for ext in case.externals:
                assert await prom.series([f'http_requests_total{{service="{ext}"}}'],
                                         **window) == []
                assert await prom.series([f'http_client_requests_total{{target="{ext}"}}'],
                                         **window), f"nobody calls {ext}"
            for svc in case.without_process_metrics:
                assert await prom.series([f'{{__name__=~"process_.*",service="{svc}"}}'],
                                         **window) == []
            edges = await prom.query(
                'count by (service, target) (last_over_time(http_client_requests_total'
                f'{{service=~"{case.prefix}.*"}}[4h]))', at=case.end)
            assert {(s.labels["service"], s.labels["target"]) for s in edges} == set(case.edges)


async def test_deploy_is_a_new_version_then_errors_or_latency(prometheus_url: str,
                                                              cases: dict[str, Case]) -> None:
    case = cases["deploy"]
    root = case.root_service
    assert root is not None
    mode = case.fault["mode"]
    e0, e1 = await before_after(prometheus_url, errors(root), case)
    l0, l1 = await before_after(prometheus_url, p99(root), case)
    if mode in ("errors", "both"):
        assert e1 > 5 * e0 and e1 > 0.01, (e0, e1)
    if mode in ("latency", "both"):
        assert l1 > 1.5 * l0, (l0, l1)
    async with PrometheusClient(prometheus_url) as prom:
        versions = await prom.query(
            f'count by (version) (last_over_time(build_info{{service="{root}"}}[15m]))',
            at=case.onset + timedelta(minutes=5))
        assert {s.labels["version"] for s in versions} == {case.fault["old_version"],
                                                           case.fault["new_version"]}
        before = await prom.query(f'count(build_info{{service="{root}"}})',
                                  at=case.onset - timedelta(minutes=30))
        assert [s.value for s in before] == [1.0]
        gen = await prom.query(
            f'changes(kube_deployment_status_observed_generation{{deployment="{root}"}}[15m])',
            at=case.onset + timedelta(minutes=5))
        assert [s.value for s in gen] in ([1.0], []), gen  # [] if kube-state-metrics lacks it


async def test_database_saturation_pins_cpu_and_slows_callers(
        prometheus_url: str, cases: dict[str, Case]) -> None:
    case = cases["database_saturation"]
    root = case.root_service
    assert root is not None
    c0, c1 = await before_after(prometheus_url, cpu(root), case)
    assert c1 > 0.9 * case.fault["cpu_limit"] and c1 > 1.4 * c0, (c0, c1, case.fault)
    l0, l1 = await before_after(prometheus_url, p99(root), case)
    assert l1 > 3 * l0, (l0, l1)
    slower = [await before_after(prometheus_url, p99(c), case) for c in callers(case, root)]
    assert any(b > 1.3 * a for a, b in slower), slower


async def test_dependency_failure_shows_only_in_callers(prometheus_url: str,
                                                        cases: dict[str, Case]) -> None:
    case = cases["dependency_failure"]
    root = case.root_service
    assert root is not None and root in case.externals
    seen = [await before_after(prometheus_url, client_errors(c, root), case)
            for c in callers(case, root)]
    assert seen and all(b > 0.02 and b > 5 * a for a, b in seen), seen


async def test_cpu_climbs_to_the_limit_and_latency_follows(prometheus_url: str,
                                                           cases: dict[str, Case]) -> None:
    case = cases["cpu"]
    root = case.root_service
    assert root is not None
    c0, c1 = await before_after(prometheus_url, cpu(root), case)
    assert c1 > 0.9 * case.fault["cpu_limit"] and c1 > 1.4 * c0, (c0, c1, case.fault)
    l0, l1 = await before_after(prometheus_url, p99(root), case)
    assert l1 > 1.5 * l0, (l0, l1)


async def test_memory_grows_then_the_process_restarts(prometheus_url: str,
                                                      cases: dict[str, Case]) -> None:
    case = cases["memory"]
    root = case.root_service
    assert root is not None
    crashes = [datetime.fromisoformat(c) for c in case.fault["crashes"]]
    assert crashes and abs((crashes[0] - case.onset).total_seconds()) <= 60
    mem = f'process_resident_memory_bytes{{service="{root}"}}'
    before = await curve(prometheus_url, mem, case.onset - timedelta(minutes=90),
                         case.onset - timedelta(minutes=40))
    peak = await curve(prometheus_url, mem, crashes[0] - timedelta(minutes=3), crashes[0])
    assert float(np.nanmax(peak)) > 1.3 * float(np.nanmedian(before))
    async with PrometheusClient(prometheus_url) as prom:
        resets = await prom.query(f'resets(process_cpu_seconds_total{{service="{root}"}}[1h])',
                                  at=case.end)
        assert resets and resets[0].value >= len(crashes) - 1
        # while it is down, its callers' calls to it fail
        for caller in callers(case, root):
            refused = await prom.query(
                f'increase(http_client_requests_total{{service="{caller}",target="{root}",'
                f'code="503"}}[5m])', at=crashes[0] + timedelta(minutes=2))
            assert refused and refused[0].value > 0


async def test_none_has_no_deploy_or_saturation_at_onset(prometheus_url: str,
                                                         cases: dict[str, Case]) -> None:
    case = cases["none"]
    assert not any(abs((d.at - case.onset).total_seconds()) < 1800 for d in case.deploys)
    e0, e1 = await before_after(prometheus_url, errors(case.alert_service), case)
    assert e1 < max(0.05, 10 * e0), (e0, e1)
