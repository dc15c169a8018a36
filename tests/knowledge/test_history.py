"""The incident history on a real chromadb with the real model: a new incident finds the past one
with the same problem, with its root cause and fix; orgs never see each other's incidents;
indexing is an idempotent upsert; a changed outcome replaces the record. Records are built from
the database: the root cause written on the incident, else the confirmed hypothesis."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from knowledge.correlation import AlertSignal, apply_alert
from knowledge.db import Database
from knowledge.embedding import Embedder
from knowledge.history import HistoryIndex, collect_resolved
from knowledge.incidents import IncidentNotFound, get_incident, record_outcome
from tests.history_fixtures import PAST, history_index, past, resolved_incident, shared_embedder
from tests.knowledge.factories import T0, org_id


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return shared_embedder()


@pytest.fixture
def index(tmp_path: Path, embedder: Embedder) -> HistoryIndex:
    idx = history_index(tmp_path, embedder)
    idx.index_many([past(n, key) for n, key in enumerate(PAST, start=1)])
    return idx


def test_a_new_incident_finds_the_past_one_with_the_same_problem(index: HistoryIndex) -> None:
    found = index.similar(1, "orders service requests timing out, database connections "
                             "exhausted", k=3)
    assert found[0][0].ref == "INC-1"
    assert len(found) == 3
    sims = [s for _, s in found]
    assert sims == sorted(sims, reverse=True) and sims[0] > sims[1] + 0.1
    top, sim = found[0]
    assert 0.5 < sim <= 1.0
    assert top.root_cause == PAST["pool"].root_cause
    assert top.resolution == "Killed the reporting query and raised the pool size from 20 to 50."
    assert (top.cause_service, top.cause_kind) == ("orders-db", "saturation")
    assert top.resolved_at == PAST["pool"].resolved_at
    assert top.postmortem is None  # only its start is indexed, as searchable text
    found = index.similar(1, "payment authorisations fail with 500 since the new release", k=1)
    assert [(p.ref, p.cause_kind) for p, _ in found] == [("INC-2", "deploy")]


def test_orgs_never_see_each_others_incidents(index: HistoryIndex) -> None:
    index.index(past(1, "memory", org=2))  # org 2's INC-1 is a memory leak
    query = "search pods keep getting OOM killed"
    assert {p.org_id for p, _ in index.similar(1, query, k=10)} == {1}
    [(theirs, _)] = index.similar(2, query, k=10)
    assert (theirs.org_id, theirs.ref, theirs.cause_kind) == (2, "INC-1", "memory")
    assert index.similar(3, query) == []
    # The incident at hand is left out of its own matches.
    refs = [p.ref for p, _ in index.similar(1, query, k=10, exclude_incident_id=3)]
    assert "INC-3" not in refs and len(refs) == 3


def test_indexing_again_is_an_idempotent_upsert(index: HistoryIndex) -> None:
    before = index.digests(1)
    index.index_many([past(n, key) for n, key in enumerate(PAST, start=1)])
    index.index(past(2, "deploy"))
    assert index.collection.count() == len(PAST)
    assert index.digests(1) == before
    assert index.digests(1, [2, 99]) == {2: before[2]}
    assert index.digests(1, []) == {}


def test_a_changed_outcome_replaces_the_record(index: HistoryIndex) -> None:
    blank = past(9, "tls").model_copy(update={"root_cause": None, "resolution": None,
                                              "cause_service": None, "cause_kind": None})
    index.index(blank)
    first = index.digests(1, [9])[9]
    assert first == blank.digest()
    known = past(9, "tls")
    assert known.digest() != first
    index.index(known)
    assert index.collection.count() == len(PAST) + 1
    assert index.digests(1, [9]) == {9: known.digest()}
    hit = next(p for p, _ in index.similar(1, "TLS certificate expired at the gateway", k=5)
               if p.incident_id == 9)
    assert hit.resolution == "Renewed the certificate and alerted on expiry 14 days ahead."
    assert hit.cause_kind == "config"


def test_nothing_indexed_finds_nothing(tmp_path: Path, embedder: Embedder) -> None:
    empty = history_index(tmp_path, embedder)
    assert empty.similar(1, "anything at all") == []
    assert empty.digests(1) == {}
    empty.index_many([])
    assert empty.collection.count() == 0


# --- records from the database --------------------------------------------------------------


async def test_collect_resolved_takes_the_confirmed_cause(database: Database) -> None:
    cause = {"service": "orders-db", "kind": "saturation", "signal": "latency", "rank": 1}
    oid, iid = await resolved_incident(
        database, confirmed=("orders-db is saturated: connection pool exhausted", cause),
        resolution="Raised the pool size.")
    _, open_id = await resolved_incident(database, group="g2", resolve=False,
                                         service="catalog")
    async with database.session() as s:
        [rec] = await collect_resolved(s, org_id=oid)
    assert (rec.incident_id, rec.title, rec.service) == (iid, "Orders API requests are timing "
                                                              "out", "orders")
    assert rec.root_cause == "orders-db is saturated: connection pool exhausted"
    assert (rec.cause_service, rec.cause_kind) == ("orders-db", "saturation")
    assert rec.resolution == "Raised the pool size."
    assert rec.resolved_at == T0 + timedelta(minutes=40)
    assert open_id != iid
    # What people write on the incident is the root cause; the hypothesis still gives the
    # structured cause.
    async with database.session() as s, s.begin():
        await record_outcome(s, org_id=oid, incident_id=iid,
                             root_cause="A reporting query held every pooled connection.",
                             summary="Orders timed out for 40 minutes.",
                             postmortem="# Post-mortem\n\nLong text.")
    async with database.session() as s:
        [rec] = await collect_resolved(s, org_id=oid)
        assert await collect_resolved(s, org_id=oid, since_id=iid) == []
        assert await collect_resolved(s, org_id=oid, incident_ids=[open_id]) == []
    assert rec.root_cause == "A reporting query held every pooled connection."
    assert rec.summary == "Orders timed out for 40 minutes."
    assert rec.postmortem == "# Post-mortem\n\nLong text."
    assert rec.cause_service == "orders-db"


async def test_collect_resolved_without_a_confirmed_cause_and_across_orgs(
        database: Database) -> None:
    oid, iid = await resolved_incident(database)
    other, _ = await resolved_incident(database, slug="globex")
    async with database.session() as s:
        [rec] = await collect_resolved(s, org_id=oid)
        assert [r.org_id for r in await collect_resolved(s, org_id=other)] == [other]
    assert rec.incident_id == iid
    assert rec.root_cause is rec.cause_service is rec.cause_kind is None


async def test_record_outcome_sets_keeps_and_clears(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        incident = await apply_alert(s, org_id=oid, signal=AlertSignal(
            group_key="g", fingerprint="f", status="firing", labels={"alertname": "X"},
            annotations={}, starts_at=T0, ends_at=None))
        assert incident is not None and incident.id is not None
        iid, stamp = incident.id, incident.updated_at
    async with database.session() as s, s.begin():
        await record_outcome(s, org_id=oid, incident_id=iid, root_cause=" bad config ",
                             resolution="reverted")
    async with database.session() as s, s.begin():
        await record_outcome(s, org_id=oid, incident_id=iid, resolution="  ")
    async with database.session() as s:
        inc = await get_incident(s, org_id=oid, incident_id=iid)
    assert (inc.root_cause, inc.resolution, inc.summary) == ("bad config", None, None)
    assert inc.updated_at > stamp
    async with database.session() as s, s.begin():
        other = await org_id(s, "globex")
    async with database.session() as s:
        with pytest.raises(IncidentNotFound):
            await record_outcome(s, org_id=other, incident_id=iid, root_cause="x")
