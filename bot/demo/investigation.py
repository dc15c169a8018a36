"""The demo's investigation: the evidence engine on the recorded metrics of the bundled
incident, its hypotheses stored on the incident, a chart of the key series, and the
post-mortem draft — written to `<data dir>/demo/`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot.demo.metrics import snapshot
from bot.demo.scenario import deploy_of, onset_of
from bot.settings import Settings
from knowledge.db import Database
from knowledge.incidents import list_incidents
from knowledge.orgs import get_org
from skills.charts import panels_for, render_signals
from skills.hypotheses.engine import rank
from skills.hypotheses.models import Investigation
from skills.hypotheses.store import store_investigation
from skills.postmortem import postmortem_for
from skills.runbooks.search import RunbookHit


@dataclass(frozen=True)
class DemoReport:
    investigation: Investigation
    chart: Path
    postmortem: Path


async def investigate_incident(settings: Settings, db: Database, *, now: datetime,
                               runbook: RunbookHit | None = None) -> DemoReport:
    out = (settings.data_dir / "demo").resolve()
    out.mkdir(parents=True, exist_ok=True)
    onset = onset_of(now)
    async with db.session() as session, session.begin():
        org = await get_org(session, slug=settings.default_org)
        assert org.id is not None
        [incident] = await list_incidents(session, org_id=org.id, limit=1)
        assert incident.id is not None and incident.service is not None
        # The copilot investigates when the incident opens: a few minutes into it.
        at = incident.triggered_at + timedelta(minutes=3)
        snap = snapshot(service=incident.service, at=at, onset=onset, deploy_at=deploy_of(now))
        investigation = rank(snap, runbook=runbook)
        await store_investigation(session, org_id=org.id, incident_id=incident.id,
                                  investigation=investigation)
    chart = render_signals(panels_for(investigation, snap), path=out / f"{incident.ref}.png",
                           title=f"{incident.ref} {incident.service}: key signals",
                           onset=investigation.onset, changes=snap.changes)
    async with db.session() as session:
        text = await postmortem_for(session, org_id=org.id, incident_id=incident.id,
                                    charts=[chart], relative_to=out)
    postmortem = out / f"{incident.ref}-postmortem.md"
    postmortem.write_text(text)
    return DemoReport(investigation=investigation, chart=chart, postmortem=postmortem)
