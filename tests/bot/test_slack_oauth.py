"""Many workspaces: the OAuth install flow (`/slack/install` → Slack → `/slack/oauth_redirect`)
stores each workspace's bot token in the database with slack_sdk's installation store, the
workspace becomes an org of its own, and its events are answered with its own token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from bot.app import create_app
from bot.settings import Settings
from bot.startup import prepare_database
from knowledge.orgs import org_for_slack_team
from tests.bot.slack_live import SECRET, until
from tests.fakes.slack_api import FakeSlack, app_mention, event_callback, running_slack, sign

pytestmark = pytest.mark.slow


@pytest.fixture
async def oauth_app(settings: Settings, live_prom: str
                    ) -> AsyncIterator[tuple[httpx.AsyncClient, FakeSlack, Settings]]:
    with running_slack() as slack:
        slack.add_oauth_app("111.222", "client-secret")
        configured = settings.model_copy(update={
            "prometheus_url": live_prom, "slack_signing_secret": SECRET,
            "slack_client_id": "111.222", "slack_client_secret": "client-secret",
            "slack_api_url": slack.base_url + "/api/", "worker": True,
            "worker_poll_seconds": 0.1})
        db = await prepare_database(configured)
        app = create_app(configured, db=db)
        try:
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="https://copilot") as c:
                yield c, slack, configured
        finally:
            await db.dispose()


async def test_install_then_answer_in_the_new_workspace(
        oauth_app: tuple[httpx.AsyncClient, FakeSlack, Settings], settings: Settings) -> None:
    client, slack, configured = oauth_app
    page = await client.get("/slack/install")
    assert page.status_code == 200
    authorize = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page.text)
    assert authorize is not None
    query = parse_qs(urlparse(authorize.group(1).replace("&amp;", "&")).query)
    assert query["client_id"] == ["111.222"] and "chat:write" in query["scope"][0]
    # The person approves in Slack; Slack redirects back with a code and the state.
    code = slack.new_oauth_code("T0002", "Beta Corp")
    done = await client.get("/slack/oauth_redirect",
                            params={"code": code, "state": query["state"][0]})
    assert done.status_code == 200, done.text
    [token] = slack.installed_tokens

    channel = slack.add_channel("ops", is_member=True, members=["U0ANA"])
    asked = slack.add_message(channel.id, "<@U0BOT> what's firing?", user="U0ANA")
    body = event_callback(app_mention(asked.text, channel.id, asked.ts, "U0ANA",
                                      team="T0002"), team_id="T0002")
    response = await client.post("/slack/events", content=body, headers={
        **sign(body, SECRET), "Content-Type": "application/json"})
    assert response.status_code == 200
    await until("the answer in the new workspace", lambda: [
        m for m in slack.messages[channel.id] if m.thread_ts == asked.ts and m.user == "U0BOT"])
    posts = slack.calls_to("chat.postMessage")
    assert posts and all(c.headers.get("authorization") == f"Bearer {token}" for c in posts)
    app_db = await prepare_database(configured)
    try:
        async with app_db.session() as s:
            org = await org_for_slack_team(s, team_id="T0002")
        assert org is not None and org.slug == "slack-t0002"
    finally:
        await app_db.dispose()
