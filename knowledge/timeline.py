"""Timeline events of an incident: what happened and when, by the source's clock.

A `dedupe_key` makes adding an event idempotent, so a redelivered webhook or a retried worker
never writes the same line twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.db import upsert_dialect
from knowledge.types import UTCDateTime, utcnow

# "deploy" is a deploy or rollback, "change" any other change (config, feature flag, …).
KINDS = frozenset({
    "alert_fired", "alert_resolved", "status_changed", "pagerduty", "note", "deploy", "change",
    "hypothesis_posted", "hypothesis_feedback", "message_pinned",
})


class TimelineEvent(SQLModel, table=True):
    __tablename__ = "timeline_event"
    __table_args__ = (UniqueConstraint("incident_id", "dedupe_key"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    kind: str = Field(max_length=32)
    source: str = Field(max_length=32)
    summary: str = Field(max_length=2000)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    dedupe_key: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def event_row(*, org_id: int, incident_id: int, occurred_at: datetime, kind: str, source: str,
              summary: str, data: dict[str, Any] | None = None,
              dedupe_key: str | None = None) -> dict[str, Any]:
    """An event as `add_event` and `add_events` write it."""
    if kind not in KINDS:
        raise ValueError(f"unknown timeline kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    return {"org_id": org_id, "incident_id": incident_id, "occurred_at": occurred_at,
            "kind": kind, "source": source, "summary": summary[:2000], "data": data or {},
            "dedupe_key": dedupe_key, "created_at": utcnow()}


async def add_event(session: AsyncSession, *, org_id: int, incident_id: int, occurred_at: datetime,
                    kind: str, source: str, summary: str, data: dict[str, Any] | None = None,
                    dedupe_key: str | None = None) -> TimelineEvent | None:
    """Append an event; with a `dedupe_key` already present it returns None and writes nothing."""
    row = event_row(org_id=org_id, incident_id=incident_id, occurred_at=occurred_at, kind=kind,
                    source=source, summary=summary, data=data, dedupe_key=dedupe_key)
    # One statement whatever happens: a key already present (a redelivery, a racing worker)
    # inserts nothing and returns no row.
    # Values go as parameters, not `.values(row)`: the statement then compiles once and is
    # cached, instead of being compiled again for every event.
    stmt = (upsert_dialect(session).insert(TimelineEvent)
            .on_conflict_do_nothing(index_elements=["incident_id", "dedupe_key"])
            .returning(TimelineEvent))
    found: TimelineEvent | None = (await session.exec(stmt, params=row)).scalars().first()
    return found


async def add_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Append many events (`event_row`) in one round trip; each whose `dedupe_key` is present
    already writes nothing."""
    if not rows:
        return
    stmt = (upsert_dialect(session).insert(TimelineEvent)
            .on_conflict_do_nothing(index_elements=["incident_id", "dedupe_key"]))
    await session.exec(stmt, params=rows)


async def list_events(session: AsyncSession, *, org_id: int, incident_id: int
                      ) -> list[TimelineEvent]:
    stmt = (select(TimelineEvent)
            .where(TimelineEvent.org_id == org_id, TimelineEvent.incident_id == incident_id)
            .order_by(col(TimelineEvent.occurred_at), col(TimelineEvent.id)))
    return list((await session.exec(stmt)).all())


# A PagerDuty lifecycle event says again what the status change beside it says.
_PD_STATUS = {"incident.acknowledged": "acknowledged", "incident.resolved": "resolved"}


def once_each(events: list[TimelineEvent]) -> list[TimelineEvent]:
    """One row per event: PagerDuty's "acknowledged by X" or "resolved by Y" is left out when
    the incident's status change to that state is on the timeline already."""
    reached = {e.data.get("to") for e in events if e.kind == "status_changed"}
    return [e for e in events if not (e.kind == "pagerduty" and _PD_STATUS.get(
        str(e.data.get("event_type"))) in reached)]
