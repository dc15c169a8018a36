"""Incidents and their state machine: triggered → acknowledged → investigating → mitigated →
resolved, with the time of each step, and what was learnt once it is over (summary, root cause,
what fixed it, post-mortem).

Two ways to move an incident: `transition` is a person's command and refuses an illegal move with
a clear error; `advance` applies what a source reports (PagerDuty, Alertmanager), which may arrive
late or out of order, so it only ever moves forward and ignores the rest.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.alerts import Alert
from knowledge.timeline import TimelineEvent, add_event
from knowledge.types import UTCDateTime, utcnow


class IncidentStatus(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    INVESTIGATING = "investigating"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"


ORDER = list(IncidentStatus)

# Forward moves may skip steps (an alert can resolve before anyone acknowledges); the one move
# back is mitigated → investigating, for a mitigation that did not hold.
ALLOWED: dict[IncidentStatus, frozenset[IncidentStatus]] = {
    s: frozenset(ORDER[i + 1:]) for i, s in enumerate(ORDER)
}
ALLOWED[IncidentStatus.MITIGATED] |= {IncidentStatus.INVESTIGATING}


class Incident(SQLModel, table=True):
    __tablename__ = "incident"
    __table_args__ = (
        UniqueConstraint("org_id", "pagerduty_incident_id"),
        # The intake reads an org's recent incidents for each alert it places.
        Index("ix_incident_org_last_alert", "org_id", "last_alert_at"),
        Index("ix_incident_org_resolved", "org_id", "resolved_at"),  # ... and those just over
        Index("ix_incident_unconfirmed", "unconfirmed_until"),  # the sweep's due ones
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    title: str = Field(max_length=500)
    service: str | None = Field(default=None, max_length=200)
    severity: str | None = Field(default=None, max_length=32)
    status: str = Field(default=IncidentStatus.TRIGGERED.value, max_length=16)
    source: str = Field(max_length=32)  # alertmanager | pagerduty | manual
    group_key: str | None = None
    group_key_hash: str | None = Field(default=None, max_length=64)
    pagerduty_incident_id: str | None = Field(default=None, max_length=64)
    pagerduty_url: str | None = Field(default=None, max_length=2000)
    labels: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # Correlation (knowledge.relate): why its alerts belong together, the subjects they share,
    # when the latest of them started; `noise` when judged noise and never posted, and the
    # incident a person merged it into. `unconfirmed_until`: opened by one warning, its card
    # waits until then (knowledge.noise.confirm_at) unless another alert joins first.
    reason: str | None = Field(default=None, max_length=2000)
    related: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    last_alert_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    noise: bool = False
    unconfirmed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    merged_into_id: int | None = Field(default=None, foreign_key="incident.id")
    # The outcome, written by people (or the post-mortem flow) once the cause is known; what
    # the incident history (knowledge.history) indexes.
    summary: str | None = Field(default=None, sa_type=Text)
    root_cause: str | None = Field(default=None, max_length=2000)
    resolution: str | None = Field(default=None, max_length=2000)  # what fixed it
    postmortem: str | None = Field(default=None, sa_type=Text)
    triggered_at: datetime = Field(sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    investigating_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    mitigated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def ref(self) -> str:
        """How people name it in chat."""
        return f"INC-{self.id}"

    @property
    def state(self) -> IncidentStatus:
        return IncidentStatus(self.status)

    def step_time(self, status: IncidentStatus) -> datetime | None:
        return getattr(self, f"{status.value}_at")  # type: ignore[no-any-return]


class IllegalTransition(ValueError):
    """A move the state machine does not allow; the message names what is allowed."""


class IncidentNotFound(LookupError):
    pass


def group_key_hash(group_key: str) -> str:
    """SHA-256 hex of an Alertmanager group key: what Alertmanager's PagerDuty integration sends
    as the dedup key, so a PagerDuty incident's `incident_key` finds the same incident."""
    return hashlib.sha256(group_key.encode()).hexdigest()


