"""Slack Socket Mode: the same Bolt `AsyncApp` fed over a WebSocket instead of `/slack/events`,
for development without a public URL (on when `SLACK_APP_TOKEN` is set).

slack-bolt's aiohttp `AsyncSocketModeHandler` does the protocol; `apps.connections.open` goes
to `SLACK_API_URL` with the app-level token. Each envelope is acknowledged with Bolt's response,
sent after `app.async_dispatch` returns — with `process_before_response=True` that is after the
listener has stored it, exactly as the HTTP answer waits in HTTP mode. A listener that fails
answers 500, which Socket Mode turns into no acknowledgement: Slack delivers it again.
slack_sdk reconnects by itself when Slack asks (`disconnect`) or the link goes stale.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.settings import Settings
from bot.slack.intake import web_client

log = logging.getLogger(__name__)
DRAIN_SECONDS = 5.0  # on stop, how long envelopes being stored may take to be acknowledged


class SocketModeError(RuntimeError):
    """Slack refused the app-level token (or the first connection could not be opened)."""


class _Handler(AsyncSocketModeHandler):
    """Bolt's handler, counting the envelopes it is dispatching so a stop can wait for them."""

    def __init__(self, app: AsyncApp, settings: Settings) -> None:
        self.inflight: set[asyncio.Task[Any]] = set()
        super().__init__(app, app_token=settings.slack_app_token,
                         web_client=web_client(settings, token=settings.slack_app_token))

    async def handle(self, client: SocketModeClient,  # type: ignore[override]  # as Bolt's
                     req: SocketModeRequest) -> None:
        task = asyncio.current_task()
        assert task is not None  # slack_sdk runs each envelope's listeners in a task
        self.inflight.add(task)
        try:
            await super().handle(client, req)
        finally:
            self.inflight.discard(task)


async def run_socket_mode(app: AsyncApp, settings: Settings, stop: asyncio.Event) -> None:
    """Receive Slack's events, commands and interactions for `app` until `stop` is set, then
    let envelopes being stored finish (up to `DRAIN_SECONDS`) and disconnect.

    Raises `SocketModeError` when the first `apps.connections.open` fails (a wrong or revoked
    `SLACK_APP_TOKEN`, a token without `connections:write`, Slack unreachable): a
    misconfiguration should stop the start, not loop. Once connected, slack_sdk retries.
    """
    if not settings.slack_app_token:
        raise SocketModeError("Socket Mode needs SLACK_APP_TOKEN (an app-level xapp- token)")
    handler = _Handler(app, settings)
    client = handler.client
    try:
        try:
            client.wss_uri = await client.issue_new_wss_url()
        except SlackApiError as exc:
            raise SocketModeError(
                f"Slack refused SLACK_APP_TOKEN: apps.connections.open at {settings.slack_api_url}"
                f" answered {exc.response.get('error')!r}") from exc
        except aiohttp.ClientError as exc:
            raise SocketModeError(f"apps.connections.open at {settings.slack_api_url} could not "
                                  f"be reached: {exc!r}") from exc
        connecting = client.connect()  # type: ignore[no-untyped-call]  # untyped in slack_sdk
        if not await _unless_stopped(connecting, stop):
            return
        log.info("Slack Socket Mode connected through %s", settings.slack_api_url)
        await stop.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_SECONDS
        while handler.inflight and loop.time() < deadline:
            await asyncio.wait(set(handler.inflight), timeout=deadline - loop.time())
    finally:
        await client.close()  # type: ignore[no-untyped-call]  # slack_sdk leaves it untyped
        leftover = [*handler.inflight, client.message_processor, client.message_receiver,
                    client.current_session_monitor]
        for task in leftover:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in leftover if t is not None), return_exceptions=True)
        log.info("Slack Socket Mode disconnected")


async def _unless_stopped(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Await `work` unless `stop` is set first (then cancel it); True if `work` finished."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopping):
            pending.cancel()
        await asyncio.gather(task, stopping, return_exceptions=True)
    if task.cancelled():
        return False
    task.result()  # raises what `work` raised
    return True
