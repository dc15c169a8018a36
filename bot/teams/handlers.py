"""Teams' adapter over the incident conversation (`bot.conversation`): each stored activity is
parsed into a neutral event (`bot.teams.events`) and handled by `Chat`; this module is the
`Conversation` port over the Bot Framework connector, and what only Teams has — the conversation
references kept per channel when the app is installed (per org = tenant), cards kept so a click
can refresh them, a rejected card posted as text, new incidents as threads in
TEAMS_INCIDENT_CHANNEL, and `digest here`. A conversation the bot was removed from, or a card
Teams rejects, is logged and never stops the rest."""

from __future__ import annotations

import fnmatch
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botbuilder.schema import Activity

from bot.agent.runtime import Agent
from bot.conversation.address import Address, Person
from bot.conversation.chat import Chat
from bot.conversation.commands import Spec, Takes
from bot.conversation.delivery import deliver
from bot.conversation.events import ChannelSeen, Command
from bot.conversation.standard import standard_commands
from bot.settings import Settings
from bot.teams import events
from bot.teams.cards import RENDERER, mark_hypothesis
from bot.teams.connector import Connector, TeamsError
from bot.teams.layout import Card, card_activity, split_cards
from bot.teams.markdown import markdown_body
from knowledge.db import Database
from knowledge.inbox import InboxItem
from knowledge.incidents import Incident
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

log = logging.getLogger(__name__)


def channel_address(channel: TeamsChannel, thread: str = "") -> Address:
    """A channel the app was installed in (or a chat), from its stored reference."""
    return Address(events.PLATFORM, channel.org_id, channel.team_id or channel.tenant_id,
                   channel.channel_id, thread, channel.tenant_id, channel.service_url)


