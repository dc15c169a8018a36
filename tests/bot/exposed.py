"""The app with every POST route configured (webhooks, Slack against a local Slack Web API,
Teams against a local Bot Framework), for the hostile-input and fuzz tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.settings import Settings
from knowledge.inbox import InboxStatus, items
from knowledge.orgs import get_org
from tests.conftest import Copilot, in_process
from tests.fakes import pagerduty as pd
from tests.fakes.botframework import FakeBotFramework, running_botframework
from tests.fakes.slack_api import running_slack

SLACK_SECRET = "slack-signing-secret"
CHANGES_TOKEN = "changes-token"


@dataclass
class Exposed(Copilot):
    """The app with every route configured: webhooks, Slack and Teams (its local Bot
    Framework signs activities)."""

    teams: FakeBotFramework = field(kw_only=True)

    def am(self, payload: Any, **query: str) -> Any:
        return self.client.post("/webhooks/alertmanager", params=query,
                                content=payload if isinstance(payload, bytes)
                                else json.dumps(payload),
                                headers={"authorization":
                                         f"Bearer {self.settings.alertmanager_webhook_token}",
                                         "content-type": "application/json"})

    def pd(self, raw: bytes) -> Any:
        secret = self.settings.pagerduty_secrets[0]
        return self.client.post("/webhooks/pagerduty", content=raw,
                                headers={"x-pagerduty-signature": pd.sign(raw, secret),
                                         "content-type": "application/json"})

    async def inbox(self) -> list[Any]:
        async with self.db.session() as s:
            org = await get_org(s, slug="default")
            return [*await items(s, org_id=org.id or 0, status=InboxStatus.PENDING),
                    *await items(s, org_id=org.id or 0, status=InboxStatus.FAILED)]


@pytest.fixture
async def exposed(settings: Settings, monkeypatch: pytest.MonkeyPatch
                  ) -> AsyncIterator[Exposed]:
    with running_slack() as slack, running_botframework() as teams:
        for name, value in teams.trust_environ().items():
            monkeypatch.setenv(name, value)
        configured = settings.model_copy(update={
            "slack_bot_token": "xoxb-test", "slack_signing_secret": SLACK_SECRET,
            "slack_api_url": slack.base_url + "/api/", "teams_app_id": teams.app_id,
            "teams_app_password": teams.app_password,
            "teams_openid_metadata_url": teams.openid_metadata_url,
            "teams_login_url": teams.base_url, "changes_webhook_token": CHANGES_TOKEN})
        async with in_process(configured) as running:
            yield Exposed(**vars(running), teams=teams)
