"""What an investigation produces: ranked hypotheses, each with a structured cause, a confidence,
the evidence it rests on, and the next check to run."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from skills.types import Evidence

CauseKind = Literal["deploy", "config", "errors", "latency", "cpu", "memory", "saturation",
                    "dependency", "traffic", "unknown"]


class Cause(BaseModel):
    service: str
    kind: CauseKind
    signal: str | None = None  # errors | latency | traffic | cpu | memory | …


class RankedHypothesis(BaseModel):
    statement: str
    cause: Cause
    confidence: float = Field(ge=0.0, le=1.0)
    evidence_ids: list[str] = Field(min_length=1)
    next_check: str


class Investigation(BaseModel):
    """An investigation of one service around one time."""

    service: str
    at: datetime
    start: datetime
    end: datetime
    onset: datetime | None
    scope: list[str]
    hypotheses: list[RankedHypothesis]
    evidence: list[Evidence]
    verdict: str  # one line: what to look at first, or that no clear cause stands out

    def evidence_by_id(self) -> dict[str, Evidence]:
        return {e.id: e for e in self.evidence}
