"""Factories for knowledge-level tests: orgs and alert/paging signals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.correlation import AlertSignal, PagerDutySignal
from knowledge.orgs import ensure_org

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
