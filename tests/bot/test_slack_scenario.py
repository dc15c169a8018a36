"""Slack end to end, as it runs in production: `serve`'s app with its workers, a live
Prometheus whose checkout errors started 15 minutes ago, and a local Slack Web API. Signed
requests go to `/slack/events`.

Alertmanager webhook → incident → channel `inc-1-checkout` created → the bot joins and posts the
incident card and, in its thread, the hypotheses → a Confirm click → the timeline shows it →
`/sre postmortem` posts the draft. Slack's retries never post twice."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest

from knowledge.hypotheses import list_hypotheses
from knowledge.timeline import list_events
from tests.bot.slack_live import TOKEN, Live, until
from tests.fakes.alertmanager import alert, notification
from tests.fakes.slack_api import channel_created, sign

pytestmark = pytest.mark.slow
RUNBOOK = "https://runbooks.example.com/CheckoutHighErrorRate"


def buttons(message: Any) -> list[dict[str, Any]]:
    return [e for b in message.blocks or [] if b.get("type") == "actions"
            for e in b.get("elements", [])]


async def test_incident_channel_end_to_end(live: Live) -> None:
    slack = live.slack
    # 1. Alertmanager reports checkout's errors: an incident opens.
    firing = alert("CheckoutHighErrorRate", service="checkout",
                   summary="Checkout 5xx ratio above 5%")
    firing["annotations"]["runbook_url"] = RUNBOOK
    sent = await live.client.post(
        "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
        json=notification([firing]))
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
    # The verdict first: the cause, how sure, the next step with the alert's runbook.
    cause, sure, step = answer.blocks[0]["text"]["text"].split("\n")
    assert cause.startswith("🎯 *Likely cause:* ") and "checkout" in cause
    assert re.match(r"📊 \*How sure:\* \d+%", sure)
    assert step.startswith("👉 *Next step:* ") and f"<{RUNBOOK}|" in step
    # A hypothesis with its evidence: readable lines, each query behind a link.
    text = json.dumps(answer.blocks, ensure_ascii=False)
    assert "checkout" in text and "|graph>" in text
    shown = re.sub(r"<https?://[^|>]+\|([^>]*)>", r"\1", text)
    assert "rate(" not in shown and "ev-" not in shown
    # The chart of the signals the hypotheses rest on went up in the same thread.
    chart = await until("the chart", lambda: next(  # uploaded and shared, not just announced
        (f for f in slack.files.values() if f.filename.startswith("signals-") and f.completed),
        None))
    assert chart.data is not None and chart.data[:4] == b"\x89PNG"
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
        (f for f in slack.files.values() if f.filename.endswith("postmortem.md")
         and f.completed), None))  # uploaded and shared: its bytes arrive before it completes
    assert draft.data is not None
    assert b"INC-1" in draft.data and b"confirmed" in draft.data.lower()
    # The confirmed hypothesis is the post-mortem's root cause.
    async with live.db.session() as s:
        [confirmed] = [h for h in await list_hypotheses(s, org_id=1, incident_id=1)
                       if h.status == "confirmed"]
    root_cause = draft.data.decode().split("## Root cause", 1)[1].split("\n## ", 1)[0]
    assert confirmed.statement[:40] in root_cause
    summary = await until("the post-mortem summary", lambda: next(
        (m for m in slack.messages[channel.id] if "post-mortem" in (m.text or "").lower()
         or "postmortem" in (m.text or "").lower()), None))
    assert len(summary.text) < len(draft.data)  # a summary, the draft is the file


async def test_bad_signature_is_refused_and_nothing_is_stored(live: Live) -> None:
    body = live.slack.event_callback(channel_created("C9", "inc-9", "U0ANA"))
    bad = {**sign(body, "wrong-secret"), "Content-Type": "application/json"}
    response = await live.client.post("/slack/events", content=body, headers=bad)
    assert response.status_code == 401
    await asyncio.sleep(0.5)
    assert live.slack.calls_to("conversations.join") == []


