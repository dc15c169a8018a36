"""Factories for knowledge-level tests: orgs and alert/paging signals."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.correlation import AlertSignal, Intake, PagerDutySignal, apply_alert
from knowledge.db import Database
from knowledge.incidents import Incident, IncidentStatus, incidents_with_alerts
from knowledge.orgs import ensure_org
from knowledge.outbox import messages

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


async def org_id(session: AsyncSession, slug: str = "acme") -> int:
    org = await ensure_org(session, slug=slug)
    await session.flush()
    assert org.id is not None
    return org.id


def firing(name: str, *, group: str = "g1", fp: str | None = None, minutes: float = 0,
           severity: str = "warning", service: str = "checkout") -> AlertSignal:
    return AlertSignal(group_key=group, fingerprint=fp or f"{group}-{name}", status="firing",
                       labels={"alertname": name, "service": service, "severity": severity},
                       annotations={"summary": f"{name} is firing"},
                       starts_at=T0 + timedelta(minutes=minutes), ends_at=None)


def in_namespace(name: str, at: float, namespace: str, severity: str = "warning",
                 **labels: str) -> AlertSignal:
    """A firing alert `at` seconds after T0, grouped as kube-prometheus groups (by namespace),
    its fingerprint from its labels."""
    full = {"alertname": name, "severity": severity, "namespace": namespace, **labels}
    return AlertSignal(group_key=f'{{}}:{{namespace="{namespace}"}}',
                       fingerprint=hashlib.sha256(repr(sorted(full.items())).encode())
                       .hexdigest()[:16], status="firing",
                       labels=full, annotations={}, starts_at=T0 + timedelta(seconds=at),
                       ends_at=None)


async def apply_each(session: AsyncSession, oid: int, signals: list[AlertSignal], *,
                     now: float, intake: Intake) -> list[Incident | None]:
    """Each signal received `now` seconds after T0 and placed as it arrives (a warning past
    its hold): the incident each is on (None while it is held)."""
    return [await apply_alert(session, org_id=oid, signal=x, intake=intake,
                              now=T0 + timedelta(seconds=now)) for x in signals]


def resolution(signal: AlertSignal, *, minutes: float) -> AlertSignal:
    return AlertSignal(group_key=signal.group_key, fingerprint=signal.fingerprint,
                       status="resolved", labels=signal.labels, annotations=signal.annotations,
                       starts_at=signal.starts_at, ends_at=T0 + timedelta(minutes=minutes))


def paging(event_type: str, *, minutes: float, pd_id: str = "PABC123", key: str | None = None,
           agent: str | None = "Ana", event_id: str | None = None, note: str | None = None
           ) -> PagerDutySignal:
    return PagerDutySignal(event_id=event_id or f"{event_type}-{minutes}", event_type=event_type,
                           occurred_at=T0 + timedelta(minutes=minutes), incident_id=pd_id,
                           incident_key=key, title="Checkout is down", service="checkout",
                           urgency="high", agent=agent, note=note,
                           html_url=f"https://acme.pagerduty.com/incidents/{pd_id}")


async def merged_away(database: Database, oid: int, *, source: int, into: int
                      ) -> tuple[Incident, list[str], list[str]]:
    """After `source` was merged into `into`: `into`, its alerts' names (sorted) and the
    cards' status lines — once checked that `source` holds nothing, resolved, and points
    there."""
    async with database.session() as s:
        listed = {i.id: (i, sorted(a.alertname for a in alerts))
                  for i, alerts in await incidents_with_alerts(s, org_id=oid)}
        said = [m.text for m in await messages(s, org_id=oid) if m.kind == "incident_status"]
    gone, names = listed[source]
    assert gone.merged_into_id == into and names == []
    assert gone.state is IncidentStatus.RESOLVED  # its card points at the other's
    return (*listed[into], said)
