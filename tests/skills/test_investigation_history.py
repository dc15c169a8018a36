"""The evidence engine with history and runbooks: a past incident whose confirmed cause is a
candidate's (service, kind) raises that candidate and is cited by it; a past incident about
something else changes no confidence; a runbook that fits is cited in the verdict; with neither,
the investigation is exactly what it was.

Against a real Prometheus (a generated incident backfilled with promtool, as in
test_investigation.py), and on a hand-built snapshot for the engine alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from skills.context import SignalData, Snapshot
from skills.history.similar import SimilarIncident
from skills.hypotheses.engine import W_HISTORY, rank
from skills.hypotheses.models import Investigation, RankedHypothesis
from skills.investigation import InvestigationRequest, investigate
from skills.prometheus.client import PrometheusClient
from skills.runbooks.search import RunbookAnswer, RunbookHit
from skills.types import Series
from tests.fakes.prometheus_server import openmetrics, running_prometheus
from tests.fakes.scenarios import Case, generate_case, merge_families

# A dependency failure whose second candidate (a slow caller) keeps some probability.
CASE = generate_case(807, kind="dependency_failure", prefix="h7-")
RUNBOOK = RunbookHit(path="dependencies/external-provider-down.md", section="Mitigation",
                     score=0.81, title="External provider down", reason="similarity")


def past(service: str, kind: str, similarity: float = 0.8, ref: str = "INC-7"
         ) -> SimilarIncident:
    return SimilarIncident(ref=ref, incident_id=int(ref.split("-")[1]),
                           title=f"{service} {kind} incident", similarity=similarity,
                           root_cause=f"{service} had a {kind} problem",
                           resolution="Scaled it out and added a timeout.",
                           resolved_at=datetime(2026, 10, 2, 14, 0, tzinfo=UTC),
                           cause_service=service, cause_kind=kind)


def by_cause(inv: Investigation, service: str) -> RankedHypothesis:
    return next(h for h in inv.hypotheses if h.cause.service == service)


# --- against a real Prometheus ---------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(tmp_path_factory.mktemp("prom"),
                            openmetrics(merge_families([CASE]))) as url:
        yield url


async def _investigate(url: str, case: Case, **context: object) -> Investigation:
    async with PrometheusClient(url) as prom:
        return await investigate(prom, InvestigationRequest(
            service=case.alert_service, at=case.alert_at, window=timedelta(hours=2)),
            **context)  # type: ignore[arg-type]


@pytest.mark.slow
async def test_a_past_incident_raises_the_candidate_it_confirmed(prometheus: str) -> None:
    before = await _investigate(prometheus, CASE)
    assert len(before.hypotheses) >= 2
    top, second = before.hypotheses[0], before.hypotheses[1]
    assert top.cause.service == CASE.root_service and 0.5 < top.confidence < 0.97
    lesson = past(top.cause.service, top.cause.kind)
    after = await _investigate(prometheus, CASE, history=[lesson],
                               runbooks=RunbookAnswer(query="x", results=[RUNBOOK],
                                                      abstained=False, message="Runbook"))
    raised = by_cause(after, top.cause.service)
    assert raised.confidence > top.confidence
    evidence = after.evidence_by_id()
    [cited] = [evidence[i] for i in raised.evidence_ids if evidence[i].source == "history"]
    assert cited.labels == {"incident": "INC-7", "service": top.cause.service,
                            "kind": top.cause.kind}
    assert cited.values == {"similarity": 0.8}
    assert "INC-7" in cited.summary and "Scaled it out" in cited.summary
    assert raised.next_check.endswith(
        "Last time (INC-7) it was fixed by Scaled it out and added a timeout.")
    # The metric evidence keeps its ids; the history and the runbook come after it.
    assert [e.model_dump() for e in after.evidence[:len(before.evidence)]] == \
        [e.model_dump() for e in before.evidence]
    [book] = [e for e in after.evidence if e.source == "runbooks"]
    assert book.labels == {"path": RUNBOOK.path, "section": "Mitigation"}
    assert after.verdict.endswith("Runbook: External provider down "
                                  "(dependencies/external-provider-down.md § Mitigation).")
    assert after.verdict.startswith(f"Look at {top.cause.service} first")
    assert "INC-7 (similarity 0.80) had the same cause; it was fixed by Scaled it out" \
        in after.verdict
    # A past incident blaming what the present metrics show as a symptom does not lift it
    # over the cause: the past suggests where to look, the metrics decide.
    symptom = await _investigate(prometheus, CASE, history=[
        past(second.cause.service, second.cause.kind)])
    assert symptom.hypotheses[0].cause.service == top.cause.service
    assert f"Closest past incident: INC-7 (similarity 0.80) “{second.cause.service}" \
        in symptom.verdict


@pytest.mark.slow
async def test_without_history_or_runbooks_nothing_changes(prometheus: str) -> None:
    plain = await _investigate(prometheus, CASE)
    empty = await _investigate(prometheus, CASE, history=[],
                               runbooks=RunbookAnswer(query="x", results=[RUNBOOK],
                                                      abstained=True, message="No runbook"))
    assert empty.model_dump() == plain.model_dump()


# --- the engine alone ------------------------------------------------------------------------

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
END = T0 + timedelta(hours=2)
ONSET = END - timedelta(minutes=20)


def _signal(service: str, signal: str, level: float, jump: float, *, target: str | None = None,
            late: float = 0.0, seed: int = 0) -> SignalData:
    times = T0.timestamp() + np.arange(0, 7200, 15.0)
    noise = 1 + np.random.default_rng(seed).normal(0, 0.03, len(times))
    onset = (ONSET + timedelta(minutes=late)).timestamp()
    values = np.where(times >= onset, jump, level) * noise
    return SignalData(service=service, signal=signal, target=target,
                      series=Series({}, times, values),
                      query=f'{signal}{{service="{service}"}}' + (f" → {target}" if target
                                                                  else ""))


def _snapshot() -> Snapshot:
    """checkout alerts; payments' errors and inventory's latency both rose, neither explains
    the other: two close candidates (inventory slightly ahead)."""
    return Snapshot(
        service="checkout", at=END, start=T0, end=END, step=15.0,
        scope=["checkout", "payments", "inventory"],
        edges=[("checkout", "payments"), ("checkout", "inventory")],
        signals=[_signal("checkout", "errors", 0.004, 0.08, seed=1),
                 _signal("checkout", "latency", 0.12, 0.4, seed=2),
                 _signal("payments", "errors", 0.004, 0.2, seed=3),
                 _signal("inventory", "latency", 0.05, 0.6, late=1, seed=4),
                 _signal("checkout", "client_errors", 0.002, 0.1, target="payments", seed=5),
                 _signal("checkout", "client_latency", 0.05, 0.6, target="inventory", late=1,
                         seed=6)])


def test_history_reorders_close_candidates() -> None:
    plain = rank(_snapshot())
    assert [h.cause.service for h in plain.hypotheses[:2]] == ["inventory", "payments"]
    assert plain.verdict.startswith("Look at inventory first")
    helped = rank(_snapshot(), history=[past("payments", "errors", 0.85, "INC-3")])
    assert [h.cause.service for h in helped.hypotheses[:2]] == ["payments", "inventory"]
    top = helped.hypotheses[0]
    assert top.confidence > by_cause(plain, "payments").confidence
    history_ids = [e.id for e in helped.evidence if e.source == "history"]
    assert history_ids == [f"ev-{len(plain.evidence) + 1}"]
    assert history_ids[0] in top.evidence_ids
    assert history_ids[0] not in by_cause(helped, "inventory").evidence_ids
    assert helped.verdict.endswith(
        "INC-3 (similarity 0.85) had the same cause; it was fixed by Scaled it out and added a "
        "timeout.")
    # A stronger match moves the score further (proportional to the similarity).
    weak = rank(_snapshot(), history=[past("payments", "errors", 0.5, "INC-3")])
    assert (by_cause(plain, "payments").confidence < by_cause(weak, "payments").confidence
            < top.confidence)
    assert W_HISTORY > 0


def test_a_past_incident_of_another_cause_changes_no_confidence() -> None:
    plain = rank(_snapshot())
    other = rank(_snapshot(), history=[past("payments", "memory", 0.9, "INC-4"),
                                       past("ledger", "errors", 0.7, "INC-5")])
    assert [(h.cause, h.confidence, h.evidence_ids, h.next_check) for h in other.hypotheses] \
        == [(h.cause, h.confidence, h.evidence_ids, h.next_check) for h in plain.hypotheses]
    assert [e.labels["incident"] for e in other.evidence if e.source == "history"] == [
        "INC-4", "INC-5"]
    assert other.verdict == plain.verdict + (
        " Closest past incident: INC-4 (similarity 0.90) “payments memory incident”: root cause "
        "payments had a memory problem; fixed by Scaled it out and added a timeout.")


def test_no_anomaly_still_cites_history_and_runbook() -> None:
    snap = _snapshot()
    snap.signals = [_signal("checkout", "errors", 0.004, 0.004, seed=1)]
    inv = rank(snap, history=[past("checkout", "errors")], runbook=RUNBOOK)
    assert inv.hypotheses == []
    assert inv.verdict.startswith("No clear cause")
    assert [e.source for e in inv.evidence] == ["history", "runbooks"]
    assert "Closest past incident: INC-7" in inv.verdict
    assert inv.verdict.endswith(f"Runbook: External provider down ({RUNBOOK.path} § "
                                "Mitigation).")
