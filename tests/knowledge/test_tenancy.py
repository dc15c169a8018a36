"""Every tenant-owned query filters by org: one org cannot read another's incidents, alerts,
timeline, hypotheses, threads or messages."""

from __future__ import annotations

import pytest

from knowledge.alerts import alerts_of_incident, list_alerts
from knowledge.correlation import apply_alert
from knowledge.db import Database
from knowledge.hypotheses import (
    HypothesisNotFound,
    HypothesisStatus,
    add_hypothesis,
    list_hypotheses,
    record_feedback,
)
from knowledge.incidents import IncidentNotFound, get_incident, list_incidents
from knowledge.orgs import Org, org_for_slack_team, org_for_teams_tenant
from knowledge.outbox import messages
from knowledge.threads import incident_of_thread, link_thread
from knowledge.timeline import list_events
from tests.knowledge.factories import firing, org_id


async def test_one_org_cannot_read_another(database: Database) -> None:
    async with database.session() as s, s.begin():
        acme, globex = await org_id(s, "acme"), await org_id(s, "globex")
        incident = await apply_alert(s, org_id=acme, signal=firing("HighErrorRate"))
        assert incident is not None and incident.id is not None
        iid = incident.id
        hyp = await add_hypothesis(s, org_id=acme, incident_id=iid, statement="bad deploy",
                                   confidence=0.7, evidence=[{"source": "prometheus"}])
        await link_thread(s, org_id=acme, incident_id=iid, platform="slack", workspace_id="T1",
                          channel_id="C1")
    async with database.session() as s:
        assert [i.id for i in await list_incidents(s, org_id=acme)] == [iid]
        assert len(await alerts_of_incident(s, org_id=acme, incident_id=iid)) == 1
        assert len(await list_events(s, org_id=acme, incident_id=iid)) == 1
        # The other org sees nothing of it, even when it names the ids.
        with pytest.raises(IncidentNotFound):
            await get_incident(s, org_id=globex, incident_id=iid)
        assert await list_incidents(s, org_id=globex) == []
        assert await list_alerts(s, org_id=globex) == []
        assert await alerts_of_incident(s, org_id=globex, incident_id=iid) == []
        assert await list_events(s, org_id=globex, incident_id=iid) == []
        assert await list_hypotheses(s, org_id=globex, incident_id=iid) == []
        assert await messages(s, org_id=globex, incident_id=iid) == []
        assert await incident_of_thread(s, org_id=globex, platform="slack", workspace_id="T1",
                                        channel_id="C1") is None
    async with database.session() as s, s.begin():
        assert hyp.id is not None
        with pytest.raises(HypothesisNotFound):
            await record_feedback(s, org_id=globex, hypothesis_id=hyp.id,
                                  status=HypothesisStatus.CONFIRMED, by="mallory")


async def test_org_found_by_slack_team_or_teams_tenant(database: Database) -> None:
    async with database.session() as s, s.begin():
        s.add(Org(slug="acme", name="Acme", slack_team_id="T0ACME", teams_tenant_id="tid-1"))
    async with database.session() as s:
        by_slack = await org_for_slack_team(s, team_id="T0ACME")
        by_teams = await org_for_teams_tenant(s, tenant_id="tid-1")
        assert by_slack is not None and by_slack.slug == "acme"
        assert by_teams is not None and by_teams.slug == "acme"
        assert await org_for_slack_team(s, team_id="T0OTHER") is None


async def test_hypothesis_without_evidence_or_bad_confidence_is_refused(database: Database
                                                                        ) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        incident = await apply_alert(s, org_id=oid, signal=firing("HighErrorRate"))
        assert incident is not None and incident.id is not None
        with pytest.raises(ValueError, match="evidence"):
            await add_hypothesis(s, org_id=oid, incident_id=incident.id, statement="a guess",
                                 confidence=0.5, evidence=[])
        with pytest.raises(ValueError, match="confidence"):
            await add_hypothesis(s, org_id=oid, incident_id=incident.id, statement="sure",
                                 confidence=1.5, evidence=[{"source": "prometheus"}])
        hyp = await add_hypothesis(s, org_id=oid, incident_id=incident.id,
                                   statement="deploy v2 broke checkout", confidence=0.8,
                                   evidence=[{"source": "prometheus", "query": "up"}])
        assert hyp.id is not None
        await record_feedback(s, org_id=oid, hypothesis_id=hyp.id,
                              status=HypothesisStatus.CONFIRMED, by="ana", comment="yes")
    async with database.session() as s:
        [stored] = await list_hypotheses(s, org_id=oid, incident_id=incident.id)
        assert stored.status == "confirmed"
        assert stored.feedback[0]["by"] == "ana"
