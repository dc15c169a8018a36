"""Wake-ups across processes: on PostgreSQL, one LISTEN connection per process turns the
database's notifications (`knowledge.db.announce`: new inbox items, new outbox messages, sent
when their transaction commits) into this process's wake-up events — so a replica whose worker
did not receive the webhook, or a separate `sre-copilot worker`, starts on new work at once.

Polling stays as the fallback: a notification lost while the connection was down costs one poll
interval, never an item. SQLite has one process, which wakes itself; nothing listens there."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import psycopg

from knowledge.db import (
    CONNECT_TIMEOUT_S,
    FIRST_WAITING,
    INBOX_CHANNEL,
    OUTBOX_CHANNEL,
    Database,
    libpq_url,
)

log = logging.getLogger(__name__)
RETRY_S = 5.0  # after the listening connection fails, this long until the next try


@dataclass(frozen=True)
class Wakeups:
    """What to set on each notification: the workers that claim inbox items, and the
    delivery loops that post outbox messages."""

    inbox: Sequence[asyncio.Event]
    outbox: Sequence[asyncio.Event]
    # Set too when an inbox item that may open an incident arrived (the "first" payload).
    first: Sequence[asyncio.Event] = ()


async def listen(db: Database, wakeups: Wakeups) -> None:
    """Listen until cancelled, reconnecting after a failure."""
    events = {INBOX_CHANNEL: wakeups.inbox, OUTBOX_CHANNEL: wakeups.outbox}
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                    libpq_url(db.url), autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT_S) as conn:
                for channel in events:
                    await conn.execute(f"LISTEN {channel}")
                # Whatever arrived while not listening is picked up now, not at the next poll.
                for wake in (*wakeups.inbox, *wakeups.outbox):
                    wake.set()
                async for note in conn.notifies():
                    if note.channel == INBOX_CHANNEL and note.payload == FIRST_WAITING:
                        for wake in wakeups.first:
                            wake.set()
                    for wake in events.get(note.channel, ()):
                        wake.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database restarting, a network blip: polling covers
            log.warning("listening for work on PostgreSQL failed (%s: %s); polling until it "
                        "is back, retrying in %ss", type(exc).__name__, exc, RETRY_S)
        await asyncio.sleep(RETRY_S)


@asynccontextmanager
async def listening(db: Database, wakeups: Wakeups) -> AsyncIterator[None]:
    """`listen` in a task for the block's length (nothing on SQLite)."""
    if db.is_sqlite:
        yield
        return
    task = asyncio.create_task(listen(db, wakeups), name="wakeups")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
