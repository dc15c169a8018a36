"""Talking to the copilot in Slack: a mention is answered in its thread (with a progress message
updated in place), a follow-up in that thread needs no mention, 📌 puts a message on the
timeline, `/sre ack` moves the incident for responders only, Slack's 429s are waited out, and a
missing scope is explained."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.settings import Settings
from knowledge.hypotheses import list_hypotheses
from knowledge.incidents import get_incident
from knowledge.timeline import list_events
from skills.pagerduty.client import PagerDutyClient
from skills.prometheus.client import PrometheusClient
from tests.bot.slack_live import TOKEN, Live, live_copilot, until
from tests.fakes.alertmanager import alert, notification, resolved
from tests.fakes.gate import Gate, gated
from tests.fakes.pagerduty_api import running_pagerduty
from tests.fakes.slack_api import (
    app_mention,
    channel_created,
    member_joined_channel,
    message,
    reaction_added,
)

pytestmark = pytest.mark.slow


async def _incident_channel(live: Live) -> str:
    sent = await live.client.post(
        "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
        json=notification([alert("CheckoutHighErrorRate", service="checkout")]))
    assert sent.status_code == 202
    live.slack.add_user("ana", id="U0ANA")
    live.slack.add_user("bob", id="U0BOB")
    channel = live.slack.add_channel("inc-1", is_member=True, members=["U0ANA", "U0BOB"])

    async def linked() -> bool:
        async with live.db.session() as s:
            try:
                await get_incident(s, org_id=1, incident_id=1)
                return True
            except LookupError:
                return False

    for _ in range(300):
        if await linked():
            break
        await asyncio.sleep(0.1)
    # Someone invites the bot: it links the channel to INC-1 and briefs it.
    invited = live.slack.event_callback(member_joined_channel("U0BOT", channel.id))
    assert (await live.slack_post(invited, form=False)).status_code == 200
    await until("the incident card", lambda: [
        m for m in live.slack.messages.get(channel.id, []) if "INC-1" in (m.text or "")])
    return channel.id


async def test_a_mention_is_answered_in_its_thread_and_the_thread_continues(live: Live
                                                                            ) -> None:
    slack = live.slack
    channel = slack.add_channel("ops", is_member=True, members=["U0ANA"])
    asked = slack.add_message(channel.id, "<@U0BOT> what's the error rate of checkout now?",
                              user="U0ANA")
    event = slack.event_callback(app_mention(asked.text, channel.id, asked.ts, "U0ANA"))
    assert (await live.slack_post(event, form=False)).status_code == 200
    reply = await until("the answer", lambda: next(
        (m for m in slack.messages[channel.id] if m.thread_ts == asked.ts
         and m.user == "U0BOT" and "%" in (m.text or "")), None))
    assert "20" in reply.text  # checkout's error ratio is 20 % since the incident began
    # The progress message was updated in place into the answer, not posted twice.
    assert slack.calls_to("chat.update")
    assert len([m for m in slack.messages[channel.id] if m.thread_ts == asked.ts
                and m.user == "U0BOT"]) == 1
    # A follow-up in the thread, without a mention, keeps the context.
    follow = slack.add_message(channel.id, "and for payments?", user="U0ANA",
                               thread_ts=asked.ts)
    event = slack.event_callback(message(follow.text, channel.id, follow.ts, "U0ANA",
                                         thread_ts=asked.ts))
    assert (await live.slack_post(event, form=False)).status_code == 200
    await until("the follow-up answer", lambda: [
        m for m in slack.messages[channel.id] if m.thread_ts == asked.ts
        and m.user == "U0BOT" and "payments" in (m.text or "")])
    # A message in a thread the bot never joined is not its business.
    other = slack.add_message(channel.id, "lunch?", user="U0ANA", thread_ts="1699999999.000100")
    event = slack.event_callback(message(other.text, channel.id, other.ts, "U0ANA",
                                         thread_ts="1699999999.000100"))
    before = len(slack.calls_to("chat.postMessage"))
    assert (await live.slack_post(event, form=False)).status_code == 200
    await asyncio.sleep(0.8)
    assert len(slack.calls_to("chat.postMessage")) == before


async def test_pin_and_ack(live: Live, settings: Settings) -> None:
    slack = live.slack
    channel = await _incident_channel(live)
    note = slack.add_message(channel, "rolled back checkout to v2.13.2", user="U0BOB")
    event = slack.event_callback(reaction_added("pushpin", channel, note.ts, "U0ANA"))
    assert (await live.slack_post(event, form=False)).status_code == 200

    async def pinned() -> bool:
        async with live.db.session() as s:
            events = await list_events(s, org_id=1, incident_id=1)
        return any(e.kind == "message_pinned" and "rolled back" in e.summary for e in events)

    for _ in range(100):
        if await pinned():
            break
        await asyncio.sleep(0.1)
    assert await pinned()

    # Bob is not a configured responder: he is told so, and nothing moves.
    refused = slack.slash_command("/sre", "resolve", channel, "U0BOB")
    assert (await live.slack_post(refused, form=True)).status_code == 200
    await until("the refusal", lambda: [e for e in slack.ephemerals
                                        if "Only the configured responders" in str(e)])
    ack = slack.slash_command("/sre", "ack", channel, "U0ANA")
    assert (await live.slack_post(ack, form=True)).status_code == 200
    await until("the acknowledgement", lambda: [
        m for m in slack.messages[channel] if "acknowledged" in (m.text or "")])
    async with live.db.session() as s:
        incident = await get_incident(s, org_id=1, incident_id=1)
    assert incident.status == "acknowledged"

    # A late joiner catches up: state, hypotheses, who is on it, what has been tried.
    catchup = slack.slash_command("/sre", "catchup", channel, "U0BOB")
    assert (await live.slack_post(catchup, form=True)).status_code == 200
    card = await until("the catch-up", lambda: next(
        (m for m in slack.messages[channel] if "Who is on it" in json.dumps(m.blocks or [])),
        None))
    shown = json.dumps(card.blocks)
    assert "<@U0ANA>" in shown and "rolled back checkout" in shown
    assert "acknowledged" in shown and "Top hypotheses" in shown

    timeline = slack.slash_command("/sre", "timeline", channel, "U0BOB")
    assert (await live.slack_post(timeline, form=True)).status_code == 200
    shown_timeline = await until("the timeline", lambda: next(
        (json.dumps(m.blocks) for m in slack.messages[channel]
         if "alert fired" in json.dumps(m.blocks or [])), None))
    assert "*pinned*" in shown_timeline and "acknowledged after" in shown_timeline

    # `@SRE Copilot status` is `/sre status`: the incident card, in the thread it was asked in.
    asked = slack.add_message(channel, "<@U0BOT> status", user="U0BOB")
    event = slack.event_callback(app_mention(asked.text, channel, asked.ts, "U0BOB"))
    assert (await live.slack_post(event, form=False)).status_code == 200
    status = await until("the status card", lambda: next(
        (m for m in slack.messages[channel] if m.thread_ts == asked.ts and m.blocks
         and any(b.get("type") == "header" for b in m.blocks)), None))
    assert "INC-1" in status.text and "acknowledged" in status.text


async def test_429_is_waited_out_and_a_missing_scope_is_explained(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    slack = live.slack
    channel = slack.add_channel("ops2", is_member=True, members=["U0ANA"])
    slack.rate_limit_next("chat.postMessage", n=1, retry_after=0)
    asked = slack.add_message(channel.id, "<@U0BOT> /help", user="U0ANA")
    event = slack.event_callback(app_mention(asked.text, channel.id, asked.ts, "U0ANA"))
    assert (await live.slack_post(event, form=False)).status_code == 200
    await until("the answer after a 429", lambda: [
        m for m in slack.messages[channel.id] if m.thread_ts == asked.ts and m.user == "U0BOT"])
    assert [c.status for c in slack.calls_to("chat.postMessage")][:2] == [429, 200]

    slack.fail_next("chat.postMessage", "missing_scope")
    caplog.set_level(logging.ERROR)
    asked = slack.add_message(channel.id, "<@U0BOT> /help", user="U0ANA")
    event = slack.event_callback(app_mention(asked.text, channel.id, asked.ts, "U0ANA"))
    assert (await live.slack_post(event, form=False)).status_code == 200
    await until("the explanation", lambda: "lacks the scope chat:write" in caplog.text)
    assert "manifest.yaml" in caplog.text


async def test_a_new_incident_gets_its_own_channel_with_the_on_call_invited(
        live: Live, settings: Settings) -> None:
    """With SRE_COPILOT_SLACK_CREATE_CHANNELS on, the chat worker turns the incident engine's
    "incident opened" message into a channel, invites who PagerDuty says is on call, and
    briefs the channel; status changes are posted there."""
    live.handlers.settings = live.handlers.settings.model_copy(
        update={"slack_create_channels": True})
    slack = live.slack
    slack.add_user("ada", id="U0ADA", email="ada@example.com")
    with running_pagerduty(token="pd") as pd:
        pd.add_oncall("Ada Lovelace", "ada@example.com", "Checkout on-call", 1)
        pd.add_oncall("Nobody In Slack", "ghost@example.com", "Checkout on-call", 2)
        live.handlers.agent.skills.clients["pagerduty"] = PagerDutyClient(
            "pd", base_url=pd.base_url)
        firing = alert("CheckoutHighErrorRate", service="checkout")
        sent = await live.client.post(
            "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
            json=notification([firing]))
        assert sent.status_code == 202
        await until("the channel", lambda: slack.calls_to("conversations.create"))
        channel = slack.channel("inc-1-checkout")
        await until("the invitation", lambda: slack.calls_to("conversations.invite"))
        assert slack.calls_to("conversations.invite")[0].params["users"] == "U0ADA"
        await until("the briefing", lambda: [
            m for m in slack.messages.get(channel.id, []) if "INC-1" in (m.text or "")])
    # Slack tells the app about the channel it made: no second briefing.
    event = slack.event_callback(channel_created(channel.id, channel.name, "U0BOT"))
    assert (await live.slack_post(event, form=False)).status_code == 200
    ack = slack.slash_command("/sre", "ack", channel.id, "U0ANA")
    assert (await live.slack_post(ack, form=True)).status_code == 200
    await until("the acknowledgement", lambda: [
        m for m in slack.messages[channel.id] if "is now *acknowledged*" in (m.text or "")])
    # The alert resolves: the incident engine's status message reaches the channel.
    sent = await live.client.post(
        "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
        json=notification([resolved(firing, datetime.now(UTC))]))
    assert sent.status_code == 202
    await until("the status change in the channel", lambda: [
        m for m in slack.messages[channel.id] if "INC-1 resolved" in (m.text or "")])
    assert len(slack.calls_to("conversations.create")) == 1
    cards = [m for m in slack.messages[channel.id]
             if not m.thread_ts and "INC-1" in (m.text or "") and m.blocks
             and any(b.get("type") == "header" for b in m.blocks)]
    assert len(cards) == 1


@asynccontextmanager
async def stalled_prometheus(live: Live, prometheus: str) -> AsyncIterator[Gate]:
    """New incidents get channels of their own, and the agent's Prometheus answers only once
    the yielded gate is opened."""
    live.handlers.settings = live.handlers.settings.model_copy(
        update={"slack_create_channels": True})
    clients = live.handlers.agent.skills.clients
    with gated(prometheus) as gate:
        clients["prometheus"] = PrometheusClient(gate.url, timeout=120)
        try:
            yield gate
        finally:
            await clients["prometheus"].aclose()


async def test_in_an_alert_storm_no_incident_card_waits_for_another_investigation(
        live: Live, erring_prom: str) -> None:
    """Three incidents open while Prometheus has stalled: all three channels get their card
    at once — none waits for an earlier incident's investigation — and once Prometheus
    answers, each investigation lands in its own card's thread, once."""
    slack = live.slack
    async with stalled_prometheus(live, erring_prom) as gate:
        for service in ("checkout", "payments", "search"):
            sent = await live.client.post(
                "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
                json=notification([alert(f"{service.title()}HighErrorRate",
                                         service=service)]))
            assert sent.status_code == 202

        def cards() -> dict[str, Any]:
            found = {}
            for channel in slack.channels.values():
                card = next((m for m in slack.messages.get(channel.id, [])
                             if not m.thread_ts and m.blocks), None)
                if channel.name.startswith("inc-") and card is not None:
                    found[channel.id] = card
            return found

        # All three cards, while an investigation is held at the gate.
        posted = await until("three incident cards", lambda: gate.held >= 1
                             and len(cards()) == 3 and cards())
        assert all(not m.thread_ts or not any(
            b.get("type") == "actions" for b in m.blocks or [])
            for c in posted for m in slack.messages[c] if m.thread_ts)
        gate.open()

        def investigations(c: str) -> list[Any]:
            return [m for m in slack.messages[c] if m.thread_ts == posted[c].ts
                    and (m.text or "").startswith(("Likely cause: ", "Investigation of "))]

        def investigated() -> bool:
            return all(investigations(c) for c in posted)

        await until("the three investigations", investigated, seconds=60)
    assert sorted(c.name for c in slack.channels.values() if c.name.startswith("inc-")) == [
        "inc-1-checkout", "inc-2-payments", "inc-3-search"]
    for c, card in posted.items():
        tops = [m for m in slack.messages[c] if not m.thread_ts and m.blocks]
        assert tops == [card]  # one card per incident channel, one investigation under it
        [answer] = investigations(c)
        assert slack.channels[c].name.split("-", 2)[2] in answer.text


