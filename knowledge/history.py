"""The incident history: every resolved incident as one record in a chromadb collection (title,
summary, confirmed root cause, what fixed it and the start of its post-mortem, embedded as one
text), and the search for the past incidents most like a new one, within one org.

`collect_resolved` builds the records from the database: the root cause is the one people wrote
on the incident, else the statement of a hypothesis they confirmed, whose structured cause
(service, kind) lets the evidence engine match it against new candidates. Each record carries a
digest of what it was built from, so an indexing sweep re-embeds only what changed.
chromadb and the embedding model are synchronous: async callers use `asyncio.to_thread`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.embedding import Embedder
from knowledge.hypotheses import Hypothesis, HypothesisStatus
from knowledge.incidents import Incident, IncidentStatus
from knowledge.vectors import cosine_collection

COLLECTION = "sre-copilot-incidents"
POSTMORTEM_CHARS = 1500  # the post-mortem's start (summary, impact, cause) says what it is about
SUMMARY_CHARS = 1000  # kept in metadata to show with a match
# Bumped when the document text or metadata change shape: every record is then re-indexed.
RECORD_VERSION = 1


class PastIncident(BaseModel):
    """A resolved incident as the history keeps it."""

    org_id: int
    incident_id: int
    title: str
    service: str | None = None
    summary: str | None = None
    root_cause: str | None = None
    resolution: str | None = None  # what fixed it
    postmortem: str | None = None  # not given back by a search: only its start is indexed
    resolved_at: datetime | None = None
    cause_service: str | None = None  # from a confirmed hypothesis's structured cause
    cause_kind: str | None = None

    @property
    def ref(self) -> str:
        return f"INC-{self.incident_id}"

    def document(self) -> str:
        """The text that is embedded: what the incident was, why, and what fixed it."""
        parts = [self.title]
        if self.service:
            parts.append(f"Service: {self.service}.")
        if self.summary:
            parts.append(self.summary)
        if self.root_cause:
            parts.append(f"Root cause: {self.root_cause}")
        if self.resolution:
            parts.append(f"Fixed by: {self.resolution}")
        if self.postmortem:
            parts.append(self.postmortem[:POSTMORTEM_CHARS])
        return "\n".join(parts)

    def metadata(self) -> dict[str, Any]:
        """chromadb metadata (no None values), with the digest of the whole record."""
        meta: dict[str, Any] = {
            "org_id": self.org_id, "incident_id": self.incident_id, "title": self.title,
            "service": self.service,
            "summary": self.summary[:SUMMARY_CHARS] if self.summary else None,
            "root_cause": self.root_cause, "resolution": self.resolution,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "cause_service": self.cause_service, "cause_kind": self.cause_kind}
        meta = {k: v for k, v in meta.items() if v is not None}
        meta["digest"] = self.digest(meta)
        return meta

    def digest(self, meta: dict[str, Any] | None = None) -> str:
        if meta is None:
            return str(self.metadata()["digest"])
        body = json.dumps([RECORD_VERSION, self.document(), meta], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:32]

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> PastIncident:
        resolved = meta.get("resolved_at")

        def text(key: str) -> str | None:
            value = meta.get(key)
            return str(value) if value is not None else None

        return cls(org_id=int(meta["org_id"]), incident_id=int(meta["incident_id"]),
                   title=str(meta.get("title", "")), service=text("service"),
                   summary=text("summary"), root_cause=text("root_cause"),
                   resolution=text("resolution"),
                   resolved_at=datetime.fromisoformat(str(resolved)) if resolved else None,
                   cause_service=text("cause_service"), cause_kind=text("cause_kind"))


def record_id(org_id: int, incident_id: int) -> str:
    return f"{org_id}-{incident_id}"


class HistoryIndex:
    def __init__(self, client: Any, embedder: Embedder) -> None:
        self.client = client
        self.embedder = embedder
        self._collection: Any = None

    @property
    def collection(self) -> Any:
        if self._collection is None:
            self._collection = cosine_collection(self.client, COLLECTION)
        return self._collection

    def index(self, record: PastIncident) -> None:
        """Add or replace the one record of this incident."""
        self.index_many([record])

    def index_many(self, records: Sequence[PastIncident]) -> None:
        latest = {record_id(r.org_id, r.incident_id): r for r in records}  # last one wins
        if not latest:
            return
        ids = list(latest)
        docs = [r.document() for r in latest.values()]
        vectors = self.embedder.encode(docs)
        self.collection.upsert(ids=ids, embeddings=vectors.tolist(), documents=docs,
                               metadatas=[r.metadata() for r in latest.values()])

    def digests(self, org_id: int, incident_ids: Iterable[int] | None = None) -> dict[int, str]:
        """The digest of each indexed incident of the org (of those listed, when given)."""
        where: dict[str, Any] = {"org_id": org_id}
        if incident_ids is not None:
            wanted = sorted(set(incident_ids))
            if not wanted:
                return {}
            where = {"$and": [where, {"incident_id": {"$in": wanted}}]}
        got = self.collection.get(where=where, include=["metadatas"])
        return {int(m["incident_id"]): str(m.get("digest", "")) for m in got["metadatas"] or []}

    def similar(self, org_id: int, text: str, k: int = 3,
                exclude_incident_id: int | None = None) -> list[tuple[PastIncident, float]]:
        """The org's past incidents nearest to `text`, best first, with cosine similarity."""
        if k <= 0 or not text.strip() or self.collection.count() == 0:
            return []
        where: dict[str, Any] = {"org_id": org_id}
        if exclude_incident_id is not None:
            where = {"$and": [where, {"incident_id": {"$ne": exclude_incident_id}}]}
        vector = self.embedder.encode([text])[0]
        got = self.collection.query(query_embeddings=[vector.tolist()], n_results=k, where=where,
                                    include=["metadatas", "distances"])
        found = [(PastIncident.from_metadata(dict(m)), round(1.0 - float(d), 4))
                 for m, d in zip(got["metadatas"][0], got["distances"][0], strict=True)]
        found.sort(key=lambda pair: pair[1], reverse=True)
        return found


