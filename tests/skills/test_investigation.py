"""The evidence engine against a real Prometheus: generated incidents with a known root cause
(the alert fires where the symptom is), backfilled with promtool, investigated at alert time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from skills.investigation import InvestigationRequest, investigate, investigate_with_snapshot
from skills.prometheus.client import PrometheusClient
from skills.prometheus.golden import GoldenSignals
from tests.fakes.prometheus_server import openmetrics, running_prometheus
from tests.fakes.scenarios import Case, generate_case, merge_families

pytestmark = pytest.mark.slow

KINDS = ["deploy", "database_saturation", "dependency_failure", "cpu", "memory"]
CASES = [generate_case(500 + i, kind=kind, prefix=f"t{i}-") for i, kind in enumerate(KINDS)]
CALM = generate_case(600, kind="none", prefix="calm-")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    text = openmetrics(merge_families([*CASES, CALM]))
    with running_prometheus(tmp_path_factory.mktemp("prom"), text) as url:
        yield url


async def _investigate(url: str, case: Case) -> object:
    async with PrometheusClient(url) as prom:
        return await investigate(prom, InvestigationRequest(
            service=case.alert_service, at=case.alert_at, window=timedelta(hours=2)))


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
async def test_root_cause_ranks_first_with_its_evidence(prometheus: str, case: Case) -> None:
    from skills.hypotheses.models import Investigation

    inv = await _investigate(prometheus, case)
    assert isinstance(inv, Investigation)
    top = inv.hypotheses[0]
    assert top.cause.service == case.root_service, (case.truth(), inv.verdict,
                                                   [h.statement for h in inv.hypotheses])
    assert top.cause.kind in case.acceptable_kinds
    assert top.confidence >= 0.5
    assert top.cause.service in top.statement
    evidence = inv.evidence_by_id()
    for h in inv.hypotheses:  # every statement rests on evidence with its query and range
        assert h.evidence_ids
        for e in h.evidence_ids:
            ev = evidence[e]
            assert ev.query and ev.start and ev.end
            if ev.source == "prometheus" and "robust_z" in ev.values:
                assert ev.values["baseline"] != ev.values["peak"]
    # The symptom's service is not blamed ahead of the cause.
    if case.alert_service != case.root_service:
        assert inv.hypotheses[0].cause.service != case.alert_service


async def test_no_clear_cause_gives_low_confidence(prometheus: str) -> None:
    from skills.hypotheses.models import Investigation

    inv = await _investigate(prometheus, CALM)
    assert isinstance(inv, Investigation)
    assert not inv.hypotheses or inv.hypotheses[0].confidence < 0.5
    assert inv.verdict.startswith("No clear cause")


def test_investigate_command_prints_json(prometheus: str, tmp_path: Path) -> None:
    case = CASES[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRE_COPILOT_")}
    env.update(PROMETHEUS_URL=prometheus, SRE_COPILOT_DATA_DIR=str(tmp_path),
               PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "investigate", "--service", case.alert_service,
         "--at", case.alert_at.isoformat(), "--window", "2h", "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    top = data["hypotheses"][0]
    assert top["cause"]["service"] == case.root_service
    assert 0 <= top["confidence"] <= 1
    assert top["evidence"] and all(e["query"] for e in top["evidence"])
    assert data["service"] == case.alert_service


def test_investigate_without_prometheus_url_is_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SRE_COPILOT_") and k != "PROMETHEUS_URL"}
    env.update(SRE_COPILOT_DATA_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "bot.cli", "investigate", "--service", "x"],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "PROMETHEUS_URL is not set" in result.stderr


def test_investigate_an_unknown_alert_is_a_clear_error(prometheus: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRE_COPILOT_")}
    env.update(PROMETHEUS_URL=prometheus, SRE_COPILOT_DATA_DIR=str(tmp_path),
               PYTHONPATH=str(ROOT))
    for alert, said in (("NoSuchAlert", "no alert of that name is firing and no loaded rule"),
                        ("Bad{", 'expected NAME or NAME{label="value"}')):
        result = subprocess.run([sys.executable, "-m", "bot.cli", "investigate", "--alert", alert],
                                env=env, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2, result.stderr
        assert said in result.stderr
    result = subprocess.run([sys.executable, "-m", "bot.cli", "investigate", "--alert", "X",
                             "--match", "nolabel"], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2 and "expected label=value" in result.stderr


def test_investigate_with_prometheus_down_exits_2_naming_it(tmp_path: Path) -> None:
    """Not "No clear cause" with exit 0: the queries it needed failed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRE_COPILOT_")}
    down = "http://127.0.0.1:9"  # the discard port: nothing listens
    env.update(PROMETHEUS_URL=down, SRE_COPILOT_DATA_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    for target in (["--service", "checkout"], ["--alert", "KubeJobFailed"]):
        result = subprocess.run([sys.executable, "-m", "bot.cli", "investigate", *target,
                                 "--json"], env=env, capture_output=True, text=True,
                                timeout=120, check=False)
        assert result.returncode == 2, (target, result.stdout)
        assert down in result.stderr and "Prometheus" in result.stderr
        assert result.stdout == ""


# The queries as they were asked before they were grouped: one request per service and signal.
PER_SERVICE = GoldenSignals(
    signals={
        "traffic": 'sum(rate(http_requests_total{service="$service"}[$rate]))',
        "errors": ('(sum(rate(http_requests_total{service="$service",code=~"5.."}[$rate])) '
                   'or vector(0)) / sum(rate(http_requests_total{service="$service"}[$rate]))'),
        "latency": ('histogram_quantile(0.99, sum by (le) (rate('
                    'http_request_duration_seconds_bucket{service="$service"}[$rate])))'),
        "cpu": 'sum(rate(process_cpu_seconds_total{service="$service"}[$rate]))',
        "memory": 'sum(process_resident_memory_bytes{service="$service"})'},
    client_signals={
        "client_errors": (
            '(sum by (target) (rate(http_client_requests_total{service="$service",'
            'code=~"5.."}[$rate])) or (0 * sum by (target) (rate(http_client_requests_total{'
            'service="$service"}[$rate])))) / sum by (target) (rate('
            'http_client_requests_total{service="$service"}[$rate]))'),
        "client_traffic": ('sum by (target) (rate(http_client_requests_total{'
                           'service="$service"}[$rate]))')})


async def test_an_investigation_asks_once_per_signal_whatever_its_scope(prometheus: str) -> None:
    case = CASES[2]  # a dependency failure: the scope spans the call graph
    asked: list[str] = []

    async def count(request: httpx.Request) -> None:
        if request.url.path.endswith("/query_range"):
            asked.append(request.url.path)

    request = InvestigationRequest(service=case.alert_service, at=case.alert_at,
                                   window=timedelta(hours=2))
    async with httpx.AsyncClient(event_hooks={"request": [count]}) as http:
        prom = PrometheusClient(prometheus, http=http)
        grouped, snap = await investigate_with_snapshot(prom, request)
        golden = GoldenSignals()
        assert len(snap.scope) >= 4
        assert len(asked) == len(golden.signals) + len(golden.client_signals) + 2
        asked.clear()
        one_by_one, old = await investigate_with_snapshot(prom, request, signals=PER_SERVICE)
        assert len(asked) > 3 * len(snap.scope)
        # Grouping changes how the data is asked for, not the data nor the verdict.
        assert [(s.service, s.signal, s.target) for s in snap.signals] == \
            [(s.service, s.signal, s.target) for s in old.signals]
        for new, before in zip(snap.signals, old.signals, strict=True):
            assert np.allclose(new.series.values, before.series.values, equal_nan=True)
        assert [h.statement for h in grouped.hypotheses] == \
            [h.statement for h in one_by_one.hypotheses]
        # Each piece of evidence cites a query that, run alone, gives exactly its series.
        errors = next(s for s in snap.signals if s.signal == "errors")
        again = await prom.query_range(errors.query, start=snap.start, end=snap.end,
                                       step=snap.step)
        assert len(again) == 1 and np.allclose(again[0].values, errors.series.values,
                                               equal_nan=True)
