"""An incident's timeline as people read it: its events in order, and how long it took to
acknowledge, mitigate and resolve, each measured from when it triggered.

Read through knowledge's service functions, every query filtered by org.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.incidents import Incident, get_incident
from knowledge.timeline import TimelineEvent, list_events
from skills.types import format_duration

__all__ = ["TimelineEntry", "TimelineView", "format_duration", "incident_timeline", "timeline_view"]


class TimelineEntry(BaseModel):
    """One line of the timeline, at the source's time."""

    at: datetime
    kind: str  # alert_fired | alert_resolved | status_changed | pagerduty | note | deploy | …
    source: str
    summary: str


class TimelineView(BaseModel):
    incident_id: int
    ref: str
    title: str
    status: str
    service: str | None = None
    triggered_at: datetime
    events: list[TimelineEntry] = Field(default_factory=list)
    time_to_acknowledge: timedelta | None = None
    # Mitigated, or resolved when the incident went straight to resolved.
    time_to_mitigate: timedelta | None = None
    time_to_resolve: timedelta | None = None


def _since(start: datetime, end: datetime | None) -> timedelta | None:
    """`end - start`, never negative (a source's clock may put a step a hair before the
    trigger)."""
    return None if end is None else max(timedelta(0), end - start)


def timeline_view(incident: Incident, events: list[TimelineEvent]) -> TimelineView:
    """The view of an incident and its (already loaded) events."""
    assert incident.id is not None
    start = incident.triggered_at
    return TimelineView(
        incident_id=incident.id, ref=incident.ref, title=incident.title, status=incident.status,
        service=incident.service, triggered_at=start,
        events=[TimelineEntry(at=e.occurred_at, kind=e.kind, source=e.source, summary=e.summary)
                for e in events],
        time_to_acknowledge=_since(start, incident.acknowledged_at),
        time_to_mitigate=_since(start, incident.mitigated_at or incident.resolved_at),
        time_to_resolve=_since(start, incident.resolved_at))


async def incident_timeline(session: AsyncSession, *, org_id: int, incident_id: int
                            ) -> TimelineView:
    """Load one incident of the org and its timeline. Raises `IncidentNotFound` for an
    incident of another org or none."""
    incident = await get_incident(session, org_id=org_id, incident_id=incident_id)
    events = await list_events(session, org_id=org_id, incident_id=incident_id)
    return timeline_view(incident, events)
