"""Changes: deploys, rollbacks, config and feature-flag changes, as CI/CD pipelines report them.

Each change is stored once per org under a dedupe key derived from its natural key — the id the
sender gave, else service + kind + version + time — so a pipeline's retry or a redelivered
webhook records nothing new. Times are the pipeline's own (`occurred_at`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import Index, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.types import UTCDateTime, utcnow

ChangeKind = Literal["deploy", "config", "rollback", "feature_flag", "other"]
CHANGE_KINDS: tuple[str, ...] = get_args(ChangeKind)


class Change(SQLModel, table=True):
    __tablename__ = "change_event"
    __table_args__ = (
        UniqueConstraint("org_id", "dedupe_key"),
        Index("ix_change_event_service_time", "org_id", "service", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    service: str = Field(max_length=200)
    kind: str = Field(max_length=32)  # one of CHANGE_KINDS
    version: str | None = Field(default=None, max_length=200)
    previous_version: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=4000)
    author: str | None = Field(default=None, max_length=200)
    source: str = Field(max_length=32)  # webhook | prometheus | …
    link: str | None = Field(default=None, max_length=2000)
    dedupe_key: str = Field(max_length=64)  # SHA-256 of `natural_key`
    occurred_at: datetime = Field(sa_type=UTCDateTime)  # the pipeline's time
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def natural_key(*, service: str, kind: str, version: str | None, occurred_at: datetime,
                external_id: str | None = None) -> str:
    """What makes two reports the same change: the sender's id (per service, since pipelines
    number their builds independently), else service + kind + version + the UTC time."""
    if external_id:
        return f"id|{service}|{external_id}"
    when = occurred_at.astimezone(UTC).isoformat()
    return f"{service}|{kind}|{version or ''}|{when}"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def record_change(session: AsyncSession, *, org_id: int, service: str, kind: str,
                        occurred_at: datetime, source: str, description: str = "",
                        version: str | None = None, previous_version: str | None = None,
                        author: str | None = None, link: str | None = None,
                        external_id: str | None = None) -> Change | None:
    """Store a change once: one already stored under the same natural key returns None and
    writes nothing."""
    if kind not in CHANGE_KINDS:
        raise ValueError(f"unknown change kind {kind!r}; known: {', '.join(CHANGE_KINDS)}")
    if occurred_at.tzinfo is None:
        raise ValueError(f"naive occurred_at {occurred_at!r}: give the time zone")
    dedupe_key = _digest(natural_key(service=service, kind=kind, version=version,
                                     occurred_at=occurred_at, external_id=external_id))
    stmt = select(Change).where(Change.org_id == org_id, Change.dedupe_key == dedupe_key)
    if (await session.exec(stmt)).first() is not None:
        return None
    change = Change(org_id=org_id, service=service, kind=kind, version=version,
                    previous_version=previous_version, description=description[:4000],
                    author=author, source=source, link=link, dedupe_key=dedupe_key,
                    occurred_at=occurred_at)
    try:
        async with session.begin_nested():
            session.add(change)
    except IntegrityError:  # a concurrent worker stored the same change between read and write
        return None
    return change


async def changes_between(session: AsyncSession, *, org_id: int, start: datetime, end: datetime,
                          services: list[str] | None = None) -> list[Change]:
    """Changes with `start <= occurred_at <= end`, oldest first; only these services if given."""
    stmt = select(Change).where(Change.org_id == org_id, Change.occurred_at >= start,
                                Change.occurred_at <= end)
    if services is not None:
        stmt = stmt.where(col(Change.service).in_(services))
    stmt = stmt.order_by(col(Change.occurred_at), col(Change.id))
    return list((await session.exec(stmt)).all())
