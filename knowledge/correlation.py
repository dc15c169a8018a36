"""The incident engine's intake half: turns alert and paging signals into incidents, alerts,
timeline events and outbox messages.

Alerts of one Alertmanager group make one incident (re-fires join it while it is open); a
PagerDuty incident joins the incident whose group key hash is its dedup key (what Alertmanager's
PagerDuty integration sends), or opens its own. A new incident gets the recent changes of its
service on its timeline (`knowledge.change_links`). Every write here is idempotent, and timestamps
are the sources' own, so redelivered or late webhooks change nothing and figures stay true.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.alerts import Alert, alerts_of_incident, find_alert
from knowledge.change_links import link_recent_changes
from knowledge.incidents import (
    Incident,
    IncidentStatus,
    advance,
    get_incident,
    group_key_hash,
    incident_for_pagerduty,
    open_incident_for_group,
)
from knowledge.outbox import enqueue_message
from knowledge.subjects import service_of, subject_of
from knowledge.timeline import add_event
from knowledge.types import utcnow

HEARTBEATS = frozenset({"Watchdog", "InfoInhibitor", "DeadMansSwitch", "DeadMansSnitch"})
SEVERITY_RANK = {"critical": 4, "page": 4, "error": 3, "high": 3, "warning": 2, "low": 1,
                 "info": 1, "none": 0}


@dataclass(frozen=True)
class AlertSignal:
    """One alert of an Alertmanager notification, with its group's context."""

    group_key: str
    fingerprint: str
    status: str  # firing | resolved
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None = None
    common_labels: dict[str, str] = field(default_factory=dict)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "unnamed alert")


@dataclass(frozen=True)
class PagerDutySignal:
    """One PagerDuty v3 webhook event about an incident."""

    event_id: str
    event_type: str  # incident.triggered, incident.acknowledged, incident.annotated, …
    occurred_at: datetime
    incident_id: str
    incident_key: str | None = None
    title: str | None = None
    html_url: str | None = None
    service: str | None = None
    urgency: str | None = None
    agent: str | None = None
    note: str | None = None
    assignees: tuple[str, ...] = ()  # who was paged (the incident's assignees)


def _fits(value: str | None, limit: int) -> str | None:
    """A value derived from labels, cut to its column (the labels themselves are kept whole)."""
    return value[:limit] if value else value


def _worse(a: str | None, b: str | None) -> str | None:
    return max((a, b), key=lambda s: SEVERITY_RANK.get((s or "none").lower(), 0))


async def _open_alert_incident(session: AsyncSession, *, org_id: int, signal: AlertSignal
                               ) -> tuple[Incident, bool]:
    """The group's open incident, or a new one (safe against a concurrent worker opening it)."""
    existing = await open_incident_for_group(session, org_id=org_id, group_key=signal.group_key)
    if existing is not None:
        return existing, False
    labels = {**signal.common_labels, **signal.labels}
    summary = signal.annotations.get("summary") or signal.annotations.get("title")
    # What the alert is about (a service, a filesystem on a host, a pod, a target), not the
    # job that scraped it: the incident is named after it and its changes are matched to it.
    subject = subject_of(labels)
    title = summary or (f"{signal.alertname} on {subject}" if subject else signal.alertname)
    incident = Incident(org_id=org_id, title=title[:500], service=subject[:200] if subject
                        else None,
                        severity=labels.get("severity"), source="alertmanager",
                        group_key=signal.group_key, group_key_hash=group_key_hash(signal.group_key),
                        labels=signal.common_labels or signal.labels,
                        triggered_at=signal.starts_at)
    try:
        async with session.begin_nested():
            session.add(incident)
    except IntegrityError:
        raced = await open_incident_for_group(session, org_id=org_id, group_key=signal.group_key)
        if raced is None:
            raise
        return raced, False
    return incident, True


async def apply_alert(session: AsyncSession, *, org_id: int, signal: AlertSignal,
                      auto_resolve: bool = True) -> Incident | None:
    """Record one alert firing or resolving and move its incident. Returns the incident, or
    None for a resolution of an alert whose group has no incident here."""
    alert = await find_alert(session, org_id=org_id, fingerprint=signal.fingerprint,
                             starts_at=signal.starts_at)
    if signal.status == "firing":
        return await _fired(session, org_id=org_id, signal=signal, alert=alert)
    return await _resolved(session, org_id=org_id, signal=signal, alert=alert,
                           auto_resolve=auto_resolve)


