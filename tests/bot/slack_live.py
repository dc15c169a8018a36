"""Slack as it runs in production, for the Slack tests: `serve`'s app with its workers, a live
Prometheus whose checkout errors started 15 minutes ago, and the local Slack Web API; signed
requests to `/slack/events`. The fixtures are in tests/bot/conftest.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bot.app import create_app
from bot.settings import Settings
from bot.slack.handlers import SlackHandlers
from bot.startup import prepare_database
from knowledge.db import Database
from tests.fakes.live_prometheus import HISTORY_SECONDS, Service, live_prometheus
from tests.fakes.slack_api import FakeSlack, running_slack, sign

SECRET = "slack-signing-secret"
TOKEN = "am-token"


@pytest.fixture(scope="session")
def erring_prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    services = [Service("checkout", rps=50, error_ratio=0.2, latency_s=0.2,
                        errors_from=HISTORY_SECONDS - 900),
                Service("payments", rps=20, latency_s=0.05)]
    with live_prometheus(tmp_path_factory.mktemp("prom"), services) as url:
        yield url


@dataclass
class Live:
    client: httpx.AsyncClient
    slack: FakeSlack
    db: Database
    app: FastAPI

    @property
    def handlers(self) -> SlackHandlers:
        """The running chat worker's handlers (to change a setting or a client mid-test)."""
        handlers: SlackHandlers = self.app.state.slack.worker.handlers
        return handlers

    async def slack_post(self, body: bytes, *, form: bool, retry: int | None = None
                         ) -> httpx.Response:
        headers = {**sign(body, SECRET), "Content-Type": "application/x-www-form-urlencoded"
                   if form else "application/json"}
        if retry is not None:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        started = time.perf_counter()
        response = await self.client.post("/slack/events", content=body, headers=headers)
        assert time.perf_counter() - started < 3.0  # Slack's deadline
        return response


@asynccontextmanager
async def live_copilot(settings: Settings, prometheus: str, **overrides: Any
                       ) -> AsyncIterator[Live]:
    """The app with its workers, Slack configured against a fresh local Slack Web API;
    `overrides` change settings (the workers poll every 0.1 s unless told otherwise)."""
    with running_slack() as slack:
        configured = settings.model_copy(update={
            "prometheus_url": prometheus, "slack_bot_token": "xoxb-test",
            "slack_signing_secret": SECRET, "slack_api_url": slack.base_url + "/api/",
            "alertmanager_webhook_token": TOKEN, "worker": True, "worker_poll_seconds": 0.1,
            "slack_responders": "U0ANA", **overrides})
        db = await prepare_database(configured)
        app = create_app(configured, db=db)
        try:
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://copilot") as c:
                yield Live(client=c, slack=slack, db=db, app=app)
        finally:
            await db.dispose()


@pytest.fixture
async def live(settings: Settings, erring_prom: str) -> AsyncIterator[Live]:
    async with live_copilot(settings, erring_prom) as copilot:
        yield copilot


async def until(what: str, check: Callable[[], Any], seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


