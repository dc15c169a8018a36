"""What the intake kept out of the channel in a period (knowledge.noise): per alert, how many
firings were judged noise and why (info alone, flapping, chronic, resolved within the hold),
read from the alerts' own noise marks — the digest's "kept quiet" list, worst first."""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.alerts import Alert
from skills.digest.metrics import Period


class Suppressed(BaseModel):
    alertname: str
    where: str  # its service, namespace, node or job — a few words, not its labels
    firings: int
    why: str  # the latest reason it was judged noise


async def suppressed(session: AsyncSession, *, org_id: int, period: Period,
                     limit: int = 10) -> tuple[int, list[Suppressed]]:
    """How many firings were kept out in the period, and the alerts behind most of them."""
    stmt = (select(Alert)
            .where(Alert.org_id == org_id, col(Alert.noise).is_not(None),
                   Alert.starts_at >= period.start, Alert.starts_at < period.end)
            .order_by(col(Alert.starts_at)))
    rows = list((await session.exec(stmt)).all())
    by_alert: dict[tuple[str, str], list[Alert]] = defaultdict(list)
    for alert in rows:
        by_alert[(alert.alertname, _where(alert))].append(alert)
    found = [Suppressed(alertname=name, where=where, firings=len(firings),
                        why=str(firings[-1].noise))
             for (name, where), firings in by_alert.items()]
    found.sort(key=lambda s: (-s.firings, s.alertname, s.where))
    return len(rows), found[:limit]


def _where(alert: Alert) -> str:
    labels = alert.labels or {}
    for key in ("service", "namespace", "node", "instance", "job"):
        if labels.get(key):
            return f"{key} {labels[key]}"
    return ""
