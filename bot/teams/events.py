"""Teams' stored activities as the conversation layer's events: a message for the bot, a card's
button (`Action.Execute` or `Action.Submit`), the "Add to timeline" message action — and the
`Address` of the conversation an activity came from (a channel, a reply chain under a root
post, or a chat). Pure functions over the activity's JSON."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

from bot.conversation.address import Address, Person
from bot.conversation.events import Clicked, Pinned, Said
from bot.settings import Settings
from bot.teams.intake import (
    ADD_TO_TIMELINE,
    CARD_ACTION,
    SUBMIT_ACTION,
    may_act,
    mentions_bot,
    tenant_of,
)

PLATFORM = "teams"
AT = re.compile(r"<at>[^<]*</at>")
TAG = re.compile(r"<[^>]+>")
THREAD = ";messageid="


def address(org_id: int, activity: dict[str, Any]) -> Address:
    """Where the activity happened: its team (the tenant for a chat), its channel (a chat's own
    id for chats) and the root of its reply chain."""
    data = activity.get("channelData") or {}
    conversation = str((activity.get("conversation") or {}).get("id", ""))
    channel = str((data.get("channel") or {}).get("id") or conversation.partition(THREAD)[0])
    tenant = tenant_of(activity)
    return Address(PLATFORM, org_id, str((data.get("team") or {}).get("id") or tenant), channel,
                   conversation.partition(THREAD)[2], tenant, str(activity.get("serviceUrl", "")))


def conversation_id(where: Address) -> str:
    """The Bot Framework conversation of a place: `<channel>;messageid=<root>` for a thread."""
    return f"{where.channel}{THREAD}{where.thread}" if where.thread else where.channel


def team_of(where: Address) -> str:
    """The place's team; "" for a 1:1 or group chat."""
    return where.workspace if where.workspace != where.tenant else ""


def person(settings: Settings, activity: dict[str, Any]) -> Person:
    who = activity.get("from") or {}
    name = str(who.get("name") or who.get("id") or "someone")
    return Person(id=str(who.get("id", "")), name=name, mention=name,
                  may_act=may_act(settings, who))


def key_of(activity: dict[str, Any]) -> str:
    return f"{(activity.get('conversation') or {}).get('id', '')}:{activity.get('id')}"


def said(settings: Settings, org_id: int, activity: dict[str, Any]) -> Said | None:
    """A message in a chat with the bot or mentioning it (addressed), or a reply in a thread
    (for the bot if it takes part there); None for a channel post that is neither."""
    where = address(org_id, activity)
    personal = (activity.get("conversation") or {}).get("conversationType") == "personal"
    addressed = personal or mentions_bot(activity)
    if not addressed and (not where.thread or where.thread == activity.get("id")):
        return None
    return Said(where, person(settings, activity),
                AT.sub("", str(activity.get("text") or "")).strip(), key_of(activity), addressed)


def clicked(settings: Settings, org_id: int, activity: dict[str, Any]) -> Clicked | None:
    """A card's button: `Action.Execute` (an `adaptiveCard/action` invoke) or `Action.Submit`
    (a message with a value and no text); None for anything else."""
    if activity.get("type") == "invoke" and activity.get("name") == CARD_ACTION:
        action = (activity.get("value") or {}).get("action") or {}
        verb, data = str(action.get("verb", "")), action.get("data") or {}
    elif activity.get("type") == "message" and activity.get("value") \
            and not activity.get("text"):
        verb, data = str(activity["value"].get("verb", "")), activity["value"]
    else:
        return None
    return Clicked(address(org_id, activity), person(settings, activity), verb,
                   data if isinstance(data, dict) else {}, key_of(activity),
                   card=str(activity.get("replyToId") or ""))


def pinned(settings: Settings, org_id: int, activity: dict[str, Any]) -> Pinned | None:
    """The "Add to timeline" message action: the message (and the note typed with it)."""
    value = activity.get("value") or {}
    if activity.get("name") != SUBMIT_ACTION or value.get("commandId") != ADD_TO_TIMELINE:
        return None
    message = value.get("messagePayload") or {}
    text = html.unescape(TAG.sub(" ", str((message.get("body") or {}).get("content") or "")))
    note = str((value.get("data") or {}).get("note") or "").strip()
    author = ((message.get("from") or {}).get("user") or {}).get("displayName")
    shown = " ".join(text.split())
    shown = (f"{author}: " if author else "") + shown + (f" — {note}" if note else "")
    try:
        at = datetime.fromisoformat(str(message.get("createdDateTime")).replace("Z", "+00:00"))
    except ValueError:
        at = datetime.now(UTC)
    return Pinned(address(org_id, activity), person(settings, activity),
                  str(message.get("id") or activity.get("id")), shown,
                  at if at.tzinfo else at.replace(tzinfo=UTC), key_of(activity))
