"""The digest's schedule: DIGEST_CRON (five crontab fields, or six with seconds) in
DIGEST_TIMEZONE, and the period a firing covers — the interval ending at the latest firing,
as long as the gap to the next, even when the job starts a little late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.scheduler import digest_trigger, period_of_firing
from bot.settings import Settings
from skills.digest.metrics import Period


def _settings(cron: str, tz: str = "UTC") -> Settings:
    return Settings(digest_cron=cron, digest_timezone=tz)


def test_the_default_weekly_firing_covers_the_week_before_it() -> None:
    trigger = digest_trigger(_settings("0 9 * * mon", "Europe/Berlin"))
    berlin = ZoneInfo("Europe/Berlin")
    # Monday 23 Nov 2026, 09:00:04 in Berlin: the job started 4 s late.
    now = datetime(2026, 11, 23, 9, 0, 4, tzinfo=berlin)
    period = period_of_firing(trigger, now)
    assert period == Period(datetime(2026, 11, 16, 9, tzinfo=berlin),
                            datetime(2026, 11, 23, 9, tzinfo=berlin))
    # Run again on Thursday (a restart): still the period of Monday's firing.
    assert period_of_firing(trigger, now + timedelta(days=3)) == period


def test_a_six_field_schedule_fires_on_seconds() -> None:
    trigger = digest_trigger(_settings("*/20 * * * * *"))
    now = datetime(2026, 11, 26, 3, 10, 41, 500000, tzinfo=UTC)
    assert period_of_firing(trigger, now) == Period(
        datetime(2026, 11, 26, 3, 10, 20, tzinfo=UTC),
        datetime(2026, 11, 26, 3, 10, 40, tzinfo=UTC))
    minutely = digest_trigger(_settings("* * * * *"))
    assert period_of_firing(minutely, now) == Period(
        datetime(2026, 11, 26, 3, 9, tzinfo=UTC), datetime(2026, 11, 26, 3, 10, tzinfo=UTC))


def test_a_malformed_schedule_or_zone_is_named() -> None:
    with pytest.raises(ValueError, match="DIGEST_CRON '61 9 \\* \\* mon'"):
        digest_trigger(_settings("61 9 * * mon"))
    with pytest.raises(ValueError, match="Mars/Olympus"):
        digest_trigger(_settings("0 9 * * mon", "Mars/Olympus"))
