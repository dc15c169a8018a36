"""People correct the correlation: merge an incident into another (its alerts move there, it
resolves pointing at it — no orphan card) or split alerts off into a new incident. Both are
recorded on both timelines and queue the messages that refresh the cards and post the new one.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.alerts import Alert, alerts_of_incident
from knowledge.incidents import Incident, IncidentStatus, advance, group_key_hash
from knowledge.outbox import enqueue_message
from knowledge.relate import Related
from knowledge.timeline import add_event
from knowledge.types import utcnow


class CannotMerge(ValueError):
    """A merge or split that makes no sense; the message says why."""


def _combined(a: Incident, b: Incident) -> dict[str, object]:
    ra, rb = Related.from_json(a.related), Related.from_json(b.related)
    for part in Related.PARTS:
        getattr(ra, part).update(getattr(rb, part))
    whys = list(dict.fromkeys([*a.related.get("why", []), *b.related.get("why", [])]))
    return {**ra.to_json(), "why": whys[-5:]}


async def merge(session: AsyncSession, *, source: Incident, into: Incident, by: str
                ) -> None:
    """Move `source`'s alerts to `into`; `source` resolves, pointing at `into`."""
    if source.id is None or into.id is None or source.id == into.id:
        raise CannotMerge(f"{source.ref} cannot be merged into itself")
    if source.org_id != into.org_id:
        raise CannotMerge(f"{into.ref} is not in this org")
    if source.merged_into_id is not None:
        raise CannotMerge(f"{source.ref} is already merged into INC-{source.merged_into_id}")
    if into.merged_into_id is not None:
        raise CannotMerge(f"{into.ref} was merged into INC-{into.merged_into_id}: merge into "
                          "that one")
    await _move(session, source=source, into=into, by=by, now=utcnow())
    for incident, says in ((source, f"merged into {into.ref}"),
                           (into, f"{source.ref} merged into it")):
        await enqueue_message(
            session, org_id=incident.org_id, incident_id=incident.id,
            key=f"incident:{incident.id}:merge:{source.id}:{into.id}", kind="incident_status",
            text=f"🔗 {incident.ref} {says} by {by}",
            payload={"incident_id": incident.id, "status": incident.status})


async def join_before_its_card(session: AsyncSession, *, source: Incident, into: Incident,
                               alerts: list[Alert], now: datetime) -> None:
    """The copilot's own merge of an incident whose card was never posted (it was waiting to
    be confirmed) into the incident its alerts turned out to belong to: recorded on both
    timelines like a person's merge, but no card is told, for `source` has none."""
    await _move(session, source=source, into=into, by="copilot", now=now, moved=alerts)
    source.reason = f"joined {into.ref} before its card was due: its alerts tie to it"
    source.unconfirmed_until = None  # its card is never due now
    session.add(source)


async def _move(session: AsyncSession, *, source: Incident, into: Incident, by: str,
                now: datetime, moved: list[Alert] | None = None) -> list[Alert]:
    """`source`'s alerts (`moved`, read if not given) go to `into`; `source` resolves,
    pointing at `into`; both timelines say so."""
    assert source.id is not None and into.id is not None
    if moved is None:
        moved = await alerts_of_incident(session, org_id=source.org_id, incident_id=source.id)
    for alert in moved:
        alert.incident_id = into.id
        session.add(alert)
    into.related = _combined(into, source)
    into.triggered_at = min(into.triggered_at, source.triggered_at)
    if source.last_alert_at and (into.last_alert_at is None
                                 or source.last_alert_at > into.last_alert_at):
        into.last_alert_at = source.last_alert_at
    into.reason = (f"{into.reason or ''} — merged with {source.ref} by {by}").strip(" —")[:2000]
    into.updated_at = now
    source.merged_into_id = into.id
    source.reason = f"merged into {into.ref} by {by}"
    session.add_all([into, source])
    await session.flush()
    await add_event(session, org_id=into.org_id, incident_id=into.id, occurred_at=now,
                    kind="note", source="copilot",
                    summary=f"{source.ref} merged into this incident by {by} "
                            f"({len(moved)} alert{'s' if len(moved) != 1 else ''} moved here)",
                    data={"merged": source.id, "by": by},
                    dedupe_key=f"merge:{source.id}:{into.id}")
    await add_event(session, org_id=source.org_id, incident_id=source.id, occurred_at=now,
                    kind="note", source="copilot",
                    summary=f"merged into {into.ref} by {by}: follow it there",
                    data={"merged_into": into.id, "by": by},
                    dedupe_key=f"merged-into:{source.id}:{into.id}")
    if source.state is not IncidentStatus.RESOLVED:
        await advance(session, incident=source, to=IncidentStatus.RESOLVED, at=now,
                      actor=f"{by} (merged into {into.ref})", source="copilot")
    return moved


