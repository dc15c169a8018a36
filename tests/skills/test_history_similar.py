"""Similar past incidents as a skill result (summary and `history` evidence), and the sweep that
indexes resolved incidents: only resolved ones, each once, again when its outcome changes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from knowledge.correlation import AlertSignal, apply_alert
from knowledge.db import Database
from knowledge.embedding import Embedder
from knowledge.history import HistoryIndex
from knowledge.incidents import record_outcome
from skills.history.similar import SimilarIncident, find_similar, similar_incidents
from skills.history.sweep import index_resolved
from tests.history_fixtures import PAST, history_index, past, resolved_incident, shared_embedder
from tests.knowledge.factories import T0


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return shared_embedder()


@pytest.fixture
def index(tmp_path: Path, embedder: Embedder) -> HistoryIndex:
    return history_index(tmp_path, embedder)


async def test_summary_and_evidence_name_root_cause_and_fix(index: HistoryIndex) -> None:
    index.index_many([past(n, key) for n, key in enumerate(PAST, start=12)])
    result = await similar_incidents(
        index, org_id=1, text="Orders API: requests timing out, orders-db connection pool "
                              "exhausted", k=3)
    assert result.ok
    first = result.summary.splitlines()[1]
    assert first.startswith("- INC-12 (0.")
    assert ("root cause The orders-db connection pool was exhausted by a slow reporting query "
            "holding connections; fixed by Killed the reporting query and raised the pool size "
            "from 20 to 50.") in first
    [ev, *rest] = result.evidence
    assert [e.id for e in result.evidence] == [f"ev-{n}" for n in range(1, len(rest) + 2)]
    assert all(e.source == "history" for e in result.evidence)
    assert ev.labels == {"incident": "INC-12", "service": "orders-db", "kind": "saturation"}
    assert 0.5 <= ev.values["similarity"] <= 1.0
    assert ev.end == PAST["pool"].resolved_at
    assert ev.query and "orders-db" in ev.query
    # Everything below the threshold is left out, and the data says what was searched.
    incidents = [SimilarIncident.model_validate(d) for d in result.data["incidents"]]
    assert all(s.similarity >= 0.5 for s in incidents) and len(incidents) == len(result.evidence)
    assert incidents[0].ref == "INC-12" and incidents[0].cause_kind == "saturation"


async def test_nothing_similar_enough_is_said_plainly(index: HistoryIndex) -> None:
    index.index_many([past(n, key) for n, key in enumerate(PAST, start=1)])
    result = await similar_incidents(index, org_id=1,
                                     text="The office coffee machine is out of beans")
    assert result.ok and result.evidence == []
    assert result.summary == "No similar past incident (none reached similarity 0.50)."
    # The incident at hand is never its own match.
    found = await find_similar(index, org_id=1, text=PAST["deploy"].document(),
                               exclude_incident_id=2, min_similarity=0.0)
    assert found and all(s.incident_id != 2 for s in found)


async def test_a_failing_index_comes_back_as_an_error_result(embedder: Embedder) -> None:
    class Down:
        def get_or_create_collection(self, *_a: Any, **_k: Any) -> Any:
            raise ConnectionError("Chroma server at http://chroma:8000 is not answering")

    result = await similar_incidents(HistoryIndex(Down(), embedder), org_id=1,
                                     text="checkout errors")
    assert not result.ok
    assert result.error == ("ConnectionError: Chroma server at http://chroma:8000 is not "
                            "answering")
    assert "'checkout errors'" in result.summary and result.data == {"query": "checkout errors"}


async def test_the_sweep_indexes_resolved_incidents_once_and_again_when_changed(
        database: Database, index: HistoryIndex) -> None:
    cause = {"service": "orders-db", "kind": "saturation", "signal": "latency"}
    oid, done = await resolved_incident(
        database, confirmed=("orders-db connection pool exhausted", cause))
    _, still_open = await resolved_incident(database, group="g2", resolve=False,
                                            summary="Search latency is high", service="search")
    async with database.session() as s:
        report = await index_resolved(s, index, org_id=oid)
    assert (report.indexed, report.unchanged) == ([done], 0)
    assert set(index.digests(oid)) == {done}
    async with database.session() as s:  # nothing changed: nothing embedded
        report = await index_resolved(s, index, org_id=oid)
    assert (report.indexed, report.unchanged) == ([], 1)

    async with database.session() as s, s.begin():
        await record_outcome(s, org_id=oid, incident_id=done,
                             resolution="Killed the reporting query; pool size 20 → 50.")
    async with database.session() as s:  # only the listed incidents are looked at
        assert (await index_resolved(s, index, org_id=oid, incident_ids=[still_open])).indexed \
            == []
        report = await index_resolved(s, index, org_id=oid, incident_ids=[done])
    assert report.indexed == [done]
    [found] = await find_similar(index, org_id=oid, text="orders requests time out: database "
                                                         "connection pool exhausted")
    assert found.ref == f"INC-{done}"
    assert (found.resolution or "").startswith("Killed the reporting")
    assert (found.cause_service, found.cause_kind) == ("orders-db", "saturation")
    assert found.root_cause == "orders-db connection pool exhausted"

    async with database.session() as s, s.begin():  # the other one resolves too
        await apply_alert(s, org_id=oid, signal=AlertSignal(
            group_key="g2", fingerprint="g2-fp", status="resolved",
            labels={"alertname": "HighLatency", "service": "search"},
            annotations={"summary": "Search latency is high"}, starts_at=T0,
            ends_at=T0 + timedelta(minutes=5)))
    async with database.session() as s:
        report = await index_resolved(s, index, org_id=oid)
    assert (report.indexed, report.unchanged) == ([still_open], 1)
    assert index.collection.count() == 2
