"""Storing verified webhook items: resolve the org, write the items to the inbox in one
transaction, wake the worker. Only after the commit does the handler answer 2xx."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from fastapi import Request

from bot.metrics import Metrics
from bot.settings import Settings
from bot.webhooks.errors import RequestRejected
from knowledge.db import DATABASE_UNAVAILABLE, Database
from knowledge.heartbeats import heard
from knowledge.inbox import EnqueueResult, InboxEntry, enqueue
from knowledge.orgs import OrgNotFound, get_org

log = logging.getLogger(__name__)
DATABASE_WAIT_S = 10  # how long a webhook waits on the database before answering 503
RETRY_AFTER_S = 30
ORG_TTL_S = 10.0  # how long an org's credentials are kept in memory
# What an org slug can be (knowledge.orgs keeps up to 64 characters); anything else is refused
# before it reaches a query.
ORG_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class OrgKeys:
    """What a request to an org is checked against: the org's own credentials, and whether it
    is the default org (the only one the environment's tokens open)."""

    id: int
    slug: str
    is_default: bool
    alertmanager_token_sha256: str | None
    changes_token_sha256: str | None
    pagerduty_secrets: tuple[str, ...]


@dataclass
class Intake:
    settings: Settings
    db: Database
    metrics: Metrics
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Set with `wake` when an accepted item may open an incident (see InboxWorker.first).
    first: asyncio.Event = field(default_factory=asyncio.Event)
    # Read again after ORG_TTL_S, so `orgs rotate` on any replica takes effect everywhere.
    _orgs: dict[str, tuple[float, OrgKeys]] = field(default_factory=dict)

    async def org(self, slug: str | None) -> OrgKeys:
        """The org a request targets (`?org=`, else the default), with its credentials."""
        slug = slug or self.settings.default_org
        if not ORG_SLUG.fullmatch(slug):
            raise RequestRejected(400, "invalid_org",
                                  "?org= takes an org's slug: letters, digits, '.', '_' and '-', "
                                  "at most 64 characters")
        cached = self._orgs.get(slug)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with database_answers(), self.db.session() as session:
            try:
                org = await get_org(session, slug=slug)
            except OrgNotFound as exc:
                raise RequestRejected(404, "unknown_org", str(exc)) from exc
        assert org.id is not None
        keys = OrgKeys(id=org.id, slug=org.slug, is_default=slug == self.settings.default_org,
                       alertmanager_token_sha256=org.alertmanager_token_sha256,
                       changes_token_sha256=org.changes_token_sha256,
                       pagerduty_secrets=tuple(org.pagerduty_secrets or ()))
        self._orgs[slug] = (time.monotonic() + ORG_TTL_S, keys)
        return keys

    async def org_id(self, slug: str | None) -> int:
        return (await self.org(slug)).id

    async def heard(self, org_slug: str | None, names: set[str]) -> None:
        """Heartbeats arrived (knowledge.heartbeats)."""
        org_id = await self.org_id(org_slug)
        async with database_answers(), self.db.session() as session, session.begin():
            for name in sorted(names):
                await heard(session, org_id=org_id, name=name)

    async def store(self, org_slug: str | None, entries: list[InboxEntry],
                    around: tuple[InboxEntry, InboxEntry] | None = None) -> EnqueueResult:
        """Store a request's entries in one transaction; `around` (the copilot's own items,
        always new: an Alertmanager notification's listing) go before and after them and are
        left out of the counts."""
        org_id = await self.org_id(org_slug)
        everything = [around[0], *entries, around[1]] if around else entries
        async with database_answers(), self.db.session() as session, session.begin():
            result = await enqueue(session, org_id=org_id, entries=everything)
        if around:
            result = replace(result, accepted=result.accepted - 2)
        if entries:
            source = entries[0].source
            self.metrics.inbox_accepted.labels(source).inc(result.accepted)
            self.metrics.inbox_duplicates.labels(source).inc(result.duplicates)
        if result.accepted:
            if result.first:
                self.first.set()
            self.wake.set()
        return result


def database_unavailable() -> RequestRejected:
    """The 503 a request gets while the database cannot take it: the sender retries later."""
    return RequestRejected(503, "database_unavailable",
                           "the copilot's database is not answering; retry later",
                           headers={"Retry-After": str(RETRY_AFTER_S)})


@asynccontextmanager
async def database_answers(within: float = DATABASE_WAIT_S) -> AsyncIterator[None]:
    """A database that refuses, drops or stalls the work is a 503 with Retry-After within
    `within` seconds, so the sender (Alertmanager, PagerDuty, a pipeline, Teams) retries later
    and nothing it sent is lost; nothing was committed."""
    try:
        async with asyncio.timeout(within):
            yield
    except DATABASE_UNAVAILABLE as exc:
        log.warning("database unavailable for a request: %s", type(exc).__name__)
        raise database_unavailable() from exc


def intake_of(request: Request) -> Intake:
    """The app's Intake, built by its lifespan once the database answers; until then a 503."""
    intake: Intake | None = request.app.state.intake
    if intake is None:
        raise database_unavailable()
    return intake
