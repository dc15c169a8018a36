"""What an investigation produces: ranked hypotheses, each with a structured cause, a confidence,
the evidence it rests on, and the next check to run."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from skills.types import Evidence

CauseKind = Literal["deploy", "config", "errors", "latency", "cpu", "memory", "saturation",
                    "dependency", "traffic", "disk", "down", "restarts", "network", "clock",
                    "unknown"]


class Cause(BaseModel):
    service: str
    kind: CauseKind
    signal: str | None = None  # errors | latency | traffic | cpu | memory | …
    # The identifying labels of the resource (instance, mountpoint, pod, …) when the cause is
    # a resource rather than a service of the call graph; `service` then names it in words.
    resource: dict[str, str] = Field(default_factory=dict)


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
