"""Slack's adapter over the incident conversation (`bot.conversation`): each stored inbox item is
parsed into a neutral event (`bot.slack.events`) and handled by `Chat`; this module is the
`Conversation` port in Slack's Web API, and what only Slack has — joining a channel created with
an incident's name, a channel of its own per new incident with who PagerDuty says is on call
invited, ephemeral replies, and telling a `/sre` user through the command's `response_url`
when Slack refuses the bot's post."""

from __future__ import annotations

import fnmatch
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.agent.runtime import Agent
from bot.conversation.address import Address, Person
from bot.conversation.chat import Chat
from bot.conversation.delivery import deliver
from bot.conversation.events import ChannelSeen
from bot.conversation.standard import standard_commands
from bot.metrics import Metrics
from bot.settings import Settings
from bot.slack import events
from bot.slack.blocks import RENDERER
from bot.slack.intake import web_client
from bot.slack.layout import Message
from knowledge.db import Database
from knowledge.inbox import InboxItem
from knowledge.incidents import Incident
from knowledge.orgs import Org
from knowledge.threads import link_thread, threads_of_incident

log = logging.getLogger(__name__)

# What a person is told when Slack refuses the bot (logged in full by `_explain`).
EXPLAIN = {
    "not_in_channel": "I'm not in this channel, so I can't post here: invite me with "
                      "`/invite @sre-copilot`.",
    "channel_not_found": "I can't see this channel (a private one?): invite me with "
                         "`/invite @sre-copilot`.",
    "missing_scope": "The app lacks a permission it needs: ask a Slack admin to reinstall it "
                     "from bot/slack/manifest.yaml.",
    "is_archived": "This channel is archived.",
}
# The message-metadata event type that tags a post with its ledger key (`started_thread`), and
# how many of a channel's latest messages are searched for it.
POSTED, LOOK_BACK = "sre_copilot_post", 50
GONE = ("not_in_channel", "channel_not_found", "is_archived")  # retrying will not help


def channel_name(incident: Incident) -> str:
    """`inc-12-checkout`: lower case, Slack's allowed characters, at most 80."""
    service = re.sub(r"[^a-z0-9_-]+", "-", (incident.service or "").lower()).strip("-")
    return f"inc-{incident.id}" + (f"-{service}" if service else "")[:70]


