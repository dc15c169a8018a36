"""Keeping an investigation: its ranked hypotheses become stored `Hypothesis` rows, each with
the evidence it cites (whole, not by reference) so a later post-mortem can quote the numbers."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.hypotheses import Hypothesis, add_hypothesis
from knowledge.outbox import enqueue_message
from knowledge.timeline import add_event
from skills.hypotheses.models import Investigation


async def store_investigation(session: AsyncSession, *, org_id: int, incident_id: int,
                              investigation: Investigation) -> list[Hypothesis]:
    by_id = investigation.evidence_by_id()
    stored: list[Hypothesis] = []
    for rank, h in enumerate(investigation.hypotheses, start=1):
        evidence = [by_id[e].model_dump(mode="json") for e in h.evidence_ids if e in by_id]
        if not evidence:  # a statement with nothing behind it is never kept
            continue
        row = await add_hypothesis(
            session, org_id=org_id, incident_id=incident_id, statement=h.statement,
            confidence=h.confidence, evidence=evidence,
            cause={**h.cause.model_dump(), "rank": rank, "next_check": h.next_check})
        stored.append(row)
    if stored:
        top = stored[0]
        cause = top.cause
        await enqueue_message(
            session, org_id=org_id, incident_id=incident_id,
            key=f"incident:{incident_id}:hypotheses:{investigation.at.isoformat()}",
            kind="hypotheses",
            text=(f"💡 INC-{incident_id}: look at {cause['service']} first ({cause['kind']}, "
                  f"confidence {top.confidence:.2f}) — {top.statement}"
                  if top.confidence >= 0.5 else
                  f"💡 INC-{incident_id}: no clear cause yet; strongest lead "
                  f"{cause['service']} ({cause['kind']}, confidence {top.confidence:.2f})"),
            payload={"incident_id": incident_id, "hypothesis_ids": [h.id for h in stored]})
        await add_event(session, org_id=org_id, incident_id=incident_id,
                        occurred_at=investigation.at, kind="hypothesis_posted",
                        source="copilot",
                        summary=f"top hypothesis ({top.confidence:.2f}): {top.statement}",
                        data={"hypothesis_id": top.id},
                        dedupe_key=f"hypotheses:{investigation.at.isoformat()}")
    return stored
