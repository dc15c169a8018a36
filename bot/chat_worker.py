"""The chat worker, one per chat platform: leases the platform's inbox items (an answer takes
seconds and calls the platform and the tools, so it cannot hold a transaction), hands several at
once to the platform's handlers, and records each outcome; beside that, in a loop of its own,
the handlers deliver what the incident engine queued — a person's question does not wait for an
alert storm's incident cards, nor they for it. A worker that dies mid-answer lets its lease run
out and the item is handled again; each post's outbox key keeps that from posting twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from bot.polling import drain, work_until_stopped
from bot.settings import Settings
from knowledge.db import Database
from knowledge.inbox import InboxItem, finish, lease, release

Intake = TypeVar("Intake")
log = logging.getLogger(__name__)
# At shutdown, how long deliveries in flight may take to finish before they are handed back:
# within `running_worker`'s 30 s and the chart's termination grace period.
FINISH_SECONDS = 15.0


class NotYet(Exception):
    """The platform was faster than the incident engine (a channel named after an incident
    that is still being opened): the item is retried with backoff."""


class ChatHandlers(Protocol):
    """What a platform's adapter does with its inbox items and the engine's queued messages."""

    async def handle(self, item: InboxItem) -> None: ...

    async def deliver(self, *, wait: bool = True) -> int: ...

    async def finish_deliveries(self, seconds: float) -> None: ...


@dataclass
class ChatService(Generic[Intake]):
    """A chat platform inside the process: what receives its requests (Slack's Bolt handler,
    Teams' intake), and its chat worker when the process answers (`serve` and `worker`)."""

    intake: Intake
    worker: ChatWorker | None


@dataclass
class ChatWorker:
    db: Database
    settings: Settings
    handlers: ChatHandlers
    source: str  # the inbox source this worker answers: "slack" or "teams"
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Set by this process's inbox worker when it changed incidents, and by any process's new
    # outbox message on PostgreSQL (bot/wakeups.py): deliver now, not at the next poll.
    deliveries: asyncio.Event = field(default_factory=asyncio.Event)

    async def run_once(self) -> int:
        """One round of answering, then one of delivering (the demo and tests drain this)."""
        return await self.answer_round() + await self.deliver_round(wait=True)

    async def answer_round(self) -> int:
        async with self.db.session() as session, session.begin():
            items = await lease(session, sources=[self.source], limit=self.settings.chat_workers,
                                seconds=self.settings.chat_lease_seconds)
        if items:
            await asyncio.gather(*(self._one(item) for item in items))
        return len(items)

    async def deliver_round(self, *, wait: bool = False) -> int:
        try:
            return await self.handlers.deliver(wait=wait)
        except Exception:  # retried next round: the marker row is only written once posted
            log.exception("delivering incident messages to %s failed", self.source)
            return 0

    async def _one(self, item: InboxItem) -> None:
        error: str | None = None
        assert item.id is not None
        try:
            await self.handlers.handle(item)
        except asyncio.CancelledError:
            # Shutting down mid-answer: hand the item back now rather than after the lease
            # (the outbox keys keep what was already posted from being posted again).
            with contextlib.suppress(Exception):
                async with self.db.session() as session, session.begin():
                    await release(session, item_id=item.id)
            raise
        except NotYet as exc:  # expected: retried with backoff, no traceback needed
            log.info("%s item %s waits: %s", self.source, item.id, exc)
            error = f"NotYet: {exc}"
        except Exception as exc:  # one bad item must not stop the rest
            log.exception("%s item %s failed", self.source, item.id)
            error = f"{type(exc).__name__}: {exc}"
        async with self.db.session() as session, session.begin():
            await finish(session, item_id=item.id, error=error,
                         max_attempts=self.settings.inbox_max_attempts)

    async def drain(self) -> int:
        """Process until nothing is claimable (the demo and tests use this)."""
        return await drain(self.run_once)

    async def run(self, stop: asyncio.Event) -> None:
        """Answer and deliver, each in its own loop, until `stop` is set (see
        `bot.polling`). Deliveries poll: the incident engine may run in another process."""
        await asyncio.gather(
            work_until_stopped(self.answer_round, wake=self.wake, stop=stop,
                               poll_seconds=self.settings.worker_poll_seconds,
                               name=f"{self.source} chat worker"),
            work_until_stopped(self.deliver_round, wake=self.deliveries, stop=stop,
                               poll_seconds=self.settings.worker_poll_seconds,
                               name=f"{self.source} delivery"))
        await self.handlers.finish_deliveries(FINISH_SECONDS)


@asynccontextmanager
async def running_worker(worker: ChatWorker) -> AsyncIterator[ChatWorker]:
    """The worker running in a task until the block ends; then it finishes its round."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop), name=f"{worker.source}-chat-worker")
    try:
        yield worker
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=30)
