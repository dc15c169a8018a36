"""An investigation: assemble the context from Prometheus, then rank hypotheses with the
evidence engine — with similar past incidents and the runbook that fits, when the caller found
them. Two starts, one result: from a service of the call graph (`investigate`), or from an
alert, whatever its metrics (`investigate_alert`); `combine` makes one investigation of both
when an alert names a service. What `sre-copilot investigate`, the incident flow and the
`hypotheses` tool run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from skills.alert_context import AlertRef, AlertSnapshot, assemble_alert, surroundings
from skills.context import ChangeRecord, Snapshot, assemble
from skills.history.similar import SimilarIncident
from skills.hypotheses.alert_engine import gather_around, pick_subjects, rank_alert
from skills.hypotheses.engine import rank
from skills.hypotheses.models import Investigation
from skills.prometheus.client import PrometheusClient
from skills.prometheus.golden import GoldenSignals
from skills.runbooks.search import RunbookAnswer
from skills.types import Evidence


class InvestigationRequest(BaseModel):
    service: str = Field(min_length=1)
    at: datetime
    window: timedelta = timedelta(hours=2)
    step: float = 15.0


async def investigate(prom: PrometheusClient, request: InvestigationRequest, *,
                      signals: GoldenSignals | None = None,
                      changes: list[ChangeRecord] | None = None,
                      history: Sequence[SimilarIncident] | None = None,
                      runbooks: RunbookAnswer | None = None) -> Investigation:
    """`history`: similar past incidents (`skills.history.similar.find_similar`); a candidate
    that was the confirmed cause of one ranks higher and cites it. `runbooks`: a runbook search
    for the alert; its best hit, unless the search abstained, is cited in the verdict."""
    investigation, _ = await investigate_with_snapshot(
        prom, request, signals=signals, changes=changes, history=history, runbooks=runbooks)
    return investigation


async def investigate_with_snapshot(prom: PrometheusClient, request: InvestigationRequest, *,
                                    signals: GoldenSignals | None = None,
                                    changes: list[ChangeRecord] | None = None,
                                    history: Sequence[SimilarIncident] | None = None,
                                    runbooks: RunbookAnswer | None = None
                                    ) -> tuple[Investigation, Snapshot]:
    """`investigate`, with the data it ranked (for charts)."""
    snap = await assemble(prom, service=request.service, at=request.at, window=request.window,
                          step=request.step, signals=signals)
    best = runbooks.results[0] if runbooks and not runbooks.abstained and runbooks.results \
        else None
    investigation = rank(snap, extra_changes=changes, history=history, runbook=best)
    if snap.errors:
        investigation.verdict += f" ({len(snap.errors)} queries failed: {snap.errors[0]})"
    return investigation, snap


async def investigate_alert(prom: PrometheusClient, alert: AlertRef, *, at: datetime,
                            window: timedelta = timedelta(hours=2),
                            changes: list[ChangeRecord] | None = None,
                            runbooks: RunbookAnswer | None = None
                            ) -> tuple[Investigation, AlertSnapshot]:
    """An investigation that starts from the alert: its expression's breakdown names the
    subject, then what moved around the subject is weighed (`skills.hypotheses.alert_engine`).
    """
    snap = await assemble_alert(prom, alert, at=at, window=window)
    subjects, onset, watched = pick_subjects(snap)
    if subjects and subjects[0].labels:
        await surroundings(prom, snap, subjects[0].labels)
    neighbours, pool = gather_around(snap, subjects, onset)
    best = runbooks.results[0] if runbooks and not runbooks.abstained and runbooks.results \
        else None
    investigation = rank_alert(snap, subjects, neighbours, pool, onset, watched,
                               changes=changes or [], runbook=best)
    if snap.errors:
        investigation.verdict += f" ({len(snap.errors)} queries failed: {snap.errors[0]})"
    return investigation, snap


def combine(alert: Investigation, service: Investigation) -> Investigation:
    """One investigation from an alert's and its service's. When the call graph found causes,
    they lead, in its order and with its verdict (the alert's subject is the symptom they
    explain); the alert's own leads about other resources follow, their confidence shared out
    of what the call graph left. When it found none, the alert's investigation stands, with the
    line saying what the call graph checked. The alert's symptom evidence always comes first;
    the service's evidence is renumbered after it so ids stay unique."""
    mapping = {e.id: f"ev-{len(alert.evidence) + i}"
               for i, e in enumerate(service.evidence, start=1)}
    evidence = list(alert.evidence) + [
        Evidence.model_validate({**e.model_dump(), "id": mapping[e.id]})
        for e in service.evidence]
    moved = [h.model_copy(update={"evidence_ids": [mapping[i] for i in h.evidence_ids]})
             for h in service.hypotheses]
    if moved:
        named = {h.cause.service for h in moved} | {service.service}
        left = max(0.0, 1.0 - moved[0].confidence)
        extra = [h.model_copy(update={"confidence": round(max(0.01, h.confidence * left), 3)})
                 for h in alert.hypotheses
                 if h.cause.service not in named and h.cause.resource.get("service") not in named]
        hypotheses = (moved + extra)[:5]
        verdict = service.verdict
    else:
        hypotheses = list(alert.hypotheses)
        verdict = alert.verdict
    onsets = [o for o in (alert.onset, service.onset) if o is not None]
    return Investigation(service=alert.service, at=alert.at, start=min(alert.start,
                                                                        service.start),
                         end=alert.end, onset=min(onsets) if onsets else None,
                         scope=list(dict.fromkeys(alert.scope + service.scope)),
                         hypotheses=hypotheses, evidence=evidence, verdict=verdict)
