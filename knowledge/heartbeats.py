"""Heartbeats: when each org last heard an always-firing alert (kube-prometheus's `Watchdog`),
so that its silence — Prometheus, Alertmanager or the route to the copilot down — is noticed.

Recorded when a notification arrives, before the inbox drops it as a repeat (a repeated
Watchdog has the same `startsAt`, so only its arrival says the pipeline still works). How often
it comes is learnt from the arrivals: Alertmanager repeats it every `repeat_interval` of its
route, which may be a minute or twelve hours."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.db import upsert_dialect
from knowledge.types import UTCDateTime, utcnow


class Heartbeat(SQLModel, table=True):
    __tablename__ = "heartbeat"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    name: str = Field(max_length=200)  # the alert's name: Watchdog, DeadMansSwitch, …
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    # The longest gap between two arrivals while it was not silent: its route's repeat
    # interval, learnt (None until heard twice).
    interval_s: float | None = None
    # The incident that says it went silent, while it is silent.
    silent_incident_id: int | None = Field(default=None, foreign_key="incident.id")


async def heard(session: AsyncSession, *, org_id: int, name: str, at: datetime | None = None
                ) -> None:
    """Note an arrival, and learn how often it comes (the longest gap while not silent: a gap
    that was an outage teaches nothing)."""
    at = at or utcnow()
    stmt = (select(Heartbeat).where(Heartbeat.org_id == org_id, Heartbeat.name == name[:200])
            .with_for_update())
    beat = (await session.exec(stmt)).first()
    if beat is None:
        insert = (upsert_dialect(session).insert(Heartbeat)
                  .values(org_id=org_id, name=name[:200], last_seen_at=at)
                  .on_conflict_do_nothing(index_elements=["org_id", "name"]))
        await session.exec(insert)
        return
    gap = (at - beat.last_seen_at).total_seconds()
    if gap <= 0:
        return  # the same arrival, or an older one told late
    if beat.silent_incident_id is None:
        beat.interval_s = max(beat.interval_s or 0.0, gap)
    beat.last_seen_at = at
    session.add(beat)


async def heartbeats(session: AsyncSession, *, org_id: int | None = None) -> list[Heartbeat]:
    stmt = select(Heartbeat)
    if org_id is not None:
        stmt = stmt.where(Heartbeat.org_id == org_id)
    return list((await session.exec(stmt.order_by(Heartbeat.id))).all())  # type: ignore[arg-type]
