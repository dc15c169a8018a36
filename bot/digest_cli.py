"""`sre-copilot digest [--org ORG] [--since ISO8601 --until ISO8601] [--json] [--post]`: the
digest of an org's period (default: the last full week in DIGEST_TIMEZONE) printed for a
terminal, as JSON, or posted to the digest channels."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from bot.digest import (
    has_teams_channel,
    make_digest,
    post_to_slack,
    post_to_teams,
    slack_channel,
    slack_token,
)
from bot.render.digest import digest_markdown
from bot.settings import Settings
from bot.startup import prepare_database
from knowledge.db import Database
from knowledge.orgs import Org, OrgNotFound, get_org
from skills.digest.metrics import Period, last_full_week


class UsageError(ValueError):
    pass


def when(text: str, name: str) -> datetime:
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"{name} {text!r} is not an ISO 8601 time "
                         "(e.g. 2026-11-16T00:00:00Z)") from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def period_of(since: str | None, until: str | None, tz: str) -> Period:
    if bool(since) != bool(until):
        raise UsageError("give both --since and --until, or neither (the last full week)")
    if since and until:
        period = Period(when(since, "--since"), when(until, "--until"))
        if period.end <= period.start:
            raise UsageError("--until must be after --since")
        return period
    return last_full_week(datetime.now(UTC), tz)


async def org_named(db: Database, slug: str) -> Org:
    """The org a command names; an unknown one is a usage error that says so."""
    async with db.session() as session:
        try:
            return await get_org(session, slug=slug)
        except OrgNotFound as exc:
            raise UsageError(str(exc)) from exc


async def run(settings: Settings, *, org: str | None, since: str | None, until: str | None,
              json_out: bool, post: bool) -> int:
    period = period_of(since, until, settings.digest_timezone)
    db = await prepare_database(settings)
    try:
        found = await org_named(db, org or settings.default_org)
        digest = await make_digest(settings, db, org=found, period=period,
                                   chart_dir=settings.data_dir / "charts")
        if json_out:
            print(json.dumps(digest.to_json(), indent=2))
        else:
            print(digest_markdown(digest))
        if post:
            assert found.id is not None
            default = found.slug == settings.default_org
            channel = slack_channel(settings, found)
            teams = settings.teams_enabled and await has_teams_channel(
                settings, db, found.id, default_org=default)
            if not channel and not teams:
                raise UsageError(f"--post: org {found.slug} has no digest destination: "
                                 "`sre-copilot orgs rotate SLUG --digest-slack-channel C`, "
                                 "DIGEST_SLACK_CHANNEL (the default org), or Teams with "
                                 "`@SRE Copilot digest here`")
            if channel:
                await post_to_slack(settings, digest, channel=channel,
                                    token=await slack_token(settings, db, found))
            if teams:
                await post_to_teams(settings, db, digest, found.id, default_org=default)
            print("posted", file=sys.stderr)
    finally:
        await db.dispose()
    return 0
