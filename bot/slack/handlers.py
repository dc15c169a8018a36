"""What the copilot does with each thing Slack sent (one stored inbox item at a time):

- a mention, or a message in a thread it takes part in → the agent graph, answered in the
  thread, with one progress message updated while tools run, and charts uploaded;
- `/sre SUBCOMMAND` → help, status, catchup, hypotheses, timeline, postmortem, runbook, ask, ack,
  mitigated, resolve;
- 📌 on a message, or the "Add to timeline" shortcut → the incident's timeline;
- a new channel matching the incident patterns, or an invitation → join, link the channel to
  its incident, post the context;
- Confirm / Reject and Acknowledge / Mitigated / Resolve buttons, for people allowed to act.

Every post is keyed in the outbox by the Slack id that caused it, so handling an item twice
(a lease ran out) does not post twice.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.agent.state import Answer, NewIncident
from bot.incident_chat import IncidentChat, give_feedback, keep_hypotheses, progress_reporter
from bot.logs import about_incident
from bot.metrics import Metrics
from bot.slack import blocks
from bot.slack.intake import web_client
from knowledge.alerts import alerts_of_incident
from knowledge.inbox import InboxItem
from knowledge.incidents import (
    IllegalTransition,
    Incident,
    IncidentStatus,
    find_incident,
    transition,
)
from knowledge.orgs import Org
from knowledge.outbox import (
    OutboxMessage,
    undelivered,
)
from knowledge.threads import incident_of_thread, link_thread, threads_of_incident
from knowledge.timeline import add_event, list_events
from skills.timeline import TimelineEntry, incident_timeline
from skills.types import Claim

log = logging.getLogger(__name__)
MENTION = re.compile(r"<@[A-Z0-9]+>")
PIN = "pushpin"
PROGRESS_EVERY = 1.0  # seconds between progress updates: chat.update is rate-limited
STATUS_OF = {"ack": IncidentStatus.ACKNOWLEDGED, "mitigated": IncidentStatus.MITIGATED,
             "resolve": IncidentStatus.RESOLVED}
HELP = ("`/sre help` · `/sre status` · `/sre catchup` · `/sre hypotheses` · `/sre timeline` · "
        "`/sre postmortem` · `/sre runbook ALERT` · `/sre ask QUESTION` · `/sre ack` · "
        "`/sre mitigated` · `/sre resolve`. Mention me in a thread to ask anything; react 📌 to "
        "put a message on the incident timeline.")


def channel_name(incident: Incident) -> str:
    """`inc-12-checkout`: lower case, Slack's allowed characters, at most 80."""
    service = re.sub(r"[^a-z0-9_-]+", "-", (incident.service or "").lower()).strip("-")
    return f"inc-{incident.id}" + (f"-{service}" if service else "")[:70]


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


@dataclass
class Where:
    """A Slack conversation: workspace, channel, and the thread (empty: the channel)."""

    org_id: int
    team: str
    channel: str
    thread_ts: str = ""

    @property
    def thread_id(self) -> str:
        return f"slack:{self.team}:{self.channel}:{self.thread_ts}"