def is_heartbeat(signal: AlertSignal) -> bool:
    """An alert that fires all the time on purpose (kube-prometheus's `Watchdog`, its
    `InfoInhibitor`, any `severity="none"`): a sign the pipeline works, never an incident."""
    return (signal.alertname in HEARTBEATS
            or (signal.labels.get("severity") or "").lower() == "none")


async def _fired(session: AsyncSession, *, org_id: int, signal: AlertSignal, alert: Alert | None
                 ) -> Incident | None:
    if is_heartbeat(signal):
        return None
    if alert is not None and alert.incident_id is not None:
        return await get_incident(session, org_id=org_id, incident_id=alert.incident_id)
    if alert is not None and alert.status == "resolved":
        # A late firing of an alert already resolved opens nothing: an incident it opened
        # would never see another resolution. It joins the group's open incident, if any.
        incident = await open_incident_for_group(session, org_id=org_id,
                                                 group_key=signal.group_key)
        if incident is not None:
            alert.incident_id = incident.id
            session.add(alert)
        return incident
    incident, opened = await _open_alert_incident(session, org_id=org_id, signal=signal)
    await session.flush()
    assert incident.id is not None
    if alert is None:
        alert = Alert(org_id=org_id, fingerprint=signal.fingerprint, alertname=signal.alertname,
                      status="firing", severity=signal.labels.get("severity"),
                      service=_fits(service_of({**signal.common_labels, **signal.labels}), 200),
                      group_key=signal.group_key, labels=signal.labels,
                      annotations=signal.annotations, generator_url=signal.generator_url,
                      starts_at=signal.starts_at)
    alert.incident_id = incident.id
    session.add(alert)
    started_earlier = signal.starts_at < incident.triggered_at
    if not opened:
        severity = _worse(incident.severity, signal.labels.get("severity"))
        # Alertmanager orders a group's alerts by labels, not by start: an incident starts
        # when its earliest alert did, or MTTA/MTTR come out too short.
        triggered = min(incident.triggered_at, signal.starts_at)
        if (severity, triggered) != (incident.severity, incident.triggered_at):
            incident.severity, incident.triggered_at = severity, triggered
            incident.updated_at = utcnow()
            session.add(incident)
    if opened or started_earlier:  # the changes before its (earlier) start are evidence
        await link_recent_changes(session, incident=incident)
    await add_event(session, org_id=org_id, incident_id=incident.id, occurred_at=signal.starts_at,
                    kind="alert_fired", source="alertmanager",
                    summary=_alert_line(signal),
                    data={"fingerprint": signal.fingerprint, "labels": signal.labels,
                          "annotations": signal.annotations,
                          "generator_url": signal.generator_url},
                    dedupe_key=f"alert:{signal.fingerprint}:{signal.starts_at.isoformat()}:firing")
    if opened:
        await enqueue_message(
            session, org_id=org_id, incident_id=incident.id, key=f"incident:{incident.id}:opened",
            kind="incident_opened",
            text=f"🔥 {incident.ref} opened: {incident.title}"
                 + (f" ({incident.severity})" if incident.severity else ""),
            payload={"incident_id": incident.id})
    return incident


async def _resolved(session: AsyncSession, *, org_id: int, signal: AlertSignal,
                    alert: Alert | None, auto_resolve: bool) -> Incident | None:
    ends_at = signal.ends_at or utcnow()
    if alert is None:  # first news of this firing is its resolution (the firing was never sent)
        incident = await open_incident_for_group(session, org_id=org_id,
                                                 group_key=signal.group_key)
        alert = Alert(org_id=org_id, fingerprint=signal.fingerprint, alertname=signal.alertname,
                      status="resolved", severity=signal.labels.get("severity"),
                      service=_fits(service_of({**signal.common_labels, **signal.labels}), 200),
                      group_key=signal.group_key, labels=signal.labels,
                      annotations=signal.annotations, generator_url=signal.generator_url,
                      starts_at=signal.starts_at,
                      incident_id=incident.id if incident else None)
    else:
        incident = (await get_incident(session, org_id=org_id, incident_id=alert.incident_id)
                    if alert.incident_id is not None else None)
    alert.status = "resolved"
    alert.ends_at = ends_at
    alert.updated_at = utcnow()
    session.add(alert)
    if incident is None:
        return None
    assert incident.id is not None
    await session.flush()
    await add_event(session, org_id=org_id, incident_id=incident.id, occurred_at=ends_at,
                    kind="alert_resolved", source="alertmanager",
                    summary=f"resolved: {signal.alertname}",
                    data={"fingerprint": signal.fingerprint},
                    dedupe_key=f"alert:{signal.fingerprint}:{signal.starts_at.isoformat()}:resolved")
    if auto_resolve and incident.state is not IncidentStatus.RESOLVED:
        alerts = await alerts_of_incident(session, org_id=org_id, incident_id=incident.id)
        if alerts and all(a.status == "resolved" for a in alerts):
            last = max(a.ends_at or ends_at for a in alerts)
            if await advance(session, incident=incident, to=IncidentStatus.RESOLVED, at=last,
                             actor="Alertmanager (all alerts resolved)", source="alertmanager"):
                await _status_message(session, incident)
    return incident


