"""The outbox: every message the copilot means to post, keyed so that a retried worker or a
second replica never posts it twice. Written in the same transaction as the change it reports;
chat adapters deliver it and mark it sent."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.db import upsert_dialect
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
                          incident_id: int | None = None, payload: dict[str, Any] | None = None
                          ) -> OutboxMessage | None:
    """Queue a message once: a key already queued returns None and writes nothing."""
    row = {"org_id": org_id, "incident_id": incident_id, "key": key, "kind": kind,
           "text": text[:4000], "payload": payload or {}, "status": OutboxStatus.PENDING.value,
           "attempts": 0, "created_at": utcnow()}
    stmt = (upsert_dialect(session).insert(OutboxMessage)
            .on_conflict_do_nothing(index_elements=["org_id", "key"])
            .returning(OutboxMessage))
    found: OutboxMessage | None = (await session.exec(stmt, params=row)).scalars().first()
    return found


async def messages(session: AsyncSession, *, org_id: int, incident_id: int | None = None,
                   status: OutboxStatus | None = None) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).where(OutboxMessage.org_id == org_id)
    if incident_id is not None:
        stmt = stmt.where(OutboxMessage.incident_id == incident_id)
    if status is not None:
        stmt = stmt.where(OutboxMessage.status == status.value)
    return list((await session.exec(stmt.order_by(col(OutboxMessage.id)))).all())


def mark_sent(msg: OutboxMessage) -> None:
    msg.status = OutboxStatus.SENT.value
    msg.sent_at = utcnow()
    msg.attempts += 1
