"""Start-up of what every entry point needs before it works: the database (migrated when allowed,
with the default org) and the incident-history index. `serve`, `worker`, `ask`, `chat`, the CLI's
commands and the demo all start here, so none of them imports another's module to get it."""

from __future__ import annotations

import logging

from bot.indexes import Indexes, try_open_indexes
from bot.metrics import Metrics
from bot.settings import Settings
from knowledge import migrate
from knowledge.db import Database, open_database, startup_lock
from knowledge.history import HistoryIndex
from knowledge.orgs import ensure_org, list_org_ids
from skills.history.sweep import index_resolved

log = logging.getLogger(__name__)


def open_history(settings: Settings, *, metrics: Metrics | None = None,
                 indexes: Indexes | None = None) -> HistoryIndex | None:
    """The incident-history index (of `indexes` when given, the process's), or None (with the
    reason logged) when it is turned off or cannot open: the copilot then works without
    "similar past incidents". With `metrics`, failed Chroma calls are counted."""
    if not settings.history:
        return None
    opened = indexes or try_open_indexes(settings, metrics=metrics)
    return opened.history if opened is not None else None


async def sweep_history(db: Database, history: HistoryIndex) -> None:
    """Catch up at start: index every resolved incident a past run did not (idempotent). Runs
    beside the worker; a failure is logged and left to the worker's next sweep."""
    try:
        async with db.session() as session:
            for org_id in await list_org_ids(session):
                report = await index_resolved(session, history, org_id=org_id)
                if report.indexed:
                    log.info("history: indexed %d resolved incidents of org %d",
                             len(report.indexed), org_id)
    except Exception:
        log.exception("history sweep failed; the worker retries after its next batch")


async def prepare_database(settings: Settings) -> Database:
    """Open the configured database, migrate it when allowed, and make sure the default org
    exists (webhooks without `?org=` land there)."""
    url = settings.db_url()
    if settings.auto_migrate:
        # Replicas started together take turns: the first migrates, the rest find it done.
        async with startup_lock(url):
            await migrate.upgrade_async(url)
    db = open_database(url)
    async with db.session() as session, session.begin():
        await ensure_org(session, slug=settings.default_org, name=settings.default_org)
    return db
