"""What the copilot does with each activity Teams sent (one stored inbox item at a time), and
with the incident engine's queued messages:

- a mention in a channel, a reply in a thread the bot takes part in, or a 1:1 / group chat
  message → the agent graph, answered in the same reply chain, with one progress card updated
  in place while tools run;
- `@SRE Copilot <command>` → help, status, catchup, hypotheses, timeline, postmortem, runbook,
  ask, ack, mitigated, resolve (the same as Slack's `/sre`);
- Confirm / Reject and Acknowledge / Mitigated / Resolve (`Action.Execute` or `Action.Submit`)
  → feedback or a status change, then the card they came from is refreshed;
- installed in a team (`conversationUpdate` / `installationUpdate`) → a conversation reference
  per channel is stored (per org = tenant); a channel created with an incident's name is
  linked to that incident and briefed;
- `deliver()`: a new incident → a new thread in TEAMS_INCIDENT_CHANNEL with its card and the
  investigation; status changes → into the incident's threads, its card refreshed.

Every post is keyed in the outbox by the Teams id that caused it, so handling an item twice
(a lease ran out) does not post twice. A conversation the bot was removed from, or a card Teams
rejects, is logged and never stops the rest."""

from __future__ import annotations

import fnmatch
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from botbuilder.schema import Activity

from bot.agent.state import Answer, NewIncident
from bot.incident_chat import IncidentChat, give_feedback, keep_hypotheses, progress_reporter
from bot.logs import about_incident
from bot.slack.blocks import (
    HYPOTHESIS_CONFIRM,
    HYPOTHESIS_REJECT,
    INCIDENT_ACK,
    INCIDENT_MITIGATED,
    INCIDENT_RESOLVE,
)
from bot.teams import cards
from bot.teams.connector import Connector, TeamsError
from bot.teams.intake import CARD_ACTION, may_act, mentions_bot, tenant_of
from knowledge.alerts import alerts_of_incident
from knowledge.hypotheses import list_hypotheses
from knowledge.inbox import InboxItem
from knowledge.incidents import (
    IllegalTransition,
    Incident,
    IncidentStatus,
    find_incident,
    transition,
)
from knowledge.outbox import (
    OutboxMessage,
    undelivered,
)
from knowledge.teams import (
    TeamsChannel,
    choose_digest_channel,
    digest_channel,
    find_card,
    find_channel,
    forget_channels,
    keep_card,
    remember_channel,
)
from knowledge.threads import incident_of_thread, link_thread, threads_of_incident
from knowledge.timeline import list_events
from skills.timeline import TimelineEntry, incident_timeline
from skills.types import Claim

log = logging.getLogger(__name__)
PLATFORM = "teams"
AT = re.compile(r"<at>[^<]*</at>")
PROGRESS_EVERY = 1.0  # seconds between progress-card updates: the connector is rate-limited
STATUS_OF = {"ack": IncidentStatus.ACKNOWLEDGED, "mitigated": IncidentStatus.MITIGATED,
             "resolve": IncidentStatus.RESOLVED}
VERB_STATUS = {INCIDENT_ACK: IncidentStatus.ACKNOWLEDGED,
               INCIDENT_MITIGATED: IncidentStatus.MITIGATED,
               INCIDENT_RESOLVE: IncidentStatus.RESOLVED}
ALONE = ("help", "status", "catchup", "hypotheses", "timeline", "postmortem", "digest",
         *STATUS_OF)
WITH_ARGUMENT = ("runbook", "ask", "digest")
HELP = ("Mention me with a command: **help** · **status** · **catchup** · **hypotheses** · "
        "**timeline** · **postmortem** · **runbook** ALERT · **ask** QUESTION · **ack** · "
        "**mitigated** · **resolve** · **digest here** (post the weekly digest in this channel). "
        "Or just ask a question — in a channel mention me, "
        "in a thread I'm part of or in a chat with me, just write.")


