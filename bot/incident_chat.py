"""What every chat adapter does about incidents, whatever the platform: keep an
investigation's hypotheses on the incident's record (each with the evidence it cites, whole),
record a Confirm / Reject (on the stored hypothesis and on the timeline), and — in
`IncidentChat`, the base of Slack's and Teams' handlers — keep posts from going out twice, find
and link incidents, and report an investigation's progress."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.agent.calls import ProgressEvent
from bot.agent.runtime import Agent
from bot.agent.state import Answer, NewIncident
from bot.chat_worker import NotYet
from bot.logs import incident_scope
from bot.settings import Settings
from knowledge.alerts import Alert, alerts_of_incident
from knowledge.correlation import SEVERITY_RANK
from knowledge.db import Database
from knowledge.hypotheses import (
    HypothesisStatus,
    add_hypothesis,
    list_hypotheses,
    record_feedback,
)
from knowledge.incidents import Incident, IncidentNotFound, find_incident
from knowledge.outbox import (
    OutboxMessage,
    OutboxStatus,
    enqueue_message,
    find_message,
    mark_failed,
    mark_sent,
    take_over,
)
from knowledge.threads import link_thread
from knowledge.timeline import add_event
from knowledge.types import utcnow

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a released claim: older than any lease

log = logging.getLogger(__name__)


async def keep_hypotheses(db: Database, *, org_id: int, incident_id: int,
                          answer: Answer) -> None:
    """The briefing's hypotheses become the incident's record, so Confirm / Reject and the
    post-mortem refer to them. Called before they are posted: a quick click finds them."""
    by_id = {e.id: e for e in answer.evidence}
    async with db.session() as session, session.begin():
        known = {h.statement for h in await list_hypotheses(
            session, org_id=org_id, incident_id=incident_id)}
        for claim in answer.claims:
            evidence = [by_id[i].model_dump(mode="json") for i in claim.evidence_ids
                        if i in by_id]
            if claim.statement in known or not evidence:
                continue
            await add_hypothesis(session, org_id=org_id, incident_id=incident_id,
                                 statement=claim.statement,
                                 confidence=claim.confidence or 0.0, evidence=evidence,
                                 cause={**(claim.cause or {}), "next_check": claim.next_check})


async def give_feedback(db: Database, *, org_id: int, incident_id: int, statement: str,
                        verdict: str, user: str, key: str, number: Any, source: str) -> bool:
    """A verdict ("confirmed" / "rejected") on the stored hypothesis (matched by its statement,
    which buttons carry cut short) and on the timeline, once per `key`. True if new."""
    async with db.session() as session, session.begin():
        stored = next((h for h in await list_hypotheses(
            session, org_id=org_id, incident_id=incident_id)
            if statement and h.statement.startswith(statement)), None)
        if stored is not None and stored.id is not None:
            await record_feedback(
                session, org_id=org_id, hypothesis_id=stored.id, by=user,
                status=HypothesisStatus.CONFIRMED if verdict == "confirmed"
                else HypothesisStatus.REJECTED)
        event = await add_event(session, org_id=org_id, incident_id=incident_id,
                                occurred_at=datetime.now(UTC), kind="hypothesis_feedback",
                                source=source,
                                summary=f"Hypothesis {number} {verdict} by {user}: {statement}",
                                data={"verdict": verdict, "user": user, "statement": statement},
                                dedupe_key=f"{source}:{key}")
        return event is not None


Progress = Callable[[ProgressEvent], Awaitable[None]]


@dataclass
class IncidentChat:
    """The platform-neutral half of a chat adapter's handlers (Slack's and Teams' derive from
    it): the outbox ledger that keeps a post from going out twice, finding and linking an
    incident, what an investigation starts from, and a thread's memory."""

    db: Database
    settings: Settings
    agent: Agent
    # New incidents' investigations at once, at most `chat_workers` (set in __post_init__):
    # their cards go out first, all of them, and no investigation waits for another's.
    investigating: asyncio.Semaphore = field(init=False, repr=False)
    # Deliveries in flight, by incident: a round starts what is not already going.
    _delivering: dict[int | None, asyncio.Task[int]] = field(init=False, repr=False)

    platform: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.investigating = asyncio.Semaphore(self.settings.chat_workers)
        self._delivering = {}

    async def deliver_queued(self, queued: list[OutboxMessage],
                             deliver_one: Callable[[OutboxMessage], Awaitable[bool]], *,
                             wait: bool) -> int:
        """Deliver the engine's queued messages with `deliver_one` (True: delivered): one
        incident's in order — its card before its status changes — and different incidents at
        once, so in an alert storm thirty new incidents' cards do not queue behind each other's
        investigations. An incident whose delivery is still going is left for a later round.
        A failure is logged and leaves that incident's later messages for the next round.

        With `wait`, returns how many were delivered once all are done (the demo and tests).
        Without, returns 0 at once (the worker's loop, so a new incident never waits for an
        older one's investigation): the loop then polls rather than spins — a started task
        may find another replica holding the claim, which is no progress to hurry after."""
        by_incident: dict[int | None, list[OutboxMessage]] = {}
        for msg in queued:
            if msg.incident_id not in self._delivering:
                by_incident.setdefault(msg.incident_id, []).append(msg)
        started = []
        for incident_id, messages in by_incident.items():
            task = asyncio.create_task(self._in_order(messages, deliver_one),
                                       name=f"{self.platform}-deliver-{incident_id}")
            self._delivering[incident_id] = task
            task.add_done_callback(functools.partial(self._delivered, incident_id))
            started.append(task)
        if not wait:
            return 0
        return sum(await asyncio.gather(*started))

    def _delivered(self, incident_id: int | None, _task: asyncio.Task[int]) -> None:
        self._delivering.pop(incident_id, None)

    async def _in_order(self, messages: list[OutboxMessage],
                        deliver_one: Callable[[OutboxMessage], Awaitable[bool]]) -> int:
        done = 0
        for msg in messages:
            try:
                with incident_scope(msg.incident_id):
                    done += await deliver_one(msg)
            except Exception:
                log.exception("delivering %s to %s failed; retried next round", msg.key,
                              self.platform)
                break
        return done

    async def finish_deliveries(self, seconds: float) -> None:
        """At shutdown: let the deliveries in flight finish for up to `seconds`, then cancel
        the rest — each hands its claim back, so another replica takes it at once."""
        tasks = list(self._delivering.values())
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def claim_post(self, org_id: int, key: str, text: str) -> bool:
        """True the first time `key` is seen, or when an earlier attempt did not finish
        (a worker died mid-post); False once it was posted or given up."""
        async with self.db.session() as session, session.begin():
            found = await self._marker(session, org_id, key, text)
            return found is None or found.status == OutboxStatus.PENDING.value

    async def progress_of(self, org_id: int, key: str) -> str | None:
        """The progress message an earlier, unfinished attempt at the post `key` left (see
        `keep_progress`): a retry updates it into the answer rather than leave it behind."""
        async with self.db.session() as session:
            found = await find_message(session, org_id=org_id, key=key)
        return str(found.payload["progress"]) if found and found.payload.get("progress") else None

    async def keep_progress(self, org_id: int, key: str, message_id: str) -> None:
        """Note on the claimed post `key` which message shows its progress."""
        async with self.db.session() as session, session.begin():
            found = await find_message(session, org_id=org_id, key=key)
            if found is not None:
                found.payload = {**found.payload, "progress": message_id}
                session.add(found)

    async def claim_delivery(self, org_id: int, key: str, text: str) -> bool:
        """Claim the delivery of an outbox message for this replica. Every replica's worker
        scans the same undelivered messages, so unlike `claim_post` a pending marker is not
        taken over at once: only once its claim (the marker's `created_at`) is older than
        `chat_lease_seconds` — its replica died — and then by one replica only (the update
        compares the old claim time). `release_delivery` hands it back after a failure."""
        async with self.db.session() as session, session.begin():
            found = await self._marker(session, org_id, key, text)
            if found is None:
                return True
            if found.status != OutboxStatus.PENDING.value:
                return False
            if utcnow() - found.created_at < timedelta(seconds=self.settings.chat_lease_seconds):
                return False
            return await take_over(session, message_id=found.id or 0,
                                   claimed_at=found.created_at)

    async def _marker(self, session: AsyncSession, org_id: int, key: str, text: str
                      ) -> OutboxMessage | None:
        """None if this call created the marker row for `key`; else the row already there."""
        created = await enqueue_message(session, org_id=org_id, key=key,
                                        kind=f"{self.platform}_post", text=text)
        if created is not None:
            return None
        return await find_message(session, org_id=org_id, key=key)

    async def release_delivery(self, org_id: int, key: str) -> None:
        """Hand a claimed delivery back (it failed and will be retried next round)."""
        async with self.db.session() as session, session.begin():
            found = await find_message(session, org_id=org_id, key=key)
            if found is not None and found.status == OutboxStatus.PENDING.value:
                found.created_at = EPOCH
                session.add(found)

    async def mark_posted(self, org_id: int, key: str, error: str | None = None) -> None:
        """Posted; or, with `error`, given up for good (kept with the error)."""
        async with self.db.session() as session, session.begin():
            found = await find_message(session, org_id=org_id, key=key)
            if found is not None:
                if error is None:
                    mark_sent(found)
                else:
                    mark_failed(found, error)
                session.add(found)

    async def incident_by_id(self, org_id: int, incident_id: int | None) -> Incident | None:
        """The incident, or with no id the newest open one; None if there is none."""
        try:
            async with self.db.session() as session:
                return await find_incident(session, org_id=org_id, incident_id=incident_id)
        except IncidentNotFound:
            return None

    async def takes_part(self, thread_id: str) -> bool:
        """Whether the bot has answered in this thread (its memory has it)."""
        saver = self.agent.graph.checkpointer
        config = {"configurable": {"thread_id": thread_id}}
        return saver is not None and await saver.aget_tuple(config) is not None  # type: ignore[union-attr, arg-type]

    async def typed_feedback(self, org_id: int, thread_id: str, incident_id: int, *, key: str,
                             user: str) -> None:
        """"hypothesis 2 is confirmed" typed in an incident's thread counts like the button."""
        state = await self.agent.graph.aget_state({"configurable": {"thread_id": thread_id}})
        given = (state.values.get("feedback") or [None])[-1]
        if given:
            await give_feedback(self.db, org_id=org_id, incident_id=incident_id,
                                statement=str(given["claim"].get("statement", "")),
                                verdict=str(given["verdict"]), user=user, key=key,
                                number=int(given["hypothesis"]), source=self.platform)

    async def link_named(self, org_id: int, name: str, *, workspace: str, channel: str
                         ) -> Incident | None:
        """Link a channel to the incident its name (or topic) names (`inc-12…`), else to the
        newest open one; None if there is none. Raises `NotYet` when the named incident is
        still being opened by the worker (the item is retried)."""
        number = re.search(r"(?:inc|incident)[-_ ]?(\d+)", name, re.I)
        async with self.db.session() as session, session.begin():
            try:
                incident = await find_incident(session, org_id=org_id, incident_id=int(
                    number.group(1)) if number else None)
            except IncidentNotFound:
                if number:
                    raise NotYet(f"INC-{number.group(1)} is not recorded yet") from None
                return None
            assert incident.id is not None
            await link_thread(session, org_id=org_id, incident_id=incident.id,
                              platform=self.platform, workspace_id=workspace, channel_id=channel)
            return incident

    async def investigation(self, org_id: int, incident: Incident
                            ) -> tuple[list[Alert], NewIncident]:
        """The incident's alerts, and what its investigation starts from: the most severe of
        its firing alerts (the earliest among equals), as Alertmanager sent it."""
        assert incident.id is not None
        async with self.db.session() as session:
            alerts = await alerts_of_incident(session, org_id=org_id, incident_id=incident.id)
        ordered = sorted(alerts, key=lambda a: (a.status != "firing",
                                                -SEVERITY_RANK.get((a.severity or "").lower(), 0),
                                                a.starts_at))
        first = ordered[0] if ordered else None
        summary = next((str(a.annotations["summary"]) for a in ordered
                        if a.annotations.get("summary")), None)
        return alerts, NewIncident(
            service=incident.service or "unknown", title=incident.title, summary=summary,
            alertname=first.alertname if first else None, at=incident.triggered_at,
            incident_id=incident.id, pagerduty_id=incident.pagerduty_incident_id,
            app_service=first.service if first else None,
            alerts=[{"name": a.alertname, "labels": a.labels, "annotations": a.annotations,
                     "generator_url": a.generator_url, "starts_at": a.starts_at.isoformat()}
                    for a in ordered[:3]])


def progress_reporter(show: Callable[[list[tuple[str, str]]], Awaitable[None]], *,
                      every: float, on_end: bool) -> Progress:
    """A progress callback for `Agent.turn` that shows each tool's state (running, ok,
    failed) through `show`, at most once per `every` seconds (chat updates are rate-limited),
    and also when a tool ends if `on_end`."""
    steps: dict[str, str] = {}
    last = 0.0

    async def on_progress(event: ProgressEvent) -> None:
        nonlocal last
        steps[event.tool] = "running" if event.kind == "start" else (
            "ok" if event.ok else "failed")
        now = time.monotonic()
        if now - last >= every or (on_end and event.kind == "end"):
            last = now
            await show(list(steps.items()))

    return on_progress