@dataclass
class TeamsHandlers:
    db: Database
    settings: Settings
    agent: Agent
    connector: Connector
    chat: Chat = field(init=False)
    _warned: set[str] = field(default_factory=set)

    platform = events.PLATFORM
    command_form = "**{}**"

    def __post_init__(self) -> None:
        digest = Spec("digest", self._digest_here, Takes.MAYBE, "here",
                      about="Where the weekly digest goes; digest here: this channel")
        self.chat = Chat(self.db, self.settings, self.agent, self, RENDERER,
                         standard_commands(extra=[digest]))

    # ---- the chat worker's calls ----------------------------------------------------------------

    async def handle(self, item: InboxItem) -> None:
        activity: dict[str, Any] = item.payload["activity"]
        where = events.address(item.org_id, activity)
        try:
            await self._dispatch(where, activity)
        except TeamsError as exc:
            if exc.reason != "removed":  # retried with backoff: throttled, down, credentials
                log.error("Teams: %s — the activity is retried", exc)
                raise
            log.error("Teams: %s — nothing more is posted there", exc)
            async with self.db.session() as session, session.begin():
                await forget_channels(session, org_id=where.org_id, channel_id=where.channel)

    async def deliver(self, *, wait: bool = True, limit: int = 50) -> int:
        """The engine's queued messages: status changes into the incident's threads, and new
        incidents as threads in TEAMS_INCIDENT_CHANNEL once the app is installed there."""
        return await deliver(self.chat, new_incidents=bool(self.settings.teams_incident_channel),
                             wait=wait, limit=limit)

    async def finish_deliveries(self, seconds: float) -> None:
        await self.chat.ledger.finish_deliveries(seconds)

    async def _dispatch(self, where: Address, activity: dict[str, Any]) -> None:
        kind, org = activity.get("type"), where.org_id
        if (clicked := events.clicked(self.settings, org, activity)) is not None:
            await self.chat.handle(clicked)
        elif (pinned := events.pinned(self.settings, org, activity)) is not None:
            await self.chat.handle(pinned)
        elif kind == "message":
            said = events.said(self.settings, org, activity)
            if said is not None:
                await self._remember(where, activity)
                await self.chat.handle(said)
        elif kind == "conversationUpdate":
            await self._conversation_update(where, activity)
        elif kind == "installationUpdate":
            if activity.get("action") == "add":
                await self._installed(where, activity)
            elif activity.get("action") == "remove":
                await self._removed(where)

    # ---- the Conversation port --------------------------------------------------------------

    async def post(self, where: Address, message: Card) -> str:
        return await self._send(where, message)

    async def update(self, where: Address, message_id: str, message: Card) -> None:
        await self._send(where, message, update=message_id)

    async def _send(self, where: Address, card: Card, *, update: str | None = None) -> str:
        """Post (or, given `update`, replace) a card; the activity id. Cards with buttons are
        kept so a click can refresh them. A card Teams rejects is logged and its plain text
        posted instead, so the news is never lost."""
        url, conversation = where.service_url, events.conversation_id(where)
        try:
            if update:
                await self.connector.update(url, conversation, update, card_activity(card))
                activity_id = update
            else:
                activity_id = await self.connector.send(url, conversation, card_activity(card))
        except TeamsError as exc:
            if exc.reason != "rejected":
                raise
            log.error("Teams: %s — posting the card's text instead", exc)
            text = Activity(type="message", text=card.text, text_format="markdown")
            if update:
                await self.connector.update(url, conversation, update, text)
                return update
            return await self.connector.send(url, conversation, text)
        if '"Action.' in json.dumps(card.content):
            async with self.db.session() as session, session.begin():
                await keep_card(session, org_id=where.org_id, conversation_id=conversation,
                                activity_id=activity_id, content=card.content)
        return activity_id

    async def tell_privately(self, where: Address, who: Person, message: Card) -> bool:
        return False  # a bot's message in Teams is seen by everyone in the conversation

    async def upload(self, where: Address, path: Path, *, title: str) -> None:
        raise NotImplementedError("charts are inline in Teams cards")

    async def attach(self, where: Address, *, text: str, filename: str, title: str) -> None:
        """The whole document as cards in the thread: a bot cannot attach a file to a channel
        without Graph and SharePoint permissions."""
        for card in split_cards(markdown_body(text), title):
            await self.post(where, card)

    async def start_thread(self, channel: Address, message: Card, *, key: str = "") -> Address:
        started = await self.connector.start_thread(
            channel.service_url, tenant_id=channel.tenant, channel_id=channel.channel,
            activity=card_activity(message))
        thread = channel.in_thread(started.activity_id)
        async with self.db.session() as session, session.begin():
            await keep_card(session, org_id=channel.org_id,
                            conversation_id=events.conversation_id(thread),
                            activity_id=started.activity_id, content=message.content)
        return thread

    async def started_thread(self, channel: Address, key: str) -> Address | None:
        """The Bot Framework reads no channel's history (that takes Graph permissions): a
        replica killed between posting a card and noting it leaves that card twice."""
        return None

    async def mark_verdict(self, where: Address, card: str, number: int, verdict: str,
                           by: str) -> None:
        """The answer card with that hypothesis' buttons replaced by the verdict."""
        async with self.db.session() as session:
            kept = await find_card(session, org_id=where.org_id,
                                   conversation_id=events.conversation_id(where),
                                   activity_id=card)
        marked = mark_hypothesis(kept.content, number, verdict, by) if kept else None
        if marked is not None:
            await self.update(where, card, Card(f"Hypothesis {number} {verdict} by {by}",
                                                marked))

    async def address_of(self, org_id: int, workspace: str, channel: str,
                         thread: str = "") -> Address | None:
        async with self.db.session() as session:
            known = await find_channel(session, org_id=org_id, channel_id=channel)
        return channel_address(known, thread) if known is not None else None

    async def ready_for_new_incidents(self, org_id: int) -> bool:
        return await self._incident_channel(org_id) is not None

    async def place_new_incident(self, org_id: int, incident: Incident) -> Address | None:
        return await self._incident_channel(org_id)

    def gives_up(self, exc: BaseException) -> bool:
        return isinstance(exc, TeamsError) and exc.reason in ("removed", "rejected")

    async def _incident_channel(self, org_id: int) -> Address | None:
        name = self.settings.teams_incident_channel or ""
        async with self.db.session() as session:
            channel = await find_channel(session, org_id=org_id, channel_id=name)
        if channel is None:
            if name not in self._warned:
                self._warned.add(name)
                log.warning("Teams: TEAMS_INCIDENT_CHANNEL %s is not known yet: install the "
                            "app in its team; new incidents wait for it (up to 6 hours)", name)
            return None
        return channel_address(channel)

    # ---- Teams' own: installation, channels, the digest's channel -------------------------------

    async def _remember(self, where: Address, activity: dict[str, Any],
                        name: str | None = None, channel_id: str | None = None) -> None:
        async with self.db.session() as session, session.begin():
            await remember_channel(session, org_id=where.org_id, tenant_id=where.tenant,
                                   channel_id=channel_id or where.channel,
                                   service_url=where.service_url,
                                   bot_id=str((activity.get("recipient") or {}).get("id", "")),
                                   team_id=events.team_of(where), name=name)

    async def _conversation_update(self, where: Address, activity: dict[str, Any]) -> None:
        bot = str((activity.get("recipient") or {}).get("id", ""))
        data = activity.get("channelData") or {}
        event = data.get("eventType")
        if any(m.get("id") == bot for m in activity.get("membersAdded") or []):
            await self._installed(where, activity)
        elif any(m.get("id") == bot for m in activity.get("membersRemoved") or []):
            await self._removed(where)
        elif event in ("channelCreated", "channelRenamed", "channelRestored"):
            channel = data.get("channel") or {}
            name = str(channel.get("name", ""))
            await self._remember(where, activity, name=name, channel_id=str(channel["id"]))
            patterns = [p.strip().lower() for p in
                        self.settings.teams_channel_patterns.split(",") if p.strip()]
            if any(fnmatch.fnmatch(name.lower(), p) for p in patterns):
                place = Address(self.platform, where.org_id, where.workspace, str(channel["id"]),
                                "", where.tenant, where.service_url)
                await self.chat.handle(ChannelSeen(place, name, events.key_of(activity)))
        elif event == "channelDeleted":
            async with self.db.session() as session, session.begin():
                await forget_channels(session, org_id=where.org_id, channel_id=str(
                    (data.get("channel") or {}).get("id", "")))
        elif event in ("teamDeleted", "teamArchived"):
            await self._removed(where)

    async def _installed(self, where: Address, activity: dict[str, Any]) -> None:
        """Keep a reference to every channel of the team (its General channel's id is the
        team's), so TEAMS_INCIDENT_CHANNEL can be any of them."""
        team = events.team_of(where)
        if not team:  # a chat
            await self._remember(where, activity)
            return
        await self._remember(where, activity, name="General", channel_id=team)
        await self._remember(where, activity)
        try:
            channels = await self.connector.team_channels(where.service_url, team)
        except TeamsError as exc:  # the channels already heard from are kept
            log.warning("Teams: could not list the channels of team %s: %s", team, exc)
            return
        for channel_id, name in channels:
            await self._remember(where, activity, name=name, channel_id=channel_id)
        log.info("Teams: installed in team %s (%d channels)", team, len(channels))

    async def _removed(self, where: Address) -> None:
        team = events.team_of(where)
        async with self.db.session() as session, session.begin():
            if team:
                await forget_channels(session, org_id=where.org_id, team_id=team)
            else:
                await forget_channels(session, org_id=where.org_id, channel_id=where.channel)
        log.info("Teams: removed from %s", team or where.channel)

    async def _digest_here(self, chat: Chat, event: Command, _incident: None) -> None:
        """`digest here` makes this channel the org's weekly digest channel; `digest` alone
        says where the digest goes now."""
        where, settings = event.where, self.settings
        if event.rest.lower().rstrip(".!") != "here":
            async with self.db.session() as session:
                chosen = await digest_channel(session, org_id=where.org_id)
            now = (f"**{chosen.name or chosen.channel_id}**" if chosen is not None
                   else f"`{settings.digest_teams_channel}` (DIGEST_TEAMS_CHANNEL)"
                   if settings.digest_teams_channel else "nowhere in Teams yet")
            await chat.tell(where, event.who, f"The weekly digest ({settings.digest_cron}, "
                                              f"{settings.digest_timezone}) goes to {now}. "
                                              "Mention me with **digest here** in a channel "
                                              "to send it there.", key=event.key, error=False)
            return
        if not event.who.may_act:
            await chat.tell(where, event.who, "Only the configured responders can choose the "
                                              "digest channel.", key=event.key)
            return
        if not events.team_of(where):  # a 1:1 or group chat: the digest is for a channel
            await chat.tell(where, event.who, "The digest goes to a team channel: mention me "
                                              "with **digest here** in the channel.",
                            key=event.key)
            return
        async with self.db.session() as session, session.begin():
            chosen = await choose_digest_channel(session, org_id=where.org_id,
                                                 channel_id=where.channel)
        if chosen is None:  # _remember stored it moments ago; gone means it was removed
            await chat.tell(where, event.who, "I can't post in this channel.", key=event.key)
            return
        await chat.tell(where, event.who, f"The weekly digest will be posted here "
                                          f"({settings.digest_cron}, {settings.digest_timezone});"
                                          f" set by {event.who.name}.", key=event.key,
                        error=False)
