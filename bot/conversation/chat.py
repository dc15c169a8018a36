"""The incident conversation, written once for every platform: `Chat.handle` takes a parsed
event (`events`) and answers through the platform's `Conversation` and `Renderer` (`ports`).

- a message for the copilot → a command if it is one (`commands`), else a turn of the agent,
  answered in the same place with one progress message updated while tools run;
- a button → a status move or a verdict on a hypothesis, for people allowed to act;
- a pin → the incident's timeline;
- a channel named after an incident → linked to it and briefed: the incident card, then the
  investigation in a thread under it.

Every post is keyed in the ledger by the platform id that caused it, so handling an event twice
(a lease ran out) does not post twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bot.agent.runtime import Agent
from bot.agent.state import Answer, NewIncident
from bot.conversation import records
from bot.conversation.address import Address, Person
from bot.conversation.cards_first import CardsFirst
from bot.conversation.commands import CommandTable
from bot.conversation.events import ChannelSeen, ChatEvent, Clicked, Command, Pinned, Said
from bot.conversation.ledger import Ledger
from bot.conversation.ports import Conversation, Message, Renderer
from bot.conversation.vocabulary import (
    ACTION_STATUS,
    HYPOTHESIS_CONFIRM,
    HYPOTHESIS_REJECT,
    INCIDENT_MERGE,
)
from bot.logs import about_incident
from bot.settings import Settings
from knowledge import merging
from knowledge.alerts import alerts_of_incident
from knowledge.db import Database
from knowledge.incidents import (
    IllegalTransition,
    Incident,
    IncidentNotFound,
    IncidentStatus,
    find_incident,
    transition,
)
from knowledge.merging import CannotMerge
from knowledge.threads import incident_of_thread, link_thread, threads_of_incident
from knowledge.timeline import add_event

log = logging.getLogger(__name__)
PROGRESS_EVERY = 1.0  # seconds between progress updates: chat updates are rate-limited


@dataclass
class Chat:
    db: Database
    settings: Settings
    agent: Agent
    conversation: Conversation
    renderer: Renderer
    commands: CommandTable  # `bot.conversation.standard.standard_commands()`
    ledger: Ledger = field(init=False)
    # New incidents' investigations at once, at most `chat_workers`: their cards go out
    # first, all of them, and no investigation waits for another's.
    investigating: asyncio.Semaphore = field(init=False, repr=False)
    # And only once no new incident's card is on its way (see `CardsFirst`).
    cards: CardsFirst = field(default_factory=CardsFirst, repr=False)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.db, self.settings, self.conversation.platform)
        self.investigating = asyncio.Semaphore(self.settings.chat_workers)

    @property
    def platform(self) -> str:
        return self.conversation.platform

    async def handle(self, event: ChatEvent) -> None:
        if isinstance(event, Said):
            await self.said(event)
        elif isinstance(event, Command):
            await self.command(event)
        elif isinstance(event, Clicked):
            await self.clicked(event)
        elif isinstance(event, Pinned):
            await self.pinned(event)
        elif isinstance(event, ChannelSeen):
            await self.channel_seen(event)

    # ---- messages and commands ----------------------------------------------------------------

    async def said(self, event: Said) -> None:
        """A mention or a direct message is for the copilot; a reply only inside a thread it
        has answered in."""
        if not event.addressed and not await self.agent.knows(event.where.memory):
            return
        found = self.commands.find(event.text)
        if found is not None:
            spec, rest = found
            await self.command(Command(event.where, event.who, spec.word, rest, event.key))
        elif not event.text.strip():
            await self.help(event.where, event.who, event.key)
        else:
            await self.answer(event.where, event.text.strip(), key=event.key, who=event.who)

    def help_text(self) -> str:
        form = self.conversation.command_form
        return (f"Commands: {self.commands.help(form)}. Or just ask — mention me, or write in a "
                "thread I'm part of; react 📌 (or use “Add to timeline”) to put a message on "
                "the incident timeline.")

    async def help(self, where: Address, who: Person, key: str) -> None:
        await self.tell(where, who, self.help_text(), key=key, error=False)

    async def command(self, event: Command) -> None:
        found = self.commands.find(f"{event.word} {event.rest}")
        if found is None or found[0].word != event.word.lower().rstrip(".!?"):
            shown = self.conversation.command_form.format(event.word)
            await self.tell(event.where, event.who, f"I don't know {shown}. {self.help_text()}",
                            key=event.key)
            return
        spec, _ = found
        incident = await self.incident(event.where) if spec.incident else None
        if spec.incident and (incident is None or incident.id is None):
            await self.tell(event.where, event.who, "No incident here or open to report on.",
                            key=event.key)
            return
        about_incident(incident.id if incident is not None else None)
        if spec.acts and not event.who.may_act:
            await self.tell(event.where, event.who, "Only the configured responders can do "
                                                    "that.", key=event.key)
            return
        await spec.run(self, replace(event, word=spec.word), incident)

    # ---- answering ----------------------------------------------------------------------------

    async def answer(self, where: Address, text: str, *, key: str,
                     incident: NewIncident | None = None,
                     render: Callable[[Answer], list[Message]] | None = None,
                     who: Person | None = None) -> Answer | None:
        """Run a turn of the agent for this place and post the answer in it, once per `key`: a
        progress message first, updated as tools run, then replaced by the answer."""
        marker = self.ledger.marker(key, "answer")
        if not await self.ledger.claim_post(where.org_id, marker, where.memory):
            return None
        incident_id = await self.incident_here(where)
        about_incident(incident.incident_id if incident is not None else incident_id)
        progress = await self.ledger.progress_of(where.org_id, marker)  # an earlier attempt's
        if progress is None:
            progress = await self.conversation.post(
                where, self.renderer.progress([("thinking", "running")]))
            await self.ledger.keep_progress(where.org_id, marker, progress)

        async def show(steps: list[tuple[str, str]]) -> None:
            try:
                await self.conversation.update(where, progress, self.renderer.progress(steps))
            except Exception as exc:  # progress is a courtesy; the answer still goes out
                log.warning("%s: a progress update failed: %s", self.platform, exc)

        answer = await self.agent.turn(
            where.memory, text or "/help", incident=incident,
            progress=records.progress_reporter(show, every=PROGRESS_EVERY))
        if incident is not None and incident.incident_id is not None:
            # On the record before anyone can see (and click) them.
            await records.keep_hypotheses(self.db, org_id=where.org_id,
                                          incident_id=incident.incident_id, answer=answer)
        messages = (render(answer) if render is not None
                    else self.renderer.answer(answer, incident_id=incident_id))
        await self.conversation.update(where, progress, messages[0])
        for msg in messages[1:]:
            await self.conversation.post(where, msg)
        if not self.renderer.inline_images:
            for image in answer.images:
                await self.conversation.upload(where, image, title="chart")
        await self.ledger.mark_posted(where.org_id, marker)
        if answer.route == "feedback" and incident_id is not None:
            await self.typed_feedback(where, incident_id, key=key, who=who)
        return answer

    async def typed_feedback(self, where: Address, incident_id: int, *, key: str,
                             who: Person | None) -> None:
        """"hypothesis 2 is confirmed" typed in an incident's thread counts like the button."""
        given = await self.agent.last_feedback(where.memory)
        if given:
            await records.give_feedback(
                self.db, org_id=where.org_id, incident_id=incident_id,
                statement=str(given["claim"].get("statement", "")),
                verdict=str(given["verdict"]), user=who.mention if who else "chat", key=key,
                number=int(given["hypothesis"]), source=self.platform)

    # ---- incidents ----------------------------------------------------------------------------

    async def incident_here(self, where: Address) -> int | None:
        """The incident this thread (else its channel) is linked to."""
        async with self.db.session() as session:
            return await incident_of_thread(session, org_id=where.org_id, platform=self.platform,
                                            workspace_id=where.workspace,
                                            channel_id=where.channel, thread_id=where.thread)

    async def incident(self, where: Address) -> Incident | None:
        """The place's incident, else the newest open one."""
        return await self.incident_by_id(where.org_id, await self.incident_here(where))

    async def incident_by_id(self, org_id: int, incident_id: int | None) -> Incident | None:
        """The incident, or with no id the newest open one; None if there is none."""
        try:
            async with self.db.session() as session:
                return await find_incident(session, org_id=org_id, incident_id=incident_id)
        except IncidentNotFound:
            return None

    async def move(self, where: Address, incident: Incident, to: IncidentStatus, who: Person,
                   *, key: str) -> bool:
        if not who.may_act:
            await self.tell(where, who, "Only the configured responders can change the "
                                        "incident's status.", key=key)
            return False
        try:
            async with self.db.session() as session, session.begin():
                fresh = await find_incident(session, org_id=where.org_id,
                                            incident_id=incident.id)
                await transition(session, incident=fresh, to=to, at=datetime.now(UTC),
                                 actor=who.mention, source=self.platform)
                session.add(fresh)
        except IllegalTransition as exc:
            await self.tell(where, who, str(exc), key=key)
            return False
        await self.once(where, self.ledger.marker(key, "moved"), self.renderer.notice(
            f"{incident.ref} is now **{to.value}** (by {who.mention})."))
        return True

    async def merge(self, where: Address, incident: Incident, into: int | None, who: Person,
                    *, key: str) -> bool:
        """Merge `incident` into INC-`into` (None: the one the correlation suggested); both
        timelines say so, both cards are refreshed by the queued status messages."""
        try:
            async with self.db.session() as session, session.begin():
                source = await find_incident(session, org_id=where.org_id,
                                             incident_id=incident.id)
                target = (await find_incident(session, org_id=where.org_id, incident_id=into)
                          if into is not None else await merging.suggested_target(session, source))
                if target is None:
                    raise CannotMerge(f"{source.ref} has no suggested incident to merge into: "
                                      "name one, like `merge INC-7`")
                await merging.merge(session, source=source, into=target, by=who.mention)
                ref = target.ref
        except (CannotMerge, IncidentNotFound) as exc:
            await self.tell(where, who, str(exc), key=key)
            return False
        await self.once(where, self.ledger.marker(key, "merged"), self.renderer.notice(
            f"🔗 {incident.ref} is merged into **{ref}** (by {who.mention}): follow it there."))
        return True

    async def split(self, where: Address, incident: Incident, alertname: str, who: Person,
                    *, key: str) -> bool:
        try:
            async with self.db.session() as session, session.begin():
                source = await find_incident(session, org_id=where.org_id,
                                             incident_id=incident.id)
                new = await merging.split(session, source=source, alertname=alertname,
                                          by=who.mention)
                ref, alertname = new.ref, str(new.labels.get("alertname", alertname))
        except (CannotMerge, IncidentNotFound) as exc:
            await self.tell(where, who, str(exc), key=key)
            return False
        await self.once(where, self.ledger.marker(key, "split"), self.renderer.notice(
            f"✂️ {alertname} is split off {incident.ref} into **{ref}** (by {who.mention})."))
        return True

    async def refresh_card(self, where: Address, card: str, incident_id: int) -> None:
        """Re-render the incident card `card` (new status, the steps ahead); a card that
        cannot be updated is logged, never fatal."""
        incident = await self.incident_by_id(where.org_id, incident_id)
        if incident is None or not card:
            return
        async with self.db.session() as session:
            alerts = await alerts_of_incident(session, org_id=where.org_id,
                                              incident_id=incident_id)
        try:
            await self.conversation.update(where, card, self.renderer.incident(incident, alerts))
        except Exception as exc:  # the move is done and announced; the card is a courtesy
            log.warning("%s: the incident card %s was not refreshed: %s", self.platform, card,
                        exc)

    # ---- buttons and pins ---------------------------------------------------------------------

    async def clicked(self, event: Clicked) -> None:
        where, who, value = event.where, event.who, event.value
        if not who.may_act:
            await self.tell(where, who, "Only the configured responders can do that.",
                            key=event.key)
            return
        if event.action == INCIDENT_MERGE:
            incident = await self.incident_by_id(where.org_id, _int(value.get("incident")))
            if incident is not None and incident.id is not None and await self.merge(
                    where, incident, None, who, key=event.key):
                await self.refresh_card(where, event.card, incident.id)
            return
        if event.action in ACTION_STATUS:
            incident = await self.incident_by_id(where.org_id, _int(value.get("incident")))
            if incident is not None and incident.id is not None and await self.move(
                    where, incident, ACTION_STATUS[event.action], who, key=event.key):
                await self.refresh_card(where, event.card, incident.id)
            return
        if event.action not in (HYPOTHESIS_CONFIRM, HYPOTHESIS_REJECT):
            log.info("%s: unknown button %r ignored", self.platform, event.action)
            return
        verdict = "confirmed" if event.action == HYPOTHESIS_CONFIRM else "rejected"
        incident_id = _int(value.get("i")) or await self.incident_here(where)
        if not incident_id:
            await self.tell(where, who, "This hypothesis is not about an incident.",
                            key=event.key)
            return
        await records.give_feedback(self.db, org_id=where.org_id, incident_id=incident_id,
                                    statement=str(value.get("s", "")), verdict=verdict,
                                    user=who.mention, key=event.key, number=value.get("n"),
                                    source=self.platform)
        await self.once(where, self.ledger.marker(event.key, "feedback"), self.renderer.notice(
            f"Hypothesis {value.get('n')} marked **{verdict}** by {who.mention} — on the "
            "timeline."))
        await self.conversation.mark_verdict(where, event.card, _int(value.get("n")), verdict,
                                             who.name)

    async def pinned(self, event: Pinned) -> None:
        incident_id = await self.incident_here(event.where)
        if incident_id is None:
            await self.tell(event.where, event.who, "This channel is not linked to an "
                                                    "incident.", key=event.key)
            return
        where = event.where
        async with self.db.session() as session, session.begin():
            added = await add_event(
                session, org_id=where.org_id, incident_id=incident_id, occurred_at=event.at,
                kind="message_pinned", source=self.platform,
                summary=f"{event.who.mention}: {event.text}"[:1000],
                data={"channel": where.channel, "message": event.message_id,
                      "user": event.who.mention},
                dedupe_key=f"{self.platform}:pin:{where.channel}:{event.message_id}")
        if added is not None:
            await self.once(where, self.ledger.marker(event.key, "pinned"),
                            self.renderer.notice("📌 Added to the incident timeline."))

    # ---- channels -----------------------------------------------------------------------------

    async def channel_seen(self, event: ChannelSeen) -> None:
        """A channel named after an incident (`inc-12-checkout`): linked to it and briefed."""
        where = event.where
        if await self.incident_here(where) is not None:
            return  # linked already: the copilot made it (and briefs it) or briefed it before
        incident = await records.link_named(self.db, platform=self.platform, org_id=where.org_id,
                                            name=f"{event.name} {event.topic}",
                                            workspace=where.workspace, channel=where.channel)
        if incident is None:
            status = self.conversation.command_form.format("status")
            await self.once(where, self.ledger.marker(event.key, "noincident"),
                            self.renderer.error(
                                "I'm here, but no open incident matches this channel. Name it "
                                f"`inc-<number>` or use {status} once an incident is open."))
            return
        await self.brief(where, incident, key=event.key)

    async def brief(self, channel: Address, incident: Incident, *, key: str,
                    card_out: Callable[[], None] | None = None) -> None:
        """The context a channel needs: the incident card, then the investigation (hypotheses,
        runbook, similar incidents, chart) in a thread under it. The card goes out at once;
        the investigation waits for every card on its way (`cards`, which `card_out` tells
        that this one is out) and then for a free slot (`investigating`)."""
        assert incident.id is not None
        about_incident(incident.id)
        alerts, investigation = await records.investigation(self.db, channel.org_id, incident)
        async with self.db.session() as session:
            posted = [t for t in await threads_of_incident(session, org_id=channel.org_id,
                                                           incident_id=incident.id)
                      if t.platform == self.platform and t.channel_id == channel.channel
                      and t.thread_id]
        marker = self.ledger.marker(key, "brief")
        if posted:  # an earlier attempt posted the card: its investigation may be missing
            thread = channel.in_thread(posted[0].thread_id)
        elif (again := await self.ledger.claim_post_again(channel.org_id, marker,
                                                          channel.memory)) is None:
            return
        else:
            # An earlier attempt that died after posting the card, before noting it, left the
            # card in the channel: found by its tag, it is not posted twice.
            found = await self.conversation.started_thread(channel, marker) if again else None
            thread = found or await self.conversation.start_thread(
                channel, self.renderer.incident(incident, alerts), key=marker)
            async with self.db.session() as session, session.begin():
                await link_thread(session, org_id=channel.org_id, incident_id=incident.id,
                                  platform=self.platform, workspace_id=channel.workspace,
                                  channel_id=channel.channel, thread_id=thread.thread)
            await self.ledger.mark_posted(channel.org_id, marker)
        if card_out is not None:
            card_out()
        await self.cards.wait()
        async with self.investigating:
            await self.answer(thread, "", key=f"{key}:investigation", incident=investigation)

    # ---- posting ------------------------------------------------------------------------------

    async def once(self, where: Address, marker: str, message: Message) -> None:
        """Post `message` unless the post `marker` went out already."""
        if await self.ledger.claim_post(where.org_id, marker, where.memory):
            await self.conversation.post(where, message)
            await self.ledger.mark_posted(where.org_id, marker)

    async def tell(self, where: Address, who: Person, text: str, *, key: str,
                   error: bool = True) -> None:
        """Tell `who` alone where the platform can; else a notice addressed to them, once."""
        message = self.renderer.error(text) if error else self.renderer.notice(text)
        if await self.conversation.tell_privately(where, who, message):
            return
        shown = f"{who.mention}: {text}" if who.mention and error else text
        await self.once(where, self.ledger.marker(key, "told"),
                        self.renderer.error(shown) if error else self.renderer.notice(shown))


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
