"""The incident conversation, once for every platform: `Chat` driven by neutral events against a
recording `Conversation` (tests/bot/conversation_fakes.py), with the real agent (evidence engine,
live Prometheus) and a real database. Each test runs as Slack and as Teams: the rules are the
same on both. The platforms' own protocol tests are test_slack_* and test_teams_*."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import URL

from bot.agent.runtime import open_agent
from bot.conversation.address import Address, Person
from bot.conversation.chat import Chat
from bot.conversation.delivery import deliver
from bot.conversation.events import ChannelSeen, Clicked, Command, Pinned, Said
from bot.conversation.standard import COMMANDS, standard_commands
from bot.conversation.vocabulary import HYPOTHESIS_REJECT, INCIDENT_ACK, INCIDENT_MERGE
from bot.settings import Settings
from bot.startup import prepare_database
from knowledge.correlation import AlertSignal, apply_alert
from knowledge.hypotheses import HypothesisStatus, add_hypothesis, list_hypotheses
from knowledge.incidents import (
    Incident,
    IncidentStatus,
    find_incident,
    incidents_with_alerts,
    transition,
)
from knowledge.outbox import enqueue_message, find_message
from knowledge.threads import incident_of_thread, link_thread
from knowledge.timeline import add_event, list_events
from tests.bot.conversation_fakes import RecordingConversation, Refused, plain_renderer

ANA = Person(id="U1", name="Ana", mention="@Ana", may_act=True)
BOB = Person(id="U2", name="Bob", mention="@Bob", may_act=False)
EVIDENCE = [{"id": "ev-1", "source": "prometheus", "summary": "5xx ratio 0.1"}]


@pytest.fixture
def db_url(sqlite_url: URL) -> URL:
    """The conversation's rules, not the database's: the protocol tests run both databases."""
    return sqlite_url


@pytest.fixture
def agent_settings(settings: Settings, erring_prom: str) -> Settings:
    """A Prometheus whose checkout errors started 15 minutes ago: briefings have a cause."""
    return settings.model_copy(update={"prometheus_url": erring_prom})


@pytest.fixture(params=["slack", "teams"])
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Room:
    chat: Chat
    conversation: RecordingConversation
    org_id: int

    def at(self, channel: str = "C1", thread: str = "") -> Address:
        return Address(self.conversation.platform, self.org_id, "W1", channel, thread)

    async def incident(self, service: str = "checkout") -> Incident:
        async with self.chat.db.session() as session, session.begin():
            incident = Incident(org_id=self.org_id, title=f"{service} 5xx", service=service,
                                source="manual",
                                triggered_at=datetime.now(UTC) - timedelta(minutes=14))
            session.add(incident)
        assert incident.id is not None
        return incident

    async def link(self, incident: Incident, channel: str = "C1", thread: str = "") -> None:
        async with self.chat.db.session() as session, session.begin():
            await link_thread(session, org_id=self.org_id, incident_id=incident.id or 0,
                              platform=self.conversation.platform, workspace_id="W1",
                              channel_id=channel, thread_id=thread)

    async def status(self, incident: Incident) -> str:
        async with self.chat.db.session() as session:
            return (await find_incident(session, org_id=self.org_id,
                                        incident_id=incident.id)).status

    def told(self) -> list[str]:
        """What people were told: privately where the platform can, else as a notice."""
        return [str(s.message.get("text")) for s in self.conversation.seen
                if s.kind == "private" or s.message.get("kind") in ("error", "notice")]


@pytest.fixture
async def room(agent_settings: Settings, platform: str) -> AsyncIterator[Room]:
    db = await prepare_database(agent_settings)
    try:
        async with open_agent(agent_settings, db=db, indexes=False) as agent:
            conversation = RecordingConversation(platform, private=platform == "slack")
            yield Room(Chat(db, agent_settings, agent, conversation, plain_renderer(),
                            standard_commands()),
                       conversation, agent.skills.org_id)
    finally:
        await db.dispose()


async def test_a_question_is_answered_once_in_its_place(room: Room) -> None:
    where = room.at(thread="T1")
    asked = Said(where, ANA, "error ratio of checkout over the last 10 min", key="e1")
    await room.chat.handle(asked)
    seen = room.conversation.seen
    progress, [answer] = seen[0], room.conversation.answers()
    assert (progress.kind, progress.message["kind"]) == ("post", "progress")
    assert answer.kind == "update" and answer.id == progress.id  # the progress became it
    assert answer.where == where and all(s.where == where for s in seen)
    assert "checkout" in answer.message["text"] and answer.message["evidence"]
    charts = seen[seen.index(answer) + 1:]
    assert charts and {s.kind for s in charts} == {"upload"}  # the charts, beside the answer
    before = len(room.conversation.seen)
    await room.chat.handle(asked)  # the platform delivered the same message again
    assert len(room.conversation.seen) == before


async def test_a_reply_is_for_the_copilot_only_in_a_thread_it_answered(room: Room) -> None:
    chatter = Said(room.at(thread="T9"), ANA, "anyone seen this?", key="e2", addressed=False)
    await room.chat.handle(chatter)
    assert room.conversation.seen == []
    await room.chat.handle(Said(room.at(thread="T9"), ANA, "error ratio of checkout", key="e3"))
    before = len(room.conversation.seen)
    await room.chat.handle(Said(room.at(thread="T9"), ANA, "and for payments?", key="e4",
                                addressed=False))
    assert len(room.conversation.answers()) == 2 and len(room.conversation.seen) > before


async def test_a_command_typed_or_sent_is_the_same_command(room: Room) -> None:
    incident = await room.incident()
    await room.link(incident)
    await room.chat.handle(Said(room.at(), ANA, "Status.", key="s1"))
    await room.chat.handle(Command(room.at(), ANA, "status", "", key="s2"))
    cards = room.conversation.shown("incident")
    assert len(cards) == 2 and cards[0] == cards[1]
    assert cards[0]["ref"] == incident.ref and cards[0]["status"] == "triggered"


@pytest.mark.parametrize("private", [True, False])
async def test_without_an_incident_a_command_that_needs_one_says_so(room: Room,
                                                                    private: bool) -> None:
    room.conversation.private = private
    await room.chat.handle(Command(room.at(), ANA, "timeline", "", key="t1"))
    assert room.told() == [room.told()[0]] and "No incident" in room.told()[0]
    kinds = {s.kind for s in room.conversation.seen}
    assert kinds == ({"private"} if private else {"post"})


async def test_only_responders_move_an_incident(room: Room) -> None:
    incident = await room.incident()
    await room.link(incident)
    await room.chat.handle(Said(room.at(), BOB, "ack", key="a1"))
    assert await room.status(incident) == "triggered"
    assert "Only the configured responders" in room.told()[-1]
    await room.chat.handle(Command(room.at(), ANA, "ack", "", key="a2"))
    assert await room.status(incident) == "acknowledged"
    assert room.told()[-1] == f"{incident.ref} is now **acknowledged** (by @Ana)."
    await room.chat.handle(Command(room.at(), ANA, "ack", "", key="a2"))  # redelivered
    assert len([t for t in room.told() if "is now" in t]) == 1
    await room.chat.handle(Command(room.at(), ANA, "ack", "", key="a3"))
    assert "acknowledged" in room.told()[-1] and "is now" not in room.told()[-1]


async def test_the_incident_buttons_move_it_and_refresh_its_card(room: Room) -> None:
    incident = await room.incident()
    await room.chat.handle(Clicked(room.at(thread="m42"), ANA, INCIDENT_ACK,
                                   {"incident": str(incident.id)}, key="b1", card="m42"))
    assert await room.status(incident) == "acknowledged"
    refreshed = [s for s in room.conversation.seen if s.kind == "update" and s.id == "m42"]
    assert refreshed and refreshed[0].message == {"kind": "incident", "ref": incident.ref,
                                                  "status": "acknowledged", "alerts": []}
    await room.chat.handle(Clicked(room.at(thread="m42"), BOB, INCIDENT_ACK,
                                   {"incident": str(incident.id)}, key="b2", card="m42"))
    assert "Only the configured responders" in room.told()[-1]


async def test_a_verdict_is_recorded_on_the_hypothesis_and_the_timeline(room: Room) -> None:
    incident = await room.incident()
    statement = "checkout's 5xx ratio rose to 10 % at the deploy"
    async with room.chat.db.session() as session, session.begin():
        await add_hypothesis(session, org_id=room.org_id, incident_id=incident.id or 0,
                             statement=statement, confidence=0.7, evidence=EVIDENCE)
    click = Clicked(room.at(thread="T1"), ANA, HYPOTHESIS_REJECT,
                    {"i": incident.id, "n": 1, "s": statement[:20]}, key="v1", card="m7")
    await room.chat.handle(click)
    await room.chat.handle(click)  # clicked twice, or redelivered: one verdict
    async with room.chat.db.session() as session:
        stored = await list_hypotheses(session, org_id=room.org_id, incident_id=incident.id or 0)
        events = await list_events(session, org_id=room.org_id, incident_id=incident.id or 0)
    assert stored[0].status == HypothesisStatus.REJECTED.value
    assert [e.kind for e in events].count("hypothesis_feedback") == 1
    assert "marked **rejected** by @Ana" in room.told()[-1]
    assert room.conversation.verdicts[0] == ("m7", 1, "rejected", "Ana")


async def test_a_pin_goes_on_the_incident_timeline_once(room: Room) -> None:
    incident = await room.incident()
    await room.link(incident)
    at = datetime.now(UTC)
    await room.chat.handle(Pinned(room.at(), ANA, "1700.1", "rolled back checkout", at, "p1"))
    await room.chat.handle(Pinned(room.at(), ANA, "1700.1", "rolled back checkout", at, "p2"))
    async with room.chat.db.session() as session:
        events = await list_events(session, org_id=room.org_id, incident_id=incident.id or 0)
    pins = [e for e in events if e.kind == "message_pinned"]
    assert [p.summary for p in pins] == ["@Ana: rolled back checkout"]
    assert room.told().count("📌 Added to the incident timeline.") == 1
    await room.chat.handle(Pinned(room.at("C9"), ANA, "1", "hello", at, "p3"))
    assert "not linked to an incident" in room.told()[-1]


async def test_a_channel_named_after_an_incident_is_linked_and_briefed(room: Room) -> None:
    incident = await room.incident()
    channel = room.at("C5")
    await room.chat.handle(ChannelSeen(channel, f"inc-{incident.id}-checkout", key="c1"))
    card = room.conversation.seen[0]
    assert card.kind == "thread" and card.where == channel
    assert card.message["ref"] == incident.ref
    [answer] = room.conversation.answers()
    assert answer.where == channel.in_thread(card.id)
    assert answer.message["incident"] == incident.id and answer.message["claims"]
    async with room.chat.db.session() as session:
        linked = await incident_of_thread(session, org_id=room.org_id,
                                          platform=room.conversation.platform,
                                          workspace_id="W1", channel_id="C5")
        kept = await list_hypotheses(session, org_id=room.org_id, incident_id=incident.id or 0)
    assert linked == incident.id
    assert kept and {h.statement for h in kept} <= set(answer.message["claims"])
    before = len(room.conversation.seen)
    await room.chat.handle(ChannelSeen(channel, f"inc-{incident.id}-checkout", key="c2"))
    assert len(room.conversation.seen) == before  # briefed once


async def test_catch_up_reads_the_record_whatever_the_platform(room: Room) -> None:
    incident = await room.incident()
    await room.link(incident)
    now = datetime.now(UTC)
    async with room.chat.db.session() as session, session.begin():
        for statement, confidence in (("pool exhausted", 0.4), ("bad deploy", 0.8),
                                      ("dns flake", 0.9)):
            await add_hypothesis(session, org_id=room.org_id, incident_id=incident.id or 0,
                                 statement=statement, confidence=confidence, evidence=EVIDENCE)
        fresh = await find_incident(session, org_id=room.org_id, incident_id=incident.id)
        await transition(session, incident=fresh, to=IncidentStatus.ACKNOWLEDGED, at=now,
                         actor="<@U7>", source="slack")
        await add_event(session, org_id=room.org_id, incident_id=incident.id or 0,
                        occurred_at=now, kind="hypothesis_feedback", source="teams",
                        summary="Hypothesis 3 rejected by Ana: dns flake",
                        data={"verdict": "rejected", "user": "Ana", "statement": "dns flake"})
        await add_event(session, org_id=room.org_id, incident_id=incident.id or 0,
                        occurred_at=now, kind="status_changed", source="alertmanager",
                        summary="engine", data={"actor": "Alertmanager"})
        await add_event(session, org_id=room.org_id, incident_id=incident.id or 0,
                        occurred_at=now, kind="note", source="pagerduty",
                        summary="note by Ana Ortiz: rolling back",
                        data={"agent": "Ana Ortiz", "note": "rolling back"})
    async with room.chat.db.session() as session, session.begin():
        for h in await list_hypotheses(session, org_id=room.org_id,
                                       incident_id=incident.id or 0):
            if h.statement == "dns flake":
                h.status = HypothesisStatus.REJECTED.value
                session.add(h)
    await room.chat.handle(Command(room.at(), ANA, "catchup", "", key="k1"))
    [shown] = room.conversation.shown("catchup")
    assert shown["hypotheses"] == ["bad deploy", "pool exhausted"]  # the record, rejected out
    # People on either chat and in PagerDuty; not the engine.
    assert shown["responders"] == ["<@U7>", "Ana", "Ana Ortiz"]
    assert "Hypothesis 3 rejected by Ana: dns flake" in shown["tried"]


async def test_help_lists_every_command_in_the_platforms_form(room: Room) -> None:
    room.conversation.command_form = "`/sre {}`"
    await room.chat.handle(Said(room.at(), ANA, "help", key="h1"))
    await room.chat.handle(Command(room.at(), ANA, "frobnicate", "", key="h2"))
    helped, unknown = room.told()
    for spec in COMMANDS:
        assert spec.usage("`/sre {}`") in helped
    assert "I don't know `/sre frobnicate`" in unknown
    # A word that is not a command is a question, not an error.
    await room.chat.handle(Said(room.at(thread="T3"), ANA, "runbook", key="h3"))
    assert [a.where.thread for a in room.conversation.answers()] == ["T3"]


async def test_a_status_change_reaches_every_linked_place_once(room: Room) -> None:
    incident = await room.incident()
    await room.link(incident, "C1")  # a channel of its own …
    await room.link(incident, "C1", "m9")  # … with the briefing thread in it
    await room.link(incident, "C2", "m3")  # and a thread in the incident channel
    async with room.chat.db.session() as session, session.begin():
        await enqueue_message(session, org_id=room.org_id, incident_id=incident.id,
                              key=f"incident:{incident.id}:status:resolved",
                              kind="incident_status", text=f"✅ {incident.ref} resolved",
                              payload={"incident_id": incident.id})
    assert await deliver(room.chat, new_incidents=False) == 1
    notices = [(s.where.channel, s.where.thread) for s in room.conversation.seen
               if s.message.get("kind") == "notice"]
    assert sorted(notices) == [("C1", ""), ("C2", "m3")]  # not twice in C1
    assert sorted(s.id for s in room.conversation.seen if s.kind == "update") == ["m3", "m9"]
    assert await deliver(room.chat, new_incidents=False) == 0


async def test_a_delivery_refused_for_good_is_kept_with_its_error(room: Room) -> None:
    incident = await room.incident()
    await room.link(incident, "C1")

    async def queue(status: str) -> str:
        key = f"incident:{incident.id}:status:{status}"
        async with room.chat.db.session() as session, session.begin():
            await enqueue_message(session, org_id=room.org_id, incident_id=incident.id, key=key,
                                  kind="incident_status", text=f"{incident.ref} {status}")
        return key

    acknowledged = await queue("acknowledged")
    room.conversation.fail_next = [Refused("archived", gone=True)]
    assert await deliver(room.chat, new_incidents=False) == 0
    async with room.chat.db.session() as session:
        kept = await find_message(session, org_id=room.org_id,
                                  key=room.chat.ledger.marker("outbox", acknowledged))
    assert kept is not None and kept.status == "failed" and kept.last_error == "archived"
    await queue("resolved")
    room.conversation.fail_next = [Refused("throttled", gone=False)]
    assert await deliver(room.chat, new_incidents=False) == 0  # handed back, retried
    assert await deliver(room.chat, new_incidents=False) == 1
    assert [s.message["text"] for s in room.conversation.seen] == [f"{incident.ref} resolved"]


async def test_a_new_incident_is_briefed_where_the_platform_places_it(room: Room) -> None:
    incident = await room.incident()
    async with room.chat.db.session() as session, session.begin():
        await enqueue_message(session, org_id=room.org_id, incident_id=incident.id,
                              key=f"incident:{incident.id}:opened", kind="incident_opened",
                              text=incident.title, payload={"incident_id": incident.id})
    assert await deliver(room.chat, new_incidents=False) == 0  # the platform does not place
    assert await deliver(room.chat, new_incidents=True) == 1
    card = room.conversation.seen[0]
    assert card.kind == "thread" and card.where.channel == f"inc-{incident.id}"
    assert [a.where.thread for a in room.conversation.answers()] == [card.id]


async def _alerting(room: Room, service: str, *names: str) -> Incident:
    """An incident opened by Alertmanager alerts about `service`, placed by the intake."""
    start = datetime.now(UTC) - timedelta(minutes=20)
    incident = None
    async with room.chat.db.session() as session, session.begin():
        for i, name in enumerate(names):
            incident = await apply_alert(session, org_id=room.org_id, signal=AlertSignal(
                group_key=f"g-{service}", fingerprint=f"{service}-{name}", status="firing",
                labels={"alertname": name, "service": service, "severity": "critical"},
                annotations={}, starts_at=start + timedelta(seconds=i), ends_at=None))
    assert incident is not None
    return incident


async def test_merge_points_the_card_there_and_split_opens_a_new_one(room: Room) -> None:
    first = await _alerting(room, "checkout", "HighErrorRate")
    second = await _alerting(room, "cart", "HighLatency", "PodCrashLooping")
    await room.link(second)
    await room.chat.handle(Command(room.at(), BOB, "merge", first.ref, key="m1"))
    assert "Only the configured responders" in room.told()[-1]
    await room.chat.handle(Command(room.at(), ANA, "merge", "INC-x", key="m2"))
    assert "is not an incident" in room.told()[-1]
    await room.chat.handle(Command(room.at(), ANA, "merge", first.ref, key="m3"))
    assert room.told()[-1] == (f"🔗 {second.ref} is merged into **{first.ref}** (by @Ana): "
                               "follow it there.")
    async with room.chat.db.session() as session:
        rows = {i.id: (i, [a.alertname for a in alerts])
                for i, alerts in await incidents_with_alerts(session, org_id=room.org_id)}
        merged, moved = rows[second.id]
        assert merged.merged_into_id == first.id and merged.status == "resolved" and moved == []
        assert sorted(rows[first.id][1]) == ["HighErrorRate", "HighLatency", "PodCrashLooping"]
        said = [e.summary for e in await list_events(session, org_id=room.org_id,
                                                     incident_id=first.id or 0)]
        assert f"{second.ref} merged into this incident by @Ana (2 alerts moved here)" in said
    # Both cards are refreshed where they are posted: the merged one says where to go.
    assert await deliver(room.chat, new_incidents=False) >= 2
    await room.chat.handle(Command(room.at(), ANA, "merge", first.ref, key="m4"))
    assert "already merged into" in room.told()[-1]
    # Split one kind of alert back off, from the incident's own place.
    await room.link(first, "C2")
    await room.chat.handle(Command(room.at("C2"), ANA, "split", "NoSuchAlert", key="s1"))
    assert "has no NoSuchAlert alert; its alerts: HighErrorRate, HighLatency" in room.told()[-1]
    await room.chat.handle(Command(room.at("C2"), ANA, "split", "podcrashlooping", key="s2"))
    assert "✂️ PodCrashLooping is split off" in room.told()[-1]
    async with room.chat.db.session() as session:
        rows = {i.id: (i, [a.alertname for a in alerts])
                for i, alerts in await incidents_with_alerts(session, org_id=room.org_id)}
    [new] = [i for i, _ in rows.values() if i.id not in (first.id, second.id)]
    assert rows[new.id][1] == ["PodCrashLooping"]
    assert new.reason == f"split from {first.ref} by @Ana: 1 PodCrashLooping alert"


async def test_the_merge_button_merges_into_the_suggested_incident(room: Room) -> None:
    older = await _alerting(room, "checkout", "HighErrorRate")
    newer = await _alerting(room, "cart", "HighLatency")
    async with room.chat.db.session() as session, session.begin():
        fresh = await find_incident(session, org_id=room.org_id, incident_id=newer.id)
        fresh.related = {**fresh.related, "maybe_same": older.id,
                         "maybe_why": f"HighLatency ties it to {older.ref} too"}
        session.add(fresh)
    await room.chat.handle(Clicked(room.at(thread="m7"), ANA, INCIDENT_MERGE,
                                   {"incident": str(newer.id)}, key="b9", card="m7"))
    assert room.told()[-1].startswith(f"🔗 {newer.ref} is merged into **{older.ref}**")
    assert await room.status(newer) == "resolved"
