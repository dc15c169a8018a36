"""The outbox ledger of one platform's posts: a marker row per post (`marker`) keeps it from
going out twice when an inbox item is handled again (a lease ran out) or another replica scans
the same queued messages; and the engine's queued messages delivered in order per incident, in
parallel across incidents."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.logs import incident_scope
from bot.settings import Settings
from knowledge.db import Database
from knowledge.outbox import (
    OutboxMessage,
    OutboxStatus,
    enqueue_message,
    find_message,
    mark_failed,
    mark_sent,
    take_over,
)
from knowledge.types import utcnow

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a released claim: older than any lease

log = logging.getLogger(__name__)


def marker(platform: str, *parts: str) -> str:
    """The ledger key of one post: `slack:<event id>:answer`, `teams:outbox:<message key>`."""
    return ":".join((platform, *parts))


@dataclass
class Ledger:
    db: Database
    settings: Settings
    platform: str
    # Deliveries in flight, by incident: a round starts what is not already going.
    _delivering: dict[int | None, asyncio.Task[int]] = field(default_factory=dict, repr=False)

    def marker(self, *parts: str) -> str:
        return marker(self.platform, *parts)

    async def deliver_queued(self, queued: list[OutboxMessage],
                             deliver_one: Callable[[OutboxMessage], Awaitable[bool]], *,
                             wait: bool) -> int:
        """Deliver the engine's queued messages with `deliver_one` (True: delivered): one
        incident's in order — its card before its status changes — and different incidents at
        once, so in an alert storm thirty new incidents' cards do not queue behind each other's
        investigations. An incident whose delivery is still going is left for a later round.
        A failure is logged and leaves that incident's later messages for the next round.

        With `wait`, returns how many were delivered once all are done (the demo and tests).
        Without, returns 0 at once (the worker's loop, so a new incident never waits for an
        older one's investigation): the loop then polls rather than spins — a started task
        may find another replica holding the claim, which is no progress to hurry after."""
        by_incident: dict[int | None, list[OutboxMessage]] = {}
        for msg in queued:
            if msg.incident_id not in self._delivering:
                by_incident.setdefault(msg.incident_id, []).append(msg)
        started = []
        for incident_id, messages in by_incident.items():
            task = asyncio.create_task(self._in_order(messages, deliver_one),
                                       name=f"{self.platform}-deliver-{incident_id}")
            self._delivering[incident_id] = task
            task.add_done_callback(functools.partial(self._delivered, incident_id))
            started.append(task)
        if not wait:
            return 0
        return sum(await asyncio.gather(*started))

    def busy(self) -> list[int]:
        """The incidents whose delivery is under way in this process."""
        return [i for i in self._delivering if i is not None]

    def _delivered(self, incident_id: int | None, _task: asyncio.Task[int]) -> None:
        self._delivering.pop(incident_id, None)

    async def _in_order(self, messages: list[OutboxMessage],
                        deliver_one: Callable[[OutboxMessage], Awaitable[bool]]) -> int:
        done = 0
        for msg in messages:
            try:
                with incident_scope(msg.incident_id):
                    done += await deliver_one(msg)
            except Exception:
                log.exception("delivering %s to %s failed; retried next round", msg.key,
                              self.platform)
                break
        return done

    async def finish_deliveries(self, seconds: float) -> None:
        """At shutdown: let the deliveries in flight finish for up to `seconds`, then cancel
        the rest — each hands its claim back, so another replica takes it at once."""
        tasks = list(self._delivering.values())
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def claim_post(self, org_id: int, key: str, text: str) -> bool:
        """True the first time `key` is seen, or when an earlier attempt did not finish
        (a worker died mid-post); False once it was posted or given up."""
        return await self.claim_post_again(org_id, key, text) is not None

    async def claim_post_again(self, org_id: int, key: str, text: str) -> bool | None:
        """As `claim_post`, saying which: False the first time, True when an earlier attempt
        did not finish (it may have posted before it died), None once posted or given up."""
        async with self.db.session() as session, session.begin():
            found = await self._marker(session, org_id, key, text)
            if found is None:
                return False
            return True if found.status == OutboxStatus.PENDING.value else None

    async def progress_of(self, org_id: int, key: str) -> str | None:
        """The progress message an earlier, unfinished attempt at the post `key` left (see
        `keep_progress`): a retry updates it into the answer rather than leave it behind."""
        async with self.db.session() as session:
            found = await find_message(session, org_id=org_id, key=key)
        return str(found.payload["progress"]) if found and found.payload.get("progress") else None

    async def keep_progress(self, org_id: int, key: str, message_id: str) -> None:
        """Note on the claimed post `key` which message shows its progress."""
        async with self.db.session() as session, session.begin():
            found = await find_message(session, org_id=org_id, key=key)
            if found is not None:
                found.payload = {**found.payload, "progress": message_id}
                session.add(found)

    async def claim_delivery(self, org_id: int, key: str, text: str) -> bool:
        """Claim the delivery of an outbox message for this replica. Every replica's worker
        scans the same undelivered messages, so unlike `claim_post` a pending marker is not
        taken over at once: only once its claim (the marker's `created_at`) is older than
        `chat_lease_seconds` — its replica died — and then by one replica only (the update
        compares the old claim time). `release_delivery` hands it back after a failure."""
        async with self.db.session() as session, session.begin():
            found = await self._marker(session, org_id, key, text)
            if found is None:
                return True
            if found.status != OutboxStatus.PENDING.value:
                return False
            if utcnow() - found.created_at < timedelta(seconds=self.settings.chat_lease_seconds):
                return False
            return await take_over(session, message_id=found.id or 0,
                                   claimed_at=found.created_at)

    async def _marker(self, session: AsyncSession, org_id: int, key: str, text: str
                      ) -> OutboxMessage | None:
        """None if this call created the marker row for `key`; else the row already there."""
        created = await enqueue_message(session, org_id=org_id, key=key,
                                        kind=f"{self.platform}_post", text=text, wake=False)
        if created is not None:
            return None
        return await find_message(session, org_id=org_id, key=key)

    async def release_delivery(self, org_id: int, key: str) -> None:
        """Hand a claimed delivery back (it failed and will be retried next round)."""
        async with self.db.session() as session, session.begin():
            found = await find_message(session, org_id=org_id, key=key)
            if found is not None and found.status == OutboxStatus.PENDING.value:
                found.created_at = EPOCH
                session.add(found)

    async def mark_posted(self, org_id: int, key: str, error: str | None = None) -> None:
        """Posted; or, with `error`, given up for good (kept with the error)."""
        async with self.db.session() as session, session.begin():
            found = await find_message(session, org_id=org_id, key=key)
            if found is not None:
                if error is None:
                    mark_sent(found)
                else:
                    mark_failed(found, error)
                session.add(found)
