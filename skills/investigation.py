"""An investigation: assemble the context from Prometheus, then rank hypotheses with the
evidence engine — with similar past incidents and the runbook that fits, when the caller found
them. What `sre-copilot investigate` and the incident flow run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from skills.context import ChangeRecord, assemble
from skills.history.similar import SimilarIncident
from skills.hypotheses.engine import rank
from skills.hypotheses.models import Investigation
from skills.prometheus.client import PrometheusClient
from skills.prometheus.golden import GoldenSignals
from skills.runbooks.search import RunbookAnswer


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
    snap = await assemble(prom, service=request.service, at=request.at, window=request.window,
                          step=request.step, signals=signals)
    best = runbooks.results[0] if runbooks and not runbooks.abstained and runbooks.results \
        else None
    investigation = rank(snap, extra_changes=changes, history=history, runbook=best)
    if snap.errors:
        investigation.verdict += f" ({len(snap.errors)} queries failed: {snap.errors[0]})"
    return investigation
