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
    """The digest's trigger: five crontab fields, or six with seconds first (for tests and
    demos that cannot wait a minute a period); a malformed DIGEST_CRON or zone raises
    ValueError naming it."""
    try:
        zone = ZoneInfo(settings.digest_timezone)
        fields = settings.digest_cron.split()
        if len(fields) == 6:
            second, minute, hour, day, month, weekday = fields
            return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                               day_of_week=weekday, timezone=zone)
        return CronTrigger.from_crontab(settings.digest_cron, timezone=zone)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"DIGEST_CRON {settings.digest_cron!r} / DIGEST_TIMEZONE "
                         f"{settings.digest_timezone!r}: {exc}") from exc


# Windows to look back for the latest firing, shortest first: a frequent schedule is found in
# a few steps, a weekly or monthly one still within its window.
LOOKBACK = (timedelta(minutes=2), timedelta(hours=2), timedelta(days=2), timedelta(days=9),
            timedelta(days=32))


def period_of_firing(trigger: CronTrigger, now: datetime) -> Period:
    """The period of the latest firing at or before `now` (a job may start a little late): it
    ends at that firing and is as long as the gap to the next one."""
    for back in LOOKBACK:
        latest, fire = None, trigger.get_next_fire_time(None, now - back)
        while fire is not None and fire <= now:
            latest = fire
            fire = trigger.get_next_fire_time(latest, latest + timedelta(microseconds=1))
        if latest is not None:
            length = (fire - latest) if fire is not None else timedelta(days=7)
            return Period(latest - length, latest)
    raise ValueError("no firing of DIGEST_CRON in the last month")


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
