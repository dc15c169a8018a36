"""Incident-history test material: the real embedding model loaded once per test process, a
history index on a real chromadb under a directory, a few past incidents as they would be
written up, and incidents opened and resolved through the real knowledge functions."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from knowledge.correlation import AlertSignal, apply_alert
from knowledge.db import Database
from knowledge.embedding import Embedder, EmbeddingModelMissing
from knowledge.history import HistoryIndex, PastIncident
from knowledge.hypotheses import HypothesisStatus, add_hypothesis, record_feedback
from knowledge.incidents import record_outcome
from knowledge.vectors import open_chroma
from tests.conftest import need
from tests.knowledge.factories import T0, org_id


@functools.cache
def _load() -> Embedder | str:
    try:
        model = Embedder()
        model.encode(["warm up"])
    except (EmbeddingModelMissing, ImportError, OSError) as exc:
        return f"the embedding model does not load: {exc}"
    return model


def shared_embedder() -> Embedder:
    """One model per test process, whichever module asks first (~8 s to load)."""
    got = _load()
    need(isinstance(got, Embedder), str(got))
    assert isinstance(got, Embedder)
    return got


def history_index(data_dir: Path, embedder: Embedder) -> HistoryIndex:
    return HistoryIndex(open_chroma(data_dir), embedder)


def past(incident_id: int, key: str, *, org: int = 1) -> PastIncident:
    """One of PAST's write-ups as a record of `org`."""
    return PAST[key].model_copy(update={"org_id": org, "incident_id": incident_id})


PAST = {
    "pool": PastIncident(
        org_id=0, incident_id=0, title="Orders API timeouts", service="orders",
        summary="Orders API requests timed out for 40 minutes; checkout failed for a third of "
                "customers.",
        root_cause="The orders-db connection pool was exhausted by a slow reporting query "
                   "holding connections.",
        resolution="Killed the reporting query and raised the pool size from 20 to 50.",
        postmortem="# Orders API timeouts\n\nThe connection pool of orders-db ran out ...",
        resolved_at=T0 + timedelta(hours=1), cause_service="orders-db", cause_kind="saturation"),
    "deploy": PastIncident(
        org_id=0, incident_id=0, title="Payments 5xx after release", service="payments",
        summary="Payments returned HTTP 500 on card authorisations after a release.",
        root_cause="Release v2.14.0 of payments sent an empty merchant id to the card processor.",
        resolution="Rolled payments back to v2.13.2.",
        resolved_at=T0 + timedelta(days=3), cause_service="payments", cause_kind="deploy"),
    "memory": PastIncident(
        org_id=0, incident_id=0, title="Search pods OOM-killed", service="search",
        summary="Search pods restarted every few minutes; results were slow and incomplete.",
        root_cause="A memory leak in the search result cache grew the heap until the pods were "
                   "OOM-killed.",
        resolution="Capped the cache size and restarted the pods.",
        resolved_at=T0 + timedelta(days=5), cause_service="search", cause_kind="memory"),
    "tls": PastIncident(
        org_id=0, incident_id=0, title="Gateway TLS handshake failures", service="gateway",
        summary="Mobile clients could not connect: TLS handshakes failed at the edge.",
        root_cause="The gateway's TLS certificate expired; renewal had silently failed.",
        resolution="Renewed the certificate and alerted on expiry 14 days ahead.",
        resolved_at=T0 + timedelta(days=9), cause_service="gateway", cause_kind="config"),
}


async def resolved_incident(db: Database, *, slug: str = "acme", group: str = "g1",
                            summary: str = "Orders API requests are timing out",
                            service: str = "orders", resolve: bool = True,
                            confirmed: tuple[str, dict[str, Any]] | None = None,
                            resolution: str | None = None) -> tuple[int, int]:
    """An incident opened (and resolved) by Alertmanager alerts, optionally with a confirmed
    hypothesis (statement, cause) and a recorded fix. Returns (org id, incident id)."""
    firing = AlertSignal(group_key=group, fingerprint=f"{group}-fp", status="firing",
                         labels={"alertname": "HighLatency", "service": service,
                                 "severity": "critical"},
                         annotations={"summary": summary}, starts_at=T0, ends_at=None)
    async with db.session() as s, s.begin():
        oid = await org_id(s, slug)
        incident = await apply_alert(s, org_id=oid, signal=firing)
        assert incident is not None and incident.id is not None
        iid = incident.id
        if confirmed is not None:
            statement, cause = confirmed
            hyp = await add_hypothesis(s, org_id=oid, incident_id=iid, statement=statement,
                                       confidence=0.7, cause=cause,
                                       evidence=[{"id": "ev-1", "source": "prometheus"}])
            assert hyp.id is not None
            await record_feedback(s, org_id=oid, hypothesis_id=hyp.id,
                                  status=HypothesisStatus.CONFIRMED, by="ana")
        if resolution is not None:
            await record_outcome(s, org_id=oid, incident_id=iid, resolution=resolution)
        if resolve:
            await apply_alert(s, org_id=oid, signal=replace(
                firing, status="resolved", ends_at=T0 + timedelta(minutes=40)))
    return oid, iid
