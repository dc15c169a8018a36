"""The worker adds incidents a batch resolved to the incident history once the batch has
committed; an index that fails never fails the batch, and what it missed is indexed after the
next one."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.settings import Settings
from bot.worker import InboxWorker
from knowledge.correlation import AlertSignal, apply_alert
from knowledge.embedding import Embedder
from knowledge.history import HistoryIndex
from knowledge.inbox import InboxEntry, InboxItem, enqueue, items
from knowledge.incidents import Incident
from knowledge.orgs import get_org
from tests.conftest import Copilot
from tests.history_fixtures import history_index, shared_embedder
from tests.knowledge.factories import T0


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return shared_embedder()


async def _alert(session: AsyncSession, item: InboxItem, _s: Settings) -> Incident | None:
    p = item.payload
    return await apply_alert(session, org_id=item.org_id, signal=AlertSignal(
        group_key=p["group"], fingerprint=f"{p['group']}-fp", status=p["status"],
        labels={"alertname": "HighLatency", "service": p["service"]},
        annotations={"summary": p["summary"]}, starts_at=T0,
        ends_at=T0 + timedelta(minutes=30) if p["status"] == "resolved" else None))


def _entry(group: str, status: str, service: str, summary: str) -> InboxEntry:
    return InboxEntry("test", f"{group}-{status}", {"group": group, "status": status,
                                                    "service": service, "summary": summary})


async def _enqueue(copilot: Copilot, *entries: InboxEntry) -> int:
    async with copilot.db.session() as s, s.begin():
        oid = (await get_org(s, slug="default")).id
        assert oid is not None
        await enqueue(s, org_id=oid, entries=list(entries))
    return oid


def _worker(copilot: Copilot, history: HistoryIndex) -> InboxWorker:
    return InboxWorker(db=copilot.db, settings=copilot.settings, metrics=copilot.metrics,
                       handlers={"test": _alert}, history=history)


async def test_incidents_a_batch_resolves_are_indexed(copilot: Copilot, tmp_path: Path,
                                                      embedder: Embedder) -> None:
    index = history_index(tmp_path / "h", embedder)
    oid = await _enqueue(copilot,
                         _entry("g1", "firing", "orders", "Orders API requests time out"),
                         _entry("g1", "resolved", "orders", "Orders API requests time out"),
                         _entry("g2", "firing", "search", "Search latency is high"))
    assert await _worker(copilot, index).run_once() == 3
    [(found, _)] = index.similar(oid, "orders requests timing out", k=5)
    assert found.title == "Orders API requests time out" and found.service == "orders"
    assert index.collection.count() == 1  # g2 is still open


async def test_a_failing_index_never_fails_the_batch(copilot: Copilot, tmp_path: Path,
                                                     embedder: Embedder,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    class Down:
        def get_or_create_collection(self, *_a: Any, **_k: Any) -> Any:
            raise ConnectionError("Chroma server is not answering")

    worker = _worker(copilot, HistoryIndex(Down(), embedder))
    oid = await _enqueue(copilot,
                         _entry("g1", "firing", "orders", "Orders API requests time out"),
                         _entry("g1", "resolved", "orders", "Orders API requests time out"))
    with caplog.at_level(logging.ERROR, logger="bot.worker"):
        assert await worker.run_once() == 2
    assert "indexing resolved incidents" in caplog.text
    async with copilot.db.session() as s:
        assert {i.status for i in await items(s, org_id=oid)} == {"done"}
    # The index is back: the next batch indexes what the failed attempt missed.
    worker.history = history_index(tmp_path / "h", embedder)
    await _enqueue(copilot, _entry("g2", "firing", "search", "Search latency is high"))
    assert await worker.run_once() == 1
    assert [p.title for p, _ in worker.history.similar(oid, "orders timeouts")] == [
        "Orders API requests time out"]
