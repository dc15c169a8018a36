"""Teams end to end, as it runs in production: `serve`'s app with its workers, a live Prometheus
whose checkout errors started 15 minutes ago, and a local Bot Framework over HTTPS (OpenID
metadata and endorsed keys, the token endpoint, the connector). Activities are real Teams
shapes, signed as Bot Framework signs them, POSTed to `/api/messages`.

The bot is installed in a team → an Alertmanager webhook opens an incident → a new thread in
the incident channel with the incident card and, under it, the hypotheses → a mention answered
in the thread → a command → a Confirm click recorded and the card refreshed → Acknowledge from
the incident card. Redeliveries are answered once; forged, expired and unsigned activities get
401 and nothing is stored."""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.digest import LEASE, run_digests
from bot.teams.auth import bot_authentication
from bot.teams.connector import Connector
from knowledge.digests import claim_run
from knowledge.hypotheses import list_hypotheses
from knowledge.inbox import items
from knowledge.incidents import find_incident
from knowledge.outbox import find_message
from knowledge.teams import find_channel
from knowledge.timeline import list_events
from skills.digest.metrics import Period
from tests.bot.card_screens import render, unavailable
from tests.bot.slack_live import until
from tests.bot.teams_live import INCIDENTS, TEAM, TOKEN, TeamsLive, actions, card
from tests.fakes.alertmanager import alert, notification, resolved

pytestmark = pytest.mark.slow

RUNBOOK = "https://runbooks.example.com/CheckoutHighErrorRate"


async def installed(live: TeamsLive) -> None:
    update = live.teams.conversation_update_installed(TEAM, TEAM)
    assert (await live.send(update)).status_code == 200

    async def known() -> bool:
        async with live.db.session() as s:
            return await find_channel(s, org_id=1, channel_id=INCIDENTS) is not None

    for _ in range(200):
        if await known():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the incident channel was never stored")


async def open_incident(live: TeamsLive, firing: dict[str, Any] | None = None) -> Any:
    if firing is None:
        firing = alert("CheckoutHighErrorRate", service="checkout",
                       summary="Checkout 5xx ratio above 5%")
        firing["annotations"]["runbook_url"] = RUNBOOK
    sent = await live.client.post(
        "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
        json=notification([firing]))
    assert sent.status_code == 202
    return await until("the incident thread", lambda: next(
        (c for c in live.teams.calls if c.kind == "create_conversation" and c.status == 201),
        None), seconds=30)


