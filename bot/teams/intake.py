"""Teams in: `POST /api/messages`. Every activity's Bot Framework JWT is validated first
(`bot.teams.auth`); anything unsigned, forged, expired, for another bot or from another service
URL is a 401 and nothing is stored. A valid activity the copilot acts on is written to the
durable inbox, keyed by its conversation and activity id (Teams redelivers with the same id),
and only then answered: 200, or for a card's `Action.Execute` the invoke response Teams shows
the person who clicked. The chat worker (`bot/chat_worker.py` with `bot/teams/handlers.py`)
does the work."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from botbuilder.schema import Activity
from botframework.connector.auth import BotFrameworkAuthentication
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.settings import Settings
from bot.webhooks.bodies import parse_json, read_body
from bot.webhooks.errors import validate
from bot.webhooks.intake import database_answers
from knowledge.db import Database
from knowledge.inbox import InboxEntry, enqueue
from knowledge.orgs import Org, ensure_org, org_for_teams_tenant

log = logging.getLogger(__name__)
SOURCE = "teams"
CARD_ACTION = "adaptiveCard/action"
# The "Add to timeline" message action (declared in the app package): Teams sends the message.
SUBMIT_ACTION = "composeExtension/submitAction"
ADD_TO_TIMELINE = "addToTimeline"
KINDS = ("message", "invoke", "conversationUpdate", "installationUpdate")
MESSAGE_RESPONSE = "application/vnd.microsoft.activity.message"


class _Account(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    name: str | None = None
    aadObjectId: str | None = None


class _Conversation(_Account):
    conversationType: str | None = None
    tenantId: str | None = None
    isGroup: bool | None = None


class _ChannelData(BaseModel):
    model_config = ConfigDict(extra="allow")
    tenant: _Account | None = None
    team: _Account | None = None
    channel: _Account | None = None
    eventType: str | None = None


class TeamsActivity(BaseModel):
    """What the intake and the handlers read of an activity, typed as the Bot Framework sends
    it; the rest is kept as it came. An activity that would crash them is a 4xx."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    type: str
    id: str | None = None
    serviceUrl: str
    text: str | None = None
    name: str | None = None
    replyToId: str | None = None
    from_: _Account | None = Field(default=None, alias="from")
    recipient: _Account | None = None
    conversation: _Conversation | None = None
    channelData: _ChannelData | None = None
    entities: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None
    membersAdded: list[_Account] | None = None
    membersRemoved: list[_Account] | None = None
    action: str | None = None


def tenant_of(activity: dict[str, Any]) -> str:
    return str(((activity.get("channelData") or {}).get("tenant") or {}).get("id")
               or (activity.get("conversation") or {}).get("tenantId") or "")


def mentions_bot(activity: dict[str, Any]) -> bool:
    bot = (activity.get("recipient") or {}).get("id")
    return any(e.get("type") == "mention" and isinstance(e.get("mentioned"), dict)
               and e["mentioned"].get("id") == bot
               for e in activity.get("entities") or [] if isinstance(e, dict))


def may_act(settings: Settings, person: dict[str, Any]) -> bool:
    """SRE_COPILOT_TEAMS_RESPONDERS (AAD object ids or Teams user ids); empty: anyone."""
    allowed = {u.strip().lower() for u in settings.teams_responders.split(",") if u.strip()}
    return not allowed or bool({str(person.get("aadObjectId", "")).lower(),
                                str(person.get("id", "")).lower()} & allowed)


def _unheard(activity: dict[str, Any]) -> bool:
    """A channel post that neither mentions the bot nor replies in a thread: with the
    ChannelMessage.Read.Group permission Teams sends every one; none is for the bot."""
    conversation = activity.get("conversation") or {}
    if activity.get("type") != "message" or conversation.get("conversationType") != "channel":
        return False
    root = str(conversation.get("id", "")).partition(";messageid=")[2]
    return not mentions_bot(activity) and root in ("", str(activity.get("id")))