def _alert_line(signal: AlertSignal) -> str:
    sev = signal.labels.get("severity")
    summary = signal.annotations.get("summary") or signal.annotations.get("description") or ""
    head = f"{signal.alertname}" + (f" [{sev}]" if sev else "")
    return f"{head}: {summary}" if summary else head


async def _status_message(session: AsyncSession, incident: Incident) -> None:
    assert incident.id is not None
    took = ""
    step = incident.step_time(incident.state)
    if step is not None:
        minutes = max(0, int((step - incident.triggered_at).total_seconds() // 60))
        took = f" after {minutes} min"
    icon = {"acknowledged": "👀", "investigating": "🔎", "mitigated": "🩹", "resolved": "✅"}
    await enqueue_message(
        session, org_id=incident.org_id, incident_id=incident.id,
        key=f"incident:{incident.id}:status:{incident.status}", kind="incident_status",
        text=f"{icon.get(incident.status, '•')} {incident.ref} {incident.status}{took}: "
             f"{incident.title}",
        payload={"incident_id": incident.id, "status": incident.status})


PD_STATUS = {"incident.acknowledged": IncidentStatus.ACKNOWLEDGED,
             "incident.resolved": IncidentStatus.RESOLVED}


async def apply_pagerduty(session: AsyncSession, *, org_id: int, signal: PagerDutySignal
                          ) -> Incident:
    """Apply one PagerDuty event: link or open the incident, move it, note it on the timeline."""
    incident = await incident_for_pagerduty(session, org_id=org_id,
                                            pd_incident_id=signal.incident_id,
                                            incident_key=signal.incident_key)
    opened = incident is None
    if incident is None:
        incident = Incident(org_id=org_id, title=(signal.title or signal.incident_id)[:500],
                            service=signal.service, severity=signal.urgency, source="pagerduty",
                            pagerduty_incident_id=signal.incident_id,
                            pagerduty_url=signal.html_url, triggered_at=signal.occurred_at)
    elif incident.pagerduty_incident_id is None:
        incident.pagerduty_incident_id = signal.incident_id
        incident.pagerduty_url = signal.html_url
    if signal.html_url and not incident.pagerduty_url:
        incident.pagerduty_url = signal.html_url
    session.add(incident)
    await session.flush()
    assert incident.id is not None
    by = signal.agent or "PagerDuty"
    kind, summary, data = _pagerduty_line(signal, by)
    await add_event(session, org_id=org_id, incident_id=incident.id,
                    occurred_at=signal.occurred_at, kind=kind, source="pagerduty",
                    summary=summary, data=data, dedupe_key=f"pagerduty:{signal.event_id}")
    if opened:
        await link_recent_changes(session, incident=incident)
        await enqueue_message(
            session, org_id=org_id, incident_id=incident.id, key=f"incident:{incident.id}:opened",
            kind="incident_opened",
            text=f"🔥 {incident.ref} opened from PagerDuty: {incident.title}",
            payload={"incident_id": incident.id})
    target = PD_STATUS.get(signal.event_type)
    if target is not None and await advance(session, incident=incident, to=target,
                                            at=signal.occurred_at, actor=by, source="pagerduty"):
        await _status_message(session, incident)
    return incident


def _pagerduty_line(signal: PagerDutySignal, by: str) -> tuple[str, str, dict[str, Any]]:
    data: dict[str, Any] = {"event_type": signal.event_type, "agent": signal.agent,
                            "pagerduty_incident_id": signal.incident_id,
                            "html_url": signal.html_url, "assignees": list(signal.assignees)}
    if signal.event_type == "incident.annotated":
        data["note"] = signal.note
        return "note", f"note by {by}: {signal.note or ''}".strip(), data
    verb = signal.event_type.removeprefix("incident.").replace("_", " ")
    return "pagerduty", f"PagerDuty: {verb} by {by}", data