async def test_incident_thread_end_to_end(teams_live: TeamsLive) -> None:
    live, fake = teams_live, teams_live.teams
    # 1. The app is installed in the team: every channel's reference is kept.
    await installed(live)
    # 2. Alertmanager reports checkout's errors: a new thread in the incident channel.
    created = await open_incident(live)
    params = created.body
    assert params["channelData"]["channel"]["id"] == INCIDENTS
    assert params["channelData"]["tenant"]["id"] == "tenant-1"
    incident_card = card(created)
    assert "INC-1" in json.dumps(incident_card)
    assert {a["verb"] for a in actions(incident_card)} >= {"incident_ack"}
    root = created.response["activityId"]
    thread = f"{INCIDENTS};messageid={root}"
    # 3. Under it: one progress card, updated in place into the hypotheses with evidence.
    answer_update = await until("the hypotheses in the thread", lambda: next(
        (c for c in live.calls_in(thread, "update")
         if any(a["verb"] == "hypothesis_confirm" for a in actions(card(c)))), None), seconds=60)
    progress = live.calls_in(thread, "send")[0]
    assert "Investigat" in json.dumps(card(progress))
    assert answer_update.activity_id == progress.response["id"]  # the same message, updated
    shown = json.dumps(card(answer_update), ensure_ascii=False)
    assert "checkout" in shown and "[graph](" in shown  # evidence, its query behind a link
    assert "data:image/png;base64," in shown  # the signals chart, inline
    verdict = card(answer_update)["body"][0]["items"]
    assert verdict[0]["text"].startswith("🎯 **Likely cause:** ")
    assert re.match(r"📊 \*\*How sure:\*\* \d+%", verdict[1]["text"])
    assert verdict[2]["text"].startswith("👉 **Next step:** ")
    assert f"]({RUNBOOK})" in verdict[2]["text"]
    if unavailable() is None or os.environ.get("CI") == "true":  # else: a clone without it
        rendered = render([card(answer_update)], "live-briefing-teams")
        assert rendered.errors == [] and rendered.images_loaded == 1
        assert rendered.text.startswith("🎯 Likely cause:")
        assert "rate(" not in rendered.text and "ev-" not in rendered.text
    assert all(c.authorized for c in fake.calls)  # every call carried the bot's token
    assert len(fake.token_requests) == 1  # … fetched once and kept

    # 4. A mention in the thread is answered there; its redelivery is not answered again.
    question = fake.message("what is failing in checkout?", conversation_id=thread,
                            channel_id=INCIDENTS)
    sends_before = len(live.calls_in(thread, "send"))
    assert (await live.send(question)).status_code == 200
    answered = await until("the answer to the mention", lambda: len(
        live.calls_in(thread, "send")) > sends_before and len(live.calls_in(thread, "update")) > 1)
    assert answered
    await asyncio.sleep(1.5)
    settled = len(live.calls_in(thread, "send"))
    assert (await live.send(question)).status_code == 200  # Teams redelivers the same activity
    await asyncio.sleep(1.5)
    assert len(live.calls_in(thread, "send")) == settled

    # A reply in that thread without a mention is for the bot too (it takes part); a new
    # post in the channel that does not mention it is not even stored.
    follow_up = fake.message("and for payments?", conversation_id=thread, channel_id=INCIDENTS,
                             mention_bot=False)
    assert (await live.send(follow_up)).status_code == 200
    await until("the answer to the follow-up", lambda: len(
        live.calls_in(thread, "send")) > settled)
    chatter = fake.message("lunch?", mention_bot=False)
    chatter["conversation"]["id"] = f"{INCIDENTS};messageid={chatter['id']}"
    async with live.db.session() as s:
        stored = len(await items(s, org_id=1))
    assert (await live.send(chatter)).status_code == 200
    async with live.db.session() as s:
        assert len(await items(s, org_id=1)) == stored

    # 5. A command: the timeline.
    command = fake.message("timeline", conversation_id=thread, channel_id=INCIDENTS)
    assert (await live.send(command)).status_code == 200
    await until("the timeline card", lambda: any(
        "🕒 INC-1" in json.dumps(card(c), ensure_ascii=False)
        for c in live.calls_in(thread, "send")))

    # 6. Confirm on the first hypothesis: recorded as feedback, the card refreshed.
    confirm = next(a for a in actions(card(answer_update)) if a["verb"] == "hypothesis_confirm")
    click = fake.invoke_action(confirm["data"], verb="hypothesis_confirm",
                               conversation_id=thread, reply_to_id=answer_update.activity_id,
                               channel_id=INCIDENTS)
    response = await live.send(click)
    assert response.status_code == 200
    assert response.json()["statusCode"] == 200  # the invoke response Teams shows the clicker

    async def confirmed() -> list[Any]:
        async with live.db.session() as s:
            return [h for h in await list_hypotheses(s, org_id=1, incident_id=1)
                    if h.status == "confirmed"]

    for _ in range(200):
        if await confirmed():
            break
        await asyncio.sleep(0.1)
    [hypothesis] = await confirmed()
    assert hypothesis.statement.startswith(confirm["data"]["s"])
    refreshed = await until("the refreshed hypotheses card", lambda: next(
        (c for c in live.calls_in(thread, "update") if c.activity_id == answer_update.activity_id
         and "Confirmed" in json.dumps(card(c))), None))
    assert len([a for a in actions(card(refreshed)) if a["data"].get("n") == 1]) == 0
    async with live.db.session() as s:
        events = await list_events(s, org_id=1, incident_id=1)
    assert any(e.kind == "hypothesis_feedback" and e.source == "teams" for e in events)

    # "Add to timeline" on someone's message (the app's message action): on the timeline.
    pin = fake.message_action("addToTimeline", "<p>rolled back <b>checkout</b> to v2.13.2</p>",
                              note="error rate falling", conversation_id=thread,
                              channel_id=INCIDENTS)
    response = await live.send(pin)
    assert response.status_code == 200 and response.json() == {}
    await until("the pin's confirmation", lambda: any(
        "Added to the incident timeline" in json.dumps(card(c), ensure_ascii=False)
        for c in live.calls_in(thread, "send")))
    async with live.db.session() as s:
        pinned = [e for e in await list_events(s, org_id=1, incident_id=1)
                  if e.kind == "message_pinned"]
    assert [(e.source, e.summary) for e in pinned] == [
        ("teams", "Ana: Bob: rolled back checkout to v2.13.2 — error rate falling")]

    # 7. Acknowledge from the incident card: the state moves, the card loses the button.
    ack = fake.invoke_action({"incident": 1}, verb="incident_ack", conversation_id=thread,
                             reply_to_id=root, channel_id=INCIDENTS)
    assert (await live.send(ack)).status_code == 200
    new_card = await until("the refreshed incident card", lambda: next(
        (c for c in live.calls_in(thread, "update") if c.activity_id == root), None))
    assert "incident_ack" not in {a["verb"] for a in actions(card(new_card))}
    async with live.db.session() as s:
        incident = await find_incident(s, org_id=1, incident_id=1)
    assert incident.status == "acknowledged"