@dataclass(frozen=True)
class Place:
    """A Teams conversation the copilot answers in: a channel thread
    (`19:…@thread.tacv2;messageid=<root>`), a channel, or a chat."""

    org_id: int
    tenant_id: str
    service_url: str
    conversation_id: str
    team_id: str = ""
    channel_id: str = ""  # the channel; a chat's own id for chats

    @property
    def root(self) -> str:
        """The thread's root message id ("" for a whole channel or a chat)."""
        return self.conversation_id.partition(";messageid=")[2]

    @property
    def thread_id(self) -> str:
        """The agent's memory key for this conversation."""
        return f"teams:{self.tenant_id}:{self.conversation_id}"

    @property
    def workspace(self) -> str:
        return self.team_id or self.tenant_id

    def thread(self, root: str) -> Place:
        """The reply chain under the post `root` in this channel."""
        return Place(self.org_id, self.tenant_id, self.service_url,
                     f"{self.channel_id};messageid={root}", self.team_id, self.channel_id)

    @classmethod
    def of(cls, org_id: int, activity: dict[str, Any]) -> Place:
        data = activity.get("channelData") or {}
        conversation = str((activity.get("conversation") or {}).get("id", ""))
        channel = str((data.get("channel") or {}).get("id")
                      or conversation.partition(";messageid=")[0])
        return cls(org_id, tenant_of(activity), str(activity.get("serviceUrl", "")),
                   conversation, str((data.get("team") or {}).get("id", "")), channel)

    @classmethod
    def of_channel(cls, channel: TeamsChannel) -> Place:
        return cls(channel.org_id, channel.tenant_id, channel.service_url, channel.channel_id,
                   channel.team_id, channel.channel_id)


def card_activity(card: cards.Card) -> Activity:
    return Activity(type="message", summary=card.text[:250],
                    attachments=[cards.attachment(card)])


