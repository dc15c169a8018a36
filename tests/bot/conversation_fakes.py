"""A recording `Conversation` and a plain `Renderer` for the platform-neutral conversation
tests: every post, update, private word, upload and thread is kept in order, as a person in the
chat would see them, and a message is a small dict that says what it shows."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.agent.state import Answer
from bot.conversation.address import Address, Person
from bot.conversation.ports import Renderer
from knowledge.alerts import Alert
from knowledge.incidents import Incident
from skills.digest.report import Digest
from skills.timeline import TimelineEntry, TimelineView
from skills.types import Claim

Shown = dict[str, Any]


class Refused(Exception):
    """What the fake platform raises when told to; `gone` ones it never accepts again."""

    def __init__(self, why: str, *, gone: bool) -> None:
        super().__init__(why)
        self.gone = gone


@dataclass
class Seen:
    kind: str  # post | update | private | upload | attach | thread
    where: Address
    message: Shown
    id: str = ""
    to: str = ""  # the person a private message was for


@dataclass
class RecordingConversation:
    platform: str
    private: bool = True  # whether the platform can tell one person alone
    command_form: str = "`/x {}`"
    seen: list[Seen] = field(default_factory=list)
    verdicts: list[tuple[str, int, str, str]] = field(default_factory=list)
    known: bool = True  # whether the platform still knows linked places
    fail_next: list[Refused] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _check(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    async def post(self, where: Address, message: Shown) -> str:
        self._check()
        posted = Seen("post", where, message, id=f"m{next(self._ids)}")
        self.seen.append(posted)
        return posted.id

    async def update(self, where: Address, message_id: str, message: Shown) -> None:
        self._check()
        self.seen.append(Seen("update", where, message, id=message_id))

    async def tell_privately(self, where: Address, who: Person, message: Shown) -> bool:
        if self.private:
            self.seen.append(Seen("private", where, message, to=who.id))
        return self.private

    async def upload(self, where: Address, path: Path, *, title: str) -> None:
        self.seen.append(Seen("upload", where, {"kind": "file", "name": path.name}))

    async def attach(self, where: Address, *, text: str, filename: str, title: str) -> None:
        self.seen.append(Seen("attach", where, {"kind": "file", "name": filename,
                                                "text": text}))

    async def start_thread(self, channel: Address, message: Shown, *, key: str = ""
                           ) -> Address:
        self._check()
        root = f"m{next(self._ids)}"
        self.seen.append(Seen("thread", channel, message, id=root))
        return channel.in_thread(root)

    async def started_thread(self, channel: Address, key: str) -> Address | None:
        return None

    async def mark_verdict(self, where: Address, card: str, number: int, verdict: str,
                           by: str) -> None:
        self.verdicts.append((card, number, verdict, by))

    async def address_of(self, org_id: int, workspace: str, channel: str,
                         thread: str = "") -> Address | None:
        return Address(self.platform, org_id, workspace, channel, thread) if self.known else None

    async def ready_for_new_incidents(self, org_id: int) -> bool:
        return True

    async def place_new_incident(self, org_id: int, incident: Incident) -> Address | None:
        return Address(self.platform, org_id, "W1", f"inc-{incident.id}")

    def gives_up(self, exc: BaseException) -> bool:
        return isinstance(exc, Refused) and exc.gone

    # ---- reading what was shown ---------------------------------------------------------------

    def shown(self, kind: str | None = None) -> list[Shown]:
        return [s.message for s in self.seen if kind is None or s.message.get("kind") == kind]

    def answers(self) -> list[Seen]:
        return [s for s in self.seen if s.message.get("kind") == "answer"]


class Plain:
    """Each message as a dict naming what it is and what it shows."""

    def answer(self, answer: Answer, *, incident_id: int | None = None) -> list[Shown]:
        return [{"kind": "answer", "text": answer.text, "incident": incident_id,
                 "claims": [c.statement for c in answer.claims],
                 "evidence": [e.id for e in answer.evidence]}]

    def incident(self, incident: Incident, alerts: Sequence[Alert]) -> Shown:
        return {"kind": "incident", "ref": incident.ref, "status": incident.status,
                "alerts": [a.alertname for a in alerts]}

    def timeline(self, view: TimelineView) -> list[Shown]:
        return [{"kind": "timeline", "events": [e.kind for e in view.events]}]

    def catchup(self, incident: Incident, alerts: Sequence[Alert], *,
                hypotheses: Sequence[Claim], responders: Sequence[str],
                tried: Sequence[TimelineEntry]) -> list[Shown]:
        return [{"kind": "catchup", "ref": incident.ref, "status": incident.status,
                 "hypotheses": [h.statement for h in hypotheses],
                 "responders": list(dict.fromkeys(responders)),
                 "tried": [t.summary for t in tried]}]

    def progress(self, steps: Sequence[tuple[str, str]]) -> Shown:
        return {"kind": "progress", "steps": list(steps)}

    def notice(self, text: str) -> Shown:
        return {"kind": "notice", "text": text}

    def error(self, text: str) -> Shown:
        return {"kind": "error", "text": text}

    def postmortem(self, markdown: str, *, ref: str) -> list[Shown]:
        return [{"kind": "postmortem", "ref": ref}]

    def digest(self, digest: Digest) -> list[Shown]:
        return [{"kind": "digest"}]


def plain_renderer() -> Renderer:
    plain = Plain()
    return Renderer(inline_images=False, answer=plain.answer, incident=plain.incident,
                    timeline=plain.timeline, catchup=plain.catchup, progress=plain.progress,
                    notice=plain.notice, error=plain.error, postmortem=plain.postmortem,
                    digest=plain.digest)