@pytest.mark.parametrize("how", [{"forged": True}, {"expired": True},
                                 {"audience": "00000000-0000-0000-0000-0000000000bb"},
                                 {"endorsement": "directline"}, None])
async def test_badly_signed_activities_are_refused_and_nothing_is_stored(
        teams_live: TeamsLive, how: dict[str, Any] | None) -> None:
    activity = teams_live.teams.personal_message("what is failing?")
    if how is None:  # unsigned
        response = await teams_live.client.post("/api/messages", json=activity)
    else:
        response = await teams_live.send(activity, **how)
    assert response.status_code == 401
    assert "token" in response.json()["error"]
    async with teams_live.db.session() as s:
        assert await items(s, org_id=1) == []


async def test_a_personal_chat_is_answered_through_throttling(teams_live: TeamsLive) -> None:
    live, fake = teams_live, teams_live.teams
    fake.throttle_next(1, retry_after=1)  # the first connector call gets 429 Retry-After: 1
    chat = fake.personal_message("/firing")
    assert (await live.send(chat)).status_code == 200
    conversation = chat["conversation"]["id"]
    await until("the answer", lambda: live.calls_in(conversation, "update"), seconds=30)
    statuses = [c.status for c in fake.calls if c.conversation_id == conversation]
    assert statuses[0] == 429 and 201 in statuses


async def test_a_rejected_card_is_posted_as_text(teams_live: TeamsLive) -> None:
    live, fake = teams_live, teams_live.teams
    chat = fake.personal_message("help")
    fake.fail_next(400, "BadArgument", "Unknown attachment content")
    assert (await live.send(chat)).status_code == 200
    conversation = chat["conversation"]["id"]
    text = await until("the text instead of the card", lambda: next(
        (c for c in live.calls_in(conversation, "send") if (c.body or {}).get("text")), None))
    assert "help" in text.body["text"].lower() or "mention" in text.body["text"].lower()


