"""An incident's timeline as people read it: its events in order, and how long it took to
acknowledge, mitigate and resolve, each measured from when it triggered.

Read through knowledge's service functions, every query filtered by org.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.incidents import Incident, IncidentNotFound, find_incident, get_incident
from knowledge.timeline import TimelineEvent, list_events, once_each
from skills.types import Evidence, IncidentRef, SkillContext, SkillResult, format_duration

__all__ = ["IncidentTimeline", "TimelineEntry", "TimelineView", "format_duration",
           "incident_timeline", "timeline_result", "timeline_view"]


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
    time_to_mitigate: timedelta | None = None  # to mitigation, else to resolution
    time_to_resolve: timedelta | None = None
    mitigated: bool = False  # whether a mitigation step was recorded at all


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
                for e in once_each(events)],
        time_to_acknowledge=_since(start, incident.acknowledged_at),
        time_to_mitigate=_since(start, incident.mitigated_at or incident.resolved_at),
        mitigated=incident.mitigated_at is not None,
        time_to_resolve=_since(start, incident.resolved_at))


async def incident_timeline(session: AsyncSession, *, org_id: int, incident_id: int
                            ) -> TimelineView:
    """Load one incident of the org and its timeline. Raises `IncidentNotFound` for an
    incident of another org or none."""
    incident = await get_incident(session, org_id=org_id, incident_id=incident_id)
    events = await list_events(session, org_id=org_id, incident_id=incident_id)
    return timeline_view(incident, events)


class IncidentTimeline:
    name: ClassVar[str] = "incident_timeline"
    description: ClassVar[str] = (
        "The timeline of an incident: alerts fired and resolved, PagerDuty acknowledgements, "
        "status changes, deploys and pinned notes, in order, with time to acknowledge, mitigate "
        "and resolve.")
    Input: ClassVar[type[BaseModel]] = IncidentRef

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult:
        assert isinstance(args, IncidentRef)
        db = ctx.client("db")
        try:
            async with db.session() as session:
                incident = await find_incident(session, org_id=ctx.org_id,
                                               incident_id=args.incident_id)
                assert incident.id is not None
                view = timeline_view(incident, await list_events(
                    session, org_id=ctx.org_id, incident_id=incident.id))
        except IncidentNotFound as exc:
            return SkillResult(summary=f"No timeline: {exc}.", error=str(exc))
        return timeline_result(view)


def timeline_result(view: TimelineView) -> SkillResult:
    """The timeline as a skill result: one line and one evidence per event."""
    durations = [f"{label} {format_duration(td)}" for label, td in (
        ("acknowledged after", view.time_to_acknowledge),
        ("mitigated after", view.time_to_mitigate),
        ("resolved after", view.time_to_resolve)) if td is not None]
    head = (f"{view.ref} “{view.title}” ({view.status}"
            + (f", {view.service}" if view.service else "") + f"), triggered "
            f"{view.triggered_at:%Y-%m-%d %H:%M} UTC" + ("; " + ", ".join(durations)
                                                          if durations else "") + ".")
    lines = [f"- {e.at:%H:%M:%S} [{e.kind}] {e.summary}" for e in view.events]
    evidence = [Evidence(id=f"ev-{i}", source="timeline", summary=f"{e.kind}: {e.summary}",
                         start=e.at, end=e.at, labels={"incident": view.ref, "source": e.source})
                for i, e in enumerate(view.events, start=1)]
    return SkillResult(summary=head + ("\n" + "\n".join(lines) if lines
                                       else "\nNo events recorded yet."),
                       evidence=evidence, data=view.model_dump(mode="json"))