@dataclass
class TeamsIntake:
    settings: Settings
    db: Database
    auth: BotFrameworkAuthentication
    wake: asyncio.Event
    _orgs: dict[str, int] = field(default_factory=dict)  # tenant → org, fixed once known

    async def receive(self, request: Request) -> Response:
        # Size, depth and storable strings before anything parses it, the JWT check included.
        body = parse_json(await read_body(request, limit=self.settings.max_body_bytes))
        if not isinstance(body, dict) or not body.get("type") or not body.get("serviceUrl"):
            return _error(400, "not a Bot Framework activity: `type` and `serviceUrl` are "
                               "required")
        validate(TeamsActivity, body, what="Bot Framework activity")
        try:
            activity = Activity().deserialize(body)
        except Exception as exc:  # msrest's DeserializationError and friends
            return _error(400, f"not a Bot Framework activity: {exc}")
        header = request.headers.get("Authorization")
        try:
            await self.auth.authenticate_request(activity, header or None)
        except Exception as exc:  # botbuilder raises PermissionError, jwt's errors, bare ones
            log.warning("Teams activity %s refused: %s: %s", body.get("id"),
                        type(exc).__name__, exc)
            return _error(401, "the activity's Bot Framework token is missing or invalid")
        kind = str(body["type"])
        pin = kind == "invoke" and body.get("name") == SUBMIT_ACTION and \
            (body.get("value") or {}).get("commandId") == ADD_TO_TIMELINE
        if kind not in KINDS or _unheard(body) or (
                kind == "invoke" and body.get("name") != CARD_ACTION and not pin):
            return Response(status_code=200)
        if kind == "invoke" and not pin and not may_act(self.settings, body.get("from") or {}):
            # Refused before anything is stored; Teams shows this to the person who clicked.
            return _invoke_message("Only the configured responders can do that.")
        async with database_answers():
            await self._store(body)
        if pin:  # the action's dialog closes; the bot confirms in the conversation
            return JSONResponse({})
        if kind == "invoke":
            return _invoke_message("Got it — updating the card.")
        return Response(status_code=200)

    async def _store(self, body: dict[str, Any]) -> None:
        tenant = tenant_of(body)
        if tenant not in self._orgs:
            self._orgs[tenant] = await org_of_tenant(self.db, self.settings, tenant)
        conversation = str((body.get("conversation") or {}).get("id", ""))
        key = f"{body['type']}:{conversation}:{body.get('id') or _digest(body)}"
        async with self.db.session() as session, session.begin():
            result = await enqueue(session, org_id=self._orgs[tenant], entries=[
                InboxEntry(SOURCE, key, {"activity": body})])
        if result.duplicates:
            log.info("Teams activity %s was already stored (a redelivery)", body.get("id"))
        self.wake.set()


async def org_of_tenant(db: Database, settings: Settings, tenant_id: str) -> int:
    """The org of a Teams tenant: the one recorded for it; else the default org, if that has
    no tenant yet (one company, one tenant); else an org of its own (a multi-tenant app
    installed by another company)."""
    async with db.session() as session, session.begin():
        org: Org | None = None
        if tenant_id:
            org = await org_for_teams_tenant(session, tenant_id=tenant_id)
        if org is None:
            org = await ensure_org(session, slug=settings.default_org, name=settings.default_org)
            if tenant_id and org.teams_tenant_id is None:
                org.teams_tenant_id = tenant_id
                session.add(org)
            elif tenant_id and org.teams_tenant_id != tenant_id:
                org = await ensure_org(session, slug=f"teams-{tenant_id.lower()}"[:64],
                                       name=tenant_id)
                org.teams_tenant_id = tenant_id
                session.add(org)
        assert org.id is not None
        return org.id


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _invoke_message(text: str) -> JSONResponse:
    return JSONResponse({"statusCode": 200, "type": MESSAGE_RESPONSE, "value": text})
