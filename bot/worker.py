"""The inbox worker: claims pending items, applies each to the incident store, marks it done —
all in one transaction, so a crash at any point leaves the item pending and its effects unwritten.

Each item runs in its own savepoint: one bad item is retried with backoff (and, after
`inbox_max_attempts`, kept as failed with its error) without holding up the rest of the batch.
Runs inside `serve`, or alone as `sre-copilot worker`; any number may run against PostgreSQL.

Incidents a batch resolved are added to the incident history once the batch has committed. That
is best effort: a failure is logged and retried after the next batch, never a reason to redo the
batch, and the start-up sweep catches up on anything a stopped process missed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.logs import incident_scope
from bot.metrics import Metrics
from bot.polling import drain, work_until_stopped
from bot.settings import Settings
from bot.topology import TopologyCache
from bot.webhooks import alertmanager, changes, pagerduty
from knowledge.alerts import Alert
from knowledge.change_links import link_change
from knowledge.changes import record_change
from knowledge.correlation import (
    AlertSignal,
    Intake,
    apply_alert,
    apply_listing,
    apply_pagerduty,
    confirm_due,
    defer_events,
    due_now,
    lock_intake,
    outlasted,
    read_ahead,
    release_held,
    write_deferred,
)
from knowledge.db import Database
from knowledge.deadman import watch_heartbeats
from knowledge.history import HistoryIndex
from knowledge.inbox import (
    CHAT_SOURCES,
    LATER,
    InboxItem,
    claim,
    mark_done,
    mark_failed_attempt,
    pending_orgs,
)
from knowledge.incidents import Incident, IncidentStatus
from knowledge.noise import shown_firing
from knowledge.relate import Topology
from knowledge.types import utcnow
from skills.history.sweep import index_resolved

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, InboxItem, Settings], Awaitable[Any]]


async def _pagerduty(session: AsyncSession, item: InboxItem, _settings: Settings) -> Any:
    return await apply_pagerduty(session, org_id=item.org_id,
                                 signal=pagerduty.signal_from_item(item.payload))


async def _changes(session: AsyncSession, item: InboxItem, _settings: Settings) -> Any:
    notice = changes.notice_from_item(item.payload)
    change = await record_change(
        session, org_id=item.org_id, service=notice.service, kind=notice.kind,
        occurred_at=notice.occurred_at, source=changes.RECORDED_AS,
        description=notice.description, version=notice.version,
        previous_version=notice.previous_version, author=notice.author, link=notice.link,
        external_id=notice.sender_id)
    if change is not None:  # None: already recorded (and linked) from an earlier report
        await link_change(session, change=change)
    return change


HANDLERS: dict[str, Handler] = {  # Alertmanager's is the worker's own (it needs the topology)
    pagerduty.SOURCE: _pagerduty,
    changes.SOURCE: _changes,
}


class _ItemFailed(Exception):
    """An item failed on the fast path: redo the batch item by item."""


@dataclass
class InboxWorker:
    db: Database
    settings: Settings
    metrics: Metrics
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when an item that may open an incident arrived: a batch of later items stops early
    # (what it did commits; the rest stays pending), so a new group's card does not wait for
    # a hundred repeats' correlation.
    first: asyncio.Event = field(default_factory=asyncio.Event)
    handlers: dict[str, Handler] = field(default_factory=lambda: dict(HANDLERS))
    history: HistoryIndex | None = None  # None: resolved incidents are not indexed here
    # Set once a batch that changed incidents has committed: the chat workers' delivery wake-ups.
    changed: list[asyncio.Event] = field(default_factory=list)
    # kube-state-metrics' placement, for relating alerts (None: labels alone).
    topology: TopologyCache | None = None
    # Resolved incidents not yet in the history index, by org (kept across a failed attempt).
    _unindexed: dict[int, set[int]] = field(default_factory=dict, init=False, repr=False)
    _intake: Intake = field(default_factory=Intake, init=False, repr=False)
    # The batch's Alertmanager items, parsed once (by inbox item id).
    _signals: dict[int, AlertSignal] = field(default_factory=dict, init=False, repr=False)
    _swept_at: float = field(default=float("-inf"), init=False, repr=False)

    def __post_init__(self) -> None:
        self.handlers.setdefault(alertmanager.SOURCE, self._alertmanager)
        self.handlers.setdefault(alertmanager.LISTING, self._listing)

    async def _listing(self, session: AsyncSession, item: InboxItem, settings: Settings
                       ) -> list[Incident]:
        listing = alertmanager.listing_from_item(item.payload)
        return await apply_listing(
            session, org_id=item.org_id, group_key=listing.group_key, listed=listing.listed,
            received_at=listing.received_at, step=listing.step, intake=self._intake,
            auto_resolve=settings.auto_resolve)

    async def _alertmanager(self, session: AsyncSession, item: InboxItem,
                            settings: Settings) -> Any:
        signal = self._signals.get(item.id or 0) or alertmanager.signal_from_item(item.payload)
        return await apply_alert(session, org_id=item.org_id, signal=signal,
                                 auto_resolve=settings.auto_resolve, intake=self._intake)

    async def _read_ahead(self, session: AsyncSession, org_id: int,
                          items: list[InboxItem]) -> None:
        """Parse the batch's alerts (all of `org_id`, whose intake lock it holds) once and read
        what they will ask about in a few statements (`knowledge.correlation.read_ahead`). An
        item that does not parse is left to fail on its own."""
        self._signals = {}
        for item in items:
            if item.source != alertmanager.SOURCE or item.id is None:
                continue
            try:
                self._signals[item.id] = alertmanager.signal_from_item(item.payload)
            except Exception:  # its own attempt records why
                continue
        await read_ahead(session, org_id=org_id, signals=list(self._signals.values()),
                         intake=self._intake, locked=True)

    async def _refresh_intake(self) -> None:
        self._intake = Intake(
            window_s=self.settings.correlation_window_seconds,
            noise=self.settings.noise_rules(),
            topology=await self.topology.current() if self.topology else Topology())

    async def run_once(self) -> int:
        """Process one batch; returns how many items it claimed.

        The fast path applies the whole batch in one transaction with no savepoints. If any
        item fails, that transaction is rolled back — nothing of the batch is written — and
        the batch is done again with a savepoint per item, so only the bad item is retried."""
        await self._refresh_intake()
        try:
            claimed = await self._batch(isolated=False)
        except _ItemFailed:
            claimed = await self._batch(isolated=True)
        await self._sweep()
        return claimed

    async def _sweep(self) -> None:
        """At most once a sweep interval: place the held alerts that are due, post the
        unconfirmed incidents that are due, and open (or resolve) the incident that says a
        heartbeat went silent (the dead man's switch)."""
        every = max(0.2, min(5.0, self.settings.noise_hold_seconds / 8,
                             self.settings.watchdog_timeout / 8 or 5.0))
        if time.monotonic() - self._swept_at < every:
            return
        self._swept_at = time.monotonic()
        early = await self._still_firing()
        async with self.db.session() as session, session.begin():
            if early:
                await due_now(session, alerts=early, now=utcnow())
            placed = await release_held(session, intake_of=lambda _org: self._intake)
            confirmed = await confirm_due(session)
            silent = await watch_heartbeats(session, allowed_s=self.settings.watchdog_timeout)
        if placed or confirmed or silent:
            for event in self.changed:
                event.set()
        for incident in placed:
            with incident_scope(incident.id):
                log.debug("%s: a held alert joined it", incident.ref)

    async def _still_firing(self) -> list[Alert]:
        """The waiting firings Prometheus shows still firing: they need not wait for
        Alertmanager's next notification (one read of Prometheus, only when some wait)."""
        if self.topology is None or self.settings.prometheus_url is None:
            return []
        async with self.db.session() as session:
            waiting = await outlasted(session, now=utcnow(), rules=self._intake.noise)
        if not waiting:
            return []
        firing = await self.topology.firing()
        return [a for a in waiting if firing and shown_firing(a.labels, firing)]

    async def _batch(self, *, isolated: bool) -> int:
        done: list[tuple[str, float]] = []
        outcomes: list[tuple[str, str]] = []
        resolved: list[tuple[int, int]] = []  # (org id, incident id)
        # (incident id, its ref and status, the item's source and id, whether it opened it)
        applied: list[tuple[int, str, str, str, int | None, bool]] = []
        async with self.db.session() as session, session.begin():
            self.first.clear()  # FIRST items arriving from now on cut a LATER batch short
            # The org's intake lock first, then its items (see lock_intake).
            org_id = await lock_intake(session, await pending_orgs(session,
                                                                   exclude=CHAT_SOURCES))
            items = [] if org_id is None else await claim(
                session, limit=self.settings.worker_batch, exclude=CHAT_SOURCES, org_id=org_id)
            if org_id is not None:
                await self._read_ahead(session, org_id, items)
            defer_events(session, self._intake)
            for item in items:
                # An item now rarely waits on the database (the batch reads ahead and writes
                # together), so without this a batch held the event loop for its whole run:
                # webhooks and cards waited behind a hundred alerts' correlation.
                await asyncio.sleep(0)
                if self.first.is_set() and item.priority == LATER and outcomes:
                    break  # the rest stays pending, claimed again in a moment
                handler = self.handlers.get(item.source)
                started = utcnow()
                try:
                    if handler is None:
                        raise LookupError(f"no handler for inbox source {item.source!r}")
                    if isolated:
                        async with session.begin_nested():
                            result = await handler(session, item, self.settings)
                            await write_deferred(session, self._intake)
                    else:
                        result = await handler(session, item, self.settings)
                    # An alert's incident, or those a notification's listing changed.
                    for got in result if isinstance(result, list) else [result]:
                        if isinstance(got, Incident) and got.id is not None:
                            applied.append((got.id, got.ref, got.status, item.source,
                                            item.id, got.created_at >= started))
                            if got.state is IncidentStatus.RESOLVED:
                                resolved.append((got.org_id, got.id))
                    mark_done(item)
                    outcome = "done"
                except Exception as exc:  # one bad item must not stop the rest
                    if not isolated:
                        raise _ItemFailed from exc
                    # Its savepoint rolled back: incidents it opened are gone again, and
                    # so are the events it deferred.
                    self._intake.pool.forget()
                    self._intake.deferred.rows = []
                    # The item's id and the error, never its payload (alert text may hold
                    # secrets; the database hides statement parameters for the same reason).
                    mark_failed_attempt(item, error=f"{type(exc).__name__}: {exc}",
                                        max_attempts=self.settings.inbox_max_attempts)
                    parked = item.status == "failed"
                    log.log(logging.ERROR if parked else logging.WARNING,
                            "inbox item %s (%s) failed, attempt %d%s: %s", item.id,
                            item.source, item.attempts, ", parked" if parked else "",
                            (item.last_error or "")[:500])
                    outcome = "failed" if item.status == "failed" else "retry"
                session.add(item)
                outcomes.append((item.source, outcome))
                if outcome == "done":
                    done.append((item.source, (utcnow() - item.received_at).total_seconds()))
            if not isolated:  # the batch's timeline rows, in one round trip
                try:
                    await write_deferred(session, self._intake)
                except Exception as exc:
                    raise _ItemFailed from exc  # item by item, each writing its own
        for source, outcome in outcomes:  # counted once committed
            self.metrics.items_processed.labels(source, outcome).inc()
        if applied:  # once committed: the chat workers deliver what it queued
            for event in self.changed:
                event.set()
        for incident_id, ref, status, source, item_id, opened in applied:  # once committed
            with incident_scope(incident_id):
                log.log(logging.INFO if opened else logging.DEBUG, "%s %s by %s item %s (%s)",
                        ref, "opened" if opened else "updated", source, item_id, status)
        for source, latency in done:
            self.metrics.processing_latency.labels(source).observe(latency)
        if self.history is not None and (resolved or (items and self._unindexed)):
            for org_id, incident_id in resolved:
                self._unindexed.setdefault(org_id, set()).add(incident_id)
            await self._index_history(self.history)
        return len(items)

    async def _index_history(self, history: HistoryIndex) -> None:
        """Never raises: the batch is committed whatever happens here."""
        for org_id, ids in list(self._unindexed.items()):
            try:
                async with self.db.session() as session:
                    await index_resolved(session, history, org_id=org_id, incident_ids=ids)
            except Exception:
                log.exception("indexing resolved incidents %s of org %s failed; retrying "
                              "after the next batch", sorted(ids), org_id)
            else:
                self._unindexed.pop(org_id, None)

    async def drain(self) -> int:
        """Process until nothing is claimable (the demo and tests use this)."""
        return await drain(self.run_once)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set (see `bot.polling`)."""
        await work_until_stopped(self.run_once, wake=self.wake, stop=stop,
                                 poll_seconds=self.settings.worker_poll_seconds,
                                 name="inbox worker")