@dataclass
class TeamsHandlers(IncidentChat):
    connector: Connector
    _patterns: list[str] = field(default_factory=list)
    _warned: set[str] = field(default_factory=set)

    platform: ClassVar[str] = PLATFORM

    def __post_init__(self) -> None:
        super().__post_init__()
        self._patterns = [p.strip().lower() for p in
                          self.settings.teams_channel_patterns.split(",") if p.strip()]

    # ---- dispatch -----------------------------------------------------------------------------

    async def handle(self, item: InboxItem) -> None:
        activity: dict[str, Any] = item.payload["activity"]
        place = Place.of(item.org_id, activity)
        try:
            await self._dispatch(place, activity)
        except TeamsError as exc:
            if exc.reason != "removed":  # retried with backoff: throttled, down, credentials
                log.error("Teams: %s — the activity is retried", exc)
                raise
            log.error("Teams: %s — nothing more is posted there", exc)
            async with self.db.session() as session, session.begin():
                await forget_channels(session, org_id=place.org_id,
                                      channel_id=place.channel_id)

    async def _dispatch(self, place: Place, activity: dict[str, Any]) -> None:
        kind = activity.get("type")
        key = f"{place.conversation_id}:{activity.get('id')}"
        if kind == "message":
            if activity.get("value") and not activity.get("text"):  # Action.Submit
                value = activity["value"]
                await self._action(place, activity, str(value.get("verb", "")), value, key=key)
            else:
                await self._message(place, activity, key=key)
        elif kind == "invoke" and activity.get("name") == CARD_ACTION:
            action = (activity.get("value") or {}).get("action") or {}
            await self._action(place, activity, str(action.get("verb", "")),
                               action.get("data") or {}, key=key)
        elif kind == "conversationUpdate":
            await self._conversation_update(place, activity, key=key)
        elif kind == "installationUpdate":
            if activity.get("action") == "add":
                await self._installed(place, activity)
            elif activity.get("action") == "remove":
                await self._removed(place)

    async def _remember(self, place: Place, activity: dict[str, Any],
                        name: str | None = None, channel_id: str | None = None) -> None:
        async with self.db.session() as session, session.begin():
            await remember_channel(session, org_id=place.org_id, tenant_id=place.tenant_id,
                                   channel_id=channel_id or place.channel_id,
                                   service_url=place.service_url,
                                   bot_id=str((activity.get("recipient") or {}).get("id", "")),
                                   team_id=place.team_id, name=name)

    # ---- messages -----------------------------------------------------------------------------

    async def _message(self, place: Place, activity: dict[str, Any], *, key: str) -> None:
        conversation = activity.get("conversation") or {}
        personal = conversation.get("conversationType") == "personal"
        if not personal and not mentions_bot(activity):
            if not place.root or place.root == activity.get("id") \
                    or not await self.takes_part(place.thread_id):
                return
        await self._remember(place, activity)
        text = AT.sub("", str(activity.get("text") or "")).strip()
        person = activity.get("from") or {}
        word, _, rest = text.partition(" ")
        word, rest = word.lower().rstrip(".!?"), rest.strip()
        if (word in ALONE and not rest) or (word in WITH_ARGUMENT and rest):
            await self._command(place, word, rest, person, key=key)
        elif not text:
            await self._notice(place, HELP, key=f"{key}:help")
        else:
            await self.answer(place, text, key=key, user=str(person.get("name", "")))

    # ---- answering ----------------------------------------------------------------------------

    async def answer(self, place: Place, text: str, *, key: str,
                     incident: NewIncident | None = None,
                     render: Callable[[Answer], list[cards.Card]] | None = None,
                     user: str | None = None) -> Answer | None:
        """Run a turn of the agent for this conversation and post the answer in it, once per
        `key`: a progress card first, updated as tools run, then replaced by the answer."""
        marker = f"teams:{key}:answer"
        if not await self.claim_post(place.org_id, marker, place.thread_id):
            return None
        incident_id = await self._incident_here(place)
        about_incident(incident.incident_id if incident is not None else incident_id)
        progress = await self.progress_of(place.org_id, marker)  # an earlier attempt's
        if progress is None:
            progress = await self._post(place, cards.progress_card([("thinking", "running")]))
            await self.keep_progress(place.org_id, marker, progress)

        async def show(steps: list[tuple[str, str]]) -> None:
            try:
                await self._post(place, cards.progress_card(steps), update=progress)
            except TeamsError as exc:  # progress is a courtesy; the answer still goes out
                log.warning("Teams: progress update failed: %s", exc)

        answer = await self.agent.turn(
            place.thread_id, text or "/help", incident=incident,
            progress=progress_reporter(show, every=PROGRESS_EVERY, on_end=False))
        if incident is not None and incident.incident_id is not None:
            await keep_hypotheses(self.db, org_id=place.org_id,
                                  incident_id=incident.incident_id, answer=answer)
        posted = (render(answer) if render is not None
                  else cards.answer_cards(answer, incident_id=incident_id))
        await self._post(place, posted[0], update=progress)
        for card in posted[1:]:
            await self._post(place, card)
        await self.mark_posted(place.org_id, marker)
        if answer.route == "feedback" and incident_id is not None:
            await self.typed_feedback(place.org_id, place.thread_id, incident_id, key=key,
                                      user=user or "chat")
        return answer

    async def _incident_here(self, place: Place) -> int | None:
        async with self.db.session() as session:
            return await incident_of_thread(session, org_id=place.org_id, platform=PLATFORM,
                                            workspace_id=place.workspace,
                                            channel_id=place.channel_id, thread_id=place.root)

    async def _incident(self, place: Place) -> Incident | None:
        """The conversation's incident, else the newest open one."""
        return await self.incident_by_id(place.org_id, await self._incident_here(place))

    # ---- posting ------------------------------------------------------------------------------

    async def _post(self, place: Place, card: cards.Card, *, update: str | None = None) -> str:
        """Post (or, given `update`, replace) a card; the activity id. Cards with buttons are
        kept so a click can refresh them. A card Teams rejects is logged and its plain text
        posted instead, so the news is never lost."""
        try:
            if update:
                await self.connector.update(place.service_url, place.conversation_id, update,
                                            card_activity(card))
                activity_id = update
            else:
                activity_id = await self.connector.send(place.service_url,
                                                        place.conversation_id,
                                                        card_activity(card))
        except TeamsError as exc:
            if exc.reason != "rejected":
                raise
            log.error("Teams: %s — posting the card's text instead", exc)
            text = Activity(type="message", text=card.text, text_format="markdown")
            if update:
                await self.connector.update(place.service_url, place.conversation_id, update,
                                            text)
                return update
            return await self.connector.send(place.service_url, place.conversation_id, text)
        if _has_actions(card.content):
            async with self.db.session() as session, session.begin():
                await keep_card(session, org_id=place.org_id,
                                conversation_id=place.conversation_id,
                                activity_id=activity_id, content=card.content)
        return activity_id

    async def _once(self, place: Place, key: str, card: cards.Card) -> None:
        if await self.claim_post(place.org_id, key, place.thread_id):
            await self._post(place, card)
            await self.mark_posted(place.org_id, key)

    async def _notice(self, place: Place, text: str, *, key: str) -> None:
        await self._once(place, f"teams:{key}", cards.notice_card(text))

    # ---- commands -----------------------------------------------------------------------------

    async def _command(self, place: Place, word: str, rest: str, person: dict[str, Any], *,
                       key: str) -> None:
        incident = await self._incident(place)
        if incident is not None and word not in ("help", "ask", "runbook", "digest"):
            about_incident(incident.id)  # the commands that act on it
        if word == "help":
            await self._notice(place, HELP, key=f"{key}:help")
        elif word == "ask":
            await self.answer(place, rest, key=key, user=str(person.get("name", "")))
        elif word == "runbook":
            await self.answer(place, f"/runbook {rest}", key=key)
        elif word == "digest":
            await self._digest_here(place, rest, person, key=key)
        elif incident is None or incident.id is None:
            await self._notice(place, "No incident here or open to report on.",
                               key=f"{key}:none")
        elif word == "status":
            async with self.db.session() as session:
                alerts = await alerts_of_incident(session, org_id=place.org_id,
                                                  incident_id=incident.id)
            await self._once(place, f"teams:{key}:status", cards.incident_card(incident, alerts))
        elif word == "catchup":
            await self._catchup(place, incident, key=key)
        elif word == "hypotheses":
            await self.answer(place, f"/hypotheses {incident.service or ''}".strip(), key=key)
        elif word == "timeline":
            async with self.db.session() as session:
                view = await incident_timeline(session, org_id=place.org_id,
                                               incident_id=incident.id)
            for i, card in enumerate(cards.timeline_cards(view)):
                await self._once(place, f"teams:{key}:timeline:{i}", card)
        elif word == "postmortem":
            await self._postmortem(place, incident, key=key)
        else:
            await self._move(place, incident, STATUS_OF[word], person, key=key)

    async def _digest_here(self, place: Place, rest: str, person: dict[str, Any], *,
                           key: str) -> None:
        """`digest here` makes this channel the org's weekly digest channel; `digest` alone
        says where the digest goes now."""
        if rest.lower().rstrip(".!") != "here":
            async with self.db.session() as session:
                chosen = await digest_channel(session, org_id=place.org_id)
            where = (f"**{chosen.name or chosen.channel_id}**" if chosen is not None
                     else f"`{self.settings.digest_teams_channel}` (DIGEST_TEAMS_CHANNEL)"
                     if self.settings.digest_teams_channel else "nowhere in Teams yet")
            await self._notice(place, f"The weekly digest ({self.settings.digest_cron}, "
                                      f"{self.settings.digest_timezone}) goes to {where}. "
                                      "Mention me with **digest here** in a channel to send "
                                      "it there.", key=f"{key}:digest")
            return
        name = str(person.get("name") or person.get("id") or "someone")
        if not may_act(self.settings, person):
            await self._notice(place, f"⚠️ {name}: only the configured responders can choose "
                                      "the digest channel.", key=f"{key}:refused")
            return
        if not place.team_id:  # a 1:1 or group chat: the digest is for a team's channel
            await self._notice(place, "The digest goes to a team channel: mention me with "
                                      "**digest here** in the channel.", key=f"{key}:notchannel")
            return
        async with self.db.session() as session, session.begin():
            chosen = await choose_digest_channel(session, org_id=place.org_id,
                                                 channel_id=place.channel_id)
        if chosen is None:  # _remember stored it moments ago; gone means it was removed
            await self._notice(place, "⚠️ I can't post in this channel.", key=f"{key}:unknown")
            return
        await self._notice(place, f"The weekly digest will be posted here "
                                  f"({self.settings.digest_cron}, "
                                  f"{self.settings.digest_timezone}); set by {name}.",
                           key=f"{key}:digest")

    async def _postmortem(self, place: Place, incident: Incident, *, key: str) -> None:
        """A short summary card, then the whole draft (Markdown) as cards in the thread: a bot
        cannot attach a file to a channel without Graph and SharePoint permissions."""
        ref = incident.ref

        def render(answer: Answer) -> list[cards.Card]:
            if answer.tools and answer.tools[0].ok:
                draft = cards.split_cards(cards.markdown_body(answer.text),
                                          f"Post-mortem draft for {ref}")
                return [cards.postmortem_card(answer.text, ref=ref), *draft]
            return cards.answer_cards(answer)

        await self.answer(place, f"/postmortem {ref}", key=key, render=render)

    async def _catchup(self, place: Place, incident: Incident, *, key: str) -> None:
        assert incident.id is not None
        async with self.db.session() as session:
            alerts = await alerts_of_incident(session, org_id=place.org_id,
                                              incident_id=incident.id)
            events = await list_events(session, org_id=place.org_id, incident_id=incident.id)
            stored = await list_hypotheses(session, org_id=place.org_id,
                                           incident_id=incident.id)
        claims = [Claim(statement=h.statement, confidence=h.confidence) for h in
                  sorted(stored, key=lambda h: -(h.confidence or 0))]
        responders = [str(e.data.get("actor") or e.data.get("user") or "") for e in events
                      if e.kind in ("status_changed", "hypothesis_feedback")
                      and e.source in ("slack", "teams")]
        tried = [TimelineEntry(at=e.occurred_at, kind=e.kind, source=e.source,
                               summary=e.summary) for e in events
                 if e.kind in ("message_pinned", "note", "status_changed",
                               "hypothesis_feedback")]
        await self._once(place, f"teams:{key}:catchup", cards.catchup_card(
            incident, alerts, hypotheses=claims, responders=[r for r in responders if r],
            tried=tried))

    async def _move(self, place: Place, incident: Incident, to: IncidentStatus,
                    person: dict[str, Any], *, key: str) -> bool:
        name = str(person.get("name") or person.get("id") or "someone")
        if not may_act(self.settings, person):
            await self._notice(place, f"⚠️ {name}: only the configured responders can change "
                                      "the incident's status.", key=f"{key}:refused")
            return False
        try:
            async with self.db.session() as session, session.begin():
                fresh = await find_incident(session, org_id=place.org_id,
                                            incident_id=incident.id)
                await transition(session, incident=fresh, to=to, at=datetime.now(UTC),
                                 actor=name, source=PLATFORM)
                session.add(fresh)
        except IllegalTransition as exc:
            await self._notice(place, f"⚠️ {exc}", key=f"{key}:illegal")
            return False
        await self._notice(place, f"{incident.ref} is now **{to.value}** (by {name}).",
                           key=f"{key}:moved")
        return True

    # ---- card actions -------------------------------------------------------------------------

    async def _action(self, place: Place, activity: dict[str, Any], verb: str,
                      data: dict[str, Any], *, key: str) -> None:
        person = activity.get("from") or {}
        name = str(person.get("name") or person.get("id") or "someone")
        card_id = str(activity.get("replyToId") or "")
        if verb in VERB_STATUS:
            incident = await self.incident_by_id(place.org_id, int(data.get("incident") or 0))
            if incident is not None and await self._move(place, incident, VERB_STATUS[verb],
                                                         person, key=key):
                await self._refresh_incident_card(place, incident.id or 0, card_id)
            return
        if verb not in (HYPOTHESIS_CONFIRM, HYPOTHESIS_REJECT):
            log.info("Teams: unknown card action %r ignored", verb)
            return
        if not may_act(self.settings, person):
            await self._notice(place, f"⚠️ {name}: only the configured responders can do "
                                      "that.", key=f"{key}:refused")
            return
        verdict = "confirmed" if verb == HYPOTHESIS_CONFIRM else "rejected"
        incident_id = data.get("i") or await self._incident_here(place)
        if incident_id is None:
            await self._notice(place, "This hypothesis is not about an incident.",
                               key=f"{key}:none")
            return
        await give_feedback(self.db, org_id=place.org_id, incident_id=int(incident_id),
                            statement=str(data.get("s", "")), verdict=verdict, user=name,
                            key=key, number=data.get("n"), source=PLATFORM)
        await self._notice(place, f"Hypothesis {data.get('n')} marked **{verdict}** by {name} "
                                  "— on the timeline.", key=f"{key}:feedback")
        async with self.db.session() as session:
            kept = await find_card(session, org_id=place.org_id,
                                   conversation_id=place.conversation_id, activity_id=card_id)
        marked = (cards.mark_hypothesis(kept.content, int(data.get("n") or 0), verdict, name)
                  if kept is not None else None)
        if marked is not None:
            text = f"Hypothesis {data.get('n')} {verdict} by {name}"
            await self._post(place, cards.Card(text, marked), update=card_id)

    async def _refresh_incident_card(self, place: Place, incident_id: int,
                                     card_id: str) -> None:
        """Re-render the incident card the click came from: new status, the steps ahead."""
        async with self.db.session() as session:
            kept = await find_card(session, org_id=place.org_id,
                                   conversation_id=place.conversation_id, activity_id=card_id)
        if kept is None or not card_id:
            return
        incident = await self.incident_by_id(place.org_id, incident_id)
        if incident is not None:
            async with self.db.session() as session:
                alerts = await alerts_of_incident(session, org_id=place.org_id,
                                                  incident_id=incident_id)
            await self._post(place, cards.incident_card(incident, alerts), update=card_id)

    # ---- installation and channels ------------------------------------------------------------

    async def _conversation_update(self, place: Place, activity: dict[str, Any], *,
                                   key: str) -> None:
        bot = str((activity.get("recipient") or {}).get("id", ""))
        data = activity.get("channelData") or {}
        event = data.get("eventType")
        if any(m.get("id") == bot for m in activity.get("membersAdded") or []):
            await self._installed(place, activity)
        elif any(m.get("id") == bot for m in activity.get("membersRemoved") or []):
            await self._removed(place)
        elif event in ("channelCreated", "channelRenamed", "channelRestored"):
            channel = data.get("channel") or {}
            name = str(channel.get("name", ""))
            await self._remember(place, activity, name=name, channel_id=str(channel["id"]))
            if self._matches(name):
                await self._link_and_brief(replace_channel(place, str(channel["id"])), name,
                                           key=key)
        elif event == "channelDeleted":
            async with self.db.session() as session, session.begin():
                await forget_channels(session, org_id=place.org_id, channel_id=str(
                    (data.get("channel") or {}).get("id", "")))
        elif event in ("teamDeleted", "teamArchived"):
            await self._removed(place)

    async def _installed(self, place: Place, activity: dict[str, Any]) -> None:
        """Keep a reference to every channel of the team (its General channel's id is the
        team's), so TEAMS_INCIDENT_CHANNEL can be any of them."""
        if not place.team_id:  # a chat
            await self._remember(place, activity)
            return
        await self._remember(place, activity, name="General", channel_id=place.team_id)
        await self._remember(place, activity)
        try:
            channels = await self.connector.team_channels(place.service_url, place.team_id)
        except TeamsError as exc:  # the channels already heard from are kept
            log.warning("Teams: could not list the channels of team %s: %s", place.team_id, exc)
            return
        for channel_id, name in channels:
            await self._remember(place, activity, name=name, channel_id=channel_id)
        log.info("Teams: installed in team %s (%d channels)", place.team_id, len(channels))

    async def _removed(self, place: Place) -> None:
        async with self.db.session() as session, session.begin():
            if place.team_id:
                await forget_channels(session, org_id=place.org_id, team_id=place.team_id)
            else:
                await forget_channels(session, org_id=place.org_id,
                                      channel_id=place.channel_id)
        log.info("Teams: removed from %s", place.team_id or place.channel_id)

    def _matches(self, name: str) -> bool:
        return any(fnmatch.fnmatch(name.lower(), p) for p in self._patterns)

    async def _link_and_brief(self, place: Place, name: str, *, key: str) -> None:
        """A channel named after an incident (`inc-12-checkout`): linked to it and briefed."""
        if await self._incident_here(place) is not None:
            return
        incident = await self.link_named(place.org_id, name, workspace=place.workspace,
                                         channel=place.channel_id)
        if incident is None:
            await self._notice(place, "I'm here, but no open incident matches this channel. "
                                      "Name it `inc-<number>` or mention me with **status** "
                                      "once an incident is open.", key=f"{key}:noincident")
            return
        await self.brief(place, incident, key=key)

    async def brief(self, channel: Place, incident: Incident, *, key: str) -> None:
        """A new thread in the channel: the incident card, then the investigation (hypotheses,
        runbook, similar incidents, chart) as replies under it."""
        assert incident.id is not None
        about_incident(incident.id)
        alerts, investigation = await self.investigation(channel.org_id, incident)
        async with self.db.session() as session:
            linked = [t for t in await threads_of_incident(session, org_id=channel.org_id,
                                                           incident_id=incident.id)
                      if t.platform == PLATFORM and t.channel_id == channel.channel_id
                      and t.thread_id]
        if linked:  # an earlier attempt posted the card: go on in its thread
            thread = channel.thread(linked[0].thread_id)
        elif not await self.claim_post(channel.org_id, f"teams:{key}:brief", channel.thread_id):
            return
        else:
            card = cards.incident_card(incident, alerts)
            started = await self.connector.start_thread(
                channel.service_url, tenant_id=channel.tenant_id,
                channel_id=channel.channel_id, activity=card_activity(card))
            thread = channel.thread(started.activity_id)
            async with self.db.session() as session, session.begin():
                await link_thread(session, org_id=channel.org_id, incident_id=incident.id,
                                  platform=PLATFORM, workspace_id=channel.workspace,
                                  channel_id=channel.channel_id, thread_id=started.activity_id)
                await keep_card(session, org_id=channel.org_id,
                                conversation_id=thread.conversation_id,
                                activity_id=started.activity_id, content=card.content)
            await self.mark_posted(channel.org_id, f"teams:{key}:brief")
        async with self.investigating:  # the card is out; the investigation takes a slot
            await self.answer(thread, "", key=f"{key}:investigation", incident=investigation)

    # ---- the incident engine's messages (outbox) ----------------------------------------------

    async def deliver(self, *, wait: bool = True, limit: int = 50) -> int:
        """Post what the incident engine queued: a new incident as a thread in
        TEAMS_INCIDENT_CHANNEL (once the app is installed in its team), status changes into
        the incident's Teams threads. Each is delivered once: a `teams:` marker row in the
        outbox records it; a failure that retrying cannot fix is recorded on it."""
        kinds = ["incident_status"] + (["incident_opened"] if self.settings.teams_incident_channel
                                       else [])
        async with self.db.session() as session:
            queued = await undelivered(session, platform=PLATFORM, kinds=kinds,
                                       within=timedelta(hours=6), limit=limit)
        return await self.deliver_queued(queued, self._deliver_one, wait=wait)

    async def _deliver_one(self, msg: OutboxMessage) -> bool:
        channel = None
        if msg.kind == "incident_opened":
            channel = await self._incident_channel(msg.org_id)
            if channel is None:
                return False  # kept queued until the app is installed there
        marker = f"teams:outbox:{msg.key}"
        if not await self.claim_delivery(msg.org_id, marker, msg.key):
            return False
        try:
            if channel is not None:
                incident = await self.incident_by_id(msg.org_id, int(msg.payload["incident_id"]))
                if incident is not None:
                    await self.brief(channel, incident, key=f"outbox:{msg.key}")
            else:
                await self._status_update(msg)
        except TeamsError as exc:
            if exc.reason not in ("removed", "rejected"):
                await self.release_delivery(msg.org_id, marker)
                raise  # retried next round
            log.error("Teams: %s not delivered: %s", msg.key, exc)
            await self.mark_posted(msg.org_id, marker, error=str(exc))
            return False
        except BaseException:
            await self.release_delivery(msg.org_id, marker)
            raise
        await self.mark_posted(msg.org_id, marker)
        return True

    async def _incident_channel(self, org_id: int) -> Place | None:
        name = self.settings.teams_incident_channel or ""
        async with self.db.session() as session:
            channel = await find_channel(session, org_id=org_id, channel_id=name)
        if channel is None:
            if name not in self._warned:
                self._warned.add(name)
                log.warning("Teams: TEAMS_INCIDENT_CHANNEL %s is not known yet: install the "
                            "app in its team; new incidents wait for it (up to 6 hours)", name)
            return None
        return Place.of_channel(channel)

    async def _status_update(self, msg: OutboxMessage) -> None:
        assert msg.incident_id is not None
        async with self.db.session() as session:
            threads = [t for t in await threads_of_incident(session, org_id=msg.org_id,
                                                            incident_id=msg.incident_id)
                       if t.platform == PLATFORM]
            channels = {t.channel_id: await find_channel(session, org_id=msg.org_id,
                                                         channel_id=t.channel_id)
                        for t in threads}
        for t in threads:
            channel = channels.get(t.channel_id)
            if channel is None:
                continue
            place = Place.of_channel(channel)
            if t.thread_id:
                thread = place.thread(t.thread_id)
                await self._post(thread, cards.notice_card(msg.text))
                await self._refresh_incident_card(thread, msg.incident_id, t.thread_id)
            else:
                await self._post(place, cards.notice_card(msg.text))


def replace_channel(place: Place, channel_id: str) -> Place:
    return Place(place.org_id, place.tenant_id, place.service_url, channel_id, place.team_id,
                 channel_id)


def _has_actions(content: dict[str, Any]) -> bool:
    return '"Action.' in json.dumps(content)