async def get_incident(session: AsyncSession, *, org_id: int, incident_id: int) -> Incident:
    stmt = select(Incident).where(Incident.org_id == org_id, Incident.id == incident_id)
    incident = (await session.exec(stmt)).first()
    if incident is None:
        raise IncidentNotFound(f"no incident INC-{incident_id} in this org")
    return incident


async def list_incidents(session: AsyncSession, *, org_id: int, open_only: bool = False,
                         limit: int = 100) -> list[Incident]:
    stmt = select(Incident).where(Incident.org_id == org_id)
    if open_only:
        stmt = stmt.where(Incident.status != IncidentStatus.RESOLVED.value)
    stmt = stmt.order_by(col(Incident.id).desc()).limit(limit)
    return list((await session.exec(stmt)).all())


async def incidents_with_alerts(session: AsyncSession, *, org_id: int,
                                since: datetime | None = None, until: datetime | None = None
                                ) -> list[tuple[Incident, list[Alert]]]:
    """An org's incidents opened in [since, until) (either open-ended), oldest first, each with
    its alerts by start — two queries, whatever the number of incidents."""
    stmt = select(Incident).where(Incident.org_id == org_id)
    if since is not None:
        stmt = stmt.where(col(Incident.triggered_at) >= since)
    if until is not None:
        stmt = stmt.where(col(Incident.triggered_at) < until)
    incidents = list((await session.exec(stmt.order_by(col(Incident.triggered_at),
                                                       col(Incident.id)))).all())
    by_incident: dict[int, list[Alert]] = {i.id: [] for i in incidents if i.id is not None}
    if by_incident:
        alerts = await session.exec(
            select(Alert).where(Alert.org_id == org_id,
                                col(Alert.incident_id).in_(list(by_incident)))
            .order_by(col(Alert.starts_at), col(Alert.id)))
        for alert in alerts.all():
            by_incident[alert.incident_id or 0].append(alert)
    return [(i, by_incident.get(i.id or 0, [])) for i in incidents]


def steps_ahead(incident: Incident) -> list[IncidentStatus]:
    """The moves a responder may still make from here, in order — what the chat adapters offer
    as buttons: acknowledge (only while triggered), mitigated (until mitigated), resolve."""
    status = incident.state
    ahead = []
    if status is IncidentStatus.TRIGGERED:
        ahead.append(IncidentStatus.ACKNOWLEDGED)
    if status in (IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED,
                  IncidentStatus.INVESTIGATING):
        ahead.append(IncidentStatus.MITIGATED)
    if status is not IncidentStatus.RESOLVED:
        ahead.append(IncidentStatus.RESOLVED)
    return ahead


async def find_incident(session: AsyncSession, *, org_id: int, incident_id: int | None
                        ) -> Incident:
    """The incident named, or — when none is named — the newest open one, else the newest.
    Raises `IncidentNotFound` when there is no such incident (or none at all) in the org."""
    if incident_id is not None:
        return await get_incident(session, org_id=org_id, incident_id=incident_id)
    found = (await list_incidents(session, org_id=org_id, open_only=True, limit=1)
             or await list_incidents(session, org_id=org_id, limit=1))
    if not found:
        raise IncidentNotFound("no incidents recorded yet in this org")
    return found[0]


