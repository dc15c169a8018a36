"""The weekly digest as data: `build_digest` gathers an org's period — incidents, alerts, MTTA and
MTTR, time in each state, on-call load, noisy alerts, hypothesis feedback — into a `Digest`;
capacity forecasts are added by the caller (they come from Prometheus, through the forecast
skill). Renderers (terminal, Block Kit, Adaptive Cards) read the `Digest` only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from skills.digest.metrics import (
    Feedback,
    IncidentCounts,
    OnCall,
    Period,
    Spread,
    counts,
    feedback,
    incidents_in,
    mtta,
    mttr,
    oncall_load,
    spread,
    time_in_states,
)
from skills.digest.noisy import NoisyAlert, alerts_in, noisy_alerts
from skills.digest.suppressed import Suppressed, suppressed


class AlertCounts(BaseModel):
    total: int  # firings that started in the period, each counted once
    by_name: dict[str, int]


class Digest(BaseModel):
    org: str
    period_start: datetime
    period_end: datetime
    timezone: str
    incidents: IncidentCounts
    alerts: AlertCounts
    mtta_seconds: Spread
    mttr_seconds: Spread
    time_in_state_seconds: dict[str, Spread]
    oncall: OnCall
    feedback: Feedback
    noisy_alerts: list[NoisyAlert]
    # Firings the intake judged noise and never posted, and the alerts behind most of them.
    suppressed_firings: int = 0
    suppressed: list[Suppressed] = Field(default_factory=list)
    forecasts: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # what could not be measured, and why
    charts: list[str] = Field(default_factory=list)  # PNG paths

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


async def build_digest(session: AsyncSession, *, org_id: int, org: str, period: Period,
                       tz: str = "UTC") -> Digest:
    incidents = await incidents_in(session, org_id=org_id, period=period)
    before = await incidents_in(session, org_id=org_id, period=period.previous())
    alerts = await alerts_in(session, org_id=org_id, period=period)
    quiet = await suppressed(session, org_id=org_id, period=period)
    by_name: dict[str, int] = {}
    for alert in alerts:
        by_name[alert.alertname] = by_name.get(alert.alertname, 0) + 1
    return Digest(
        org=org, period_start=period.start, period_end=period.end, timezone=tz,
        incidents=counts(incidents, before),
        alerts=AlertCounts(total=len(alerts), by_name=dict(
            sorted(by_name.items(), key=lambda kv: (-kv[1], kv[0])))),
        mtta_seconds=spread(mtta(incidents), mtta(before)),
        mttr_seconds=spread(mttr(incidents), mttr(before)),
        time_in_state_seconds=time_in_states(incidents),
        oncall=await oncall_load(session, org_id=org_id, period=period, tz=tz),
        feedback=await feedback(session, org_id=org_id, incidents=incidents),
        noisy_alerts=await noisy_alerts(session, org_id=org_id, period=period),
        suppressed_firings=quiet[0], suppressed=quiet[1])