async def collect_resolved(session: AsyncSession, *, org_id: int, since_id: int = 0,
                           incident_ids: Iterable[int] | None = None, limit: int = 200
                           ) -> list[PastIncident]:
    """Resolved incidents of the org with an id above `since_id` (and among `incident_ids`,
    when given), oldest first, at most `limit`: page on with the last one's id."""
    stmt = select(Incident).where(Incident.org_id == org_id,
                                  Incident.status == IncidentStatus.RESOLVED.value,
                                  col(Incident.id) > since_id)
    if incident_ids is not None:
        stmt = stmt.where(col(Incident.id).in_(sorted(set(incident_ids))))
    incidents = list((await session.exec(stmt.order_by(col(Incident.id)).limit(limit))).all())
    if not incidents:
        return []
    ids = [i.id for i in incidents if i.id is not None]
    hyps = await session.exec(
        select(Hypothesis)
        .where(Hypothesis.org_id == org_id, col(Hypothesis.incident_id).in_(ids),
               Hypothesis.status == HypothesisStatus.CONFIRMED.value)
        .order_by(col(Hypothesis.updated_at), col(Hypothesis.id)))
    confirmed: dict[int, Hypothesis] = {}
    for h in hyps.all():  # several confirmed: the one confirmed last stands
        confirmed[h.incident_id] = h
    return [_past(incident, confirmed.get(incident.id or 0)) for incident in incidents]


def _past(incident: Incident, hyp: Hypothesis | None) -> PastIncident:
    assert incident.id is not None
    cause = hyp.cause if hyp is not None else {}
    service, kind = cause.get("service"), cause.get("kind")
    return PastIncident(
        org_id=incident.org_id, incident_id=incident.id, title=incident.title,
        service=incident.service, summary=incident.summary,
        root_cause=incident.root_cause or (hyp.statement if hyp is not None else None),
        resolution=incident.resolution, postmortem=incident.postmortem,
        resolved_at=incident.resolved_at,
        cause_service=str(service) if service else None,
        cause_kind=str(kind) if kind else None)
