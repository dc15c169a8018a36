"""Teams as it runs in production, for the Teams tests: `serve`'s app with its workers, the live
Prometheus whose checkout errors started 15 minutes ago (tests/bot/slack_live.py), and the
local Bot Framework over HTTPS (tests/fakes/botframework.py), whose test CA the clients trust.
Activities are signed as Bot Framework signs them and POSTed to `/api/messages`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bot.app import create_app
from bot.settings import Settings
from bot.startup import prepare_database
from bot.teams.handlers import TeamsHandlers
from knowledge.db import Database
from tests.fakes.botframework import ConnectorCall, FakeBotFramework, running_botframework

TOKEN = "am-token"
TEAM = "19:team@thread.tacv2"
INCIDENTS = "19:incidents@thread.tacv2"


@dataclass
class TeamsLive:
    client: httpx.AsyncClient
    teams: FakeBotFramework
    db: Database
    app: FastAPI

    @property
    def handlers(self) -> TeamsHandlers:
        handlers: TeamsHandlers = self.app.state.teams.worker.handlers
        return handlers

    async def send(self, activity: dict[str, Any], **signing: Any) -> httpx.Response:
        """POST an activity to the bot, signed (or mis-signed, per `signing`) as Teams does."""
        return await self.client.post("/api/messages", json=activity,
                                      headers=self.teams.sign_activity(activity, **signing))

    def calls_in(self, conversation: str, kind: str | None = None) -> list[ConnectorCall]:
        """Connector calls into a conversation (a thread is `<channel>;messageid=<root>`)."""
        return [c for c in list(self.teams.calls) if c.conversation_id == conversation
                and (kind is None or c.kind == kind) and 200 <= c.status < 300]


def card(call: ConnectorCall) -> dict[str, Any]:
    """The Adaptive Card a connector call carried ({} for a plain text message)."""
    attachments = (call.body or {}).get("attachments") or []
    if not attachments:
        attachments = (((call.body or {}).get("activity") or {}).get("attachments") or [])
    content: dict[str, Any] = attachments[0]["content"] if attachments else {}
    return content


def actions(content: Any) -> list[dict[str, Any]]:
    """Every Action.Execute in a card, nested or not."""
    found: list[dict[str, Any]] = []
    if isinstance(content, dict):
        if content.get("type") == "Action.Execute":
            found.append(content)
        for value in content.values():
            found += actions(value)
    elif isinstance(content, list):
        for value in content:
            found += actions(value)
    return found


def teams_settings(settings: Settings, fake: FakeBotFramework, prometheus: str, **more: Any
                   ) -> Settings:
    return settings.model_copy(update={
        "prometheus_url": prometheus, "teams_app_id": fake.app_id,
        "teams_app_password": fake.app_password,
        "teams_openid_metadata_url": fake.openid_metadata_url,
        "teams_login_url": fake.base_url, "teams_incident_channel": INCIDENTS,
        "alertmanager_webhook_token": TOKEN, "worker": True, "worker_poll_seconds": 0.1,
        **more})


@pytest.fixture
async def teams_live(settings: Settings, erring_prom: str, monkeypatch: pytest.MonkeyPatch
                     ) -> AsyncIterator[TeamsLive]:
    async with teams_copilot(settings, erring_prom, monkeypatch) as live:
        yield live


@asynccontextmanager
async def teams_copilot(settings: Settings, prometheus: str, monkeypatch: pytest.MonkeyPatch
                        ) -> AsyncIterator[TeamsLive]:
    """The app with its workers and Teams configured against a fresh local Bot Framework,
    investigating against `prometheus`."""
    with running_botframework() as fake:
        for name, value in fake.trust_environ().items():
            monkeypatch.setenv(name, value)
        fake.team_channels[TEAM] = [{"id": TEAM}, {"id": INCIDENTS, "name": "incidents"}]
        configured = teams_settings(settings, fake, prometheus)
        db = await prepare_database(configured)
        app = create_app(configured, db=db)
        try:
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://copilot") as c:
                yield TeamsLive(client=c, teams=fake, db=db, app=app)
        finally:
            await db.dispose()
