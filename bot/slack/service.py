"""Slack inside `serve`: the Bolt app behind `POST /slack/events` and, with the worker on, the
chat worker answering from the inbox with the agent graph. Opened and closed with the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

from bot.agent.runtime import open_agent
from bot.settings import Settings
from bot.slack.handlers import SlackHandlers
from bot.slack.intake import build_slack_app, oauth_flow, web_client
from bot.slack.socket_mode import SocketModeError, run_socket_mode
from bot.slack.worker import ChatWorker
from knowledge.db import Database

log = logging.getLogger(__name__)


@dataclass
class SlackService:
    handler: AsyncSlackRequestHandler
    worker: ChatWorker | None


@asynccontextmanager
async def running_slack(settings: Settings, db: Database, *, with_worker: bool
                        ) -> AsyncIterator[SlackService]:
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
        if not with_worker:
            yield SlackService(handler, None)
            return
        async with _answering(settings, db, wake, installations) as service_worker:
            yield SlackService(handler, service_worker)


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


@asynccontextmanager
async def _answering(settings: Settings, db: Database, wake: asyncio.Event,
                     installations: AsyncSQLAlchemyInstallationStore | None
                     ) -> AsyncIterator[ChatWorker]:
    async with open_agent(settings, db=db) as agent:
        worker = ChatWorker(db=db, settings=settings, wake=wake, handlers=SlackHandlers(
            db=db, settings=settings, agent=agent, client=web_client(settings),
            installations=installations))
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop), name="slack-chat-worker")
        try:
            yield worker
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=30)
