"""The inbox: idempotent enqueue, and claims that two workers never share."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy.engine import URL

from bot.webhooks.alertmanager import AlertmanagerPayload, inbox_entries
from knowledge import migrate
from knowledge.db import Database, open_database
from knowledge.inbox import FIRST, InboxEntry, claim, enqueue, items, mark_done
from tests.fakes.alertmanager import alert, notification, resolved
from tests.knowledge.factories import org_id


def _entries(n: int, prefix: str = "k") -> list[InboxEntry]:
    return [InboxEntry(source="alertmanager", key=f"{prefix}{i}", payload={"i": i})
            for i in range(n)]


async def test_enqueue_is_idempotent_per_key(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        first = await enqueue(s, org_id=oid, entries=_entries(3))
        second = await enqueue(s, org_id=oid, entries=[*_entries(3), *_entries(2, "new")])
        # A key repeated inside one request is a duplicate too.
        third = await enqueue(s, org_id=oid, entries=[*_entries(1, "x"), *_entries(1, "x")])
    assert (first.accepted, first.duplicates) == (3, 0)
    assert (second.accepted, second.duplicates) == (2, 3)
    assert (third.accepted, third.duplicates) == (1, 1)


async def test_a_very_long_key_fits(database: Database) -> None:
    key = "{}:{" + ", ".join(f'label{i}="{"v" * 40}"' for i in range(100)) + "}"
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        result = await enqueue(s, org_id=oid, entries=[InboxEntry("alertmanager", key, {})])
    assert result.accepted == 1 and len(key) > 4000


async def test_a_new_groups_first_firing_is_claimed_before_a_storms_backlog(
        database: Database) -> None:
    backlog = _entries(300, "storm")
    storm = notification([alert("Storm", service="old", pod=f"p{i}") for i in range(3)])
    fresh = notification([resolved(alert("Gone", service="new", pod="a"), datetime.now(UTC)),
                          alert("DiskFull", service="new", pod="b"),
                          alert("DiskFull", service="new", pod="c")])
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await enqueue(s, org_id=oid, entries=backlog)
        await enqueue(s, org_id=oid, entries=inbox_entries(
            AlertmanagerPayload.model_validate(fresh)))
    async with database.session() as s, s.begin():
        got = await claim(s, limit=10)
        # The new group's first firing alert on its own (not its resolution: that must not
        # overtake a firing), so its incident commits without waiting for the rest.
        assert [g.payload["alert"]["labels"]["pod"] for g in got] == ["b"]
        assert got[0].priority == FIRST
        mark_done(got[0])
    async with database.session() as s, s.begin():
        got = await claim(s, limit=2)
    assert [g.payload for g in got] == [{"i": 0}, {"i": 1}]  # then the oldest
    entries = inbox_entries(AlertmanagerPayload.model_validate(storm))
    assert [e.priority for e in entries] == [FIRST, 1, 1]


async def test_concurrent_workers_never_claim_the_same_item(pg_url: URL) -> None:
    """On PostgreSQL, FOR UPDATE SKIP LOCKED hands each pending item to one worker only."""
    migrate.upgrade(pg_url)
    db = open_database(pg_url)
    try:
        async with db.session() as s, s.begin():
            oid = await org_id(s)
            await enqueue(s, org_id=oid, entries=_entries(200))
        both_hold = asyncio.Barrier(2)

        async def worker() -> list[int]:
            async with db.session() as s, s.begin():
                claimed = await claim(s, limit=150)
                await both_hold.wait()  # hold the locks while the other claims
                for item in claimed:
                    mark_done(item)
                return [i.id for i in claimed if i.id is not None]

        a, b = await asyncio.gather(worker(), worker())
        assert set(a).isdisjoint(b)
        assert len(a) + len(b) == 200
        async with db.session() as s:
            assert all(i.status == "done" and i.attempts == 1
                       for i in await items(s, org_id=oid))
    finally:
        await db.dispose()
