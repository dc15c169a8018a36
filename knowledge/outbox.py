"""The outbox: every message the copilot means to post, keyed so that a retried worker or a
second replica never posts it twice. Written in the same transaction as the change it reports;
chat adapters deliver it and mark it sent."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, UniqueConstraint, func, literal, update
from sqlalchemy.orm import aliased
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.db import OUTBOX_CHANNEL, announce, upsert_dialect
from knowledge.types import UTCDateTime, utcnow


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox_message"
    __table_args__ = (UniqueConstraint("org_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    key: str = Field(max_length=500)
    kind: str = Field(max_length=64)  # incident_opened, incident_status, …
    text: str = Field(max_length=4000)  # the plain-text fallback every platform shows
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(default=OutboxStatus.PENDING.value, max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


async def enqueue_message(session: AsyncSession, *, org_id: int, key: str, kind: str, text: str,
                          incident_id: int | None = None, payload: dict[str, Any] | None = None,
                          wake: bool = True) -> OutboxMessage | None:
    """Queue a message once: a key already queued returns None and writes nothing. With
    `wake`, every process's deliveries hear of it on commit; a platform's own bookkeeping rows
    (its delivery and post markers) wake no one."""
    row = {"org_id": org_id, "incident_id": incident_id, "key": key, "kind": kind,
           "text": text[:4000], "payload": payload or {}, "status": OutboxStatus.PENDING.value,
           "attempts": 0, "created_at": utcnow()}
    stmt = (upsert_dialect(session).insert(OutboxMessage)
            .on_conflict_do_nothing(index_elements=["org_id", "key"])
            .returning(OutboxMessage))
    found: OutboxMessage | None = (await session.exec(stmt, params=row)).scalars().first()
    if found is not None and wake:
        await announce(session, OUTBOX_CHANNEL)
    return found


async def messages(session: AsyncSession, *, org_id: int, incident_id: int | None = None,
                   status: OutboxStatus | None = None) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).where(OutboxMessage.org_id == org_id)
    if incident_id is not None:
        stmt = stmt.where(OutboxMessage.incident_id == incident_id)
    if status is not None:
        stmt = stmt.where(OutboxMessage.status == status.value)
    return list((await session.exec(stmt.order_by(col(OutboxMessage.id)))).all())


async def find_message(session: AsyncSession, *, org_id: int, key: str) -> OutboxMessage | None:
    return (await session.exec(select(OutboxMessage).where(
        OutboxMessage.org_id == org_id, OutboxMessage.key == key))).first()


async def take_over(session: AsyncSession, *, message_id: int, claimed_at: datetime) -> bool:
    """Re-claim a pending marker whose claim time is still `claimed_at` (compare-and-set: of
    replicas racing for it, one wins)."""
    stmt = (update(OutboxMessage)
            .where(col(OutboxMessage.id) == message_id,
                   col(OutboxMessage.status) == OutboxStatus.PENDING.value,
                   col(OutboxMessage.created_at) == claimed_at)
            .values(created_at=utcnow(), attempts=OutboxMessage.attempts + 1))
    result = await session.exec(stmt)
    return bool(result.rowcount == 1)


def mark_sent(msg: OutboxMessage) -> None:
    msg.status = OutboxStatus.SENT.value
    msg.sent_at = utcnow()
    msg.attempts += 1


async def undelivered(session: AsyncSession, *, platform: str, kinds: list[str],
                      within: timedelta, limit: int, busy: Collection[int] = (),
                      lease: timedelta | None = None) -> list[OutboxMessage]:
    """The engine's messages of `kinds` from the last `within` not yet delivered to `platform`,
    leaving out those of the `busy` incidents (whose delivery is under way: in a storm they
    would otherwise fill `limit` and hide the newest incidents' cards) and, given the `lease`,
    those another replica claimed less than a lease ago (it is on them).
    A platform records a delivery as a marker row of its own, keyed `<platform>:outbox:<key>`,
    beside the platform-neutral message, so each platform delivers every message once."""
    marker = aliased(OutboxMessage)
    delivered = (select(marker.id).where(
        marker.org_id == OutboxMessage.org_id,
        marker.key == literal(f"{platform}:outbox:") + OutboxMessage.key,
        marker.status != OutboxStatus.PENDING.value).exists())
    stmt = (select(OutboxMessage)
            .where(col(OutboxMessage.kind).in_(kinds), ~delivered,
                   OutboxMessage.created_at >= utcnow() - within))
    if busy:
        stmt = stmt.where(col(OutboxMessage.incident_id).not_in(list(busy)))
    if lease is not None:
        claimer = aliased(OutboxMessage)
        stmt = stmt.where(~select(claimer.id).where(
            claimer.org_id == OutboxMessage.org_id,
            claimer.key == literal(f"{platform}:outbox:") + OutboxMessage.key,
            claimer.status == OutboxStatus.PENDING.value,
            claimer.created_at >= utcnow() - lease).exists())
    stmt = stmt.order_by(col(OutboxMessage.id)).limit(limit)
    return list((await session.exec(stmt)).all())


def mark_failed(msg: OutboxMessage, error: str) -> None:
    """Given up: kept with its error for a person (and `/metrics`) to see."""
    msg.status = OutboxStatus.FAILED.value
    msg.attempts += 1
    msg.last_error = error[:4000]


@dataclass(frozen=True)
class PostCounts:
    failed: int  # chat posts given up, kept with their error
    pending: int  # chat posts started but neither made nor given up


async def post_counts(session: AsyncSession) -> PostCounts:
    """How many chat posts failed or wait, for `/metrics`. Only the chat adapters' rows count
    (kind `<platform>_post`: a post's claim, or a platform's delivery marker): the engine's
    platform-neutral messages stay pending by design, their deliveries being marker rows."""
    stmt = (select(OutboxMessage.status, func.count())
            .where(col(OutboxMessage.kind).like("%\\_post", escape="\\"),
                   OutboxMessage.status != OutboxStatus.SENT.value)
            .group_by(OutboxMessage.status))
    found = {status: int(n) for status, n in (await session.exec(stmt)).all()}
    return PostCounts(failed=found.get(OutboxStatus.FAILED.value, 0),
                      pending=found.get(OutboxStatus.PENDING.value, 0))