async def _checkout_channel(live: Live) -> Any:
    """Checkout's alert sent; the channel the copilot makes for its incident."""
    sent = await live.client.post(
        "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
        json=notification([alert("CheckoutHighErrorRate", service="checkout")]))
    assert sent.status_code == 202
    return await until("the channel", lambda: next(
        (c for c in live.slack.channels.values() if c.name == "inc-1-checkout"), None))


async def test_a_new_incident_is_delivered_at_once_not_at_the_next_poll(
        settings: Settings, erring_prom: str) -> None:
    """The inbox worker that opens an incident wakes the chat worker's deliveries: with the
    workers polling only every 10 minutes, the incident's channel and card still come at once."""
    async with live_copilot(settings, erring_prom, worker_poll_seconds=600,
                            slack_create_channels=True) as copilot:
        await asyncio.sleep(1.0)  # the workers' first rounds are done: they wait now
        sent = await copilot.client.post(
            "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
            json=notification([alert("CheckoutHighErrorRate", service="checkout")]))
        assert sent.status_code == 202
        slack = copilot.slack
        await until("the incident card", lambda: [
            m for c in slack.channels.values() if c.name == "inc-1-checkout"
            for m in slack.messages.get(c.id, []) if not m.thread_ts and m.blocks], seconds=30)


