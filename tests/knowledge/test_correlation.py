"""Alerts and pages become incidents: alerts that share a subject join one, re-fires join,
resolution follows the alerts, PagerDuty links by dedup key, and redelivered or late signals
change nothing. (Correlation across groups and noise: test_noise_intake.py.)"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from knowledge.alerts import alerts_of_incident, list_alerts
from knowledge.correlation import AlertSignal, apply_alert, apply_pagerduty
from knowledge.db import Database
from knowledge.incidents import list_incidents
from knowledge.outbox import messages
from knowledge.timeline import list_events
from tests.knowledge.factories import T0, firing, org_id, paging, resolution


async def test_one_incident_per_group_and_refires_join(database: Database) -> None:
    errors = firing("HighErrorRate", severity="warning")
    latency = firing("HighLatency", minutes=1, severity="critical")
    other = firing("DiskFull", group="g2", service="db")
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        first = await apply_alert(s, org_id=oid, signal=errors)
        second = await apply_alert(s, org_id=oid, signal=latency)
        third = await apply_alert(s, org_id=oid, signal=other)
        again = await apply_alert(s, org_id=oid, signal=errors)  # redelivered
    assert first is not None and second is not None and third is not None and again is not None
    assert first.id == second.id == again.id != third.id
    async with database.session() as s:
        incidents = await list_incidents(s, org_id=oid)
        assert len(incidents) == 2
        checkout = next(i for i in incidents if i.id == first.id)
        assert checkout.title == "HighErrorRate is firing"
        assert checkout.service == "checkout"
        assert checkout.severity == "critical"  # raised by the worse alert that joined
        assert checkout.triggered_at == T0
        assert len(await alerts_of_incident(s, org_id=oid, incident_id=checkout.id)) == 2
        events = await list_events(s, org_id=oid, incident_id=checkout.id)
        assert [e.kind for e in events] == ["alert_fired", "alert_fired"]
        opened = await messages(s, org_id=oid, incident_id=checkout.id)
        assert [m.kind for m in opened] == ["incident_opened"]


async def test_incident_resolves_when_all_its_alerts_have(database: Database) -> None:
    a, b = firing("HighErrorRate"), firing("HighLatency", minutes=1)
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        inc = await apply_alert(s, org_id=oid, signal=a)
        await apply_alert(s, org_id=oid, signal=b)
        await apply_alert(s, org_id=oid, signal=resolution(a, minutes=10))
        assert inc is not None and inc.status == "triggered"  # b still fires
        await apply_alert(s, org_id=oid, signal=resolution(b, minutes=12))
        assert inc.status == "resolved"
        assert inc.resolved_at == T0 + timedelta(minutes=12)  # the source's time, not now
        assert inc.id is not None
        kinds = [m.kind for m in await messages(s, org_id=oid, incident_id=inc.id)]
    assert kinds == ["incident_opened", "incident_status"]


async def test_auto_resolve_can_be_turned_off(database: Database) -> None:
    a = firing("HighErrorRate")
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        inc = await apply_alert(s, org_id=oid, signal=a)
        await apply_alert(s, org_id=oid, signal=resolution(a, minutes=5), auto_resolve=False)
        assert inc is not None and inc.status == "triggered"
        [alert] = await list_alerts(s, org_id=oid)
        assert alert.status == "resolved" and alert.ends_at == T0 + timedelta(minutes=5)


async def test_a_new_firing_after_resolution_opens_a_new_incident(database: Database) -> None:
    a = firing("HighErrorRate")
    later = firing("HighErrorRate", minutes=90)  # same alert, a new firing (new startsAt)
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        first = await apply_alert(s, org_id=oid, signal=a)
        # It lasted half an hour (no flap), and fired a third of the time since (not chronic).
        await apply_alert(s, org_id=oid, signal=resolution(a, minutes=30))
        second = await apply_alert(s, org_id=oid, signal=later)
    assert first is not None and second is not None
    assert first.id != second.id
    assert first.status == "resolved" and second.status == "triggered"


async def test_resolution_arriving_before_its_firing(database: Database) -> None:
    a = firing("HighErrorRate")
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        assert await apply_alert(s, org_id=oid, signal=resolution(a, minutes=3)) is None
        # The late firing finds the alert already resolved: it opens no incident that
        # would never resolve, and the alert stays resolved.
        assert await apply_alert(s, org_id=oid, signal=a) is None
        [alert] = await list_alerts(s, org_id=oid)
        assert await list_incidents(s, org_id=oid) == []
    assert alert.status == "resolved" and alert.ends_at == T0 + timedelta(minutes=3)


async def test_pagerduty_joins_the_alertmanager_incident_by_dedup_key(database: Database
                                                                       ) -> None:
    a = firing("HighErrorRate", group='{}:{service="checkout"}')
    key = hashlib.sha256(b'{}:{service="checkout"}').hexdigest()
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        inc = await apply_alert(s, org_id=oid, signal=a)
        pd1 = await apply_pagerduty(s, org_id=oid, signal=paging("incident.triggered",
                                                                   minutes=1, key=key))
        pd2 = await apply_pagerduty(s, org_id=oid, signal=paging("incident.acknowledged",
                                                                   minutes=4, key=key))
        await apply_pagerduty(s, org_id=oid, signal=paging(
            "incident.annotated", minutes=6, key=None, note="rolling back v2.14"))
        # Redelivery of the same PagerDuty event adds nothing.
        await apply_pagerduty(s, org_id=oid, signal=paging("incident.acknowledged",
                                                             minutes=4, key=key))
    assert inc is not None and inc.id is not None
    assert pd1.id == pd2.id == inc.id
    async with database.session() as s:
        [only] = await list_incidents(s, org_id=oid)
        assert only.pagerduty_incident_id == "PABC123"
        assert only.status == "acknowledged"
        assert only.acknowledged_at == T0 + timedelta(minutes=4)
        events = await list_events(s, org_id=oid, incident_id=inc.id)
    assert [(e.kind, e.summary) for e in events] == [
        ("alert_fired", "HighErrorRate [warning]: HighErrorRate is firing"),
        ("pagerduty", "PagerDuty: triggered by Ana"),
        ("pagerduty", "PagerDuty: acknowledged by Ana"),
        ("status_changed", "triggered → acknowledged by Ana"),
        ("note", "note by Ana: rolling back v2.14"),
    ]


async def test_pagerduty_only_incident(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        inc = await apply_pagerduty(s, org_id=oid, signal=paging("incident.triggered",
                                                                   minutes=0, pd_id="PXYZ"))
        await apply_pagerduty(s, org_id=oid, signal=paging("incident.resolved", minutes=30,
                                                             pd_id="PXYZ"))
    assert inc.source == "pagerduty" and inc.title == "Checkout is down"
    assert inc.status == "resolved" and inc.acknowledged_at is None
    assert inc.resolved_at == T0 + timedelta(minutes=30)


async def test_incident_starts_with_its_earliest_alert_whatever_the_order(database: Database
                                                                          ) -> None:
    later, earlier = firing("B", minutes=5), firing("A", minutes=-3)
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        inc = await apply_alert(s, org_id=oid, signal=later)
        await apply_alert(s, org_id=oid, signal=earlier)
    assert inc is not None and inc.triggered_at == T0 - timedelta(minutes=3)


def _node_alert(name: str, **labels: str) -> AlertSignal:
    return AlertSignal(group_key=f"g-{name}", fingerprint=f"fp-{name}", status="firing",
                       labels={"alertname": name, **labels}, annotations={},
                       starts_at=T0, ends_at=None)


async def test_an_incident_is_named_after_what_its_alert_is_about(database: Database) -> None:
    """Not the job that scraped it: the filesystem on its host, the pod, the target."""
    disk = _node_alert("NodeFilesystemAlmostOutOfSpace", job="node-exporter",
                       instance="10.0.0.7:9100", mountpoint="/var/lib/kafka", device="sdb",
                       fstype="ext4", severity="critical", namespace="monitoring",
                       pod="node-exporter-x2k9f", service="node-exporter")
    down = _node_alert("TargetDown", job="redis", namespace="default", severity="warning")
    pod = _node_alert("KubePodCrashLooping", job="kube-state-metrics", namespace="shop",
                      pod="cart-7d9f-xk2", container="cart", severity="warning",
                      service="kube-state-metrics")
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        a = await apply_alert(s, org_id=oid, signal=disk)
        b = await apply_alert(s, org_id=oid, signal=down)
        c = await apply_alert(s, org_id=oid, signal=pod)
    assert a is not None and b is not None and c is not None
    assert a.service == "filesystem /var/lib/kafka on 10.0.0.7:9100"
    assert a.title == "NodeFilesystemAlmostOutOfSpace on filesystem /var/lib/kafka on " \
                      "10.0.0.7:9100"
    assert b.service == "scrape job redis in default"
    assert c.service == "container cart of pod shop/cart-7d9f-xk2"


async def test_heartbeat_alerts_open_no_incident(database: Database) -> None:
    """kube-prometheus's Watchdog fires all the time on purpose, InfoInhibitor too."""
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        for name, severity in (("Watchdog", "none"), ("InfoInhibitor", "none"),
                               ("SomethingQuiet", "none")):
            assert await apply_alert(s, org_id=oid, signal=_node_alert(
                name, severity=severity)) is None
        assert await list_incidents(s, org_id=oid) == []
