"""The durable inbox: every accepted webhook item, stored before the sender gets its 2xx.

Items are keyed by their natural idempotency key per source, so a redelivery is recognised and
ignored. A worker claims pending items (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the database
write lock on SQLite) and marks them done in the same transaction as their effects: a crash rolls
both back and the item is simply claimed again — never lost, never applied twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, SmallInteger, UniqueConstraint, func
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.db import FIRST_WAITING, INBOX_CHANNEL, announce, upsert_dialect
from knowledge.types import UTCDateTime, utcnow

# Chat platforms' items are leased by the chat worker (an answer takes seconds and calls out),
# not applied in the incident worker's short transactions.
CHAT_SOURCES = ("slack", "teams")


# Inbox priorities: claimed FIRST, then LATER, each oldest first.
FIRST, LATER = 0, 1


class InboxStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # gave up after max attempts; kept, with its error, for a person to look at


class InboxItem(SQLModel, table=True):
    __tablename__ = "inbox_item"
    __table_args__ = (
        UniqueConstraint("org_id", "source", "idempotency_key"),
        # Claims read pending items by priority, then in id order: this index returns them
        # already sorted.
        Index("ix_inbox_item_claim", "status", "priority", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    source: str = Field(max_length=32)
    idempotency_key: str = Field(max_length=64)  # SHA-256 of the natural key: any length fits
    payload: dict[str, Any] = Field(sa_type=JSON)
    status: str = Field(default=InboxStatus.PENDING.value, max_length=16)
    # 0 before 1: what opens incidents goes ahead of a storm's backlog (see InboxEntry).
    priority: int = Field(default=LATER, sa_type=SmallInteger,
                          sa_column_kwargs={"server_default": "1"})
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=4000)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    available_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True)
class InboxEntry:
    """One item to store: its source (`alertmanager`, `pagerduty`, …), key and JSON payload.
    FIRST goes to an item that may open an incident (a notification's first firing alert), so
    that in a storm a new group's card is not queued behind thousands of alerts joining
    incidents that already have theirs."""

    source: str
    key: str
    payload: dict[str, Any]
    priority: int = LATER


def key_digest(key: str) -> str:
    """Natural keys (an Alertmanager group key plus fingerprint, …) can be long; the unique
    index holds their SHA-256 so any length fits PostgreSQL's index row limit."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class EnqueueResult:
    accepted: int
    duplicates: int
    first: bool = False  # a FIRST item was among those accepted


async def enqueue(session: AsyncSession, *, org_id: int, entries: list[InboxEntry]
                  ) -> EnqueueResult:
    """Store entries, skipping any whose key is already in the inbox. All or nothing: the caller
    commits once, so a request is either wholly stored or not at all."""
    if not entries:
        return EnqueueResult(accepted=0, duplicates=0)
    # Keys repeated inside one request count as duplicates too.
    unique = list({(e.source, e.key): e for e in entries}.values())
    now = utcnow()
    rows = [{"org_id": org_id, "source": e.source, "idempotency_key": key_digest(e.key),
             "payload": e.payload, "status": InboxStatus.PENDING.value, "attempts": 0,
             "priority": e.priority,
             "received_at": now, "available_at": now} for e in unique]
    # Rows go as executemany parameters (batched by SQLAlchemy into multi-row INSERTs): the
    # statement compiles once and is cached, instead of once per request.
    stmt = (upsert_dialect(session).insert(InboxItem)
            .on_conflict_do_nothing(index_elements=["org_id", "source", "idempotency_key"])
            .returning(col(InboxItem.id), col(InboxItem.priority)))
    inserted = (await session.exec(stmt, params=rows)).all()
    first = any(priority == FIRST for _, priority in inserted)
    if inserted:
        # "first": a worker running a batch of repeats cuts it short for the new group.
        await announce(session, INBOX_CHANNEL, FIRST_WAITING if first else "")
    return EnqueueResult(accepted=len(inserted), duplicates=len(entries) - len(inserted),
                         first=first)


async def pending_orgs(session: AsyncSession, *, exclude: Sequence[str] = (),
                       limit: int = 10) -> list[int]:
    """Orgs with items ready to claim (not of `exclude`), the one whose work is most urgent
    first (a FIRST item, then the oldest)."""
    stmt = (select(InboxItem.org_id)
            .where(InboxItem.status == InboxStatus.PENDING.value,
                   InboxItem.available_at <= utcnow())
            .group_by(col(InboxItem.org_id))
            .order_by(func.min(InboxItem.priority), func.min(InboxItem.id)).limit(limit))
    if exclude:
        stmt = stmt.where(col(InboxItem.source).not_in(list(exclude)))
    return [int(org) for org in (await session.exec(stmt)).all()]


async def claim(session: AsyncSession, *, limit: int, sources: Sequence[str] | None = None,
                exclude: Sequence[str] = (), org_id: int | None = None) -> list[InboxItem]:
    """Lock up to `limit` pending items (of `sources`, default all but `exclude`; of `org_id`
    alone if given) for this transaction, oldest first: FIRST items if any are pending, else
    LATER ones. Other workers skip them; if this one dies, the lock goes with its connection and
    they become claimable."""
    stmt = (select(InboxItem)
            .where(InboxItem.status == InboxStatus.PENDING.value,
                   InboxItem.available_at <= utcnow()))
    if org_id is not None:
        stmt = stmt.where(InboxItem.org_id == org_id)
    if sources is not None:
        stmt = stmt.where(col(InboxItem.source).in_(list(sources)))
    if exclude:
        stmt = stmt.where(col(InboxItem.source).not_in(list(exclude)))
    # FIRST items alone while there are any: a batch commits as a whole, so a new group's
    # first alert mixed into a batch of a hundred others would wait for all of them.
    first = await session.exec(stmt.where(InboxItem.priority == FIRST).order_by(
        col(InboxItem.id)).limit(limit).with_for_update(skip_locked=True))
    claimed = list(first.all())
    if claimed:
        return claimed
    stmt = stmt.order_by(col(InboxItem.id)).limit(limit).with_for_update(skip_locked=True)
    return list((await session.exec(stmt)).all())


async def lease(session: AsyncSession, *, sources: Sequence[str], limit: int,
                seconds: float) -> list[InboxItem]:
    """Claim items for work that outlives a transaction (a chat answer takes seconds and
    calls out): they become invisible for `seconds`, and come back if the worker dies before
    `finish`. The caller commits right away."""
    items = await claim(session, limit=limit, sources=sources)
    until = utcnow() + timedelta(seconds=seconds)
    for item in items:
        item.available_at = until
        session.add(item)
    return items


async def release(session: AsyncSession, *, item_id: int) -> None:
    """Hand a leased item back at once (its worker is stopping before finishing it)."""
    item = await session.get(InboxItem, item_id)
    if item is not None and item.status == InboxStatus.PENDING.value:
        item.available_at = utcnow()
        session.add(item)


async def finish(session: AsyncSession, *, item_id: int, error: str | None = None,
                 max_attempts: int = 5) -> InboxItem | None:
    """Record the outcome of a leased item: done, or a failed attempt (retried with backoff)."""
    item = await session.get(InboxItem, item_id)
    if item is None:
        return None
    if error is None:
        mark_done(item)
    else:
        mark_failed_attempt(item, error=error, max_attempts=max_attempts)
    session.add(item)
    return item


def mark_done(item: InboxItem) -> None:
    item.status = InboxStatus.DONE.value
    item.processed_at = utcnow()
    item.attempts += 1


def mark_failed_attempt(item: InboxItem, *, error: str, max_attempts: int) -> None:
    """Record a failed attempt: retried later with backoff, or given up after `max_attempts`."""
    item.attempts += 1
    item.last_error = error[:4000]
    if item.attempts >= max_attempts:
        item.status = InboxStatus.FAILED.value
        item.processed_at = utcnow()
    else:
        item.available_at = utcnow() + timedelta(seconds=min(300, 2 ** item.attempts))


@dataclass(frozen=True)
class InboxDepth:
    pending: int
    failed: int
    oldest_pending_at: datetime | None


async def depth(session: AsyncSession) -> InboxDepth:
    """How much work waits, across orgs: what an operator alerts on."""
    pending = InboxItem.status == InboxStatus.PENDING.value
    row = (await session.exec(
        select(func.count(), func.min(InboxItem.received_at)).where(pending))).one()
    failed = (await session.exec(
        select(func.count()).where(InboxItem.status == InboxStatus.FAILED.value))).one()
    oldest = row[1]
    if isinstance(oldest, str):  # aggregate results skip the column type on SQLite
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return InboxDepth(pending=int(row[0]), failed=int(failed), oldest_pending_at=oldest)


async def items(session: AsyncSession, *, org_id: int, status: InboxStatus | None = None
                ) -> list[InboxItem]:
    stmt = select(InboxItem).where(InboxItem.org_id == org_id)
    if status is not None:
        stmt = stmt.where(InboxItem.status == status.value)
    return list((await session.exec(stmt.order_by(col(InboxItem.id)))).all())