def parse_incident_ref(value: object) -> int | None:
    """`12`, `"12"`, `"INC-12"`, `"#12"` → 12; None or "" → None. Anything else raises
    ValueError saying what is accepted."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().upper().removeprefix("INC-").removeprefix("#")
    if not text.isdigit():
        raise ValueError(f"{value!r} is not an incident: write it like INC-12 or 12")
    return int(text)


async def open_incident_for_group(session: AsyncSession, *, org_id: int, group_key: str
                                  ) -> Incident | None:
    stmt = select(Incident).where(Incident.org_id == org_id,
                                  Incident.group_key_hash == group_key_hash(group_key),
                                  Incident.status != IncidentStatus.RESOLVED.value)
    return (await session.exec(stmt)).first()


async def incident_for_pagerduty(session: AsyncSession, *, org_id: int, pd_incident_id: str,
                                 incident_key: str | None) -> Incident | None:
    """The incident a PagerDuty incident belongs to: linked before, or opened by the same
    Alertmanager group (its dedup key is the group key's hash)."""
    stmt = select(Incident).where(Incident.org_id == org_id,
                                  Incident.pagerduty_incident_id == pd_incident_id)
    found = (await session.exec(stmt)).first()
    if found is not None or not incident_key:
        return found
    stmt = (select(Incident)
            .where(Incident.org_id == org_id, Incident.group_key_hash == incident_key,
                   col(Incident.pagerduty_incident_id).is_(None))
            .order_by(col(Incident.id).desc()))
    return (await session.exec(stmt)).first()


async def record_outcome(session: AsyncSession, *, org_id: int, incident_id: int,
                         root_cause: str | None = None, resolution: str | None = None,
                         summary: str | None = None, postmortem: str | None = None) -> Incident:
    """Record what was learnt: a field given (not None) replaces the stored one, an empty or
    blank one clears it, and one left out is kept. Any state may have an outcome (a root cause
    is often known before the incident resolves)."""
    incident = await get_incident(session, org_id=org_id, incident_id=incident_id)
    given = {"root_cause": root_cause, "resolution": resolution, "summary": summary,
             "postmortem": postmortem}
    changed = False
    for name, value in given.items():
        if value is None:
            continue
        new = value.strip() or None
        if getattr(incident, name) != new:
            setattr(incident, name, new)
            changed = True
    if changed:
        incident.updated_at = utcnow()
        session.add(incident)
    return incident


def _apply(incident: Incident, to: IncidentStatus, at: datetime) -> None:
    incident.status = to.value
    setattr(incident, f"{to.value}_at", at)
    incident.updated_at = utcnow()


async def transition(session: AsyncSession, *, incident: Incident, to: IncidentStatus, at: datetime,
                     actor: str, source: str) -> TimelineEvent:
    """A person's move: refused with `IllegalTransition` when the state machine does not allow
    it; recorded on the timeline."""
    current = incident.state
    if to not in ALLOWED[current]:
        allowed = ", ".join(s.value for s in ORDER if s in ALLOWED[current]) or "none"
        raise IllegalTransition(
            f"{incident.ref} is {current.value}; it cannot move to {to.value} "
            f"(allowed from {current.value}: {allowed})")
    _apply(incident, to, at)
    session.add(incident)
    return await _status_event(session, incident, current, to, at, actor, source)


async def advance(session: AsyncSession, *, incident: Incident, to: IncidentStatus, at: datetime,
                  actor: str, source: str) -> TimelineEvent | None:
    """A source's report: moves forward only; a late or repeated report changes nothing."""
    current = incident.state
    if ORDER.index(to) <= ORDER.index(current):
        return None
    _apply(incident, to, at)
    session.add(incident)
    return await _status_event(session, incident, current, to, at, actor, source)


async def reopen(session: AsyncSession, *, incident: Incident, at: datetime, actor: str,
                 source: str) -> TimelineEvent | None:
    """A source's report that a resolved incident's trouble is back (an alert joined it after
    it resolved): triggered again, on the timeline; nothing if it is not resolved."""
    if incident.state is not IncidentStatus.RESOLVED:
        return None
    incident.status, incident.resolved_at = IncidentStatus.TRIGGERED.value, None
    incident.updated_at = utcnow()
    session.add(incident)
    return await _status_event(session, incident, IncidentStatus.RESOLVED,
                               IncidentStatus.TRIGGERED, at, actor, source)


async def _status_event(session: AsyncSession, incident: Incident, before: IncidentStatus,
                        after: IncidentStatus, at: datetime, actor: str, source: str
                        ) -> TimelineEvent:
    assert incident.id is not None
    event = await add_event(
        session, org_id=incident.org_id, incident_id=incident.id, occurred_at=at,
        kind="status_changed", source=source,
        summary=f"{before.value} → {after.value} by {actor}",
        data={"from": before.value, "to": after.value, "actor": actor},
        dedupe_key=f"status:{after.value}:{at.isoformat()}")
    assert event is not None
    return event
