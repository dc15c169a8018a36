"""Digest runs: one row per org and period, so the scheduled digest is posted exactly once
however many replicas run its job. A replica claims the row (the insert wins or loses on the
unique key); one that dies mid-post leaves its claim to expire and another takes it over and
finishes what is missing (each platform's post is marked on its own)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import UniqueConstraint, update
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.db import upsert_dialect
from knowledge.types import UTCDateTime, utcnow

PLATFORMS = ("slack", "teams")


class DigestRun(SQLModel, table=True):
    __tablename__ = "digest_run"
    __table_args__ = (UniqueConstraint("org_id", "period_end"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    period_start: datetime = Field(sa_type=UTCDateTime)
    period_end: datetime = Field(sa_type=UTCDateTime)
    claimed_by: str = Field(max_length=200)
    claimed_at: datetime = Field(sa_type=UTCDateTime)
    slack_posted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    teams_posted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


async def claim_run(session: AsyncSession, *, org_id: int, period_start: datetime,
                    period_end: datetime, by: str, lease: timedelta) -> DigestRun | None:
    """The run to do, or None: finished, or claimed by another replica within its lease."""
    now = utcnow()
    stmt = (upsert_dialect(session).insert(DigestRun)
            .on_conflict_do_nothing(index_elements=["org_id", "period_end"])
            .returning(col(DigestRun.id)))
    inserted = (await session.exec(stmt, params=[{
        "org_id": org_id, "period_start": period_start, "period_end": period_end,
        "claimed_by": by, "claimed_at": now}])).first()
    if inserted is not None:
        return await session.get(DigestRun, inserted[0])
    # Someone has it: take it over only if unfinished and its claim expired (compare-and-set
    # on the old claim, so two replicas cannot both take it over).
    run = (await session.exec(select(DigestRun).where(
        DigestRun.org_id == org_id, DigestRun.period_end == period_end))).one()
    if run.finished_at is not None or run.claimed_at > now - lease:
        return None
    taken = await session.exec(update(DigestRun).where(
        col(DigestRun.id) == run.id, col(DigestRun.claimed_at) == run.claimed_at)
        .values(claimed_by=by, claimed_at=now))
    if taken.rowcount != 1:
        return None
    await session.refresh(run)
    return run


async def mark_platform_posted(session: AsyncSession, *, run_id: int, platform: str) -> None:
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}")
    await session.exec(update(DigestRun).where(col(DigestRun.id) == run_id)
                       .values({f"{platform}_posted_at": utcnow()}))


async def finish_run(session: AsyncSession, *, run_id: int) -> None:
    await session.exec(update(DigestRun).where(col(DigestRun.id) == run_id)
                       .values(finished_at=utcnow()))


async def runs(session: AsyncSession, *, org_id: int) -> list[DigestRun]:
    stmt = select(DigestRun).where(DigestRun.org_id == org_id).order_by(col(DigestRun.id))
    return list((await session.exec(stmt)).all())
