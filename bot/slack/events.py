"""Slack's stored inbox items (an Events API callback, a `/sre` command, a button, the "Add to
timeline" shortcut) as the conversation layer's events. Pure: what needs Slack's Web API (the
bot's own user id, a pinned message's text, a channel's name) is looked up by the handlers."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from bot.conversation.address import Address, Person
from bot.conversation.events import Clicked, Command, Pinned, Said
from bot.conversation.vocabulary import INCIDENT_ACTIONS
from bot.settings import Settings

PLATFORM = "slack"
MENTION = re.compile(r"<@[A-Z0-9]+>")
PIN = "pushpin"


def person(settings: Settings, user: str) -> Person:
    """A Slack user; SLACK_RESPONDERS (user ids) decides who may act, empty: anyone."""
    allowed = {u.strip() for u in settings.slack_responders.split(",") if u.strip()}
    return Person(id=user, name=user, mention=f"<@{user}>" if user else "someone",
                  may_act=not allowed or user in allowed)


def address(org_id: int, team: str, channel: str, thread: str = "") -> Address:
    return Address(PLATFORM, org_id, team, channel, thread)


def said(settings: Settings, org_id: int, body: dict[str, Any], bot_user: str) -> Said | None:
    """A mention, or a message in a thread (for the copilot if it takes part there); None for
    the copilot's own posts, edits, joins, channel chatter and a message whose `app_mention`
    event answers it."""
    event, team = body["event"], str(body.get("team_id", ""))
    if event.get("bot_id") or event.get("subtype") or event.get("user") == bot_user:
        return None
    text = str(event.get("text") or "")
    if event.get("type") == "message" and (not event.get("thread_ts")
                                           or f"<@{bot_user}>" in text):
        return None
    where = address(org_id, team, str(event["channel"]), event.get("thread_ts") or event["ts"])
    return Said(where, person(settings, str(event.get("user", ""))), MENTION.sub("", text).strip(),
                key=str(body.get("event_id")), addressed=event.get("type") == "app_mention")


def command(settings: Settings, org_id: int, body: dict[str, Any]) -> Command:
    """`/sre SUBCOMMAND …` in a channel (`/sre` alone asks for help)."""
    where = address(org_id, str(body.get("team_id", "")), str(body.get("channel_id", "")))
    word, _, rest = str(body.get("text", "")).strip().partition(" ")
    return Command(where, person(settings, str(body.get("user_id", ""))), word.lower() or "help",
                   rest.strip(), key=str(body.get("trigger_id")))


def clicked(settings: Settings, org_id: int, body: dict[str, Any]) -> Clicked:
    """A button: the incident ones carry the incident's id, the hypothesis ones JSON."""
    action = body["actions"][0]
    channel = body.get("channel") or body.get("container") or {}
    message = body.get("message") or {}
    where = address(org_id, str((body.get("team") or {}).get("id", "")),
                    str(channel.get("id") or channel.get("channel_id", "")),
                    str(message.get("thread_ts") or message.get("ts") or ""))
    action_id, raw = str(action.get("action_id")), action.get("value") or ""
    if action_id in INCIDENT_ACTIONS:
        value: dict[str, Any] = {"incident": raw}
    else:
        try:
            value = json.loads(raw or "{}")
        except ValueError:
            value = {}
    return Clicked(where, person(settings, str((body.get("user") or {}).get("id", ""))),
                   action_id, value if isinstance(value, dict) else {},
                   key=f"{body.get('trigger_id')}:{action.get('action_ts')}",
                   card=str(message.get("ts") or ""))


def pinned(settings: Settings, org_id: int, *, team: str, channel: str, ts: str, text: str,
           user: str, key: str) -> Pinned:
    return Pinned(address(org_id, team, channel), person(settings, user), ts, text,
                  datetime.fromtimestamp(float(ts or time.time()), UTC), key)


def shortcut(settings: Settings, org_id: int, body: dict[str, Any]) -> Pinned:
    """The "Add to timeline" message shortcut."""
    message = body.get("message") or {}
    return pinned(settings, org_id, team=str((body.get("team") or {}).get("id", "")),
                  channel=str((body.get("channel") or {}).get("id", "")),
                  ts=str(message.get("ts", "")), text=str(message.get("text", "")),
                  user=str((body.get("user") or {}).get("id", "")),
                  key=str(body.get("trigger_id")))
