"""Socket Mode inside `serve`: with SLACK_APP_TOKEN set (and no public URL, no signing
secret) Slack's envelopes arrive over the socket, are stored in the inbox before they are
acknowledged, and `/slack/events` refuses unsigned HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.app import create_app
from bot.settings import Settings
from bot.startup import prepare_database
from knowledge.inbox import items
from tests.fakes.slack_api import app_mention, event_callback
from tests.fakes.slack_socket import FakeSocketSlack, running_socket_slack

pytestmark = pytest.mark.slow


@pytest.fixture
async def socket_app(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient,
                                                                FakeSocketSlack, Settings]]:
    with running_socket_slack(app_token="xapp-test", bot_token="xoxb-test") as slack:
        configured = settings.model_copy(update={
            "slack_bot_token": "xoxb-test", "slack_app_token": "xapp-test",
            "slack_signing_secret": None, "slack_api_url": slack.base_url + "/api/"})
        db = await prepare_database(configured)
        app = create_app(configured, db=db, run_worker=False)
        try:
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://copilot") as c:
                yield c, slack, configured
        finally:
            await db.dispose()


async def test_envelopes_are_stored_then_acknowledged(
        socket_app: tuple[httpx.AsyncClient, FakeSocketSlack, Settings]) -> None:
    client, slack, settings = socket_app
    await slack.wait_connected(1, seconds=10)
    body = event_callback(app_mention("<@U0BOT> what's firing?", "C0OPS",
                                      "1700000000.000100", "U0ANA"), event_id="Ev0SOCKET")
    envelope = slack.send_events_api(json.loads(body))
    await slack.wait_ack(envelope, seconds=10)
    db = await prepare_database(settings)
    try:
        async with db.session() as s:
            stored = await items(s, org_id=1)
    finally:
        await db.dispose()
    assert [i.payload["body"]["event_id"] for i in stored] == ["Ev0SOCKET"]
    # No signing secret: HTTP is not a way in.
    refused = await client.post("/slack/events", content=body,
                                headers={"Content-Type": "application/json"})
    assert refused.status_code == 404 and "SLACK_SIGNING_SECRET" in refused.text