async def test_an_investigation_cut_short_after_the_card_is_posted_on_the_next_round(
        live: Live, erring_prom: str, caplog: pytest.LogCaptureFixture) -> None:
    """Slack fails the investigation's post after the card went out: the next delivery round
    finds the card and posts the investigation under it — no second card, no stale progress
    message, nothing lost."""
    slack = live.slack
    async with stalled_prometheus(live, erring_prom) as gate:
        channel = await _checkout_channel(live)
        card = await until("the card and the investigation under way", lambda: gate.held
                           and next((m for m in slack.messages.get(channel.id, [])
                                     if not m.thread_ts and m.blocks), None))
        caplog.set_level(logging.ERROR)
        for _ in range(100):  # every update of the investigation's message, final included
            slack.fail_next("chat.update", "internal_error")
        gate.open()
        await until("the delivery to fail", lambda: "deliver" in caplog.text
                    and "internal_error" in caplog.text)
        slack.clear_failures()  # Slack is back
        answered = await until("the investigation", lambda: [
            m for m in slack.messages[channel.id] if m.thread_ts == card.ts
            and (m.text or "").startswith(("Likely cause: checkout", "Investigation of checkout"))],
            seconds=60)
    assert len(answered) == 1
    assert [m for m in slack.messages[channel.id] if not m.thread_ts and m.blocks] == [card]
    # The failed attempt's progress message became the answer: none is left "Investigating…".
    assert not [m for m in slack.messages[channel.id] if m.thread_ts == card.ts
                and (m.text or "").startswith("🔎")]
    assert len(slack.calls_to("conversations.create")) == 1


