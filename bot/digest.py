"""The weekly digest, end to end: `make_digest` builds an org's digest (the digest skill's
figures plus capacity forecasts from Prometheus), `post_to_slack` / `post_to_teams` post it to
the org's own destinations, and `run_digests` does both for every org exactly once per period —
the scheduler (`bot/scheduler.py`) calls it on every replica and the `digest_run` claim lets one
of them through.

Each org's digest goes only to that org: its Slack channel (`orgs add|rotate
--digest-slack-channel`, posted with its own workspace's token when it installed the app by
OAuth) and its Teams channel (`@SRE Copilot digest here`). DIGEST_SLACK_CHANNEL and
DIGEST_TEAMS_CHANNEL are the default org's."""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.settings import Settings
from knowledge.db import Database
from knowledge.digests import claim_run, finish_run, mark_platform_posted
from knowledge.orgs import Org
from skills.digest.metrics import Period
from skills.digest.report import Digest, build_digest

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=10)  # a claim older than this, unfinished, is taken over


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def make_digest(settings: Settings, db: Database, *, org: Org, period: Period,
                      forecasts: bool = True, chart_dir: Path | None = None) -> Digest:
    assert org.id is not None
    async with db.session() as session:
        digest = await build_digest(session, org_id=org.id, org=org.slug, period=period,
                                    tz=settings.digest_timezone)
    if forecasts:
        await _add_forecasts(settings, digest, period, chart_dir)
    return digest


async def _add_forecasts(settings: Settings, digest: Digest, period: Period,
                         chart_dir: Path | None) -> None:
    """Capacity forecasts from Prometheus; if it cannot be asked, the digest says why."""
    if not settings.prometheus_url:
        digest.notes.append("Capacity forecasts need PROMETHEUS_URL.")
        return
    try:
        from skills.forecast.capacity import DEFAULT_CHECKS, run_checks
        from skills.forecast.chart import render_forecast
        from skills.prometheus.client import PrometheusClient

        async with PrometheusClient(settings.prometheus_url) as client:
            found = await run_checks(client, DEFAULT_CHECKS, now=period.end)
    except Exception as exc:  # Prometheus away, a bad rule: the rest of the digest stands
        digest.notes.append(f"Capacity forecasts unavailable: {type(exc).__name__}: {exc}")
        return
    digest.forecasts = [_forecast_json(f) for f in found]
    if chart_dir is not None:
        worst = [f for f in found if f.days_to_threshold is not None][:3]
        for i, forecast in enumerate(worst):
            path = chart_dir / f"forecast-{digest.org}-{period.end:%Y%m%d%H%M}-{i}.png"
            render_forecast(forecast, path=path)
            digest.charts.append(str(path))


def _forecast_json(forecast: Any) -> dict[str, Any]:
    data: dict[str, Any] = forecast.model_dump(mode="json") if hasattr(
        forecast, "model_dump") else dict(vars(forecast))
    return data


def slack_channel(settings: Settings, org: Org) -> str | None:
    """Where an org's digest goes in Slack: its own channel; DIGEST_SLACK_CHANNEL is the
    default org's only."""
    if org.digest_slack_channel:
        return org.digest_slack_channel
    return settings.digest_slack_channel if org.slug == settings.default_org else None


async def slack_token(settings: Settings, db: Database, org: Org) -> str | None:
    """The org's own workspace token when it installed the app by OAuth, else the bot token
    of the single-workspace setup."""
    if settings.slack_oauth and org.slack_team_id:
        from slack_sdk.oauth.installation_store.sqlalchemy import (
            AsyncSQLAlchemyInstallationStore,
        )

        store = AsyncSQLAlchemyInstallationStore(client_id=settings.slack_client_id or "",
                                                 engine=db.engine)
        bot = await store.async_find_bot(enterprise_id=None, team_id=org.slack_team_id)
        if bot is None:
            raise LookupError(f"org {org.slug}: the app is not installed in workspace "
                              f"{org.slack_team_id}")
        return bot.bot_token
    return settings.slack_bot_token


async def post_to_slack(settings: Settings, digest: Digest, *, channel: str,
                        token: str | None) -> None:
    """Post a digest to a Slack channel (`slack_channel`) with a token (`slack_token`)."""
    from bot.slack.blocks import digest_messages
    from bot.slack.intake import web_client

    client = web_client(settings, token=token)
    for msg in digest_messages(digest):
        await client.chat_postMessage(channel=channel, text=msg.text, blocks=msg.blocks)
    for chart in digest.charts:
        await client.files_upload_v2(channel=channel, file=chart, filename=Path(chart).name,
                                     title="capacity forecast")


async def post_to_teams(settings: Settings, db: Database, digest: Digest, org_id: int, *,
                        default_org: bool = True) -> None:
    from bot.teams.auth import bot_authentication
    from bot.teams.cards import digest_cards
    from bot.teams.connector import Connector
    from bot.teams.layout import card_activity
    from knowledge.teams import digest_channel, find_channel

    async with db.session() as session:
        # `@SRE Copilot digest here` wins over the setting: it is the newer, per-org choice.
        channel = await digest_channel(session, org_id=org_id)
        if channel is None and settings.digest_teams_channel and default_org:
            channel = await find_channel(session, org_id=org_id,
                                         channel_id=settings.digest_teams_channel)
    if channel is None:
        raise LookupError(f"DIGEST_TEAMS_CHANNEL {settings.digest_teams_channel} is not known: "
                          "install the app in its team first")
    connector = Connector(bot_authentication(settings), settings.teams_app_id or "")
    for card in digest_cards(digest):
        await connector.send(channel.service_url, channel.channel_id, card_activity(card))


async def has_teams_channel(settings: Settings, db: Database, org_id: int, *,
                            default_org: bool = True) -> bool:
    from knowledge.teams import digest_channel

    if settings.digest_teams_channel and default_org:
        return True
    async with db.session() as session:
        return await digest_channel(session, org_id=org_id) is not None


async def run_digests(settings: Settings, db: Database, *, period: Period,
                      by: str | None = None) -> int:
    """Post the period's digest for every org, once: returns how many this replica posted."""
    from sqlmodel import select

    async with db.session() as session:
        orgs = list((await session.exec(select(Org))).all())
    posted = 0
    for org in orgs:
        assert org.id is not None
        async with db.session() as session, session.begin():
            run = await claim_run(session, org_id=org.id, period_start=period.start,
                                  period_end=period.end, by=by or replica_name(), lease=LEASE)
        if run is None or run.id is None:
            continue  # another replica has it, or it is done
        digest = await make_digest(settings, db, org=org, period=period,
                                   chart_dir=settings.data_dir / "charts")
        default = org.slug == settings.default_org
        channel = slack_channel(settings, org)
        if channel and run.slack_posted_at is None:
            await post_to_slack(settings, digest, channel=channel,
                                token=await slack_token(settings, db, org))
            async with db.session() as session, session.begin():
                await mark_platform_posted(session, run_id=run.id, platform="slack")
        if settings.teams_enabled and run.teams_posted_at is None \
                and await has_teams_channel(settings, db, org.id, default_org=default):
            await post_to_teams(settings, db, digest, org.id, default_org=default)
            async with db.session() as session, session.begin():
                await mark_platform_posted(session, run_id=run.id, platform="teams")
        async with db.session() as session, session.begin():
            await finish_run(session, run_id=run.id)
        log.info("digest of %s for %s – %s posted", org.slug, period.start, period.end)
        posted += 1
    return posted

