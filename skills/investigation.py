"""An investigation: assemble the context from Prometheus, then rank hypotheses with the
evidence engine. What `sre-copilot investigate` and the incident flow run."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from skills.context import ChangeRecord, assemble
from skills.hypotheses.engine import rank
from skills.hypotheses.models import Investigation
from skills.prometheus.client import PrometheusClient
from skills.prometheus.golden import GoldenSignals


class InvestigationRequest(BaseModel):
    service: str = Field(min_length=1)
    at: datetime
    window: timedelta = timedelta(hours=2)
    step: float = 15.0


async def investigate(prom: PrometheusClient, request: InvestigationRequest, *,
                      signals: GoldenSignals | None = None,
                      changes: list[ChangeRecord] | None = None) -> Investigation:
    snap = await assemble(prom, service=request.service, at=request.at, window=request.window,
                          step=request.step, signals=signals)
    investigation = rank(snap, extra_changes=changes)
    if snap.errors:
        investigation.verdict += f" ({len(snap.errors)} queries failed: {snap.errors[0]})"
    return investigation