@dataclass
class SlackHandlers(IncidentChat):
    client: AsyncWebClient
    installations: AsyncInstallationStore | None = None  # OAuth: a bot token per workspace
    metrics: Metrics | None = None  # counts failed Slack calls
    _patterns: list[str] = field(default_factory=list)
    _clients: dict[str, AsyncWebClient] = field(default_factory=dict)
    _bot_users: dict[str, str] = field(default_factory=dict)

    platform: ClassVar[str] = "slack"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._patterns = [p.strip() for p in self.settings.slack_channel_patterns.split(",")
                          if p.strip()]

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

    # ---- dispatch -----------------------------------------------------------------------------

    async def handle(self, item: InboxItem) -> None:
        kind, body = item.payload["kind"], item.payload["body"]
        if kind == "event":
            await self._event(item.org_id, body)
        elif kind == "command":
            await self._command(item.org_id, body)
        elif kind == "action":
            await self._action(item.org_id, body)
        elif kind == "shortcut":
            await self._shortcut(item.org_id, body)

    async def _event(self, org_id: int, body: dict[str, Any]) -> None:
        event, team = body["event"], str(body.get("team_id", ""))
        kind, key = event.get("type"), str(body.get("event_id"))
        if kind in ("app_mention", "message"):
            if event.get("bot_id") or event.get("subtype") or event.get("user") == \
                    await self.bot_user(team):
                return  # our own posts, edits and joins are not questions
            where = Where(org_id, team, event["channel"], event.get("thread_ts") or event["ts"])
            if kind == "message" and not await self._takes_part(where, event):
                return
            if kind == "message" and f"<@{await self.bot_user(team)}>" in event.get("text", ""):
                return  # the app_mention event of the same message answers it
            await self.answer(where, MENTION.sub("", event.get("text", "")).strip(), key=key,
                              user=event.get("user"))
        elif kind == "reaction_added" and event.get("reaction") == PIN:
            item = event.get("item") or {}
            await self._pin(Where(org_id, team, item.get("channel", "")), item.get("ts", ""),
                            user=event.get("user", ""), key=key)
        elif kind == "channel_created":
            channel = event["channel"]
            if self._matches(channel.get("name", "")):
                await self._join_and_brief(Where(org_id, team, channel["id"]),
                                           channel.get("name", ""), key=key, join=True)
        elif kind == "member_joined_channel" and event.get("user") == await self.bot_user(team):
            info = await (await self.api(team)).conversations_info(channel=event["channel"])
            ch = info["channel"]
            await self._join_and_brief(Where(org_id, team, event["channel"]),
                                       ch.get("name", ""), key=key, join=False,
                                       topic=(ch.get("topic") or {}).get("value", ""))

    async def _takes_part(self, where: Where, event: dict[str, Any]) -> bool:
        """A plain message is for the bot only inside a thread the bot has answered in."""
        return bool(event.get("thread_ts")) and await self.takes_part(where.thread_id)

    def _matches(self, name: str) -> bool:
        return any(fnmatch.fnmatch(name, p) for p in self._patterns)

    # ---- answering ----------------------------------------------------------------------------

    async def answer(self, where: Where, text: str, *, key: str,
                     incident: NewIncident | None = None,
                     render: Callable[[Answer], list[blocks.Message]] | None = None,
                     user: str | None = None) -> Answer | None:
        """Run a turn of the agent for this thread and post the answer in it, once per `key`."""
        marker = f"slack:{key}:answer"
        if not await self.claim_post(where.org_id, marker, where.thread_id):
            return None
        incident_id = await self._incident_here(where)
        about_incident(incident.incident_id if incident is not None else incident_id)
        progress = await self.progress_of(where.org_id, marker)  # an earlier attempt's
        if progress is None:
            progress = await self._post(where, blocks.progress_message([("thinking",
                                                                          "running")]))
            await self.keep_progress(where.org_id, marker, progress)

        async def show(steps: list[tuple[str, str]]) -> None:
            await self._update(where, progress, blocks.progress_message(steps))

        answer = await self.agent.turn(
            where.thread_id, text or "/help", incident=incident,
            progress=progress_reporter(show, every=PROGRESS_EVERY, on_end=True))
        if incident is not None and incident.incident_id is not None:
            # On the record before anyone can see (and click) them.
            await keep_hypotheses(self.db, org_id=where.org_id,
                                  incident_id=incident.incident_id, answer=answer)
        messages = (render(answer) if render is not None
                    else blocks.answer_message(answer, incident_id=incident_id))
        await self._update(where, progress, messages[0])
        for msg in messages[1:]:
            await self._post(where, msg)
        for image in answer.images:
            api = await self.api(where.team)
            await api.files_upload_v2(channel=where.channel, thread_ts=where.thread_ts,
                                      file=str(image), filename=image.name, title="chart")
        await self.mark_posted(where.org_id, marker)
        if answer.route == "feedback" and incident_id is not None:
            await self.typed_feedback(where.org_id, where.thread_id, incident_id, key=key,
                                      user=f"<@{user}>" if user else "chat")
        return answer

    async def _incident_here(self, where: Where) -> int | None:
        async with self.db.session() as session:
            return await incident_of_thread(session, org_id=where.org_id, platform="slack",
                                            workspace_id=where.team, channel_id=where.channel,
                                            thread_id=where.thread_ts)

    async def _incident(self, where: Where) -> Incident | None:
        """The channel's incident, else the newest open one."""
        return await self.incident_by_id(where.org_id, await self._incident_here(where))

    # ---- posting ------------------------------------------------------------------------------

    async def _post(self, where: Where, msg: blocks.Message) -> str:
        try:
            response = await (await self.api(where.team)).chat_postMessage(
                channel=where.channel, thread_ts=where.thread_ts or None, text=msg.text,
                blocks=msg.blocks)
        except SlackApiError as exc:
            self._explain(where, exc)
            raise
        return str(response["ts"])

    async def _update(self, where: Where, ts: str, msg: blocks.Message) -> None:
        try:
            api = await self.api(where.team)
            await api.chat_update(channel=where.channel, ts=ts, text=msg.text, blocks=msg.blocks)
        except SlackApiError as exc:
            self._explain(where, exc)
            raise

    def _explain(self, where: Where, exc: SlackApiError) -> None:
        error = exc.response.get("error") if exc.response is not None else None
        if error == "missing_scope":
            log.error("Slack refused a call in %s: the app lacks the scope %s (it has %s); "
                      "reinstall it from bot/slack/manifest.yaml", where.channel,
                      exc.response.get("needed"), exc.response.get("provided"))
        elif error in ("channel_not_found", "not_in_channel", "is_archived"):
            log.error("Slack refused a post in %s: %s — invite the bot to the channel",
                      where.channel, error)
        else:
            log.error("Slack call failed in %s: %s", where.channel, error or exc)

    async def _ephemeral(self, where: Where, user: str, text: str) -> None:
        msg = blocks.error_message(text)
        try:
            await (await self.api(where.team)).chat_postEphemeral(channel=where.channel, user=user,
                                                 text=msg.text, blocks=msg.blocks)
        except SlackApiError as exc:
            self._explain(where, exc)

    async def _once(self, where: Where, key: str, msg: blocks.Message) -> None:
        if await self.claim_post(where.org_id, key, where.thread_id):
            await self._post(where, msg)
            await self.mark_posted(where.org_id, key)

    # ---- channels -----------------------------------------------------------------------------

    async def _join_and_brief(self, where: Where, name: str, *, key: str, join: bool,
                              topic: str = "") -> None:
        if join:
            await (await self.api(where.team)).conversations_join(channel=where.channel)
        if await self._incident_here(where) is not None:
            return  # linked already: the copilot made it (and briefs it) or briefed it before
        incident = await self.link_named(where.org_id, f"{name} {topic}", workspace=where.team,
                                         channel=where.channel)
        if incident is None:
            await self._once(where, f"slack:{key}:noincident", blocks.error_message(
                "I joined, but no open incident matches this channel. Name it `inc-<number>` "
                "or use `/sre status` once an incident is open."))
            return
        await self.brief(where, incident, key=key)

    async def brief(self, where: Where, incident: Incident, *, key: str) -> None:
        """The context a channel needs: the incident card, then the investigation (hypotheses,
        runbook, similar incidents, chart) as a thread under it. The card goes out at once;
        the investigation waits for a free slot (`investigating`)."""
        assert incident.id is not None
        about_incident(incident.id)
        alerts, investigation = await self.investigation(where.org_id, incident)
        async with self.db.session() as session:
            posted = [t for t in await threads_of_incident(session, org_id=where.org_id,
                                                           incident_id=incident.id)
                      if t.platform == "slack" and t.channel_id == where.channel
                      and t.thread_id]
        if posted:  # an earlier attempt posted the card: its investigation may be missing
            thread = Where(where.org_id, where.team, where.channel, posted[0].thread_id)
        elif not await self.claim_post(where.org_id, f"slack:{key}:brief", where.thread_id):
            return
        else:
            card = await self._post(where, blocks.incident_message(incident, alerts))
            async with self.db.session() as session, session.begin():
                await link_thread(session, org_id=where.org_id, incident_id=incident.id,
                                  platform="slack", workspace_id=where.team,
                                  channel_id=where.channel, thread_id=card)
            await self.mark_posted(where.org_id, f"slack:{key}:brief")
            thread = Where(where.org_id, where.team, where.channel, card)
        async with self.investigating:
            await self.answer(thread, "", key=f"{key}:investigation", incident=investigation)

    # ---- the incident engine's messages (outbox) ------------------------------------------

    async def deliver(self, *, wait: bool = True, limit: int = 50) -> int:
        """Post what the incident engine queued — new incidents (a channel of their own when
        `slack_create_channels` is on) and status changes (in the incident's linked channels).
        Each is delivered to Slack once: a `slack:` marker row in the outbox, beside the
        platform-neutral message, records it."""
        kinds = ["incident_status"] + (["incident_opened"] if self.settings.slack_create_channels
                                       else [])
        async with self.db.session() as session:
            queued = await undelivered(session, platform="slack", kinds=kinds,
                                       within=timedelta(hours=6), limit=limit)
        return await self.deliver_queued(queued, self._deliver_one, wait=wait)

    async def _deliver_one(self, msg: OutboxMessage) -> bool:
        marker = f"slack:outbox:{msg.key}"
        if not await self.claim_delivery(msg.org_id, marker, msg.key):
            return False  # another replica is on it (or posted it)
        try:
            if msg.kind == "incident_opened":
                await self._open_channel(msg.org_id, int(msg.payload["incident_id"]),
                                         key=f"outbox:{msg.key}")
            else:
                await self._status_update(msg)
        except BaseException:
            await self.release_delivery(msg.org_id, marker)  # retried next round
            raise
        await self.mark_posted(msg.org_id, marker)
        return True

    async def _status_update(self, msg: OutboxMessage) -> None:
        assert msg.incident_id is not None
        async with self.db.session() as session:
            threads = await threads_of_incident(session, org_id=msg.org_id,
                                                incident_id=msg.incident_id)
        for t in threads:
            if t.platform == "slack" and not t.thread_id:
                await self._post(Where(msg.org_id, t.workspace_id, t.channel_id),
                                 blocks.notice_message(msg.text))

    async def _open_channel(self, org_id: int, incident_id: int, *, key: str) -> None:
        incident = await self.incident_by_id(org_id, incident_id)
        if incident is None:
            return
        async with self.db.session() as session:
            linked = [t for t in await threads_of_incident(session, org_id=org_id,
                                                           incident_id=incident_id)
                      if t.platform == "slack" and not t.thread_id]
        if linked:  # an earlier attempt created it: finish that one
            where = Where(org_id, linked[0].workspace_id, linked[0].channel_id)
        else:
            where = await self._create_channel(org_id, incident)
        await self._invite_on_call(where)
        await self.brief(where, incident, key=key)

    async def _create_channel(self, org_id: int, incident: Incident) -> Where:
        assert incident.id is not None
        name = channel_name(incident)
        team = await self._team_of(org_id)
        api = await self.api(team)
        for attempt in range(1, 6):
            try:
                created = await api.conversations_create(
                    name=name if attempt == 1 else f"{name}-{attempt}")
                break
            except SlackApiError as exc:  # someone's channel has the name: take the next
                if exc.response.get("error") != "name_taken" or attempt == 5:
                    raise
        where = Where(org_id, team, str(created["channel"]["id"]))
        async with self.db.session() as session, session.begin():
            await link_thread(session, org_id=org_id, incident_id=incident.id,
                              platform="slack", workspace_id=team, channel_id=where.channel)
        return where

    async def _team_of(self, org_id: int) -> str:
        """The workspace of an org: recorded on the org, else (one bot token) the token's."""
        async with self.db.session() as session:
            org = await session.get(Org, org_id)
        if org is not None and org.slack_team_id:
            return str(org.slack_team_id)
        return str((await self.client.auth_test()).get("team_id", ""))

    async def _invite_on_call(self, where: Where) -> None:
        """Who PagerDuty says is on call, found in Slack by email; a failure is logged, never
        fatal: the channel and its briefing matter more."""
        pagerduty = self.agent.skills.clients.get("pagerduty")
        if pagerduty is None:
            return
        try:
            oncalls = await pagerduty.oncalls()
        except Exception:
            log.exception("could not read who is on call from PagerDuty")
            return
        users = []
        for email in dict.fromkeys(o.user_email for o in oncalls if o.user_email):
            try:
                found = await (await self.api(where.team)).users_lookupByEmail(email=email)
                users.append(str(found["user"]["id"]))
            except SlackApiError as exc:
                log.warning("on-call %s has no Slack user: %s", email,
                            exc.response.get("error"))
        if users:
            api = await self.api(where.team)
            await api.conversations_invite(channel=where.channel, users=",".join(users))

    # ---- commands -----------------------------------------------------------------------------

    async def _command(self, org_id: int, body: dict[str, Any]) -> None:
        """A `/sre` command; if Slack refuses what it posts (the bot is not in the channel, a
        scope is missing), the person who typed it is told through the command's
        response_url, which needs neither."""
        try:
            await self._subcommand(org_id, body)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else str(exc)
            if body.get("response_url") and error in EXPLAIN:
                await AsyncWebhookClient(str(body["response_url"])).send(
                    text=f"⚠️ {EXPLAIN[str(error)]}", response_type="ephemeral")
                return
            raise

    async def _subcommand(self, org_id: int, body: dict[str, Any]) -> None:
        where = Where(org_id, str(body.get("team_id", "")), str(body.get("channel_id", "")))
        user = str(body.get("user_id", ""))
        sub, _, rest = str(body.get("text", "")).strip().partition(" ")
        sub, rest, key = sub.lower(), rest.strip(), str(body.get("trigger_id"))
        incident = await self._incident(where)
        if incident is not None and sub not in ("", "help", "runbook", "ask"):
            about_incident(incident.id)  # the subcommands that act on it
        if sub in ("", "help"):
            await self._ephemeral(where, user, HELP)
        elif sub == "status":
            if incident is None:
                await self._ephemeral(where, user, "No open incident.")
                return
            async with self.db.session() as session:
                alerts = await alerts_of_incident(session, org_id=org_id,
                                                  incident_id=incident.id or 0)
            await self._once(where, f"slack:{key}:status",
                             blocks.incident_message(incident, alerts))
        elif sub in ("catchup", "timeline", "postmortem", "hypotheses"):
            if incident is None:
                await self._ephemeral(where, user, "No incident here or open to report on.")
                return
            if sub == "catchup":
                await self._catchup(where, incident, key=key)
            elif sub == "hypotheses":
                await self.answer(where, f"/hypotheses {incident.service or ''}".strip(),
                                  key=key)
            elif sub == "timeline":
                assert incident.id is not None
                async with self.db.session() as session:
                    view = await incident_timeline(session, org_id=org_id,
                                                   incident_id=incident.id)
                for i, msg in enumerate(blocks.timeline_message(view)):
                    await self._once(where, f"slack:{key}:timeline:{i}", msg)
            else:
                await self._postmortem(where, incident, key=key)
        elif sub == "runbook" and rest:
            await self.answer(where, f"/runbook {rest}", key=key)
        elif sub == "ask" and rest:
            await self.answer(where, rest, key=key)
        elif sub in STATUS_OF:
            if incident is None:
                await self._ephemeral(where, user, "No incident here to update.")
                return
            await self._move(where, incident, STATUS_OF[sub], user=user, key=key)
        else:
            await self._ephemeral(where, user, f"I don't know `/sre {sub}`. {HELP}")

    async def _postmortem(self, where: Where, incident: Incident, *, key: str) -> None:
        """The draft as a Markdown file, and a short summary in the channel."""
        ref = incident.ref

        def summary(answer: Answer) -> list[blocks.Message]:
            if answer.tools and answer.tools[0].ok:
                return [blocks.postmortem_summary(answer.text, ref=ref)]
            return blocks.answer_message(answer)

        answer = await self.answer(where, f"/postmortem {ref}", key=key, render=summary)
        if answer is not None and answer.tools and answer.tools[0].ok:
            await (await self.api(where.team)).files_upload_v2(
                channel=where.channel, content=answer.text, filename=f"{ref}-postmortem.md",
                title=f"{ref} post-mortem draft")

    async def _catchup(self, where: Where, incident: Incident, *, key: str) -> None:
        assert incident.id is not None
        async with self.db.session() as session:
            alerts = await alerts_of_incident(session, org_id=where.org_id,
                                              incident_id=incident.id)
            events = await list_events(session, org_id=where.org_id, incident_id=incident.id)
            threads = await threads_of_incident(session, org_id=where.org_id,
                                                incident_id=incident.id)
        claims: list[Claim] = []
        for t in threads:  # the briefing thread holds the investigation's hypotheses
            if t.platform == "slack" and t.thread_id:
                state = await self.agent.graph.aget_state({"configurable": {
                    "thread_id": Where(where.org_id, t.workspace_id, t.channel_id,
                                       t.thread_id).thread_id}})
                claims = [Claim.model_validate(c)
                          for c in state.values.get("last_claims") or []] or claims
        responders = [str(e.data.get("actor") or e.data.get("user") or "")
                      for e in events if e.source == "slack"
                      and e.kind in ("status_changed", "hypothesis_feedback")]
        responders += [m.group(0) for e in events if e.kind == "message_pinned"
                       if (m := re.match(r"<@[A-Z0-9]+>", e.summary))]
        tried = [TimelineEntry(at=e.occurred_at, kind=e.kind, source=e.source,
                               summary=e.summary) for e in events
                 if e.kind in ("message_pinned", "note", "status_changed",
                               "hypothesis_feedback")]
        for i, msg in enumerate(blocks.catchup_message(
                incident, alerts, hypotheses=claims,
                responders=[r if r.startswith("<@") else f"<@{r}>" for r in responders if r],
                tried=tried)):
            await self._once(where, f"slack:{key}:catchup:{i}", msg)

    def _may_act(self, user: str) -> bool:
        allowed = {u.strip() for u in self.settings.slack_responders.split(",") if u.strip()}
        return not allowed or user in allowed

    async def _move(self, where: Where, incident: Incident, to: IncidentStatus, *, user: str,
                    key: str) -> None:
        if not self._may_act(user):
            await self._ephemeral(where, user, "Only the configured responders can change "
                                               "the incident's status.")
            return
        try:
            async with self.db.session() as session, session.begin():
                fresh = await find_incident(session, org_id=where.org_id,
                                            incident_id=incident.id)
                await transition(session, incident=fresh, to=to, at=datetime.now(UTC),
                                 actor=f"<@{user}>", source="slack")
                session.add(fresh)
        except IllegalTransition as exc:
            await self._ephemeral(where, user, str(exc))
            return
        await self._once(where, f"slack:{key}:moved", blocks.notice_message(
            f"{incident.ref} is now *{to.value}* (by <@{user}>)."))

    # ---- interactions -------------------------------------------------------------------------

    async def _action(self, org_id: int, body: dict[str, Any]) -> None:
        action = body["actions"][0]
        channel = (body.get("channel") or body.get("container") or {})
        message = body.get("message") or {}
        where = Where(org_id, str((body.get("team") or {}).get("id", "")),
                      str(channel.get("id") or channel.get("channel_id", "")),
                      str(message.get("thread_ts") or message.get("ts") or ""))
        user = str((body.get("user") or {}).get("id", ""))
        key = f"{body.get('trigger_id')}:{action.get('action_ts')}"
        action_id = str(action.get("action_id"))
        if not self._may_act(user):
            await self._ephemeral(where, user, "Only the configured responders can do that.")
            return
        if action_id.startswith("incident_"):
            incident = await self.incident_by_id(org_id, int(action.get("value", "0")))
            if incident is not None:
                await self._move(where, incident, STATUS_OF[action_id.removeprefix(
                    "incident_")], user=user, key=key)
            return
        value = json.loads(action.get("value") or "{}")
        verdict = "confirmed" if action_id == "hypothesis_confirm" else "rejected"
        incident_id = value.get("i") or await self._incident_here(where)
        if incident_id is None:
            await self._ephemeral(where, user, "This hypothesis is not about an incident.")
            return
        await give_feedback(self.db, org_id=org_id, incident_id=int(incident_id),
                            statement=str(value.get("s", "")), verdict=verdict,
                            user=f"<@{user}>", key=key, number=value.get("n"), source="slack")
        await self._once(where, f"slack:{key}:feedback", blocks.notice_message(
            f"Hypothesis {value.get('n')} marked *{verdict}* by <@{user}> — on the timeline."))

    async def _shortcut(self, org_id: int, body: dict[str, Any]) -> None:
        channel = str((body.get("channel") or {}).get("id", ""))
        message = body.get("message") or {}
        where = Where(org_id, str((body.get("team") or {}).get("id", "")), channel)
        await self._timeline_note(where, str(message.get("ts", "")), message.get("text", ""),
                                  user=str((body.get("user") or {}).get("id", "")),
                                  key=str(body.get("trigger_id")))

    async def _pin(self, where: Where, ts: str, *, user: str, key: str) -> None:
        api = await self.api(where.team)
        found = await api.conversations_history(channel=where.channel, latest=ts,
                                                inclusive=True, limit=1)
        messages = found.get("messages") or []
        text = messages[0].get("text", "") if messages else ""
        await self._timeline_note(where, ts, text, user=user, key=key)

    async def _timeline_note(self, where: Where, ts: str, text: str, *, user: str,
                             key: str) -> None:
        incident_id = await self._incident_here(where)
        if incident_id is None:
            await self._ephemeral(where, user, "This channel is not linked to an incident.")
            return
        async with self.db.session() as session, session.begin():
            event = await add_event(
                session, org_id=where.org_id, incident_id=incident_id,
                occurred_at=datetime.fromtimestamp(float(ts or time.time()), UTC),
                kind="message_pinned", source="slack", summary=f"<@{user}>: {text}"[:1000],
                data={"channel": where.channel, "ts": ts},
                dedupe_key=f"slack:pin:{where.channel}:{ts}")
        if event is not None:
            await self._once(where, f"slack:{key}:pinned", blocks.notice_message(
                "📌 Added to the incident timeline."))
