"""Teams inside `serve` (or `worker`): the intake behind `POST /api/messages` and, given the
agent, the chat worker answering from the inbox and delivering the incident engine's messages.
Opened by `bot.chat`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.agent.runtime import Agent
from bot.chat_worker import ChatService, ChatWorker, running_worker
from bot.metrics import Metrics
from bot.settings import Settings
from bot.teams.auth import bot_authentication
from bot.teams.connector import Connector
from bot.teams.handlers import TeamsHandlers
from bot.teams.intake import SOURCE, TeamsIntake
from knowledge.db import Database

TeamsService = ChatService[TeamsIntake]


@asynccontextmanager
async def running_teams(settings: Settings, db: Database, *, agent: Agent | None,
                        metrics: Metrics | None = None) -> AsyncIterator[TeamsService]:
    """Teams' intake (`POST /api/messages`) and, given an `agent`, the chat worker that
    answers with it and delivers the engine's messages; failed connector calls are counted in
    `metrics`."""
    auth, wake = bot_authentication(settings), asyncio.Event()
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
