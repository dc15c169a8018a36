"""What a chat platform must offer the conversation layer: a `Conversation` that posts, updates
and uploads in a place, and a `Renderer` that lays the copilot's content out in the platform's
format (Block Kit, Adaptive Cards). The layer never names a platform; adapters implement these."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.conversation.address import Address, Person
from knowledge.alerts import Alert
from knowledge.incidents import Incident
from skills.digest.report import Digest
from skills.timeline import TimelineView

Message = Any  # a platform's message: a Block Kit `Message`, an Adaptive `Card`


@dataclass(frozen=True)
class Renderer:
    """The copilot's content in one platform's format, a pure function each: Block Kit
    (`bot.slack.blocks.RENDERER`) and Adaptive Cards (`bot.teams.cards.RENDERER`)."""

    inline_images: bool  # charts go inside the answer; else they are uploaded beside it
    answer: Callable[..., list[Message]]  # (answer, *, incident_id=None)
    incident: Callable[[Incident, Sequence[Alert]], Message]
    timeline: Callable[[TimelineView], list[Message]]
    catchup: Callable[..., list[Message]]  # (incident, alerts, *, hypotheses, responders, tried)
    progress: Callable[[Sequence[tuple[str, str]]], Message]  # (tool, state) pairs
    notice: Callable[[str], Message]
    error: Callable[[str], Message]
    postmortem: Callable[..., list[Message]]  # (markdown, *, ref)
    digest: Callable[[Digest], list[Message]]


class Conversation(Protocol):
    """Posting in one platform. Failures raise the platform's error; `gives_up` says which of
    them retrying cannot fix (the copilot was removed, the message was refused)."""

    platform: str
    command_form: str  # how a command is written: "`/sre {}`", "**{}**"

    async def post(self, where: Address, message: Message) -> str:
        """Post; the new message's id."""

    async def update(self, where: Address, message_id: str, message: Message) -> None: ...

    async def tell_privately(self, where: Address, who: Person, message: Message) -> bool:
        """Show `message` to `who` alone; False where the platform cannot (then the layer
        posts it as a notice)."""

    async def upload(self, where: Address, path: Path, *, title: str) -> None:
        """A file (a chart) beside the messages; only called when images are not inline."""

    async def attach(self, where: Address, *, text: str, filename: str, title: str) -> None:
        """A document (the post-mortem draft) in the place, as a file where the platform can."""

    async def start_thread(self, channel: Address, message: Message, *, key: str = ""
                           ) -> Address:
        """Post `message` as a thread's root in the channel; the thread. `key` tags the post
        where the platform keeps tags, for `started_thread`."""

    async def started_thread(self, channel: Address, key: str) -> Address | None:
        """The thread an earlier attempt at the post `key` started, if the platform can tell
        (a replica killed after posting, before noting it); None if it cannot or there is
        none."""

    async def mark_verdict(self, where: Address, card: str, number: int, verdict: str,
                           by: str) -> None:
        """Show on the message `card` that hypothesis `number` was judged (or leave it)."""

    async def address_of(self, org_id: int, workspace: str, channel: str,
                         thread: str = "") -> Address | None:
        """A linked place as an address; None if the platform no longer knows it."""

    async def ready_for_new_incidents(self, org_id: int) -> bool:
        """Whether a new incident can be placed now (Teams: its channel is known)."""

    async def place_new_incident(self, org_id: int, incident: Incident) -> Address | None:
        """The channel where a new incident is briefed; None to skip it."""

    def gives_up(self, exc: BaseException) -> bool:
        """True if `exc` is a failure retrying will not fix."""
