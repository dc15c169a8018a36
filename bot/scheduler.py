"""Scheduled jobs inside `serve`: APScheduler runs the weekly digest on DIGEST_CRON (crontab
syntax) in DIGEST_TIMEZONE on every replica; `bot.digest.run_digests` lets one replica through
per org and period. The period is the interval that ends at the firing time and is as long as
the gap to the next firing (a week for the default `0 9 * * mon`)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.digest import run_digests
from bot.settings import Settings
from knowledge.db import Database
from skills.digest.metrics import Period

log = logging.getLogger(__name__)


def digest_trigger(settings: Settings) -> CronTrigger:
    """The digest's trigger; a malformed DIGEST_CRON or zone raises ValueError naming it."""
    try:
        return CronTrigger.from_crontab(settings.digest_cron,
                                        timezone=ZoneInfo(settings.digest_timezone))
    except (ValueError, KeyError) as exc:
        raise ValueError(f"DIGEST_CRON {settings.digest_cron!r} / DIGEST_TIMEZONE "
                         f"{settings.digest_timezone!r}: {exc}") from exc


def period_of_firing(trigger: CronTrigger, now: datetime) -> Period:
    """The period of the latest firing at or before `now` (a job may start a little late)."""
    at = now.replace(second=0, microsecond=0)
    for _ in range(7 * 24 * 60):  # a week of minutes: any firing a late job belongs to
        nxt = trigger.get_next_fire_time(None, at)
        if nxt is not None and nxt == at:
            after = trigger.get_next_fire_time(None, at + timedelta(minutes=1))
            length = (after - at) if after is not None else timedelta(days=7)
            return Period(at - length, at)
        at -= timedelta(minutes=1)
    raise ValueError("no firing of DIGEST_CRON in the last week")


def start_scheduler(settings: Settings, db: Database) -> AsyncIOScheduler:
    trigger = digest_trigger(settings)

    async def digest_job() -> None:
        try:
            period = period_of_firing(trigger, datetime.now(trigger.timezone))
            await run_digests(settings, db, period=period)
        except Exception:  # logged; the next firing tries again, the claim expires
            log.exception("the scheduled digest failed")

    scheduler = AsyncIOScheduler(timezone=trigger.timezone)
    scheduler.add_job(digest_job, trigger, id="weekly-digest", coalesce=True,
                      max_instances=1, misfire_grace_time=3600)
    scheduler.start()
    log.info("digest scheduled on %r (%s); next at %s", settings.digest_cron,
             settings.digest_timezone, scheduler.get_job("weekly-digest").next_run_time)
    return scheduler
