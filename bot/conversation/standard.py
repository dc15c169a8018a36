"""The copilot's commands, the same on every platform — `/sre status` in Slack and
`@SRE Copilot status` (Slack or Teams) are one command with one argument rule, incident rule
and permission — and what each does, through the `Chat` it is given."""

from __future__ import annotations

from collections.abc import Iterable

from bot.agent.state import Answer
from bot.conversation import records
from bot.conversation.chat import Chat
from bot.conversation.commands import CommandTable, Spec, Takes
from bot.conversation.events import Command
from bot.conversation.ports import Message
from bot.conversation.vocabulary import STATUS_OF
from knowledge.alerts import alerts_of_incident
from knowledge.incidents import Incident, parse_incident_ref
from skills.timeline import incident_timeline


async def _help(chat: Chat, event: Command, _incident: None) -> None:
    await chat.help(event.where, event.who, event.key)


async def _status(chat: Chat, event: Command, incident: Incident) -> None:
    async with chat.db.session() as session:
        alerts = await alerts_of_incident(session, org_id=event.where.org_id,
                                          incident_id=incident.id or 0)
    await chat.once(event.where, chat.ledger.marker(event.key, "status"),
                    chat.renderer.incident(incident, alerts))


async def _catchup(chat: Chat, event: Command, incident: Incident) -> None:
    seen = await records.catch_up(chat.db, org_id=event.where.org_id,
                                  incident_id=incident.id or 0)
    for i, msg in enumerate(chat.renderer.catchup(
            incident, seen.alerts, hypotheses=seen.hypotheses, responders=seen.responders,
            tried=seen.tried)):
        await chat.once(event.where, chat.ledger.marker(event.key, f"catchup:{i}"), msg)


async def _hypotheses(chat: Chat, event: Command, incident: Incident) -> None:
    await chat.answer(event.where, f"/hypotheses {incident.service or ''}".strip(),
                      key=event.key, who=event.who)


async def _timeline(chat: Chat, event: Command, incident: Incident) -> None:
    async with chat.db.session() as session:
        view = await incident_timeline(session, org_id=event.where.org_id,
                                       incident_id=incident.id or 0)
    for i, msg in enumerate(chat.renderer.timeline(view)):
        await chat.once(event.where, chat.ledger.marker(event.key, f"timeline:{i}"), msg)


async def _postmortem(chat: Chat, event: Command, incident: Incident) -> None:
    """A short summary in the place, and the whole draft as a document."""
    ref = incident.ref

    def render(answer: Answer) -> list[Message]:
        if answer.tools and answer.tools[0].ok:
            return chat.renderer.postmortem(answer.text, ref=ref)
        return chat.renderer.answer(answer)

    answer = await chat.answer(event.where, f"/postmortem {ref}", key=event.key,
                               render=render, who=event.who)
    if answer is not None and answer.tools and answer.tools[0].ok:
        await chat.conversation.attach(event.where, text=answer.text,
                                       filename=f"{ref}-postmortem.md",
                                       title=f"{ref} post-mortem draft")


async def _runbook(chat: Chat, event: Command, _incident: None) -> None:
    await chat.answer(event.where, f"/runbook {event.rest}", key=event.key, who=event.who)


async def _ask(chat: Chat, event: Command, _incident: None) -> None:
    await chat.answer(event.where, event.rest, key=event.key, who=event.who)


async def _merge(chat: Chat, event: Command, incident: Incident) -> None:
    try:
        into = parse_incident_ref(event.rest)
    except ValueError as exc:
        await chat.tell(event.where, event.who, str(exc), key=event.key)
        return
    await chat.merge(event.where, incident, into, event.who, key=event.key)


async def _split(chat: Chat, event: Command, incident: Incident) -> None:
    await chat.split(event.where, incident, event.rest, event.who, key=event.key)


async def _move(chat: Chat, event: Command, incident: Incident) -> None:
    await chat.move(event.where, incident, STATUS_OF[event.word], event.who, key=event.key)


MOVES = {"ack": "Acknowledge the incident", "mitigated": "Mark the incident mitigated",
         "resolve": "Resolve the incident"}
COMMANDS: tuple[Spec, ...] = (
    Spec("help", _help, about="What I can do"),
    Spec("status", _status, incident=True, about="The incident's status card"),
    Spec("catchup", _catchup, incident=True,
         about="State, hypotheses, who is on it, what was tried"),
    Spec("hypotheses", _hypotheses, incident=True,
         about="Ranked root-cause hypotheses with their evidence"),
    Spec("timeline", _timeline, incident=True, about="The incident's timeline"),
    Spec("postmortem", _postmortem, incident=True, about="Draft the post-mortem"),
    Spec("runbook", _runbook, Takes.ARGUMENT, "ALERT",
         about="The runbook for an alert: runbook ALERT"),
    Spec("ask", _ask, Takes.ARGUMENT, "QUESTION", about="Ask anything: ask QUESTION"),
    *(Spec(word, _move, incident=True, acts=True, about=MOVES[word]) for word in STATUS_OF),
    Spec("merge", _merge, Takes.MAYBE, "INC-N", incident=True, acts=True,
         about="Merge this incident into INC-N (or the one suggested)"),
    Spec("split", _split, Takes.ARGUMENT, "ALERTNAME", incident=True, acts=True,
         about="Split an alert off this incident into a new one"),
)


def standard_commands(extra: Iterable[Spec] = ()) -> CommandTable:
    """The copilot's commands, and a platform's own (`extra`)."""
    return CommandTable((*COMMANDS, *extra))
