"""The dead man's switch: an always-firing alert (Watchdog) that stops arriving means alerting
itself may be down — Prometheus, Alertmanager, or the route to the copilot. The copilot opens
an incident saying so (posted like any other, so it reaches the channel) and resolves it when
the heartbeat is heard again.

Only heartbeats heard at least twice are watched — a copilot whose Alertmanager never routes
Watchdog to it has nothing to miss (the README shows the route) — and a heartbeat is silent
after twice its longest usual gap, or the setting, whichever is longer."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.heartbeats import Heartbeat
from knowledge.incidents import Incident, IncidentStatus, advance, get_incident
from knowledge.outbox import enqueue_message
from knowledge.timeline import add_event
from knowledge.types import utcnow


async def watch_heartbeats(session: AsyncSession, *, allowed_s: float,
                           now: datetime | None = None) -> list[Incident]:
    """Open an incident for each heartbeat silent longer than `allowed_s` seconds, resolve the
    one of each heartbeat heard again; returns the incidents opened or resolved. `allowed_s` 0:
    off. Rows are claimed with SKIP LOCKED, so replicas running this at once open one each."""
    if allowed_s <= 0:
        return []
    now = now or utcnow()
    stmt = (select(Heartbeat).order_by(col(Heartbeat.id)).with_for_update(skip_locked=True))
    changed = []
    for beat in (await session.exec(stmt)).all():
        if beat.interval_s is None:
            continue  # heard once: how often it should come is not known yet
        # Twice its longest usual gap, and never less than the setting: a Watchdog repeated
        # every twelve hours is not silent after ten minutes.
        allowed = max(allowed_s, 2 * beat.interval_s)
        silent_for = (now - beat.last_seen_at).total_seconds()
        if silent_for > allowed and beat.silent_incident_id is None:
            changed.append(await _open(session, beat, silent_for=silent_for, allowed_s=allowed))
        elif silent_for <= allowed and beat.silent_incident_id is not None:
            incident = await get_incident(session, org_id=beat.org_id,
                                          incident_id=beat.silent_incident_id)
            beat.silent_incident_id = None
            session.add(beat)
            if await advance(session, incident=incident, to=IncidentStatus.RESOLVED,
                             at=beat.last_seen_at, actor=f"{beat.name} (heard again)",
                             source="watchdog"):
                await enqueue_message(
                    session, org_id=incident.org_id, incident_id=incident.id,
                    key=f"incident:{incident.id}:status:resolved", kind="incident_status",
                    text=f"✅ {incident.ref} resolved: {beat.name} is arriving again",
                    payload={"incident_id": incident.id, "status": "resolved"})
                changed.append(incident)
    return changed


async def _open(session: AsyncSession, beat: Heartbeat, *, silent_for: float, allowed_s: float
                ) -> Incident:
    last = beat.last_seen_at
    minutes = max(1, round(silent_for / 60))
    took = f"{minutes} min" if minutes < 120 else (
        f"{minutes // 60} h" + (f" {minutes % 60} min" if minutes % 60 else ""))
    title = (f"No {beat.name} for {took}: alerting itself may be down")
    incident = Incident(
        org_id=beat.org_id, title=title, service="alerting", severity="critical",
        source="watchdog", triggered_at=last + timedelta(seconds=allowed_s),
        last_alert_at=last + timedelta(seconds=allowed_s),
        labels={"alertname": beat.name},
        reason=(f"{beat.name} fires all the time on purpose and was last heard at "
                f"{last:%H:%M:%S} UTC; nothing since for {took} (allowed: "
                f"{allowed_s:.0f} s). Prometheus, Alertmanager or the route to the copilot may "
                "be down: alerts may not be reaching anyone."))
    session.add(incident)
    await session.flush()
    assert incident.id is not None
    beat.silent_incident_id = incident.id
    session.add(beat)
    await add_event(session, org_id=beat.org_id, incident_id=incident.id,
                    occurred_at=incident.triggered_at, kind="alert_fired", source="watchdog",
                    summary=f"{beat.name} silent since {last:%H:%M:%S} UTC",
                    data={"heartbeat": beat.name, "last_seen_at": last.isoformat()},
                    dedupe_key=f"heartbeat:{beat.name}:{last.isoformat()}:silent")
    await enqueue_message(
        session, org_id=beat.org_id, incident_id=incident.id,
        key=f"incident:{incident.id}:opened", kind="incident_opened",
        text=f"🚨 {incident.ref} opened: {title}", payload={"incident_id": incident.id})
    return incident