async def test_a_card_slack_posted_but_whose_answer_was_lost_is_not_posted_twice(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    """Slack posts the incident card but its answer is lost (as when a replica dies between
    posting and noting it): the next round finds the card by its message-metadata tag and
    posts the investigation under it — one card, nothing lost."""
    live.handlers.settings = live.handlers.settings.model_copy(
        update={"slack_create_channels": True})
    slack = live.slack
    slack.lose_next_answer("chat.postMessage")
    caplog.set_level(logging.ERROR)
    channel = await _checkout_channel(live)
    answered = await until("the investigation", lambda: [
        m for m in slack.messages.get(channel.id, []) if m.thread_ts
        and (m.text or "").startswith(("Likely cause: checkout", "Investigation of checkout"))],
        seconds=60)
    assert "service_unavailable" in caplog.text  # the first attempt did fail
    cards = [m for m in slack.messages[channel.id] if not m.thread_ts and m.blocks]
    assert len(cards) == 1, [m.text for m in cards]
    assert [m.thread_ts for m in answered] == [cards[0].ts]
    assert (cards[0].metadata or {}).get("event_type") == "sre_copilot_post"
    history = slack.calls_to("conversations.history")
    assert history and history[-1].params.get("include_all_metadata") in (True, "true", "1")


async def test_a_command_in_a_channel_the_bot_is_not_in_is_explained(live: Live) -> None:
    slack = live.slack
    slack.add_user("ana", id="U0ANA")
    channel = slack.add_channel("random", is_member=False, members=["U0ANA"])
    command = slack.slash_command("/sre", "runbook disk full", channel.id, "U0ANA")
    assert (await live.slack_post(command, form=True)).status_code == 200
    told = await until("the explanation", lambda: [
        r for r in slack.responses if "invite me" in str(r.body)])
    assert told[0].body["response_type"] == "ephemeral"


async def test_shortcut_and_incident_buttons(live: Live) -> None:
    slack = live.slack
    channel = await _incident_channel(live)
    note = slack.add_message(channel, "scaled the orders-db pool to 50", user="U0BOB")
    shortcut = slack.message_action("add_to_timeline", channel, note.ts, note.text, "U0ANA",
                                    message_user="U0BOB")
    assert (await live.slack_post(shortcut, form=True)).status_code == 200
    card = next(m for m in slack.messages[channel] if "INC-1" in (m.text or "")
                and not m.thread_ts)
    mitigate = next(e for b in card.blocks or [] if b.get("type") == "actions"
                    for e in b["elements"] if e["action_id"] == "incident_mitigated")
    click = slack.block_actions("incident_mitigated", mitigate["value"], "U0ANA", channel,
                                card.ts)
    assert (await live.slack_post(click, form=True)).status_code == 200
    await until("the status change", lambda: [
        m for m in slack.messages[channel] if "is now *mitigated*" in (m.text or "")])
    async with live.db.session() as s:
        incident = await get_incident(s, org_id=1, incident_id=1)
    assert incident.status == "mitigated"
    for _ in range(100):  # the shortcut is its own item: handled beside the click
        async with live.db.session() as s:
            events = await list_events(s, org_id=1, incident_id=1)
        if any(e.kind == "message_pinned" for e in events):
            break
        await asyncio.sleep(0.1)
    assert any(e.kind == "message_pinned" and "orders-db pool" in e.summary for e in events)


async def test_a_channel_created_before_its_incident_is_briefed_once_it_exists(
        live: Live) -> None:
    """Slack can be faster than the incident engine: the channel event waits (retried with
    backoff) until INC-1 is recorded, then the channel is briefed."""
    slack = live.slack
    channel = slack.add_channel("inc-1-early", is_member=False)
    event = slack.event_callback(channel_created(channel.id, channel.name, "U0ANA"))
    assert (await live.slack_post(event, form=False)).status_code == 200
    await until("the bot to join", lambda: slack.calls_to("conversations.join"))
    await asyncio.sleep(0.5)  # the worker has seen it, and INC-1 does not exist yet
    assert not [m for m in slack.messages.get(channel.id, []) if "INC-1" in (m.text or "")]
    sent = await live.client.post(
        "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
        json=notification([alert("CheckoutHighErrorRate", service="checkout")]))
    assert sent.status_code == 202
    await until("the incident card", lambda: [
        m for m in slack.messages.get(channel.id, []) if "INC-1" in (m.text or "")])


@pytest.mark.parametrize(("creator", "used"), [("U0BOT", "inc-1-checkout"),
                                               ("U0ANA", "inc-1-checkout-2")])
async def test_a_channel_left_by_a_replica_that_died_is_taken_not_doubled(
        live: Live, creator: str, used: str) -> None:
    """A replica killed between creating an incident's channel and recording it leaves a
    channel of this bot's under the incident's name: the next replica takes it instead of
    making a second one. A channel a person made under that name stays theirs: the incident's
    channel gets the next name."""
    live.handlers.settings = live.handlers.settings.model_copy(
        update={"slack_create_channels": True})
    slack = live.slack
    slack.add_channel("inc-1-checkout", creator=creator, is_member=creator == "U0BOT")
    sent = await live.client.post(
        "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
        json=notification([alert("CheckoutHighErrorRate", service="checkout")]))
    assert sent.status_code == 202
    await until("the incident card", lambda: [
        m for ch in list(slack.channels.values()) if ch.name == used
        for m in slack.messages.get(ch.id, []) if "INC-1" in (m.text or "")])
    names = sorted(ch.name for ch in slack.channels.values() if ch.name.startswith("inc-1"))
    assert names == sorted({"inc-1-checkout", used})


async def test_feedback_typed_in_the_briefing_thread_is_recorded(live: Live) -> None:
    slack = live.slack
    channel = await _incident_channel(live)
    card = next(m for m in slack.messages[channel] if "INC-1" in (m.text or "")
                and not m.thread_ts)
    await until("the hypotheses", lambda: [m for m in slack.messages[channel]
                                           if m.thread_ts == card.ts and m.blocks])
    typed = slack.add_message(channel, "hypothesis 1 is wrong", user="U0ANA",
                              thread_ts=card.ts)
    event = slack.event_callback(message(typed.text, channel, typed.ts, "U0ANA",
                                         thread_ts=card.ts))
    assert (await live.slack_post(event, form=False)).status_code == 200
    await until("the acknowledgement", lambda: [
        m for m in slack.messages[channel] if "marked rejected" in (m.text or "")])
    for _ in range(100):  # recorded right after the acknowledgement is posted
        async with live.db.session() as s:
            hypotheses = await list_hypotheses(s, org_id=1, incident_id=1)
            events = await list_events(s, org_id=1, incident_id=1)
        if "rejected" in [h.status for h in hypotheses]:
            break
        await asyncio.sleep(0.1)
    assert [h.status for h in hypotheses].count("rejected") == 1
    assert any(e.kind == "hypothesis_feedback" and "<@U0ANA>" in e.summary for e in events)
