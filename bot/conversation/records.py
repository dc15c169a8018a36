"""The incident's record as the chat keeps it, the same for every platform: an investigation's
hypotheses kept with the evidence they cite, a Confirm / Reject recorded (on the hypothesis and
the timeline), a channel linked to the incident its name names, what an investigation starts
from, what a late joiner is told (`catch_up`), and an investigation's progress."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.agent.calls import ProgressEvent
from bot.agent.state import Answer, NewIncident
from bot.chat_worker import NotYet
from knowledge.alerts import Alert, alerts_of_incident
from knowledge.correlation import SEVERITY_RANK
from knowledge.db import Database
from knowledge.hypotheses import (
    HypothesisStatus,
    add_hypothesis,
    list_hypotheses,
    record_feedback,
)
from knowledge.incidents import Incident, IncidentNotFound, find_incident
from knowledge.threads import link_thread
from knowledge.timeline import add_event, list_events
from skills.timeline import TimelineEntry
from skills.types import Claim

Progress = Callable[[ProgressEvent], Awaitable[None]]
# What the copilot and the incident engine record by themselves: no person acted there.
MACHINE_SOURCES = ("alertmanager", "copilot", "changes", "webhook")
TRIED = ("message_pinned", "note", "status_changed", "hypothesis_feedback")


async def keep_hypotheses(db: Database, *, org_id: int, incident_id: int,
                          answer: Answer) -> None:
    """The briefing's hypotheses become the incident's record, so Confirm / Reject and the
    post-mortem refer to them. Called before they are posted: a quick click finds them."""
    by_id = {e.id: e for e in answer.evidence}
    async with db.session() as session, session.begin():
        known = {h.statement for h in await list_hypotheses(
            session, org_id=org_id, incident_id=incident_id)}
        for claim in answer.claims:
            evidence = [by_id[i].model_dump(mode="json") for i in claim.evidence_ids
                        if i in by_id]
            if claim.statement in known or not evidence:
                continue
            await add_hypothesis(session, org_id=org_id, incident_id=incident_id,
                                 statement=claim.statement,
                                 confidence=claim.confidence or 0.0, evidence=evidence,
                                 cause={**(claim.cause or {}), "next_check": claim.next_check})


async def give_feedback(db: Database, *, org_id: int, incident_id: int, statement: str,
                        verdict: str, user: str, key: str, number: Any, source: str) -> bool:
    """A verdict ("confirmed" / "rejected") on the stored hypothesis (matched by its statement,
    which buttons carry cut short) and on the timeline, once per `key`. True if new."""
    async with db.session() as session, session.begin():
        stored = next((h for h in await list_hypotheses(
            session, org_id=org_id, incident_id=incident_id)
            if statement and h.statement.startswith(statement)), None)
        if stored is not None and stored.id is not None:
            await record_feedback(
                session, org_id=org_id, hypothesis_id=stored.id, by=user,
                status=HypothesisStatus.CONFIRMED if verdict == "confirmed"
                else HypothesisStatus.REJECTED)
        event = await add_event(session, org_id=org_id, incident_id=incident_id,
                                occurred_at=datetime.now(UTC), kind="hypothesis_feedback",
                                source=source,
                                summary=f"Hypothesis {number} {verdict} by {user}: {statement}",
                                data={"verdict": verdict, "user": user, "statement": statement},
                                dedupe_key=f"{source}:{key}")
        return event is not None


async def link_named(db: Database, *, platform: str, org_id: int, name: str, workspace: str,
                     channel: str) -> Incident | None:
    """Link a channel to the incident its name (or topic) names (`inc-12…`), else to the
    newest open one; None if there is none. Raises `NotYet` when the named incident is
    still being opened by the worker (the item is retried)."""
    number = re.search(r"(?:inc|incident)[-_ ]?(\d+)", name, re.I)
    async with db.session() as session, session.begin():
        try:
            incident = await find_incident(session, org_id=org_id, incident_id=int(
                number.group(1)) if number else None)
        except IncidentNotFound:
            if number:
                raise NotYet(f"INC-{number.group(1)} is not recorded yet") from None
            return None
        assert incident.id is not None
        await link_thread(session, org_id=org_id, incident_id=incident.id,
                          platform=platform, workspace_id=workspace, channel_id=channel)
        return incident

async def investigation(db: Database, org_id: int, incident: Incident
                        ) -> tuple[list[Alert], NewIncident]:
    """The incident's alerts, and what its investigation starts from: the most severe of
    its firing alerts (the earliest among equals), as Alertmanager sent it."""
    assert incident.id is not None
    async with db.session() as session:
        alerts = await alerts_of_incident(session, org_id=org_id, incident_id=incident.id)
    ordered = sorted(alerts, key=lambda a: (a.status != "firing",
                                            -SEVERITY_RANK.get((a.severity or "").lower(), 0),
                                            a.starts_at))
    first = ordered[0] if ordered else None
    summary = next((str(a.annotations["summary"]) for a in ordered
                    if a.annotations.get("summary")), None)
    return alerts, NewIncident(
        service=incident.service or "unknown", title=incident.title, summary=summary,
        alertname=first.alertname if first else None, at=incident.triggered_at,
        incident_id=incident.id, pagerduty_id=incident.pagerduty_incident_id,
        app_service=first.service if first else None,
        alerts=[{"name": a.alertname, "labels": a.labels, "annotations": a.annotations,
                 "generator_url": a.generator_url, "starts_at": a.starts_at.isoformat()}
                for a in ordered[:3]])




@dataclass(frozen=True)
class CatchUp:
    """What a late joiner needs beside the incident card."""

    alerts: list[Alert]
    hypotheses: list[Claim]
    responders: list[str]
    tried: list[TimelineEntry]


async def catch_up(db: Database, *, org_id: int, incident_id: int) -> CatchUp:
    """One rule on every platform: the hypotheses are the incident's stored ones (the record,
    whichever thread briefed it; rejected ones left out), most confident first; who is on it
    is every person who moved it, judged a hypothesis, pinned a message or wrote a note — from
    Slack, Teams or PagerDuty, not the engine; what was tried is the pins, notes, status moves
    and verdicts, oldest first."""
    async with db.session() as session:
        alerts = await alerts_of_incident(session, org_id=org_id, incident_id=incident_id)
        events = await list_events(session, org_id=org_id, incident_id=incident_id)
        stored = await list_hypotheses(session, org_id=org_id, incident_id=incident_id)
    claims = [Claim(statement=h.statement, confidence=h.confidence)
              for h in sorted(stored, key=lambda h: -(h.confidence or 0))
              if h.status != HypothesisStatus.REJECTED.value]
    responders = [_person(e.data) for e in events
                  if e.source not in MACHINE_SOURCES and e.kind in TRIED]
    tried = [TimelineEntry(at=e.occurred_at, kind=e.kind, source=e.source, summary=e.summary)
             for e in events if e.kind in TRIED]
    return CatchUp(alerts, claims, [r for r in responders if r], tried)


def progress_reporter(show: Callable[[list[tuple[str, str]]], Awaitable[None]], *,
                      every: float, on_end: bool = False) -> Progress:
    """A progress callback for `Agent.turn` that shows each tool's state (running, ok,
    failed) through `show`, at most once per `every` seconds (chat updates are rate-limited),
    and also when a tool ends if `on_end`."""
    steps: dict[str, str] = {}
    last = 0.0

    async def on_progress(event: ProgressEvent) -> None:
        nonlocal last
        steps[event.tool] = "running" if event.kind == "start" else (
            "ok" if event.ok else "failed")
        now = time.monotonic()
        if now - last >= every or (on_end and event.kind == "end"):
            last = now
            await show(list(steps.items()))

    return on_progress


def _person(data: dict[str, Any]) -> str:
    """Who did it: the actor of a status change, the user of a pin or verdict, the agent of a
    PagerDuty note."""
    who = data.get("actor") or data.get("user") or data.get("agent")
    return who if isinstance(who, str) else ""
