"""The chat platforms inside a process: Slack and Teams, each when configured, their chat
workers sharing one agent (one embedding model, one thread memory). Nothing of either is
imported when neither is on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.metrics import Metrics
from bot.settings import Settings
from knowledge.db import Database

if TYPE_CHECKING:
    from bot.indexes import Indexes
    from bot.slack.service import SlackService
    from bot.teams.service import TeamsService


@dataclass
class ChatPlatforms:
    slack: SlackService | None = None
    teams: TeamsService | None = None

    @property
    def answers(self) -> list[asyncio.Event]:
        """The running chat workers' wake-ups for new chat items in the inbox."""
        return [service.worker.wake for service in (self.slack, self.teams)
                if service is not None and service.worker is not None]

    @property
    def deliveries(self) -> list[asyncio.Event]:
        """The running chat workers' delivery wake-ups (see `InboxWorker.changed`)."""
        return [service.worker.deliveries for service in (self.slack, self.teams)
                if service is not None and service.worker is not None]


@asynccontextmanager
async def running_chat(settings: Settings, db: Database, *, with_worker: bool,
                       metrics: Metrics | None = None, indexes: Indexes | None = None
                       ) -> AsyncIterator[ChatPlatforms]:
    """The configured platforms' intakes, and with `with_worker` their chat workers, whose
    agent uses `indexes` when given (the process's one embedding model). With `metrics`,
    failed calls to the platforms and to what the agent uses are counted."""
    if not (settings.slack_enabled or settings.teams_enabled):
        yield ChatPlatforms()
        return
    from bot.agent.runtime import open_agent

    async with contextlib.AsyncExitStack() as stack:
        agent = (await stack.enter_async_context(open_agent(settings, db=db, metrics=metrics,
                                                               opened=indexes))
                 if with_worker else None)
        platforms = ChatPlatforms()
        if settings.slack_enabled:
            from bot.slack.service import running_slack

            platforms.slack = await stack.enter_async_context(
                running_slack(settings, db, agent=agent, metrics=metrics))
        if settings.teams_enabled:
            from bot.teams.service import running_teams

            platforms.teams = await stack.enter_async_context(
                running_teams(settings, db, agent=agent, metrics=metrics))
        yield platforms
