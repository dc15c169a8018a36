"""The timeline view: an incident's events in order with the source's times, and how long it
took to acknowledge, mitigate and resolve — from an incident built by the real intake path."""

from __future__ import annotations

from datetime import timedelta

import pytest

from knowledge.changes import record_change
from knowledge.correlation import apply_alert, apply_pagerduty
from knowledge.db import Database
from knowledge.incidents import IncidentNotFound, IncidentStatus, group_key_hash, transition
from skills.timeline import TimelineView, format_duration, incident_timeline
from tests.knowledge.factories import T0, firing, org_id, paging, resolution


async def _incident(database: Database, *, mitigate: bool = True, resolve: bool = True
                    ) -> tuple[int, int]:
    alert = firing("HighErrorRate", severity="critical")
    key = group_key_hash(alert.group_key)
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await record_change(s, org_id=oid, service="checkout", kind="deploy", version="v2.14.0",
                            previous_version="v2.13.2", author="ci", source="webhook",
                            occurred_at=T0 - timedelta(minutes=10))
        incident = await apply_alert(s, org_id=oid, signal=alert)
        assert incident is not None and incident.id is not None
        await apply_pagerduty(s, org_id=oid, signal=paging("incident.triggered", minutes=1,
                                                           key=key))
        await apply_pagerduty(s, org_id=oid, signal=paging("incident.acknowledged", minutes=4,
                                                           key=key))
        await apply_pagerduty(s, org_id=oid, signal=paging("incident.annotated", minutes=6,
                                                           key=key, note="rolling back"))
        if mitigate:
            await transition(s, incident=incident, to=IncidentStatus.MITIGATED,
                             at=T0 + timedelta(minutes=20), actor="Ana", source="slack")
        if resolve:
            await apply_alert(s, org_id=oid, signal=resolution(alert, minutes=42))
        return oid, incident.id


async def test_events_in_order_and_times_from_the_trigger(database: Database) -> None:
    oid, iid = await _incident(database)
    async with database.session() as s:
        view = await incident_timeline(s, org_id=oid, incident_id=iid)
    assert isinstance(view, TimelineView)
    assert (view.ref, view.title, view.status) == (f"INC-{iid}", "HighErrorRate is firing",
                                                   "resolved")
    assert view.service == "checkout" and view.triggered_at == T0
    assert [(e.at - T0, e.kind, e.source) for e in view.events] == [
        (timedelta(minutes=-10), "deploy", "webhook"),
        (timedelta(0), "alert_fired", "alertmanager"),
        (timedelta(minutes=1), "pagerduty", "pagerduty"),
        # PagerDuty's "acknowledged by Ana" is the status change below: one row, not two.
        (timedelta(minutes=4), "status_changed", "pagerduty"),
        (timedelta(minutes=6), "note", "pagerduty"),
        (timedelta(minutes=20), "status_changed", "slack"),
        (timedelta(minutes=42), "alert_resolved", "alertmanager"),
        (timedelta(minutes=42), "status_changed", "alertmanager"),
    ]
    assert view.events[0].summary == "Deploy checkout v2.13.2 → v2.14.0 by ci"
    assert view.events[4].summary == "note by Ana: rolling back"
    assert view.time_to_acknowledge == timedelta(minutes=4)
    assert view.time_to_mitigate == timedelta(minutes=20)
    assert view.time_to_resolve == timedelta(minutes=42)
    assert [format_duration(d) for d in (view.time_to_acknowledge, view.time_to_mitigate,
                                         view.time_to_resolve)] == ["4m 00s", "20m 00s",
                                                                    "42m 00s"]


async def test_open_incident_has_no_resolve_time(database: Database) -> None:
    oid, iid = await _incident(database, mitigate=False, resolve=False)
    async with database.session() as s:
        view = await incident_timeline(s, org_id=oid, incident_id=iid)
    assert view.status == "acknowledged"
    assert view.time_to_acknowledge == timedelta(minutes=4)
    assert view.time_to_mitigate is None and view.time_to_resolve is None


async def test_resolved_without_mitigation_step_counts_resolution(database: Database) -> None:
    oid, iid = await _incident(database, mitigate=False)
    async with database.session() as s:
        view = await incident_timeline(s, org_id=oid, incident_id=iid)
    assert view.time_to_mitigate == view.time_to_resolve == timedelta(minutes=42)
    assert not view.mitigated  # so the chat says no "mitigated after" for what never was


async def test_another_orgs_incident_is_not_found(database: Database) -> None:
    _, iid = await _incident(database)
    async with database.session() as s, s.begin():
        other = await org_id(s, "globex")
    async with database.session() as s:
        with pytest.raises(IncidentNotFound):
            await incident_timeline(s, org_id=other, incident_id=iid)


@pytest.mark.parametrize(("td", "text"), [
    (timedelta(0), "0s"), (timedelta(seconds=45.9), "45s"), (timedelta(minutes=4), "4m 00s"),
    (timedelta(minutes=9, seconds=7), "9m 07s"), (timedelta(minutes=65), "1h 05m"),
    (timedelta(hours=23, minutes=59, seconds=59), "23h 59m"),
    (timedelta(days=1, hours=2, minutes=3), "1d 02h"), (timedelta(minutes=-4), "-4m 00s"),
])
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text
