"""Changes as evidence: puts the deploys and config changes of an incident's service on its
timeline, whichever arrives first.

A change is linked to the open incidents of its org and service it could bear on: one that
started within `WINDOW` of the change (after it: a possible cause; before it: a fix or a
worsening during the incident). An incident, when it opens (or its start moves earlier), gets the
changes of its service from `WINDOW` before its start onwards. Both ways are bounded — the
`LINKS` nearest in time — so a service deploying every minute cannot flood a timeline or hold a
transaction; both use the same timeline dedupe key, so each change appears once per incident, at
the change's own time.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.changes import Change, changes_between
from knowledge.incidents import Incident, IncidentStatus
from knowledge.timeline import TimelineEvent, add_event
from knowledge.types import utcnow

WINDOW = timedelta(hours=2)
# At most this many changes on one incident's timeline, and incidents per change: the nearest
# in time. A person reads a handful; a storm of automated deploys must not write thousands.
LINKS = 20

# Deploys and rollbacks are "deploy" events; config, feature-flag and other changes are "change".
TIMELINE_KIND = {"deploy": "deploy", "rollback": "deploy"}
VERB = {"deploy": "Deploy", "rollback": "Rollback", "config": "Config change",
        "feature_flag": "Feature flag change", "other": "Change"}


def change_line(change: Change) -> str:
    """One timeline line: `Deploy checkout v2.13.2 → v2.14.0 by ci: Faster cart totals`."""
    line = f"{VERB.get(change.kind, 'Change')} {change.service}"
    if change.version and change.previous_version:
        line += f" {change.previous_version} → {change.version}"
    elif change.version:
        line += f" {change.version}"
    if change.author:
        line += f" by {change.author}"
    return f"{line}: {change.description}" if change.description else line


async def _add(session: AsyncSession, *, incident_id: int, change: Change) -> TimelineEvent | None:
    assert change.id is not None
    return await add_event(
        session, org_id=change.org_id, incident_id=incident_id, occurred_at=change.occurred_at,
        kind=TIMELINE_KIND.get(change.kind, "change"), source=change.source,
        summary=change_line(change),
        data={"change_id": change.id, "change_kind": change.kind, "service": change.service,
              "version": change.version, "previous_version": change.previous_version,
              "author": change.author, "link": change.link, "description": change.description},
        dedupe_key=f"change:{change.id}")


async def link_change(session: AsyncSession, *, change: Change) -> list[Incident]:
    """Add a just-recorded change to the timelines of the open incidents of its service that
    started within `WINDOW` of it (the `LINKS` latest). Returns the incidents it was added
    to."""
    await session.flush()
    stmt = (select(Incident)
            .where(Incident.org_id == change.org_id, Incident.service == change.service,
                   Incident.status != IncidentStatus.RESOLVED.value,
                   Incident.triggered_at <= change.occurred_at + WINDOW,
                   Incident.triggered_at >= change.occurred_at - WINDOW)
            .order_by(col(Incident.triggered_at).desc(), col(Incident.id).desc())
            .limit(LINKS))
    linked = []
    for incident in (await session.exec(stmt)).all():
        assert incident.id is not None
        if await _add(session, incident_id=incident.id, change=change) is not None:
            linked.append(incident)
    return linked


async def link_recent_changes(session: AsyncSession, *, incident: Incident) -> list[Change]:
    """Add to an incident's timeline the changes of its service from `WINDOW` before it started
    until now (later ones are linked as they are recorded). Idempotent; returns those added."""
    if incident.id is None:
        await session.flush()
    assert incident.id is not None
    if not incident.service:
        return []
    found = await changes_between(session, org_id=incident.org_id,
                                  start=incident.triggered_at - WINDOW,
                                  end=max(incident.triggered_at, utcnow()),
                                  services=[incident.service])
    start = incident.triggered_at
    nearest = sorted(found, key=lambda c: abs((c.occurred_at - start).total_seconds()))[:LINKS]
    nearest.sort(key=lambda c: (c.occurred_at, c.id or 0))
    return [c for c in nearest if await _add(session, incident_id=incident.id, change=c)]