@dataclass
class SlackHandlers:
    db: Database
    settings: Settings
    agent: Agent
    client: AsyncWebClient
    installations: AsyncInstallationStore | None = None  # OAuth: a bot token per workspace
    metrics: Metrics | None = None  # counts failed Slack calls
    chat: Chat = field(init=False)
    _clients: dict[str, AsyncWebClient] = field(default_factory=dict)
    _bot_users: dict[str, str] = field(default_factory=dict)
    _token_team: str | None = None  # the one bot token's workspace, asked once

    platform = events.PLATFORM
    command_form = "`/sre {}`"

    def __post_init__(self) -> None:
        self.chat = Chat(self.db, self.settings, self.agent, self, RENDERER, standard_commands())

    async def api(self, team: str) -> AsyncWebClient:
        """The Web API client for a workspace: the one bot token, or the workspace's own from
        the installation store (OAuth installs)."""
        if self.installations is None:
            return self.client
        if team not in self._clients:
            bot = await self.installations.async_find_bot(enterprise_id=None, team_id=team)
            if bot is None:
                raise LookupError(f"the app is not installed in workspace {team}")
            self._clients[team] = web_client(self.settings, token=bot.bot_token,
                                             metrics=self.metrics)
        return self._clients[team]

    async def bot_user(self, team: str) -> str:
        if team not in self._bot_users:
            found = await (await self.api(team)).auth_test()
            self._bot_users[team] = str(found["user_id"])
        return self._bot_users[team]

    # ---- the chat worker's calls ----------------------------------------------------------------

    async def handle(self, item: InboxItem) -> None:
        kind, body, org = item.payload["kind"], item.payload["body"], item.org_id
        if kind == "event":
            await self._event(org, body)
        elif kind == "command":
            await self._command(org, body)
        elif kind == "action":
            await self.chat.handle(events.clicked(self.settings, org, body))
        elif kind == "shortcut":
            await self.chat.handle(events.shortcut(self.settings, org, body))

    async def deliver(self, *, wait: bool = True, limit: int = 50) -> int:
        """The engine's queued messages: status changes into the incident's channels, and new
        incidents — a channel of their own — when `slack_create_channels` is on."""
        return await deliver(self.chat, new_incidents=self.settings.slack_create_channels,
                             wait=wait, limit=limit)

    async def finish_deliveries(self, seconds: float) -> None:
        await self.chat.ledger.finish_deliveries(seconds)

    async def _event(self, org_id: int, body: dict[str, Any]) -> None:
        event, team = body["event"], str(body.get("team_id", ""))
        kind, key = event.get("type"), str(body.get("event_id"))
        if kind in ("app_mention", "message"):
            found = events.said(self.settings, org_id, body, await self.bot_user(team))
            if found is not None:
                await self.chat.handle(found)
        elif kind == "reaction_added" and event.get("reaction") == events.PIN:
            item = event.get("item") or {}
            channel, ts = str(item.get("channel", "")), str(item.get("ts", ""))
            history = await (await self.api(team)).conversations_history(
                channel=channel, latest=ts, inclusive=True, limit=1)
            messages = history.get("messages") or []
            await self.chat.handle(events.pinned(
                self.settings, org_id, team=team, channel=channel, ts=ts,
                text=messages[0].get("text", "") if messages else "",
                user=str(event.get("user", "")), key=key))
        elif kind == "channel_created":
            channel = event["channel"]
            if self._matches(channel.get("name", "")):
                await (await self.api(team)).conversations_join(channel=channel["id"])
                await self.chat.handle(ChannelSeen(events.address(org_id, team, channel["id"]),
                                                   channel.get("name", ""), key))
        elif kind == "member_joined_channel" and event.get("user") == await self.bot_user(team):
            info = await (await self.api(team)).conversations_info(channel=event["channel"])
            ch = info["channel"]
            await self.chat.handle(ChannelSeen(
                events.address(org_id, team, event["channel"]), ch.get("name", ""), key,
                topic=(ch.get("topic") or {}).get("value", "")))

    def _matches(self, name: str) -> bool:
        patterns = [p.strip() for p in self.settings.slack_channel_patterns.split(",")
                    if p.strip()]
        return any(fnmatch.fnmatch(name, p) for p in patterns)

    async def _command(self, org_id: int, body: dict[str, Any]) -> None:
        """A `/sre` command; if Slack refuses what it posts (the bot is not in the channel, a
        scope is missing), the person who typed it is told through the command's
        response_url, which needs neither."""
        try:
            await self.chat.handle(events.command(self.settings, org_id, body))
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else str(exc)
            if body.get("response_url") and error in EXPLAIN:
                await AsyncWebhookClient(str(body["response_url"])).send(
                    text=f"⚠️ {EXPLAIN[str(error)]}", response_type="ephemeral")
                return
            raise

    # ---- the Conversation port --------------------------------------------------------------

    async def post(self, where: Address, message: Message) -> str:
        try:
            response = await (await self.api(where.workspace)).chat_postMessage(
                channel=where.channel, thread_ts=where.thread or None, text=message.text,
                blocks=message.blocks)
        except SlackApiError as exc:
            self._explain(where, exc)
            raise
        return str(response["ts"])

    async def update(self, where: Address, message_id: str, message: Message) -> None:
        try:
            await (await self.api(where.workspace)).chat_update(
                channel=where.channel, ts=message_id, text=message.text, blocks=message.blocks)
        except SlackApiError as exc:
            self._explain(where, exc)
            raise

    async def tell_privately(self, where: Address, who: Person, message: Message) -> bool:
        try:
            await (await self.api(where.workspace)).chat_postEphemeral(
                channel=where.channel, user=who.id, text=message.text, blocks=message.blocks)
        except SlackApiError as exc:
            self._explain(where, exc)
        return True

    async def upload(self, where: Address, path: Path, *, title: str) -> None:
        await (await self.api(where.workspace)).files_upload_v2(
            channel=where.channel, thread_ts=where.thread or None, file=str(path),
            filename=path.name, title=title)

    async def attach(self, where: Address, *, text: str, filename: str, title: str) -> None:
        await (await self.api(where.workspace)).files_upload_v2(
            channel=where.channel, content=text, filename=filename, title=title)

    async def start_thread(self, channel: Address, message: Message, *, key: str = ""
                           ) -> Address:
        """The root tagged with `key` in Slack's message metadata (`started_thread`)."""
        try:
            response = await (await self.api(channel.workspace)).chat_postMessage(
                channel=channel.channel, text=message.text, blocks=message.blocks,
                metadata={"event_type": POSTED, "event_payload": {"key": key}} if key else None)
        except SlackApiError as exc:
            self._explain(channel, exc)
            raise
        return channel.in_thread(str(response["ts"]))

    async def started_thread(self, channel: Address, key: str) -> Address | None:
        """The root an earlier attempt posted, by its tag, among the channel's latest messages
        (an incident's card is its channel's first). A failed read is no answer: the card is
        posted again rather than lost."""
        try:
            history = await (await self.api(channel.workspace)).conversations_history(
                channel=channel.channel, limit=LOOK_BACK, include_all_metadata=True)
        except SlackApiError:
            log.warning("could not read %s's history for an earlier post", channel.channel)
            return None
        for m in history.get("messages") or []:
            meta = m.get("metadata") or {}
            if meta.get("event_type") == POSTED and \
                    (meta.get("event_payload") or {}).get("key") == key:
                return channel.in_thread(str(m["ts"]))
        return None

    async def mark_verdict(self, where: Address, card: str, number: int, verdict: str,
                           by: str) -> None:
        """Slack keeps the buttons (anyone may still disagree); the notice says who judged."""

    async def address_of(self, org_id: int, workspace: str, channel: str,
                         thread: str = "") -> Address | None:
        return events.address(org_id, workspace, channel, thread)

    async def ready_for_new_incidents(self, org_id: int) -> bool:
        return True

    async def place_new_incident(self, org_id: int, incident: Incident) -> Address | None:
        """The incident's own channel (made once; an earlier attempt's is reused), with who is
        on call invited."""
        assert incident.id is not None
        async with self.db.session() as session:
            linked = [t for t in await threads_of_incident(session, org_id=org_id,
                                                           incident_id=incident.id)
                      if t.platform == self.platform and not t.thread_id]
        if linked:
            where = events.address(org_id, linked[0].workspace_id, linked[0].channel_id)
        else:
            where = await self._create_channel(org_id, incident)
        await self._invite_on_call(where)
        return where

    def gives_up(self, exc: BaseException) -> bool:
        return isinstance(exc, SlackApiError) and exc.response is not None \
            and exc.response.get("error") in GONE

    def _explain(self, where: Address, exc: SlackApiError) -> None:
        error = exc.response.get("error") if exc.response is not None else None
        if error == "missing_scope":
            log.error("Slack refused a call in %s: the app lacks the scope %s (it has %s); "
                      "reinstall it from bot/slack/manifest.yaml", where.channel,
                      exc.response.get("needed"), exc.response.get("provided"))
        elif error in GONE:
            log.error("Slack refused a post in %s: %s — invite the bot to the channel",
                      where.channel, error)
        else:
            log.error("Slack call failed in %s: %s", where.channel, error or exc)

    # ---- Slack's own: channels per incident ---------------------------------------------------

    async def _create_channel(self, org_id: int, incident: Incident) -> Address:
        assert incident.id is not None
        name = channel_name(incident)
        team = await self._team_of(org_id)
        api = await self.api(team)
        channel_id = ""
        for attempt in range(1, 6):
            try:
                created = await api.conversations_create(
                    name=name if attempt == 1 else f"{name}-{attempt}")
                channel_id = str(created["channel"]["id"])
                break
            except SlackApiError as exc:  # someone's channel has the name: take the next
                if exc.response.get("error") != "name_taken" or attempt == 5:
                    raise
                # Unless it is this bot's own, made for this incident by a replica that died
                # before it could say so: then it is the incident's channel, not a rival.
                mine = await self._own_channel(api, name) if attempt == 1 else None
                if mine is not None:
                    channel_id = str(mine["id"])
                    break
        where = events.address(org_id, team, channel_id)
        async with self.db.session() as session, session.begin():
            await link_thread(session, org_id=org_id, incident_id=incident.id,
                              platform=self.platform, workspace_id=team, channel_id=where.channel)
        return where

    async def _own_channel(self, api: AsyncWebClient, name: str) -> dict[str, Any] | None:
        """The unarchived channel called `name` that this bot created, if there is one."""
        me = str((await api.auth_test()).get("user_id", ""))
        cursor = ""
        while True:
            page = await api.conversations_list(types="public_channel", exclude_archived=True,
                                                limit=1000, cursor=cursor or None)
            for channel in page.get("channels") or []:
                if channel.get("name") == name and me and channel.get("creator") == me:
                    return dict(channel)
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return None

    async def _team_of(self, org_id: int) -> str:
        """The workspace of an org: recorded on the org, else (one bot token) the token's."""
        async with self.db.session() as session:
            org = await session.get(Org, org_id)
        if org is not None and org.slack_team_id:
            return str(org.slack_team_id)
        # A token's workspace never changes: asked once, not before every incident's channel
        # (200 `auth.test` calls in a storm, each on the card's way).
        if not self._token_team:
            self._token_team = str((await self.client.auth_test()).get("team_id", ""))
        return self._token_team

    async def _invite_on_call(self, where: Address) -> None:
        """Who PagerDuty says is on call (the `pagerduty_oncall` skill), found in Slack by
        email; a failure is logged, never fatal: the channel and its briefing matter more."""
        found = await self.agent.use("pagerduty_oncall")
        if found.error:  # PagerDuty is not set up, or did not answer
            log.warning("no one on call invited to %s: %s", where.channel, found.summary)
            return
        emails = [str(o.get("user_email")) for o in found.data.get("oncalls", [])
                  if o.get("user_email")]
        api, users = await self.api(where.workspace), []
        for email in dict.fromkeys(emails):
            try:
                user = await api.users_lookupByEmail(email=email)
                users.append(str(user["user"]["id"]))
            except SlackApiError as exc:
                log.warning("on-call %s has no Slack user: %s", email, exc.response.get("error"))
        if users:
            await api.conversations_invite(channel=where.channel, users=",".join(users))
