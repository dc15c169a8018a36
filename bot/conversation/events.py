"""What people did in a chat, parsed at the platform's edge into one shape: a message for the
copilot (`Said`), a command (`Command`), a button (`Clicked`), a message put on the timeline
(`Pinned`), or a channel the copilot was added to or saw created (`ChannelSeen`). Every event
has a `key`, the platform id that caused it: the ledger posts each answer to it once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.conversation.address import Address, Person


@dataclass(frozen=True)
class Said:
    """A message for the copilot: a mention (`addressed`), a direct message (`addressed`), or a
    reply in a thread — which is for the copilot only if it takes part in that thread."""

    where: Address
    who: Person
    text: str
    key: str
    addressed: bool = True


@dataclass(frozen=True)
class Command:
    """A command (`/sre status` in Slack, `@SRE Copilot status` anywhere): `word` and the rest."""

    where: Address
    who: Person
    word: str
    rest: str
    key: str


@dataclass(frozen=True)
class Clicked:
    """A button: its action id (see `vocabulary`), the data it carries, and the message it was
    on (`card`), which may be refreshed."""

    where: Address
    who: Person
    action: str
    value: dict[str, Any]
    key: str
    card: str = ""


@dataclass(frozen=True)
class Pinned:
    """A message to put on the incident's timeline (📌 in Slack, "Add to timeline")."""

    where: Address
    who: Person
    message_id: str
    text: str
    at: datetime
    key: str


@dataclass(frozen=True)
class ChannelSeen:
    """A channel the copilot joined or saw created, with its name and topic: one named after an
    incident (`inc-12-checkout`) is linked to it and briefed."""

    where: Address
    name: str
    key: str
    topic: str = ""


ChatEvent = Said | Command | Clicked | Pinned | ChannelSeen
