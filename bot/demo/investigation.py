"""The demo's investigation: the evidence engine on the recorded metrics of the bundled
incident, its hypotheses stored on the incident, a chart of the key series, the post-mortem
draft, and the briefing as the chat platforms get it (Block Kit and Adaptive Card JSON) —
written to `<data dir>/demo/`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bot.agent.state import Answer, ToolRecord
from bot.demo.metrics import snapshot
from bot.demo.scenario import deploy_of, onset_of
from bot.settings import Settings
from bot.slack.blocks import answer_message
from bot.teams.cards import answer_cards
from knowledge.alerts import Alert, alerts_of_incident
from knowledge.db import Database
from knowledge.incidents import list_incidents
from knowledge.orgs import get_org
from skills.charts import panels_for, render_signals
from skills.hypotheses.engine import rank
from skills.hypotheses.models import Investigation
from skills.hypotheses.store import store_investigation
from skills.hypotheses_tool import investigation_result
from skills.postmortem import postmortem_for
from skills.runbooks.search import RunbookHit


@dataclass(frozen=True)
class DemoReport:
    investigation: Investigation
    chart: Path
    postmortem: Path
    slack: Path  # the briefing's Block Kit messages
    teams: Path  # the briefing's Adaptive Cards


def briefing_answer(investigation: Investigation, chart: Path, *,
                    prometheus: str | None) -> Answer:
    """The investigation as the agent answers a new incident with it (the `hypotheses` skill's
    result); `prometheus` is where its queries open."""
    result = investigation_result(investigation, [chart], prometheus=prometheus)
    return Answer(text=result.summary, route="incident", brain="evidence engine",
                  claims=result.claims, evidence=result.evidence, images=result.images,
                  tools=[ToolRecord(name="hypotheses", args={}, ok=True, elapsed_ms=0.0,
                                    summary=result.summary.split("\n", 1)[0][:300],
                                    evidence_ids=[e.id for e in result.evidence])])


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
        incident_alerts = await alerts_of_incident(session, org_id=org.id,
                                                   incident_id=incident.id)
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
    answer = briefing_answer(investigation, chart, prometheus=prometheus_of(incident_alerts))
    slack, teams = out / f"{incident.ref}-slack.json", out / f"{incident.ref}-teams.json"
    slack.write_text(json.dumps([{"text": m.text, "blocks": m.blocks} for m in
                                 answer_message(answer, incident_id=incident.id)],
                                indent=1, ensure_ascii=False))
    teams.write_text(json.dumps([c.content for c in
                                 answer_cards(answer, incident_id=incident.id)],
                                indent=1, ensure_ascii=False))
    return DemoReport(investigation=investigation, chart=chart, postmortem=postmortem,
                      slack=slack, teams=teams)


def prometheus_of(alerts: list[Alert]) -> str | None:
    """The Prometheus the alerts came from (their generatorURL's origin): where the demo's
    queries open."""
    for alert in alerts:
        if alert.generator_url:
            parts = urlsplit(alert.generator_url)
            if parts.scheme and parts.netloc:
                return f"{parts.scheme}://{parts.netloc}"
    return None
