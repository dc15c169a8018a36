"""The week in numbers, per org and period: incidents by service and severity, MTTA and MTTR
(p50 and p90, and the change against the period before), the time incidents spent in each
state, on-call load from PagerDuty's pages, and the hypotheses' feedback (the product's own
accuracy, shown honestly).

Every time comes from the sources' own timestamps as the incident engine recorded them
(Alertmanager `startsAt`/`endsAt`, PagerDuty `occurred_at`), never from when a webhook arrived,
so late or replayed deliveries still give true figures. Percentiles interpolate linearly
between ranks (numpy's default), so they can be checked by hand."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.hypotheses import Hypothesis
from knowledge.incidents import Incident, IncidentStatus
from knowledge.timeline import TimelineEvent
from skills.types import utc

STATES = ("triggered", "acknowledged", "investigating", "mitigated")
WORK_HOURS = (9, 18)  # local time, Monday to Friday: a page outside is "out of hours"


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    def previous(self) -> Period:
        return Period(self.start - (self.end - self.start), self.start)


def last_full_week(now: datetime, tz: str = "UTC") -> Period:
    """Monday 00:00 to Monday 00:00 (in `tz`) of the last week that has ended."""
    local = utc(now).astimezone(ZoneInfo(tz))
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0,
                                                               microsecond=0)
    return Period(utc(monday - timedelta(days=7)), utc(monday))


class Spread(BaseModel):
    """Durations in seconds: how many, p50, p90, and the previous period's p50 for change."""

    count: int
    p50: float | None
    p90: float | None
    previous_p50: float | None = None
    change_p50: float | None = None  # p50 − previous p50, seconds (negative: faster)


class IncidentCounts(BaseModel):
    total: int
    previous_total: int
    by_service: dict[str, int]
    by_severity: dict[str, int]


class OnCall(BaseModel):
    pages: int
    out_of_hours: int
    by_responder: dict[str, int]


class Feedback(BaseModel):
    confirmed: int
    rejected: int
    unreviewed: int
    confirmed_share: float | None  # of the reviewed ones


def spread(values: list[float], previous: list[float] | None = None) -> Spread:
    def pct(xs: list[float], q: float) -> float | None:
        return round(float(np.percentile(xs, q)), 1) if xs else None

    out = Spread(count=len(values), p50=pct(values, 50), p90=pct(values, 90))
    if previous is not None:
        out.previous_p50 = pct(previous, 50)
        if out.p50 is not None and out.previous_p50 is not None:
            out.change_p50 = round(out.p50 - out.previous_p50, 1)
    return out


async def incidents_in(session: AsyncSession, *, org_id: int, period: Period) -> list[Incident]:
    """Incidents that started in the period (by the source's start time) — those posted:
    not the ones judged noise, nor those merged into another, nor those still unconfirmed."""
    stmt = select(Incident).where(Incident.org_id == org_id,
                                  Incident.triggered_at >= period.start,
                                  Incident.triggered_at < period.end,
                                  Incident.noise == False,  # noqa: E712 (SQL, not Python)
                                  col(Incident.merged_into_id).is_(None),
                                  col(Incident.unconfirmed_until).is_(None))
    return list((await session.exec(stmt.order_by(col(Incident.id)))).all())


def counts(incidents: list[Incident], previous: list[Incident]) -> IncidentCounts:
    return IncidentCounts(
        total=len(incidents), previous_total=len(previous),
        by_service=dict(Counter(i.service or "unknown" for i in incidents).most_common()),
        by_severity=dict(Counter(i.severity or "none" for i in incidents).most_common()))


def _took(incident: Incident, step: datetime | None) -> float | None:
    return (utc(step) - utc(incident.triggered_at)).total_seconds() if step else None


def mtta(incidents: list[Incident]) -> list[float]:
    """Seconds from trigger to acknowledgement, for the acknowledged ones."""
    return [t for i in incidents if (t := _took(i, i.acknowledged_at)) is not None]


def mttr(incidents: list[Incident]) -> list[float]:
    """Seconds from trigger to resolution, for the resolved ones."""
    return [t for i in incidents if (t := _took(i, i.resolved_at)) is not None]


def time_in_states(incidents: list[Incident]) -> dict[str, Spread]:
    """For each state, how long incidents stayed in it before the next step they took (only
    incidents that left the state count)."""
    spent: dict[str, list[float]] = {s: [] for s in STATES}
    for incident in incidents:
        steps = [(s, incident.step_time(IncidentStatus(s))) for s in (*STATES, "resolved")]
        reached = [(s, utc(at)) for s, at in steps if at is not None]
        for (state, at), (_, nxt) in itertools.pairwise(reached):
            if state in spent:
                spent[state].append(max(0.0, (nxt - at).total_seconds()))
    return {s: spread(v) for s, v in spent.items()}


async def oncall_load(session: AsyncSession, *, org_id: int, period: Period, tz: str) -> OnCall:
    """PagerDuty's pages in the period (`incident.triggered` at its `occurred_at`), those
    outside working hours (Mon–Fri 09–18 in `tz`), and pages per assignee."""
    stmt = select(TimelineEvent).where(TimelineEvent.org_id == org_id,
                                       TimelineEvent.source == "pagerduty",
                                       TimelineEvent.occurred_at >= period.start,
                                       TimelineEvent.occurred_at < period.end)
    pages = [e for e in (await session.exec(stmt)).all()
             if e.data.get("event_type") == "incident.triggered"]
    zone = ZoneInfo(tz)
    out = 0
    responders: Counter[str] = Counter()
    for page in pages:
        local = utc(page.occurred_at).astimezone(zone)
        if local.weekday() >= 5 or not WORK_HOURS[0] <= local.hour < WORK_HOURS[1]:
            out += 1
        responders.update(page.data.get("assignees") or ["unassigned"])
    return OnCall(pages=len(pages), out_of_hours=out, by_responder=dict(responders.most_common()))


async def feedback(session: AsyncSession, *, org_id: int, incidents: list[Incident]) -> Feedback:
    """What responders said of the hypotheses posted on the period's incidents."""
    ids = [i.id for i in incidents if i.id is not None]
    stmt = select(Hypothesis).where(Hypothesis.org_id == org_id,
                                    col(Hypothesis.incident_id).in_(ids))
    statuses = Counter(h.status for h in (await session.exec(stmt)).all()) if ids else Counter()
    confirmed, rejected = statuses["confirmed"], statuses["rejected"]
    reviewed = confirmed + rejected
    return Feedback(confirmed=confirmed, rejected=rejected,
                    unreviewed=sum(statuses.values()) - reviewed,
                    confirmed_share=round(confirmed / reviewed, 3) if reviewed else None)
