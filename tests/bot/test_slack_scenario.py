"""Slack end to end, as it runs in production: `serve`'s app with its workers, a live
Prometheus whose checkout errors started 15 minutes ago, and a local Slack Web API. Signed
requests go to `/slack/events`.

Alertmanager webhook → incident → channel `inc-1-checkout` created → the bot joins and posts the
incident card and, in its thread, the hypotheses → a Confirm click → the timeline shows it →
`/sre postmortem` posts the draft. Slack's retries never post twice."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.app import create_app, prepare_database
from bot.settings import Settings
from knowledge.db import Database
from knowledge.timeline import list_events
from tests.fakes.alertmanager import alert, notification
from tests.fakes.live_prometheus import HISTORY_SECONDS, Service, live_prometheus
from tests.fakes.slack_api import FakeSlack, channel_created, running_slack, sign

pytestmark = pytest.mark.slow
SECRET = "slack-signing-secret"
TOKEN = "am-token"


@pytest.fixture(scope="module")
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


@pytest.fixture
async def live(settings: Settings, erring_prom: str) -> AsyncIterator[Live]:
    with running_slack() as slack:
        configured = settings.model_copy(update={
            "prometheus_url": erring_prom, "slack_bot_token": "xoxb-test",
            "slack_signing_secret": SECRET, "slack_api_url": slack.base_url + "/api/",
            "alertmanager_webhook_token": TOKEN, "worker": True, "worker_poll_seconds": 0.1,
            "slack_responders": "U0ANA"})
        db = await prepare_database(configured)
        app = create_app(configured, db=db)
        try:
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://copilot") as c:
                yield Live(client=c, slack=slack, db=db)
        finally:
            await db.dispose()


async def until(what: str, check: Callable[[], Any], seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def buttons(message: Any) -> list[dict[str, Any]]:
    return [e for b in message.blocks or [] if b.get("type") == "actions"
            for e in b.get("elements", [])]


async def test_incident_channel_end_to_end(live: Live) -> None:
    slack = live.slack
    # 1. Alertmanager reports checkout's errors: an incident opens.
    sent = await live.client.post(
        "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
        json=notification([alert("CheckoutHighErrorRate", service="checkout",
                                 summary="Checkout 5xx ratio above 5%")]))
    assert sent.status_code == 202
    # 2. Someone creates the incident channel; Slack tells the app.
    channel = slack.add_channel("inc-1-checkout", is_member=False)
    event = slack.event_callback(channel_created(channel.id, channel.name, "U0ANA"),
                                 event_id="Ev0CHANNEL")
    assert (await live.slack_post(event, form=False)).status_code == 200
    # 3. The bot joins, posts the incident card, and the investigation in its thread.
    await until("the bot to join", lambda: slack.calls_to("conversations.join"))
    card = await until("the incident card", lambda: next(
        (m for m in slack.messages.get(channel.id, []) if "INC-1" in (m.text or "")
         and not m.thread_ts), None))
    assert any(b["action_id"] == "incident_ack" for b in buttons(card))
    answer = await until("hypotheses in the thread", lambda: next(
        (m for m in slack.messages.get(channel.id, [])
         if m.thread_ts == card.ts and any(b["action_id"] == "hypothesis_confirm"
                                           for b in buttons(m))), None), seconds=60)
    text = json.dumps(answer.blocks)
    assert "checkout" in text and "ev-" in text  # a hypothesis with its evidence
    # Slack retries the same event: nothing is posted twice.
    posts_before = len(slack.calls_to("chat.postMessage"))
    assert (await live.slack_post(event, form=False, retry=1)).status_code == 200
    await asyncio.sleep(1.0)
    assert len(slack.calls_to("chat.postMessage")) == posts_before

    # 4. A responder confirms the first hypothesis.
    confirm = next(b for b in buttons(answer) if b["action_id"] == "hypothesis_confirm")
    click = slack.block_actions("hypothesis_confirm", confirm["value"], "U0ANA", channel.id,
                                answer.ts)
    assert (await live.slack_post(click, form=True)).status_code == 200

    async def feedback_on_timeline() -> bool:
        async with live.db.session() as s:
            events = await list_events(s, org_id=1, incident_id=1)
        return any(e.kind == "hypothesis_feedback" and "confirmed" in e.summary
                   for e in events)

    deadline = time.monotonic() + 20
    while not await feedback_on_timeline():
        assert time.monotonic() < deadline, "the confirmation never reached the timeline"
        await asyncio.sleep(0.1)

    # 5. /sre postmortem posts the draft as a file and a summary.
    command = slack.slash_command("/sre", "postmortem", channel.id, "U0ANA")
    assert (await live.slack_post(command, form=True)).status_code == 200
    draft = await until("the post-mortem file", lambda: next(
        (f for f in slack.files.values() if f.filename.endswith("postmortem.md")), None))
    assert b"INC-1" in draft.data and b"confirmed" in draft.data.lower()


async def test_bad_signature_is_refused_and_nothing_is_stored(live: Live) -> None:
    body = live.slack.event_callback(channel_created("C9", "inc-9", "U0ANA"))
    bad = {**sign(body, "wrong-secret"), "Content-Type": "application/json"}
    response = await live.client.post("/slack/events", content=body, headers=bad)
    assert response.status_code == 401
    await asyncio.sleep(0.5)
    assert live.slack.calls_to("conversations.join") == []


