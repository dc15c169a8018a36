"""Teams inside `serve` (or `worker`): the intake behind `POST /api/messages` and, given the
agent, the chat worker answering from the inbox and delivering the incident engine's messages.
Opened by `bot.chat`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.agent.runtime import Agent
from bot.chat_worker import ChatWorker, running_worker
from bot.metrics import Metrics
from bot.settings import Settings
from bot.teams.auth import bot_authentication
from bot.teams.connector import Connector
from bot.teams.handlers import TeamsHandlers
from bot.teams.intake import SOURCE, TeamsIntake
from knowledge.db import Database


@dataclass
class TeamsService:
    intake: TeamsIntake
    worker: ChatWorker | None


@asynccontextmanager
async def running_teams(settings: Settings, db: Database, *, agent: Agent | None,
                        metrics: Metrics | None = None) -> AsyncIterator[TeamsService]:
    """Teams' intake, and with an `agent` its chat worker answering with it (counting its
    failed connector calls in `metrics`)."""
    wake = asyncio.Event()
    auth = bot_authentication(settings)
    intake = TeamsIntake(settings=settings, db=db, auth=auth, wake=wake)
    if agent is None:
        yield TeamsService(intake, None)
        return
    handlers = TeamsHandlers(db=db, settings=settings, agent=agent,
                             connector=Connector(auth, settings.teams_app_id or "",
                                                 metrics=metrics))
    worker = ChatWorker(db=db, settings=settings, wake=wake, source=SOURCE, handlers=handlers)
    async with running_worker(worker):
        yield TeamsService(intake, worker)
