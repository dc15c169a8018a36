"""Alerts: one row per alert firing (an alert's fingerprint and its `startsAt`), updated when it
resolves. Times are the source's own (`startsAt`/`endsAt`), never the time a webhook arrived."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.types import UTCDateTime, utcnow


class Alert(SQLModel, table=True):
    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("org_id", "fingerprint", "starts_at"),
        # The release sweep reads the held alerts that are due.
        Index("ix_alert_held", "held_until"),
        Index("ix_alert_noise_key", "org_id", "noise_key", "starts_at"),
        # A notification's listing (`correlation.apply_listing`) reads its group's firing
        # alerts, and the left-out ones.
        Index("ix_alert_status", "org_id", "status"),
        Index("ix_alert_left_out", "left_out_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    fingerprint: str = Field(max_length=128)
    alertname: str = Field(max_length=200)
    status: str = Field(max_length=16)  # firing | resolved
    severity: str | None = Field(default=None, max_length=32)
    service: str | None = Field(default=None, max_length=200)
    group_key: str | None = None
    labels: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    annotations: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    generator_url: str | None = Field(default=None, max_length=2000)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A warning waits (knowledge.noise) until `held_until` before it joins or opens an
    # incident; `noise` says why it never will (info alone, flapping, resolved within the hold).
    held_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    noise: str | None = Field(default=None, max_length=500)
    # SHA-256 of its labels but severity: its earlier firings, found by index (flapping, chronic).
    noise_key: str | None = Field(default=None, max_length=64)
    # When a notification of its group first left it out while it fired: Alertmanager mutes it
    # (an inhibit rule, a silence) or it ended while muted — it is taken as ended then, and as
    # firing again if a later notification lists it.
    left_out_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


async def alerts_of_incident(session: AsyncSession, *, org_id: int, incident_id: int
                             ) -> list[Alert]:
    stmt = (select(Alert).where(Alert.org_id == org_id, Alert.incident_id == incident_id)
            .order_by(Alert.starts_at, Alert.id))  # type: ignore[arg-type]
    return list((await session.exec(stmt)).all())


async def find_alert(session: AsyncSession, *, org_id: int, fingerprint: str,
                     starts_at: datetime) -> Alert | None:
    stmt = select(Alert).where(Alert.org_id == org_id, Alert.fingerprint == fingerprint,
                               Alert.starts_at == starts_at)
    return (await session.exec(stmt)).first()


async def list_alerts(session: AsyncSession, *, org_id: int, limit: int = 1000) -> list[Alert]:
    stmt = select(Alert).where(Alert.org_id == org_id).order_by(Alert.id).limit(limit)  # type: ignore[arg-type]
    return list((await session.exec(stmt)).all())