async def split(session: AsyncSession, *, source: Incident, alertname: str, by: str
                ) -> Incident:
    """Move the alerts named `alertname` off `source` into a new incident, posted like any."""
    if source.id is None:
        raise CannotMerge("nothing to split")
    alerts = await alerts_of_incident(session, org_id=source.org_id, incident_id=source.id)
    leaving = [a for a in alerts if a.alertname.lower() == alertname.strip().lower()]
    names = sorted({a.alertname for a in alerts})
    if not leaving:
        raise CannotMerge(f"{source.ref} has no {alertname} alert; its alerts: "
                          f"{', '.join(names) or 'none'}")
    if len(leaving) == len(alerts):
        raise CannotMerge(f"every alert of {source.ref} is {alertname}: nothing would stay")
    first = min(leaving, key=lambda a: a.starts_at)
    new = Incident(org_id=source.org_id, title=f"{first.alertname} (split from {source.ref})",
                   service=source.service, severity=first.severity, source="alertmanager",
                   group_key=first.group_key, group_key_hash=group_key_hash(first.group_key or ""),
                   labels=dict(first.labels), triggered_at=first.starts_at,
                   last_alert_at=max(a.starts_at for a in leaving),
                   reason=f"split from {source.ref} by {by}: {len(leaving)} {first.alertname} "
                          f"alert{'s' if len(leaving) != 1 else ''}")
    session.add(new)
    await session.flush()
    assert new.id is not None
    await enqueue_message(session, org_id=new.org_id, incident_id=new.id,
                          key=f"incident:{new.id}:opened", kind="incident_opened",
                          text=f"🔥 {new.ref} opened: {new.title}",
                          payload={"incident_id": new.id})
    await split_off(session, source=source, into=new, alerts=leaving, what=first.alertname,
                    by=by)
    return new


async def split_off(session: AsyncSession, *, source: Incident, into: Incident,
                    alerts: list[Alert], what: str, by: str) -> None:
    """Move `alerts` off `source` into `into` (a person's split, or the copilot's when they
    turn out to have a cause of their own); both timelines say so, and `source`'s card."""
    assert into.id is not None
    for alert in alerts:
        alert.incident_id = into.id
        session.add(alert)
    # Its count and first alert are counted again at its next alert.
    source.related = {k: v for k, v in source.related.items() if k not in ("alerts", "first")}
    session.add(source)
    await _record_split(session, source=source, new=into, alertname=what, by=by,
                        moved=len(alerts))
    await enqueue_message(session, org_id=source.org_id, incident_id=source.id,
                          key=f"incident:{source.id}:split:{into.id}", kind="incident_status",
                          text=f"✂️ {what} split off {source.ref} into {into.ref} by {by}",
                          payload={"incident_id": source.id, "status": source.status})


async def _record_split(session: AsyncSession, *, source: Incident, new: Incident,
                        alertname: str, by: str, moved: int) -> None:
    assert source.id is not None and new.id is not None
    when = utcnow()
    for incident, says, key in (
            (source, f"{moved} {alertname} alert(s) split off into {new.ref} by {by}",
             f"split:{source.id}:{new.id}"),
            (new, f"split from {source.ref} by {by}", f"split-from:{source.id}:{new.id}")):
        await add_event(session, org_id=incident.org_id, incident_id=incident.id or 0,
                        occurred_at=when, kind="note", source="copilot", summary=says,
                        data={"from": source.id, "to": new.id, "by": by}, dedupe_key=key)


async def suggested_target(session: AsyncSession, incident: Incident) -> Incident | None:
    """The open incident the correlation thought this one may belong to, if any."""
    target = incident.related.get("maybe_same") if incident.related else None
    if not target or incident.merged_into_id is not None:
        return None
    stmt = select(Incident).where(Incident.org_id == incident.org_id,
                                  col(Incident.id) == int(target),
                                  col(Incident.merged_into_id).is_(None))
    return (await session.exec(stmt)).first()
