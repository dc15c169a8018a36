"""Keeping the history index up to date: index every resolved incident of an org whose record is
new or changed (a root cause recorded, a hypothesis confirmed, a post-mortem written).

Idempotent and cheap when nothing changed — records are compared by digest (kept in chromadb
metadata) before anything is embedded — so it runs after every worker batch that resolved an
incident, and at start-up to catch up on whatever a failed run missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.history import HistoryIndex, PastIncident, collect_resolved

PAGE = 200  # incidents read (and embedded at most) per round


@dataclass
class SweepReport:
    indexed: list[int] = field(default_factory=list)  # incident ids (re-)indexed
    unchanged: int = 0


async def index_resolved(session: AsyncSession, index: HistoryIndex, *, org_id: int,
                         incident_ids: Iterable[int] | None = None) -> SweepReport:
    """Index the org's resolved incidents (only those listed, when given) that are not in the
    index as they are now. Reads through `session`; chromadb and the model run in a thread."""
    wanted = sorted(set(incident_ids)) if incident_ids is not None else None
    report = SweepReport()
    since = 0
    while True:
        page = await collect_resolved(session, org_id=org_id, since_id=since,
                                      incident_ids=wanted, limit=PAGE)
        if not page:
            return report
        await asyncio.to_thread(_index_changed, index, org_id, page, report)
        if len(page) < PAGE:
            return report
        since = page[-1].incident_id


def _index_changed(index: HistoryIndex, org_id: int, page: list[PastIncident],
                   report: SweepReport) -> None:
    stored = index.digests(org_id, [p.incident_id for p in page])
    changed = [p for p in page if stored.get(p.incident_id) != p.digest()]
    index.index_many(changed)
    report.indexed.extend(p.incident_id for p in changed)
    report.unchanged += len(page) - len(changed)
