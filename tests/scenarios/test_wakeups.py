"""A separate `sre-copilot worker` hears new work the moment another process commits it
(PostgreSQL LISTEN/NOTIFY, bot/wakeups.py), not at its next poll: here the poll is a minute
away, and the alert a `serve` replica accepted must be on an incident within seconds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func
from sqlalchemy.engine import URL
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.webhooks.alertmanager import AlertmanagerPayload, inbox_entries
from knowledge import migrate
from knowledge.alerts import Alert
from knowledge.db import INBOX_CHANNEL, OUTBOX_CHANNEL, libpq_url, open_database
from knowledge.inbox import enqueue
from knowledge.orgs import ensure_org
from knowledge.outbox import enqueue_message
from tests.fakes.alertmanager import alert, notification
from tests.scenarios.test_crash_recovery import WorkerProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def test_a_worker_in_another_process_takes_new_alerts_without_waiting_to_poll(
        pg_url: URL, tmp_path: Path) -> None:
    migrate.upgrade(pg_url)
    worker = WorkerProcess.start(pg_url, tmp_path, "worker",
                                 SRE_COPILOT_WORKER_POLL_SECONDS="60")
    db = open_database(pg_url)
    try:
        deadline = time.monotonic() + 60
        while "worker started" not in worker.log() and time.monotonic() < deadline:
            worker.assert_running()
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)  # its first round done: from here on it sleeps on the poll
        body = notification([alert("DiskFull", service="ledger", pod="ledger-0")])
        async with db.session() as session, session.begin():
            org = await ensure_org(session, slug="default", name="default")
            assert org.id is not None
            await enqueue(session, org_id=org.id, entries=inbox_entries(
                AlertmanagerPayload.model_validate(body)))
        accepted = time.monotonic()
        placed = None
        while placed is None and time.monotonic() - accepted < 10:
            worker.assert_running()
            await asyncio.sleep(0.1)
            async with db.session() as session:
                placed = (await session.exec(select(Alert).where(
                    Alert.incident_id.is_not(None)))).first()  # type: ignore[union-attr]
        assert placed is not None, f"not taken within 10 s:\n{worker.log()[-2000:]}"
        assert time.monotonic() - accepted < 5
    finally:
        await db.dispose()
        worker.reap()


async def test_new_work_notifies_on_commit_and_bookkeeping_does_not(pg_url: URL) -> None:
    migrate.upgrade(pg_url)
    db = open_database(pg_url)
    listener = await psycopg.AsyncConnection.connect(libpq_url(pg_url), autocommit=True)
    try:
        await listener.execute(f"LISTEN {INBOX_CHANNEL}")
        await listener.execute(f"LISTEN {OUTBOX_CHANNEL}")

        # Channels are the database's, and other tests' schemas share it: only notifications
        # this test's own connections sent count.
        ours: set[int] = set()

        async def heard() -> list[str]:
            got: list[str] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    async for note in listener.notifies():
                        if note.pid in ours:
                            got.append(note.channel)
            return got

        async def backend(session: AsyncSession) -> None:
            ours.add(int((await session.exec(select(func.pg_backend_pid()))).one()))

        async with db.session() as session, session.begin():
            await backend(session)
            org = await ensure_org(session, slug="default", name="default")
            assert org.id is not None
            await enqueue_message(session, org_id=org.id, key="slack:outbox:x", text="marker",
                                  kind="slack_post", wake=False)
        assert await heard() == []  # a delivery marker is no news to anyone
        async with db.session() as session, session.begin():
            await backend(session)
            await enqueue_message(session, org_id=org.id, key="status:1", text="resolved",
                                  kind="incident_status")
            await enqueue(session, org_id=org.id, entries=inbox_entries(
                AlertmanagerPayload.model_validate(notification([alert("DiskFull")]))))
            assert await heard() == []  # nothing before the commit
        assert sorted(await heard()) == [INBOX_CHANNEL, OUTBOX_CHANNEL]
    finally:
        await listener.close()
        await db.dispose()
