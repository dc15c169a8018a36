"""Noisy alerts: per alert (its name and labels, i.e. its fingerprint), how often it fired in
the period, the share of firings that resolved by themselves within minutes, how often it
flapped (fired again soon after resolving), and the share of firings that never led to an
acknowledged incident — ranked so the worst offenders lead, each with a suggestion and the
rule's link where known.

A firing is one `Alert` row (fingerprint + `startsAt`), so an alert delivered many times counts
once. Times are Alertmanager's own `startsAt`/`endsAt`."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.alerts import Alert
from knowledge.incidents import Incident
from skills.digest.metrics import Period
from skills.types import utc

SELF_RESOLVED = timedelta(minutes=5)  # resolved this soon, unacknowledged: resolved by itself
FLAP_GAP = timedelta(minutes=30)  # fired again this soon after resolving: a flap
VOLATILE = frozenset({"alertname"})  # shown apart, not among the labels


class NoisyAlert(BaseModel):
    alertname: str
    labels: dict[str, str]
    fired: int
    auto_resolved_share: float
    flapping: int  # firings that started within FLAP_GAP of the previous one's end
    unacknowledged_share: float  # firings whose incident was never acknowledged
    noise: float  # the ranking score: fired × how much of it was noise
    suggestion: str
    rule_url: str | None = None
    runbook_url: str | None = None


async def alerts_in(session: AsyncSession, *, org_id: int, period: Period) -> list[Alert]:
    stmt = select(Alert).where(Alert.org_id == org_id, Alert.starts_at >= period.start,
                               Alert.starts_at < period.end)
    return list((await session.exec(stmt.order_by(col(Alert.starts_at)))).all())


async def noisy_alerts(session: AsyncSession, *, org_id: int, period: Period,
                       limit: int = 10) -> list[NoisyAlert]:
    alerts = await alerts_in(session, org_id=org_id, period=period)
    incident_ids = {a.incident_id for a in alerts if a.incident_id is not None}
    incidents: dict[int, Incident] = {}
    if incident_ids:
        rows = await session.exec(select(Incident).where(col(Incident.id).in_(incident_ids)))
        incidents = {i.id: i for i in rows.all() if i.id is not None}
    by_fingerprint: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_fingerprint[alert.fingerprint].append(alert)
    found = [_assess(firings, incidents) for firings in by_fingerprint.values()]
    found = [n for n in found if n.noise > 0]
    return sorted(found, key=lambda n: (-n.noise, -n.fired, n.alertname))[:limit]


def _acknowledged(alert: Alert, incidents: dict[int, Incident]) -> bool:
    incident = incidents.get(alert.incident_id) if alert.incident_id is not None else None
    return incident is not None and incident.acknowledged_at is not None


def _assess(firings: list[Alert], incidents: dict[int, Incident]) -> NoisyAlert:
    firings = sorted(firings, key=lambda a: utc(a.starts_at))
    fired = len(firings)
    self_resolved = sum(
        1 for a in firings if a.ends_at is not None
        and utc(a.ends_at) - utc(a.starts_at) <= SELF_RESOLVED and not _acknowledged(a, incidents))
    flaps = sum(1 for before, after in itertools.pairwise(firings)
                if before.ends_at is not None
                and timedelta(0) <= utc(after.starts_at) - utc(before.ends_at) <= FLAP_GAP)
    unacked = sum(1 for a in firings if not _acknowledged(a, incidents))
    auto_share, unacked_share = self_resolved / fired, unacked / fired
    # Noise: firings nobody needed — resolved by themselves or flapped — and, less strongly,
    # firings nobody acted on.
    noise = round(max(self_resolved, flaps) + 0.5 * unacked * (1 - auto_share), 2)
    last = firings[-1]
    labels: dict[str, Any] = {k: str(v) for k, v in last.labels.items() if k not in VOLATILE}
    return NoisyAlert(
        alertname=last.alertname, labels=labels, fired=fired,
        auto_resolved_share=round(auto_share, 3), flapping=flaps,
        unacknowledged_share=round(unacked_share, 3), noise=noise,
        suggestion=_suggest(fired, auto_share, flaps, unacked_share),
        rule_url=last.generator_url,
        runbook_url=str(last.annotations.get("runbook_url")) if last.annotations.get(
            "runbook_url") else None)


def _suggest(fired: int, auto_share: float, flaps: int, unacked_share: float) -> str:
    if flaps >= 2 or auto_share >= 0.5:
        return (f"raise the rule's `for:` (or smooth the expression): {auto_share:.0%} of its "
                f"{fired} firings resolved by themselves within "
                f"{int(SELF_RESOLVED.total_seconds() // 60)} minutes"
                + (f" and it flapped {flaps} times" if flaps else ""))
    if unacked_share >= 0.9 and fired >= 5:
        return (f"route it elsewhere (a ticket or a dashboard, not a page) or delete it: none of "
                f"its {fired} firings led to an acknowledged incident")
    if unacked_share >= 0.5:
        return (f"change the threshold: {unacked_share:.0%} of its {fired} firings were never "
                "acknowledged")
    return "keep an eye on it: it fires often but people act on it"
