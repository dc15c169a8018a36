"""Orgs: the tenants. Every tenant-owned row carries `org_id`; an org is found by its slug, its
Slack team id or its Teams tenant id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.types import UTCDateTime, utcnow


class Org(SQLModel, table=True):
    __tablename__ = "org"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    slack_team_id: str | None = Field(default=None, max_length=64, unique=True)
    teams_tenant_id: str | None = Field(default=None, max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OrgNotFound(LookupError):
    pass


async def get_org(session: AsyncSession, *, slug: str) -> Org:
    org = (await session.exec(select(Org).where(Org.slug == slug))).first()
    if org is None:
        raise OrgNotFound(f"no org with slug {slug!r}")
    return org


async def ensure_org(session: AsyncSession, *, slug: str, name: str | None = None) -> Org:
    """The org with this slug, created if missing (safe when two replicas race to create it)."""
    org = (await session.exec(select(Org).where(Org.slug == slug))).first()
    if org is not None:
        return org
    try:
        async with session.begin_nested():
            org = Org(slug=slug, name=name or slug)
            session.add(org)
    except IntegrityError:
        return await get_org(session, slug=slug)
    return org


async def org_for_slack_team(session: AsyncSession, *, team_id: str) -> Org | None:
    return (await session.exec(select(Org).where(Org.slack_team_id == team_id))).first()


async def org_for_teams_tenant(session: AsyncSession, *, tenant_id: str) -> Org | None:
    return (await session.exec(select(Org).where(Org.teams_tenant_id == tenant_id))).first()


async def list_org_ids(session: AsyncSession) -> list[int]:
    return [i for i in (await session.exec(select(Org.id).order_by(Org.id))).all()  # type: ignore[arg-type]
            if i is not None]