async def test_bad_input_gets_a_clear_400(teams_live: TeamsLive) -> None:
    response = await teams_live.client.post("/api/messages", content=b"{not json",
                                            headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "JSON" in response.json()["detail"]
    response = await teams_live.client.post("/api/messages", json={"text": "hi"})
    assert response.status_code == 400 and "type" in response.json()["error"]


async def test_a_channel_named_after_an_incident_is_linked_and_briefed(
        teams_live: TeamsLive) -> None:
    live, fake = teams_live, teams_live.teams
    live.handlers.settings = live.handlers.settings.model_copy(
        update={"teams_incident_channel": None})  # only the new channel gets the news
    await installed(live)
    sent = await live.client.post(
        "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
        json=notification([alert("CheckoutHighErrorRate", service="checkout")]))
    assert sent.status_code == 202
    channel = "19:inc1checkout@thread.tacv2"
    event = fake.channel_created(channel, "INC-1 checkout", team_id=TEAM)
    assert (await live.send(event)).status_code == 200
    created = await until("the incident card in the new channel", lambda: next(
        (c for c in fake.calls if c.kind == "create_conversation" and c.status == 201
         and c.body["channelData"]["channel"]["id"] == channel), None))
    assert "INC-1" in json.dumps(card(created))
    thread = f"{channel};messageid={created.response['activityId']}"
    await until("the hypotheses in its thread", lambda: any(
        any(a["verb"] == "hypothesis_confirm" for a in actions(card(c)))
        for c in live.calls_in(thread, "update")), seconds=60)
    assert not [c for c in fake.calls if c.kind == "create_conversation"
                and c.body["channelData"]["channel"]["id"] == INCIDENTS]


async def test_a_removed_bot_and_an_outage_lose_nothing_else(
        teams_live: TeamsLive, caplog: pytest.LogCaptureFixture) -> None:
    live, fake = teams_live, teams_live.teams
    await installed(live)
    firing = alert("CheckoutHighErrorRate", service="checkout")
    created = await open_incident(live, firing)
    thread = f"{INCIDENTS};messageid={created.response['activityId']}"
    await until("the investigation", lambda: any(
        any(a["verb"] == "hypothesis_confirm" for a in actions(card(c)))
        for c in live.calls_in(thread, "update")), seconds=60)
    # The bot is removed from the incident channel; the incident then resolves.
    fake.remove_bot(INCIDENTS)
    ends = datetime.now(UTC)
    sent = await live.client.post(
        "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
        json=notification([resolved(firing, ends)]))
    assert sent.status_code == 202

    async def marker() -> Any:
        async with live.db.session() as s:
            return await find_message(s, org_id=1, key="teams:outbox:incident:1:status:resolved")

    for _ in range(300):
        found = await marker()
        if found is not None and found.status != "pending":
            break
        await asyncio.sleep(0.1)
    assert found is not None and found.status == "failed"
    assert "not in that conversation" in (found.last_error or "")
    assert any("not in that conversation" in r.getMessage() for r in caplog.records)
    # The connector then fails twice with 502: retried with backoff, the chat still answered.
    fake.fail_next(502, "BadGateway", "The service is unavailable.", n=2)
    chat = fake.personal_message("/firing")
    assert (await live.send(chat)).status_code == 200
    conversation = chat["conversation"]["id"]
    await until("the answer after the outage", lambda: live.calls_in(conversation, "update"))
    assert [c.status for c in fake.calls if c.conversation_id == conversation][:3] == [
        502, 502, 201]


async def test_refused_credentials_are_logged_and_the_message_answered_later(
        teams_live: TeamsLive, caplog: pytest.LogCaptureFixture) -> None:
    live, fake = teams_live, teams_live.teams
    working = live.handlers.connector
    settings = live.handlers.settings
    live.handlers.connector = Connector(bot_authentication(settings.model_copy(
        update={"teams_app_password": "not-the-secret"})), settings.teams_app_id or "")
    chat = fake.personal_message("/firing")
    assert (await live.send(chat)).status_code == 200
    await until("the refusal in the log", lambda: any(
        "refused the bot's credentials" in r.getMessage() and "AADSTS7000215" in r.getMessage()
        for r in caplog.records))
    conversation = chat["conversation"]["id"]
    assert live.calls_in(conversation) == []
    live.handlers.connector = working  # the secret is fixed: the stored message is retried
    await until("the answer", lambda: live.calls_in(conversation, "update"), seconds=30)


async def test_digest_here_chooses_the_channel_and_the_digest_is_posted_there_once(
        teams_live: TeamsLive) -> None:
    live, fake = teams_live, teams_live.teams
    weekly = "19:weekly@thread.tacv2"
    fake.team_channels[TEAM].append({"id": weekly, "name": "sre-weekly"})
    await installed(live)
    await open_incident(live)  # one incident in the digest's week
    settings = live.handlers.settings
    assert not settings.digest_teams_channel
    # `digest` alone says where it goes (nowhere yet); `digest here` chooses this channel.
    post = f"{weekly};messageid=1700000000001"
    ask = fake.message("digest", conversation_id=post, channel_id=weekly, team_id=TEAM)
    assert (await live.send(ask)).status_code == 200
    told = await until("where the digest goes", lambda: next(
        (c for c in live.calls_in(post, "send") if "goes to" in json.dumps(card(c))), None))
    assert "nowhere in Teams yet" in json.dumps(card(told))
    here = fake.message("digest here", conversation_id=post, channel_id=weekly, team_id=TEAM)
    assert (await live.send(here)).status_code == 200
    await until("the confirmation", lambda: next(
        (c for c in live.calls_in(post, "send")
         if "will be posted here" in json.dumps(card(c))), None))

    now = datetime.now(UTC)
    week = Period(now - timedelta(days=7), now + timedelta(minutes=1))
    # A replica claimed this period 11 minutes ago and died before posting: its lease (10 min)
    # is out, so the next run takes it over and posts rather than skipping the week.
    async with live.db.session() as s, s.begin():
        dead = await claim_run(s, org_id=1, period_start=week.start, period_end=week.end,
                               by="dead-replica", lease=LEASE)
        assert dead is not None
        dead.claimed_at = now - timedelta(minutes=11)
        s.add(dead)
    assert await run_digests(settings, live.db, period=week, by="replica-a") == 1
    posted = [c for c in live.calls_in(weekly, "send")]
    assert posted, "the digest was not posted in the chosen channel"
    shown = " ".join(json.dumps(card(c)) for c in posted)
    assert "Weekly digest" in shown and "1 incidents" in shown and "checkout: 1" in shown
    assert "Capacity" in shown
    # Another replica's run of the same period posts nothing more.
    assert await run_digests(settings, live.db, period=week, by="replica-b") == 0
    assert len(live.calls_in(weekly, "send")) == len(posted)
    # … and `digest` now names the channel.
    again = fake.message("digest", conversation_id=f"{weekly};messageid=1700000000002",
                         channel_id=weekly, team_id=TEAM)
    assert (await live.send(again)).status_code == 200
    await until("the channel named", lambda: next(
        (c for c in live.calls_in(f"{weekly};messageid=1700000000002", "send")
         if "sre-weekly" in json.dumps(card(c))), None))
