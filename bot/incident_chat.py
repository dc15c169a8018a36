"""What every chat adapter does with an incident's hypotheses, whatever the platform: keep an
investigation's hypotheses on the incident's record (each with the evidence it cites, whole),
and record a Confirm / Reject — on the stored hypothesis and on the timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.agent.state import Answer
from knowledge.db import Database
from knowledge.hypotheses import (
    HypothesisStatus,
    add_hypothesis,
    list_hypotheses,
    record_feedback,
)
from knowledge.timeline import add_event


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
