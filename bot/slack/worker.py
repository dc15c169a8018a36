"""The chat worker: leases Slack inbox items (an answer takes seconds and calls Slack and the
tools, so it cannot hold a transaction), handles several at once, and records each outcome. A
worker that dies mid-answer lets its lease run out and the item is handled again; the answer's
outbox key keeps that from posting twice."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from bot.polling import drain, work_until_stopped
from bot.settings import Settings
from bot.slack.handlers import NotYet, SlackHandlers
from bot.slack.intake import SOURCE
from knowledge.db import Database
from knowledge.inbox import InboxItem, finish, lease

log = logging.getLogger(__name__)
LEASE_SECONDS = 180.0  # longer than any answer (the agent's wall time is capped at 90 s)


@dataclass
class ChatWorker:
    db: Database
    settings: Settings
    handlers: SlackHandlers
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def run_once(self) -> int:
        async with self.db.session() as session, session.begin():
            items = await lease(session, sources=[SOURCE], limit=self.settings.chat_workers,
                                seconds=LEASE_SECONDS)
        if items:
            await asyncio.gather(*(self._one(item) for item in items))
        try:
            delivered = await self.handlers.deliver()
        except Exception:  # retried next round: the marker row is only written once posted
            log.exception("delivering incident messages to Slack failed")
            delivered = 0
        return len(items) + delivered

    async def _one(self, item: InboxItem) -> None:
        error: str | None = None
        try:
            await self.handlers.handle(item)
        except NotYet as exc:  # expected: retried with backoff, no traceback needed
            log.info("slack item %s waits: %s", item.id, exc)
            error = f"NotYet: {exc}"
        except Exception as exc:  # one bad item must not stop the rest
            log.exception("slack item %s failed", item.id)
            error = f"{type(exc).__name__}: {exc}"
        assert item.id is not None
        async with self.db.session() as session, session.begin():
            await finish(session, item_id=item.id, error=error,
                         max_attempts=self.settings.inbox_max_attempts)

    async def drain(self) -> int:
        """Process until nothing is claimable (the demo and tests use this)."""
        return await drain(self.run_once)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set (see `bot.polling`)."""
        await work_until_stopped(self.run_once, wake=self.wake, stop=stop,
                                 poll_seconds=self.settings.worker_poll_seconds,
                                 name="slack chat worker")
