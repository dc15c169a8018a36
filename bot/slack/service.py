"""Slack inside `serve` (or `worker`): the Bolt app behind `POST /slack/events` and, given the
agent, the chat worker answering from the inbox with it. Opened by `bot.chat`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

from bot.agent.runtime import Agent
from bot.chat_worker import ChatService, ChatWorker, running_worker
from bot.metrics import Metrics
from bot.settings import Settings
from bot.slack.handlers import SlackHandlers
from bot.slack.intake import SOURCE, build_slack_app, oauth_flow, web_client
from bot.slack.socket_mode import SocketModeError, run_socket_mode
from knowledge.db import Database

log = logging.getLogger(__name__)


SlackService = ChatService[AsyncSlackRequestHandler]


@asynccontextmanager
async def running_slack(settings: Settings, db: Database, *, agent: Agent | None,
                        metrics: Metrics | None = None) -> AsyncIterator[SlackService]:
    """Slack's intake, and with an `agent` its chat worker answering with it (counting its
    failed Slack calls in `metrics`)."""
    wake = asyncio.Event()
    installations = flow = None
    if settings.slack_oauth:
        installations = AsyncSQLAlchemyInstallationStore(
            client_id=settings.slack_client_id or "", engine=db.engine)
        states = AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=db.engine)
        # slack_sdk creates (and owns) its tables; Alembic leaves them alone.
        await installations.create_tables()  # type: ignore[no-untyped-call]
        await states.create_tables()  # type: ignore[no-untyped-call]
        flow = oauth_flow(settings, installations, states)
    bolt = build_slack_app(settings, db, wake, flow=flow)
    handler = AsyncSlackRequestHandler(bolt)
    async with contextlib.AsyncExitStack() as stack:
        if settings.slack_app_token:  # Socket Mode: no public URL needed
            stop_socket = asyncio.Event()
            socket = asyncio.create_task(run_socket_mode(bolt, settings, stop_socket),
                                         name="slack-socket-mode")
            socket.add_done_callback(_report)
            stack.push_async_callback(_stop, socket, stop_socket)
        if agent is None:
            yield SlackService(handler, None)
            return
        worker = ChatWorker(db=db, settings=settings, wake=wake, source=SOURCE,
                            handlers=SlackHandlers(db=db, settings=settings, agent=agent,
                                                   client=web_client(settings,
                                                                     metrics=metrics),
                                                   installations=installations,
                                                   metrics=metrics))
        async with running_worker(worker):
            yield SlackService(handler, worker)


def _report(task: asyncio.Task[None]) -> None:
    """Say at once why Socket Mode ended (a refused SLACK_APP_TOKEN, say), not at shutdown."""
    if not task.cancelled() and task.exception() is not None:
        log.error("Slack Socket Mode stopped: %s", task.exception())


async def _stop(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    try:
        await asyncio.wait_for(task, timeout=15)
    except SocketModeError:  # already reported by _report when it happened
        pass
    except (asyncio.CancelledError, TimeoutError):
        pass
