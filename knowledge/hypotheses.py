"""Hypotheses about an incident's root cause: a statement, a confidence in [0, 1], the evidence
behind it, and what responders said of it (proposed → confirmed / rejected)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.types import UTCDateTime, utcnow


class HypothesisStatus(StrEnum):
    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class Hypothesis(SQLModel, table=True):
    __tablename__ = "hypothesis"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    statement: str = Field(max_length=2000)
    confidence: float
    cause: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    status: str = Field(default=HypothesisStatus.PROPOSED.value, max_length=16)
    feedback: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class HypothesisNotFound(LookupError):
    pass


async def add_hypothesis(session: AsyncSession, *, org_id: int, incident_id: int, statement: str,
                         confidence: float, evidence: list[dict[str, Any]],
                         cause: dict[str, Any] | None = None) -> Hypothesis:
    """Store a hypothesis. One with no evidence, or a confidence outside [0, 1], is refused:
    the copilot never states what it cannot show."""
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence must be within [0, 1], got {confidence}")
    if not evidence:
        raise ValueError("a hypothesis needs at least one piece of evidence")
    hyp = Hypothesis(org_id=org_id, incident_id=incident_id, statement=statement,
                     confidence=confidence, evidence=evidence, cause=cause or {})
    session.add(hyp)
    await session.flush()
    return hyp


async def record_feedback(session: AsyncSession, *, org_id: int, hypothesis_id: int,
                          status: HypothesisStatus, by: str, comment: str | None = None
                          ) -> Hypothesis:
    stmt = select(Hypothesis).where(Hypothesis.org_id == org_id, Hypothesis.id == hypothesis_id)
    hyp = (await session.exec(stmt)).first()
    if hyp is None:
        raise HypothesisNotFound(f"no hypothesis {hypothesis_id} in this org")
    hyp.status = status.value
    hyp.feedback = [*hyp.feedback, {"status": status.value, "by": by, "comment": comment,
                                    "at": utcnow().isoformat()}]
    hyp.updated_at = utcnow()
    session.add(hyp)
    return hyp


async def list_hypotheses(session: AsyncSession, *, org_id: int, incident_id: int
                          ) -> list[Hypothesis]:
    stmt = (select(Hypothesis)
            .where(Hypothesis.org_id == org_id, Hypothesis.incident_id == incident_id)
            .order_by(col(Hypothesis.confidence).desc(), col(Hypothesis.id)))
    return list((await session.exec(stmt)).all())
