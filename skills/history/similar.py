"""Similar past incidents: the org's resolved incidents nearest to a new one's text, each with its
confirmed root cause and what fixed it, as a skill result whose evidence the evidence engine and
the model can cite."""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import BaseModel, Field

from knowledge.history import HistoryIndex, PastIncident
from skills.types import Evidence, SkillResult

MIN_SIMILARITY = 0.5  # below this a past incident shares the vocabulary, not the problem


class SimilarIncident(BaseModel):
    """A past incident like the one at hand."""

    ref: str  # INC-12
    incident_id: int
    title: str
    service: str | None = None
    summary: str | None = None
    root_cause: str | None = None
    resolution: str | None = None  # what fixed it
    resolved_at: datetime | None = None
    similarity: float = Field(ge=-1.0, le=1.0)
    cause_service: str | None = None  # the confirmed cause, when a hypothesis was confirmed
    cause_kind: str | None = None

    @classmethod
    def of(cls, past: PastIncident, similarity: float) -> SimilarIncident:
        return cls(ref=past.ref, incident_id=past.incident_id, title=past.title,
                   service=past.service, summary=past.summary, root_cause=past.root_cause,
                   resolution=past.resolution, resolved_at=past.resolved_at,
                   similarity=similarity, cause_service=past.cause_service,
                   cause_kind=past.cause_kind)

    def line(self) -> str:
        """`INC-12 (0.81) “title”: root cause …; fixed by …`"""
        cause = self.root_cause or "not recorded"
        fix = self.resolution or "not recorded"
        return (f"{self.ref} ({self.similarity:.2f}) “{self.title}”: root cause {cause.rstrip('.')}"
                f"; fixed by {fix.rstrip('.')}.")


async def find_similar(index: HistoryIndex, *, org_id: int, text: str, k: int = 3,
                       min_similarity: float = MIN_SIMILARITY,
                       exclude_incident_id: int | None = None) -> list[SimilarIncident]:
    """Best first; chromadb and the model run in a thread."""
    found = await asyncio.to_thread(index.similar, org_id, text, k, exclude_incident_id)
    return [SimilarIncident.of(past, sim) for past, sim in found if sim >= min_similarity]


async def similar_incidents(index: HistoryIndex, *, org_id: int, text: str, k: int = 3,
                            min_similarity: float = MIN_SIMILARITY,
                            exclude_incident_id: int | None = None) -> SkillResult:
    """Past incidents like `text` (a new incident's title and alert summary), as a result with
    one `history` evidence per incident. A failed search comes back as an error result that
    names what was searched and what went wrong."""
    try:
        found = await find_similar(index, org_id=org_id, text=text, k=k,
                                   min_similarity=min_similarity,
                                   exclude_incident_id=exclude_incident_id)
    except Exception as exc:  # chromadb or the model: the caller gets it as a result
        error = f"{type(exc).__name__}: {exc}"
        return SkillResult(summary=f"Could not search past incidents for {text!r}: {error}",
                           error=error, data={"query": text})
    evidence = [evidence_of(s, f"ev-{n}", text) for n, s in enumerate(found, start=1)]
    if found:
        summary = "Similar past incidents:\n" + "\n".join(f"- {s.line()}" for s in found)
    else:
        summary = (f"No similar past incident (none reached similarity {min_similarity:.2f}).")
    return SkillResult(summary=summary, evidence=evidence,
                       data={"query": text,
                             "incidents": [s.model_dump(mode="json") for s in found]})


def evidence_of(incident: SimilarIncident, evidence_id: str, query: str) -> Evidence:
    values = {"similarity": incident.similarity}
    if incident.resolved_at is not None:
        values["resolved_unix"] = incident.resolved_at.timestamp()
    labels = {"incident": incident.ref}
    if incident.cause_service:
        labels["service"] = incident.cause_service
    if incident.cause_kind:
        labels["kind"] = incident.cause_kind
    return Evidence(id=evidence_id, source="history", summary=incident.line(), query=query,
                    end=incident.resolved_at, values=values, labels=labels)
