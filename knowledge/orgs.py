"""Orgs: the tenants. Every tenant-owned row carries `org_id`; an org is found by its slug, its
Slack team id or its Teams tenant id. Each org holds its own credentials: webhook tokens (kept
as SHA-256 digests: shown once, when made), PagerDuty signing secrets (kept as given: a signature
is checked with the secret itself) and where its weekly digest goes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON
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
    alertmanager_token_sha256: str | None = Field(default=None, max_length=64)
    changes_token_sha256: str | None = Field(default=None, max_length=64)
    pagerduty_secrets: list[str] = Field(default_factory=list, sa_type=JSON)
    digest_slack_channel: str | None = Field(default=None, max_length=256)
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


# --- credentials -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewTokens:
    """Tokens just made: shown to the operator once, stored only as digests."""

    alertmanager_token: str | None = None
    changes_token: str | None = None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(given: str, digest: str | None) -> bool:
    """Whether `given` is the token whose digest is stored (constant time)."""
    return digest is not None and hmac.compare_digest(token_digest(given), digest)


class OrgExists(ValueError):
    pass


async def create_org(session: AsyncSession, *, slug: str, name: str | None = None,
                     pagerduty_secrets: list[str] | None = None,
                     digest_slack_channel: str | None = None) -> tuple[Org, NewTokens]:
    """A new org with freshly made Alertmanager and changes tokens (returned, once)."""
    if (await session.exec(select(Org).where(Org.slug == slug))).first() is not None:
        raise OrgExists(f"an org with slug {slug!r} exists; `orgs rotate {slug}` makes new "
                        "tokens")
    org = Org(slug=slug, name=name or slug, pagerduty_secrets=list(pagerduty_secrets or []),
              digest_slack_channel=digest_slack_channel)
    tokens = _new_tokens(org, alertmanager=True, changes=True)
    session.add(org)
    await session.flush()
    return org, tokens


def rotate(org: Org, *, alertmanager: bool = False, changes: bool = False,
           pagerduty_secrets: list[str] | None = None) -> NewTokens:
    """New tokens for what is asked (the old ones stop working at once), and the PagerDuty
    secrets replaced when given (several while PagerDuty rotates)."""
    if pagerduty_secrets is not None:
        org.pagerduty_secrets = list(pagerduty_secrets)
    return _new_tokens(org, alertmanager=alertmanager, changes=changes)


def _new_tokens(org: Org, *, alertmanager: bool, changes: bool) -> NewTokens:
    am = secrets.token_urlsafe(32) if alertmanager else None
    ch = secrets.token_urlsafe(32) if changes else None
    if am:
        org.alertmanager_token_sha256 = token_digest(am)
    if ch:
        org.changes_token_sha256 = token_digest(ch)
    return NewTokens(alertmanager_token=am, changes_token=ch)


async def list_orgs(session: AsyncSession) -> list[Org]:
    return list((await session.exec(select(Org).order_by(Org.id))).all())  # type: ignore[arg-type]
