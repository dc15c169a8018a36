"""The inbox worker: a failing item is retried with backoff and finally kept as failed with its
error, without holding up the items around it."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.settings import Settings
from bot.worker import InboxWorker
from knowledge.inbox import InboxEntry, InboxItem, enqueue, items
from knowledge.orgs import get_org
from knowledge.outbox import enqueue_message, messages
from knowledge.types import utcnow
from tests.conftest import Copilot


async def test_a_poison_item_does_not_block_the_others(copilot: Copilot) -> None:
    async def handler(session: AsyncSession, item: InboxItem, _s: Settings) -> None:
        if item.payload.get("poison"):
            raise ValueError("cannot parse this one")
        await enqueue_message(session, org_id=item.org_id, key=f"n{item.payload['n']}",
                              kind="test", text=str(item.payload["n"]))

    copilot.settings.inbox_max_attempts = 2
    worker = InboxWorker(db=copilot.db, settings=copilot.settings, metrics=copilot.metrics,
                         handlers={"test": handler})
    async with copilot.db.session() as s, s.begin():
        oid = (await get_org(s, slug="default")).id
        assert oid is not None
        await enqueue(s, org_id=oid, entries=[
            InboxEntry("test", "a", {"n": 1}), InboxEntry("test", "bad", {"poison": True}),
            InboxEntry("test", "b", {"n": 2})])
    assert await worker.run_once() == 3
    async with copilot.db.session() as s:  # the good items' effects, each written once
        assert sorted(m.text for m in await messages(s, org_id=oid)) == ["1", "2"]
    async with copilot.db.session() as s:
        bad = next(i for i in await items(s, org_id=oid) if i.payload.get("poison"))
    assert bad.status == "pending" and bad.attempts == 1
    assert bad.last_error == "ValueError: cannot parse this one"
    assert bad.available_at > utcnow()  # backing off, not retried at once
    assert await worker.run_once() == 0
    async with copilot.db.session() as s, s.begin():  # fast-forward the backoff
        bad = await s.get(InboxItem, bad.id)
        assert bad is not None
        bad.available_at = utcnow()
        s.add(bad)
    assert await worker.run_once() == 1
    async with copilot.db.session() as s:
        bad = await s.get(InboxItem, bad.id)
    assert bad is not None and bad.status == "failed" and bad.attempts == 2
    metrics = (await copilot.client.get("/metrics")).text
    assert "sre_copilot_inbox_failed 1.0" in metrics


async def test_an_unknown_source_is_kept_with_a_clear_error(copilot: Copilot) -> None:
    async with copilot.db.session() as s, s.begin():
        oid = (await get_org(s, slug="default")).id
        assert oid is not None
        await enqueue(s, org_id=oid, entries=[InboxEntry("carrier-pigeon", "1", {})])
    await copilot.worker.run_once()
    async with copilot.db.session() as s:
        [item] = await items(s, org_id=oid)
    assert item.last_error == "LookupError: no handler for inbox source 'carrier-pigeon'"


async def test_a_batch_of_later_items_stops_for_a_new_groups_first_alert(copilot: Copilot) -> None:
    """A storm's repeats are claimed a hundred at a time; when an alert that may open an
    incident arrives meanwhile, the batch commits what it did and leaves the rest pending, so
    the new group's card does not wait for all of them."""
    worker = InboxWorker(db=copilot.db, settings=copilot.settings, metrics=copilot.metrics)

    async def handler(session: AsyncSession, item: InboxItem, _s: Settings) -> None:
        await enqueue_message(session, org_id=item.org_id, key=f"n{item.payload['n']}",
                              kind="test", text=str(item.payload["n"]))
        worker.first.set()  # as the webhook does when a new group's first alert is accepted

    worker.handlers["test"] = handler
    async with copilot.db.session() as s, s.begin():
        oid = (await get_org(s, slug="default")).id
        assert oid is not None
        await enqueue(s, org_id=oid, entries=[InboxEntry("test", f"k{n}", {"n": n})
                                              for n in range(5)])
    await worker.run_once()
    async with copilot.db.session() as s:
        assert [m.text for m in await messages(s, org_id=oid)] == ["0"]
        assert sum(i.status == "pending" for i in await items(s, org_id=oid)) == 4
    while await worker.run_once():  # one item a batch here, each cut short by the next
        pass
    async with copilot.db.session() as s:  # nothing lost, each written once
        assert sorted(m.text for m in await messages(s, org_id=oid)) == ["0", "1", "2", "3", "4"]
        assert all(i.status == "done" for i in await items(s, org_id=oid))
