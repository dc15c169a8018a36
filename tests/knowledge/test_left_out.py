"""A firing Alertmanager stops listing: kube-prometheus' inhibit rule mutes a warning while its
critical fires, and Alertmanager then leaves the warning out of the group's notifications — it
never says it resolved, even when it ends while muted (checked against Alertmanager 0.25). The
copilot takes a left-out firing as ended, as firing again if a later notification lists it,
and joins a claim's critical to the incident its warning opened however long after."""

from __future__ import annotations

from dataclasses import replace

from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.alerts import list_alerts
from knowledge.correlation import AlertSignal, apply_listing, confirm_due
from knowledge.db import Database
from knowledge.incidents import IncidentStatus, incidents_with_alerts
from knowledge.timeline import list_events
from knowledge.types import utcnow
from tests.knowledge.factories import org_id
from tests.knowledge.test_noise_intake import INTAKE, _apply, _t, alert

CLAIM = {"persistentvolumeclaim": "data-minio-0", "job": "kubelet",
         "node": "ip-10-0-2-12.ec2.internal"}
HOUR = 3600.0


def filling(severity: str, at: float, **kw: object) -> AlertSignal:
    made = alert("KubePersistentVolumeFillingUp", at=at, severity=severity, namespace="media",
                 **CLAIM, **kw)  # type: ignore[arg-type]
    return replace(made, fingerprint=f"data-minio-0-{severity}")  # as Alertmanager's: by labels


async def _notified(s: AsyncSession, oid: int, listed: list[AlertSignal], *, now: float,
                    process: list[AlertSignal] | None = None) -> None:
    """One notification of the media group, as the inbox worker applies it: what it lists
    (relist step), its new alerts, then what it left out (leave_out step)."""
    shown = [(a.fingerprint, a.starts_at, a.status) for a in listed]
    received = utcnow()
    await apply_listing(s, org_id=oid, group_key=listed[0].group_key, listed=shown,
                        received_at=received, step="relist", intake=INTAKE)
    for a in process if process is not None else listed:
        await _apply(s, oid, a, now=now)
    await apply_listing(s, org_id=oid, group_key=listed[0].group_key, listed=shown,
                        received_at=received, step="leave_out", intake=INTAKE)


async def test_a_warning_its_critical_muted_and_that_ended_muted_does_not_hold_it_open(
        database: Database) -> None:
    warning, critical = filling("warning", 0), filling("critical", 35 * 60)
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await _notified(s, oid, [warning], now=HOUR)  # received late: not held
        await confirm_due(s, now=_t(2 * HOUR))
        # 35 min on, the claim is nearly full: Alertmanager lists the critical only.
        await _notified(s, oid, [critical], now=2 * HOUR)
        [(incident, alerts)] = await incidents_with_alerts(s, org_id=oid)
        assert sorted((a.severity, a.status) for a in alerts) == [
            ("critical", "firing"), ("warning", "resolved")]
        assert incident.state is not IncidentStatus.RESOLVED
        assert incident.id is not None
        said = [e.summary for e in await list_events(s, org_id=oid, incident_id=incident.id)]
        assert any("left out by Alertmanager" in line for line in said), said
        # The critical resolves; the warning ended while muted and is never listed again.
        await _notified(s, oid, [filling("critical", 35 * 60, status="resolved",
                                         ends=3 * HOUR)], now=3 * HOUR)
        [(incident, _)] = await incidents_with_alerts(s, org_id=oid)
        assert incident.state is IncidentStatus.RESOLVED


async def test_a_muted_warning_listed_again_keeps_its_incident_open(database: Database) -> None:
    warning, critical = filling("warning", 0), filling("critical", 35 * 60)
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await _notified(s, oid, [warning], now=HOUR)
        await confirm_due(s, now=_t(2 * HOUR))
        await _notified(s, oid, [critical], now=2 * HOUR)
        # The critical resolves while the warning still fires: listed again, in the same
        # notification that says the critical resolved.
        ended = filling("critical", 35 * 60, status="resolved", ends=3 * HOUR)
        await _notified(s, oid, [ended, warning], now=3 * HOUR, process=[ended])
        [(incident, alerts)] = await incidents_with_alerts(s, org_id=oid)
        assert incident.state is not IncidentStatus.RESOLVED
        assert sorted((a.severity, a.status) for a in alerts) == [
            ("critical", "resolved"), ("warning", "firing")]
        await _notified(s, oid, [filling("warning", 0, status="resolved", ends=4 * HOUR)],
                        now=4 * HOUR)
        [(incident, _)] = await incidents_with_alerts(s, org_id=oid)
        assert incident.state is IncidentStatus.RESOLVED
        assert incident.id is not None
        said = [e.summary for e in await list_events(s, org_id=oid, incident_id=incident.id)]
        # Left out, listed again, then really resolved: the timeline tells all three.
        assert sorted(line for line in said if "KubePersistentVolumeFillingUp" in line
                      and ("left out" in line or "again" in line
                           or line.startswith("resolved"))) \
            == ["left out by Alertmanager (muted, or ended while muted): "
                "KubePersistentVolumeFillingUp",
                "listed firing again by Alertmanager: KubePersistentVolumeFillingUp",
                "resolved: KubePersistentVolumeFillingUp",
                "resolved: KubePersistentVolumeFillingUp"]


async def test_an_alert_the_copilot_had_not_seen_before_the_notification_is_not_left_out(
        database: Database) -> None:
    """A later notification's first alert can be applied before an earlier listing (it goes
    ahead of a backlog): the earlier listing does not judge it."""
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        before = utcnow()
        await _apply(s, oid, filling("critical", 0), now=60)
        await apply_listing(s, org_id=oid, group_key=filling("warning", 0).group_key,
                            listed=[], received_at=before, step="leave_out", intake=INTAKE)
        assert [a.status for a in await list_alerts(s, org_id=oid)] == ["firing"]
