"""Storing verified webhook items: resolve the org, write the items to the inbox in one
transaction, wake the worker. Only after the commit does the handler answer 2xx."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fastapi import Request

from bot.metrics import Metrics
from bot.settings import Settings
from bot.webhooks.errors import RequestRejected
from knowledge.db import Database
from knowledge.inbox import EnqueueResult, InboxEntry, enqueue
from knowledge.orgs import OrgNotFound, get_org


@dataclass
class Intake:
    settings: Settings
    db: Database
    metrics: Metrics
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    _org_ids: dict[str, int] = field(default_factory=dict)

    async def org_id(self, slug: str | None) -> int:
        slug = slug or self.settings.default_org
        if slug not in self._org_ids:
            async with self.db.session() as session:
                try:
                    org = await get_org(session, slug=slug)
                except OrgNotFound as exc:
                    raise RequestRejected(404, "unknown_org", str(exc)) from exc
            assert org.id is not None
            self._org_ids[slug] = org.id
        return self._org_ids[slug]

    async def store(self, org_slug: str | None, entries: list[InboxEntry]) -> EnqueueResult:
        org_id = await self.org_id(org_slug)
        async with self.db.session() as session, session.begin():
            result = await enqueue(session, org_id=org_id, entries=entries)
        if entries:
            source = entries[0].source
            self.metrics.inbox_accepted.labels(source).inc(result.accepted)
            self.metrics.inbox_duplicates.labels(source).inc(result.duplicates)
        if result.accepted:
            self.wake.set()
        return result


def intake_of(request: Request) -> Intake:
    """The app's Intake, built by its lifespan."""
    intake: Intake = request.app.state.intake
    return intake
