"""The incident state machine: legal moves record their time and a timeline line; illegal ones
are refused with an error that says what is allowed; source reports only move forward."""

from __future__ import annotations

from datetime import timedelta

import pytest

from knowledge.db import Database
from knowledge.incidents import (
    IllegalTransition,
    Incident,
    IncidentStatus,
    advance,
    get_incident,
    transition,
)
from knowledge.timeline import list_events
from tests.knowledge.factories import T0, org_id


async def _incident(db: Database) -> tuple[int, int]:
    async with db.session() as s, s.begin():
        oid = await org_id(s)
        inc = Incident(org_id=oid, title="checkout errors", source="manual", triggered_at=T0)
        s.add(inc)
        await s.flush()
        assert inc.id is not None
        return oid, inc.id


async def test_forward_moves_record_each_step(database: Database) -> None:
    oid, iid = await _incident(database)
    steps = [IncidentStatus.ACKNOWLEDGED, IncidentStatus.INVESTIGATING,
             IncidentStatus.MITIGATED, IncidentStatus.RESOLVED]
    async with database.session() as s, s.begin():
        inc = await get_incident(s, org_id=oid, incident_id=iid)
        for i, step in enumerate(steps, start=1):
            await transition(s, incident=inc, to=step, at=T0 + timedelta(minutes=i),
                             actor="ana", source="slack")
    async with database.session() as s:
        inc = await get_incident(s, org_id=oid, incident_id=iid)
        assert inc.status == "resolved"
        assert inc.acknowledged_at == T0 + timedelta(minutes=1)
        assert inc.investigating_at == T0 + timedelta(minutes=2)
        assert inc.mitigated_at == T0 + timedelta(minutes=3)
        assert inc.resolved_at == T0 + timedelta(minutes=4)
        events = await list_events(s, org_id=oid, incident_id=iid)
    assert [e.summary for e in events] == [
        "triggered → acknowledged by ana", "acknowledged → investigating by ana",
        "investigating → mitigated by ana", "mitigated → resolved by ana"]


async def test_illegal_transition_is_refused_with_what_is_allowed(database: Database) -> None:
    oid, iid = await _incident(database)
    async with database.session() as s, s.begin():
        inc = await get_incident(s, org_id=oid, incident_id=iid)
        await transition(s, incident=inc, to=IncidentStatus.MITIGATED, at=T0, actor="a",
                         source="slack")
        with pytest.raises(IllegalTransition) as err:
            await transition(s, incident=inc, to=IncidentStatus.ACKNOWLEDGED, at=T0, actor="a",
                             source="slack")
    assert str(err.value) == (f"INC-{iid} is mitigated; it cannot move to acknowledged "
                              "(allowed from mitigated: investigating, resolved)")
    async with database.session() as s, s.begin():
        inc = await get_incident(s, org_id=oid, incident_id=iid)
        assert inc.status == "mitigated"
        await transition(s, incident=inc, to=IncidentStatus.RESOLVED, at=T0, actor="a",
                         source="slack")
        with pytest.raises(IllegalTransition, match="allowed from resolved: none"):
            await transition(s, incident=inc, to=IncidentStatus.INVESTIGATING, at=T0,
                             actor="a", source="slack")


async def test_mitigation_that_did_not_hold_goes_back_to_investigating(database: Database
                                                                        ) -> None:
    oid, iid = await _incident(database)
    async with database.session() as s, s.begin():
        inc = await get_incident(s, org_id=oid, incident_id=iid)
        await transition(s, incident=inc, to=IncidentStatus.MITIGATED, at=T0, actor="a",
                         source="slack")
        await transition(s, incident=inc, to=IncidentStatus.INVESTIGATING, at=T0, actor="a",
                         source="slack")
        assert inc.status == "investigating"


async def test_source_reports_only_move_forward(database: Database) -> None:
    oid, iid = await _incident(database)
    async with database.session() as s, s.begin():
        inc = await get_incident(s, org_id=oid, incident_id=iid)
        assert await advance(s, incident=inc, to=IncidentStatus.RESOLVED, at=T0, actor="pd",
                             source="pagerduty") is not None
        # A late "acknowledged" arriving after the resolution changes nothing.
        assert await advance(s, incident=inc, to=IncidentStatus.ACKNOWLEDGED, at=T0,
                             actor="pd", source="pagerduty") is None
        assert inc.status == "resolved"
        assert inc.acknowledged_at is None
