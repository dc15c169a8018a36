"""The incident engine's intake half: turns alert and paging signals into incidents, alerts,
timeline events and outbox messages.

An alert joins the open incident it shares a cause with — whatever Alertmanager group it came
in — or opens its own (`knowledge.relate` judges the tie, over the cluster's topology when the
caller has it). Noise never opens a card (`knowledge.noise`): an info alert alone, a flapping or
chronic alert is kept on a quiet noise incident of its own — a flapping one only until it has
fired for the short span without a break (then it is not flapping: `release_held` places it
like a held alert); a quiet one-off whose CronJob fails again on its next run becomes a real
incident (`relate.recurred`). A warning is held until it has
lasted the hold (`release_held` places it when due) and becomes noise if it resolves sooner.
An incident a warning opens alone waits for its card until it is confirmed (another alert
joins, or the warning outlasts the short span; `confirm_due` posts it when due); one whose
warning resolves first turns into a quiet noise incident. Both waits end early for a firing
Prometheus shows still firing (`outlasted`, `due_now`): then the copilot need not wait for
Alertmanager's next notification to know it did not resolve.
Heartbeats (Watchdog) are never incidents. A PagerDuty incident joins the incident whose group
key hash is its dedup key (what Alertmanager's PagerDuty integration sends), or opens its own. A
new incident gets the recent changes of its service on its timeline (`knowledge.change_links`).
Every write here is idempotent, and timestamps are the sources' own, so redelivered or late
webhooks change nothing and figures stay true.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, overload

from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.alerts import Alert, alerts_of_incident, find_alert
from knowledge.change_links import link_recent_changes
from knowledge.incidents import (
    Incident,
    IncidentStatus,
    advance,
    get_incident,
    group_key_hash,
    incident_for_pagerduty,
    reopen,
)
from knowledge.merging import join_before_its_card, merge, split_off
from knowledge.noise import (
    HEARTBEATS,
    QUIET,
    NoiseRules,
    confirm_at,
    is_critical,
    noise_key,
    on_arrival,
    outlasted_short,
    release_at,
    resolved_within_hold,
)
from knowledge.noise import (
    is_heartbeat as _is_heartbeat,
)
from knowledge.outbox import enqueue_message
from knowledge.relate import (
    ACTED,
    FOLLOWS,
    NODE_AGENT_LEAD,
    NODE_DOWN,
    About,
    Candidate,
    Related,
    Topology,
    about,
    clients_failing,
    down_nodes,
    down_with_node,
    explain,
    may_be_client,
    mostly_down_with_node,
    ranked_ties,
    serves_clients,
    stranded_workload,
    strands,
    tie,
    troubled_client,
    workloads_of,
    young,
)
from knowledge.subjects import service_of, subject_of
from knowledge.timeline import add_event, add_events, event_row
from knowledge.types import utcnow

SEVERITY_RANK = {"critical": 4, "page": 4, "error": 3, "high": 3, "warning": 2, "low": 1,
                 "info": 1, "none": 0}
__all__ = ["HEARTBEATS", "AlertSignal", "Intake", "PagerDutySignal", "apply_alert",
           "apply_listing", "apply_pagerduty", "confirm_due", "due_now", "is_heartbeat",
           "outlasted", "release_held"]


@dataclass(frozen=True)
class AlertSignal:
    """One alert of an Alertmanager notification, with its group's context."""

    group_key: str
    fingerprint: str
    status: str  # firing | resolved
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None = None
    common_labels: dict[str, str] = field(default_factory=dict)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "unnamed alert")


@dataclass(frozen=True)
class PagerDutySignal:
    """One PagerDuty v3 webhook event about an incident."""

    event_id: str
    event_type: str  # incident.triggered, incident.acknowledged, incident.annotated, …
    occurred_at: datetime
    incident_id: str
    incident_key: str | None = None
    title: str | None = None
    html_url: str | None = None
    service: str | None = None
    urgency: str | None = None
    agent: str | None = None
    note: str | None = None
    assignees: tuple[str, ...] = ()  # who was paged (the incident's assignees)


@dataclass
class Pool:
    """What one batch of one org read once, in one session, rather than once per alert: the
    Alertmanager incidents over [lo, hi] (last alert / first trigger), incidents opened meanwhile
    added; and, when the batch read ahead (`read_ahead`), the stored alerts of its fingerprints
    and the earlier firings of its alerts' noise keys, alerts it records added."""

    session: AsyncSession | None = None
    org_id: int | None = None
    lo: datetime | None = None
    hi: datetime | None = None
    incidents: dict[int, Incident] = field(default_factory=dict)
    locked: bool = False  # the org's intake lock is held by this session's transaction
    # Read ahead: the stored alert of each (fingerprint, start) in `asked`, if there is one.
    alerts: dict[tuple[str, float], Alert] = field(default_factory=dict)
    asked: set[tuple[str, float]] = field(default_factory=set)
    # Read ahead: alerts by noise key, every one that started at `since` or later.
    history: dict[str, list[Alert]] = field(default_factory=dict)
    since: datetime | None = None

    def forget(self) -> None:
        """After a rollback: what was read or added may not be so any more."""
        self.session, self.org_id, self.lo, self.hi = None, None, None, None
        self.incidents, self.locked = {}, False
        self.alerts, self.asked, self.history, self.since = {}, set(), {}, None

    def holds(self, session: AsyncSession, org_id: int) -> bool:
        return self.session is session and self.org_id == org_id

    def use(self, session: AsyncSession, org_id: int) -> None:
        """Serve this session's batch of this org: what was read for another is forgotten."""
        if not self.holds(session, org_id):
            self.forget()
            self.session, self.org_id = session, org_id

    def add(self, session: AsyncSession, incident: Incident) -> None:
        if self.session is session and incident.id is not None \
                and incident.org_id == self.org_id:
            self.incidents[incident.id] = incident

    def recorded(self, session: AsyncSession, alert: Alert) -> None:
        """A new alert of this batch: later alerts of the batch find it as the database
        would."""
        if not self.holds(session, alert.org_id):
            return
        key = (alert.fingerprint, alert.starts_at.timestamp())
        if key in self.asked:
            self.alerts[key] = alert
        if alert.noise_key is not None and alert.noise_key in self.history:
            self.history[alert.noise_key].append(alert)


@dataclass
class Deferred:
    """Timeline rows of one session's batch, written together before it commits
    (`write_deferred`) instead of one statement per alert: nothing in the batch reads them."""

    session: AsyncSession | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Intake:
    """How alerts are placed: the correlation window (`SRE_COPILOT_CORRELATION_WINDOW_SECONDS`),
    the noise rules, and what kube-state-metrics says of the cluster (empty: labels only)."""

    window_s: float = 300.0
    noise: NoiseRules = field(default_factory=NoiseRules)
    topology: Topology = field(default_factory=Topology)
    lasting: int = 4  # an open incident keeps a lasting subject this many windows
    # Each open incident's relations, parsed once while its stored JSON is unchanged: in a
    # storm every alert weighs every open incident, and parsing them all again for each alert
    # was a third of the intake's time (200 incidents × 2,000 alerts). Lives as long as the
    # Intake, one worker batch.
    parsed: dict[int, tuple[object, Related]] = field(default_factory=dict, repr=False,
                                                      compare=False)
    # What the alert each incident was opened with is about, worked out once: every alert
    # placed weighs the incidents waiting for their card against it (`_absorb`).
    openers: dict[int, About] = field(default_factory=dict, repr=False, compare=False)
    # The org's incidents an alert of this batch may join, read once per batch rather than once
    # per alert (the batch holds the org's intake lock, so only it changes them meanwhile).
    pool: Pool = field(default_factory=lambda: Pool(), repr=False, compare=False)
    # Set by the inbox worker for its batch (`defer_events`): alerts' timeline rows wait there.
    deferred: Deferred = field(default_factory=Deferred, repr=False, compare=False)

    def relations(self, incident: Incident) -> Related:
        """The incident's relations as stored: shared, so copy before changing them."""
        if incident.id is None:
            return Related.from_json(incident.related)
        seen = self.parsed.get(incident.id)
        if seen is None or seen[0] is not incident.related:
            seen = (incident.related, Related.from_json(incident.related))
            self.parsed[incident.id] = seen
        return seen[1]

    def opener(self, incident: Incident) -> About:
        """What the alert that opened the incident (its `labels`) is about."""
        if incident.id is None:
            return about(incident.labels, self.topology)
        if incident.id not in self.openers:
            self.openers[incident.id] = about(incident.labels, self.topology)
        return self.openers[incident.id]

    @property
    def reach(self) -> timedelta:
        return timedelta(seconds=self.lasting * self.window_s)


FLAPPING = "flapping"  # how `noise.on_arrival` starts the reason it gives a flapping firing


def _fits(value: str | None, limit: int) -> str | None:
    """A value derived from labels, cut to its column (the labels themselves are kept whole)."""
    return value[:limit] if value else value


def _worse(a: str | None, b: str | None) -> str | None:
    return max((a, b), key=lambda s: SEVERITY_RANK.get((s or "none").lower(), 0))


def is_heartbeat(signal: AlertSignal) -> bool:
    """An alert that fires all the time on purpose (kube-prometheus's `Watchdog`, its
    `InfoInhibitor`, any `severity="none"`): a sign the pipeline works, never an incident."""
    return _is_heartbeat(signal.alertname, signal.labels.get("severity"))


def _lock_key(org_id: int) -> int:
    digest = hashlib.sha256(f"sre-copilot:intake:{org_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _serialize(session: AsyncSession, org_id: int, pool: Pool | None = None) -> None:
    """One placement at a time per org, across workers and replicas (PostgreSQL's transaction
    advisory lock; SQLite has one writer anyway): two related alerts handled at once must not
    each open an incident. Taken once per batch: it is held until the batch commits."""
    if pool is not None and pool.locked and pool.holds(session, org_id):
        return
    if session.get_bind().dialect.name == "postgresql":
        await session.exec(select(func.pg_advisory_xact_lock(_lock_key(org_id))))
    if pool is not None and pool.holds(session, org_id):
        pool.locked = True


async def lock_intake(session: AsyncSession, orgs: list[int]) -> int | None:
    """Take, for this transaction, the intake lock of the first of `orgs` that no other batch
    holds, else wait for the first one's; returns that org (None: no orgs). A worker takes it
    before claiming its batch: while it waits it holds no items, so a new group's first alert
    goes to whichever worker gets the lock next instead of waiting in a batch that waits."""
    if not orgs:
        return None
    if session.get_bind().dialect.name != "postgresql":
        return orgs[0]  # SQLite: one writer at a time anyway
    for org in orgs:
        taken = (await session.exec(select(func.pg_try_advisory_xact_lock(_lock_key(org))))).one()
        if taken:
            return org
    await session.exec(select(func.pg_advisory_xact_lock(_lock_key(orgs[0]))))
    return orgs[0]


async def read_ahead(session: AsyncSession, *, org_id: int, signals: list[AlertSignal],
                     intake: Intake, locked: bool = False) -> None:
    """Read what a batch's alerts of one org will ask about in two statements, not several per
    alert: the stored alerts of their fingerprints (a repeat is found, a new one known new), and
    the earlier firings of their noise keys within the recurrence span. Takes the org's intake
    lock first (`locked`: the caller took it, `lock_intake`), so nothing read can change before
    the batch commits."""
    pool = intake.pool
    pool.use(session, org_id)
    if locked:
        pool.locked = True
    await _serialize(session, org_id, pool)
    signals = [s for s in signals if not is_heartbeat(s)]
    if not signals:
        return
    asked = {(s.fingerprint, s.starts_at.timestamp()) for s in signals} - pool.asked
    if asked:
        # Fingerprints × starts covers every pair asked (and a few more, matched below).
        stmt = select(Alert).where(
            Alert.org_id == org_id, col(Alert.fingerprint).in_({f for f, _ in asked}),
            col(Alert.starts_at).in_({s.starts_at for s in signals}))
        for alert in (await session.exec(stmt)).all():
            key = (alert.fingerprint, alert.starts_at.timestamp())
            if key in asked:
                pool.alerts[key] = alert
        pool.asked |= asked
    keys = {noise_key(s.labels) for s in signals} - set(pool.history)
    since = min(s.starts_at for s in signals) - timedelta(seconds=intake.noise.recur_span_s)
    if pool.since is not None and since < pool.since:  # a wider span: read every key again
        keys, pool.history = keys | set(pool.history), {}
    if keys:
        pool.since = since if pool.since is None else min(since, pool.since)
        pool.history.update({k: [] for k in keys})
        stmt = select(Alert).where(Alert.org_id == org_id, col(Alert.noise_key).in_(keys),
                                   col(Alert.starts_at) >= pool.since)
        for alert in (await session.exec(stmt)).all():
            if alert.noise_key is not None:
                pool.history[alert.noise_key].append(alert)


def defer_events(session: AsyncSession, intake: Intake) -> None:
    """From now on, this session's alert events wait for `write_deferred`."""
    intake.deferred.session, intake.deferred.rows = session, []


async def write_deferred(session: AsyncSession, intake: Intake) -> None:
    """Write the events deferred in this session (one round trip), before it commits."""
    if intake.deferred.session is session and intake.deferred.rows:
        rows, intake.deferred.rows = intake.deferred.rows, []
        await add_events(session, rows)


async def _find(session: AsyncSession, *, org_id: int, signal: AlertSignal, intake: Intake
                ) -> Alert | None:
    """The stored alert of this firing (fingerprint and start), from the batch's read-ahead
    when it covers the fingerprint."""
    pool = intake.pool
    key = (signal.fingerprint, signal.starts_at.timestamp())
    if pool.holds(session, org_id) and key in pool.asked:
        return pool.alerts.get(key)
    return await find_alert(session, org_id=org_id, fingerprint=signal.fingerprint,
                            starts_at=signal.starts_at)


async def apply_alert(session: AsyncSession, *, org_id: int, signal: AlertSignal,
                      auto_resolve: bool = True, intake: Intake | None = None,
                      now: datetime | None = None) -> Incident | None:
    """Record one alert firing or resolving and move its incident. Returns the incident it is
    on, or None (a heartbeat, a held alert, noise, a resolution of an alert on none)."""
    intake = intake or Intake()
    now = now or utcnow()
    if is_heartbeat(signal):
        return None
    await _serialize(session, org_id, intake.pool)
    alert = await _find(session, org_id=org_id, signal=signal, intake=intake)
    if signal.status == "firing":
        return await _fired(session, org_id=org_id, signal=signal, alert=alert, intake=intake,
                            now=now)
    return await _resolved(session, org_id=org_id, signal=signal, alert=alert,
                           auto_resolve=auto_resolve, intake=intake, now=now)


def _new_alert(org_id: int, signal: AlertSignal, status: str) -> Alert:
    return Alert(org_id=org_id, fingerprint=signal.fingerprint, alertname=signal.alertname,
                 status=status, severity=signal.labels.get("severity"),
                 service=_fits(service_of({**signal.common_labels, **signal.labels}), 200),
                 group_key=signal.group_key, labels=signal.labels,
                 annotations=signal.annotations, generator_url=signal.generator_url,
                 starts_at=signal.starts_at, noise_key=noise_key(signal.labels))


async def _fired(session: AsyncSession, *, org_id: int, signal: AlertSignal, alert: Alert | None,
                 intake: Intake, now: datetime) -> Incident | None:
    if alert is not None:
        if alert.incident_id is not None:
            pooled = intake.pool.incidents.get(alert.incident_id) \
                if intake.pool.holds(session, org_id) else None
            return pooled or await get_incident(session, org_id=org_id,
                                                incident_id=alert.incident_id)
        return None  # held, noise, or a late firing of one already resolved: nothing new
    alert = _new_alert(org_id, signal, "firing")
    session.add(alert)
    intake.pool.recorded(session, alert)
    earlier, acknowledged = await _history(session, alert=alert, intake=intake)
    why = on_arrival(alert.severity, starts_at=signal.starts_at.timestamp(), earlier=earlier,
                     acknowledged_before=acknowledged, rules=intake.noise,
                     alertname=alert.alertname)
    if why is not None:
        if alert.alertname in ACTED and (alert.severity or "").lower() in QUIET and (
                placed := await _place(session, alert=alert, intake=intake, now=now,
                                       only_tied=True)) is not None:
            return placed  # the kubelet acted on a node an incident is about: it joins
        await _to_noise(session, alert=alert, why=why, intake=intake)
        if why.startswith(FLAPPING):  # folded unless it outlasts the short span
            alert.held_until = _outlasts(signal.starts_at, now, intake.noise)
        return None
    due = release_at(alert.severity, starts_at=signal.starts_at.timestamp(),
                     received_at=now.timestamp(), rules=intake.noise)
    if due > now.timestamp():
        alert.held_until = datetime.fromtimestamp(due, tz=now.tzinfo)
        return None
    return await _place(session, alert=alert, intake=intake, now=now)


def _outlasts(starts_at: datetime, now: datetime, rules: NoiseRules) -> datetime:
    """When a flapping alert still firing is taken as sustained: once it has fired for the short
    span, when the group's notification that would have said it resolved is past (or at once
    if Prometheus shows it firing: `outlasted`)."""
    due = starts_at + timedelta(seconds=rules.short_s + rules.group_interval_s + rules.grace_s)
    return max(due, now)


async def _history(session: AsyncSession, *, alert: Alert, intake: Intake
                   ) -> tuple[list[tuple[float, float | None]], bool]:
    """The alert's earlier firings within the recurrence span (start, end), and whether a
    person acknowledged an incident one of them was on — then it is not noise to them,
    however often it fires. One indexed query, whatever the number of alerts."""
    since = alert.starts_at - timedelta(seconds=intake.noise.recur_span_s)
    pool = intake.pool
    if (pool.holds(session, alert.org_id) and alert.noise_key in pool.history
            and pool.since is not None and pool.since <= since):
        earlier = [a for a in pool.history[alert.noise_key or ""]
                   if a is not alert and since <= a.starts_at < alert.starts_at]
    else:
        stmt = select(Alert).where(Alert.org_id == alert.org_id,
                                   Alert.noise_key == alert.noise_key,
                                   col(Alert.starts_at) >= since,
                                   col(Alert.starts_at) < alert.starts_at)
        earlier = [a for a in (await session.exec(stmt)).all() if a.id != alert.id]
    # A left-out firing's end is not known: not a short episode that came back (a warning
    # its critical mutes is getting worse, not flapping).
    episodes = [(a.starts_at.timestamp(),
                 a.ends_at.timestamp() if a.ends_at and a.left_out_at is None else None)
                for a in earlier]
    ids = {a.incident_id for a in earlier if a.incident_id is not None}
    if not ids:
        return episodes, False
    acked = select(Incident).where(col(Incident.id).in_(ids),
                                   col(Incident.acknowledged_at).is_not(None),
                                   Incident.noise == False)  # noqa: E712 (SQL, not Python)
    return episodes, (await session.exec(acked)).first() is not None


async def _to_noise(session: AsyncSession, *, alert: Alert, why: str, intake: Intake
                    ) -> Incident:
    """Keep a noise alert queryable without posting it: on the quiet noise incident of the same
    alert while that one is recent (one line for a flapping alert, not a card per firing)."""
    alert.noise = why[:500]
    alert.held_until = None
    identity = f"noise:{alert.noise_key or noise_key(alert.labels)}"
    key_hash = group_key_hash(identity)
    since = alert.starts_at - timedelta(seconds=intake.noise.recur_span_s)
    stmt = (select(Incident)
            .where(Incident.org_id == alert.org_id, Incident.group_key_hash == key_hash,
                   Incident.noise == True,  # noqa: E712 (SQL, not Python)
                   col(Incident.last_alert_at) >= since)
            .order_by(col(Incident.id).desc()))
    incident = (await session.exec(stmt)).first()
    labels = {**alert.labels}
    if incident is None:
        subject = subject_of(labels)
        title = f"{alert.alertname} on {subject}" if subject else alert.alertname
        incident = Incident(org_id=alert.org_id, title=title[:500], service=_fits(subject, 200),
                            severity=alert.severity, source="alertmanager", noise=True,
                            group_key=identity, group_key_hash=key_hash,
                            labels={k: v for k, v in alert.labels.items() if k != "severity"},
                            triggered_at=alert.starts_at,
                            last_alert_at=alert.starts_at, reason=f"noise — {why}"[:2000])
        session.add(incident)
        await session.flush()
    else:
        incident.last_alert_at = max(incident.last_alert_at or alert.starts_at, alert.starts_at)
        incident.reason = f"noise — {why}"[:2000]
        if incident.state is IncidentStatus.RESOLVED and alert.status == "firing":
            incident.status, incident.resolved_at = IncidentStatus.TRIGGERED.value, None
        incident.updated_at = utcnow()
        session.add(incident)
    assert incident.id is not None
    alert.incident_id = incident.id
    session.add(alert)
    return incident


async def _candidates(session: AsyncSession, *, org_id: int, starts_at: datetime,
                      intake: Intake) -> list[Candidate]:
    """The incidents an alert starting then may join: real (not noise, not merged away),
    from Alertmanager, with alerts that started within the lasting reach of it or resolved
    within it (a CronJob's next run failing: `relate.recurred`), and open ones however old,
    which it joins only through an alert still firing there (`relate.still_firing`,
    `relate.still_grave`, `relate.still_lit`, `relate.still_unwell`). Read from the batch's
    pool, which is read again only for a span it does not cover."""
    lo, hi = starts_at - intake.reach, starts_at + intake.reach
    pool = intake.pool
    pool.use(session, org_id)
    if pool.lo is None or pool.hi is None or lo < pool.lo or hi > pool.hi:
        pool.lo = lo if pool.lo is None else min(lo, pool.lo)
        pool.hi = hi if pool.hi is None else max(hi, pool.hi)
        stmt = select(Incident).where(
            Incident.org_id == org_id, Incident.source == "alertmanager",
            col(Incident.triggered_at) <= pool.hi,
            or_(col(Incident.last_alert_at) >= pool.lo, col(Incident.resolved_at) >= pool.lo,
                and_(col(Incident.status) != IncidentStatus.RESOLVED.value,
                     col(Incident.noise).is_(False), col(Incident.merged_into_id).is_(None))))
        for incident in (await session.exec(stmt)).all():
            assert incident.id is not None
            pool.incidents[incident.id] = incident
    found = []
    for incident in pool.incidents.values():
        if (incident.noise or incident.merged_into_id is not None
                or incident.last_alert_at is None or incident.triggered_at > hi
                or (incident.last_alert_at < lo and incident.state is IncidentStatus.RESOLVED
                    and (incident.resolved_at is None or incident.resolved_at < lo))):
            continue
        ended = incident.resolved_at if incident.state is IncidentStatus.RESOLVED else None
        found.append(Candidate(
            key=incident, related=intake.relations(incident),
            first=incident.triggered_at.timestamp(),
            latest=(incident.last_alert_at or incident.triggered_at).timestamp(),
            ended=ended.timestamp() if ended else None))
    return found


@overload
async def _place(session: AsyncSession, *, alert: Alert, intake: Intake, now: datetime
                 ) -> Incident: ...


@overload
async def _place(session: AsyncSession, *, alert: Alert, intake: Intake, now: datetime,
                 only_tied: bool) -> Incident | None: ...


async def _place(session: AsyncSession, *, alert: Alert, intake: Intake, now: datetime,
                 only_tied: bool = False) -> Incident | None:
    """Put a firing on the incident it shares a cause with, or open one, and queue its card
    unless it waits to be confirmed (see `knowledge.noise`). Joining an unconfirmed incident
    confirms it. With `only_tied` (the kubelet acting on a node, `relate.ACTED`), it opens
    none: None when nothing is tied. Such a consequence joins and gathers nothing more, nor
    keeps its incident young (`last_alert_at`, from which the window counts)."""
    it = about(alert.labels, intake.topology)
    # Only as info: an eviction someone rated a warning is placed like any warning (and may
    # open an incident that is posted).
    consequence = only_tied
    candidates = await _candidates(session, org_id=alert.org_id, starts_at=alert.starts_at,
                                   intake=intake)
    if it.run:  # a CronJob's run: its last run's quiet one-off may be the same failure
        candidates += await _quiet_runs(
            session, org_id=alert.org_id, since=alert.starts_at - timedelta(
                seconds=intake.noise.flap_span_s), until=alert.starts_at, intake=intake)
    if consequence:  # the kubelet acting: a node's warning just before was no one-off
        candidates += await _quiet_runs(
            session, org_id=alert.org_id, since=alert.starts_at - timedelta(
                seconds=intake.window_s), until=None, intake=intake)
    if it.burn > intake.reach.total_seconds():  # an SLO's long window may hold an older burn
        candidates += await _burned_within(session, org_id=alert.org_id, alert=alert,
                                           window=it.burn, intake=intake,
                                           known={c.key.id for c in candidates
                                                  if isinstance(c.key, Incident)})
    ranked = ranked_ties(it, alert.starts_at.timestamp(), candidates,
                         window=intake.window_s, lasting=intake.lasting,
                         revive=intake.noise.flap_span_s)
    found = (ranked[0][0], ranked[0][1]) if ranked else None
    if found is None and only_tied:
        return None
    troubled: tuple[Incident, str] | None = None
    if found is not None and isinstance(found[0].key, Incident) and (w := troubled_client(
            it, alert.starts_at.timestamp(), found[0].related)) is not None \
            and found[1].subject == ("workload", w):
        # Its workload is a backend's client there, but its own trouble began before the
        # backend stopped: it and that workload's alerts make an incident of their own.
        troubled, found = (found[0].key, w), None
    opened = found is None
    revived = False
    if found is None:
        labels = {**alert.labels}
        summary = alert.annotations.get("summary") or alert.annotations.get("title")
        # What the alert is about (a service, a filesystem on a host, a pod, a target), not
        # the job that scraped it: the incident is named after it and changes matched to it.
        subject = subject_of(labels)
        title = str(summary) if summary else (
            f"{alert.alertname} on {subject}" if subject else alert.alertname)
        incident = Incident(org_id=alert.org_id, title=title[:500],
                            service=_fits(subject, 200), severity=alert.severity,
                            source="alertmanager", group_key=alert.group_key,
                            group_key_hash=group_key_hash(alert.group_key or ""),
                            labels=labels, triggered_at=alert.starts_at,
                            last_alert_at=alert.starts_at)
        related, whys = Related(), []
    else:
        candidate, tie = found
        assert isinstance(candidate.key, Incident)
        incident = candidate.key
        related, whys = candidate.related.copy(), list(incident.related.get("why", []))
        if tie.why not in whys:
            whys.append(tie.why)
        if incident.noise:  # a quiet one-off whose CronJob failed again, or the kubelet
            revived = True  # acted on its node: real after all
            await _revive(session, incident=incident, alert=alert, why=tie.why)
    related.add(it, alert.starts_at.timestamp())
    if not opened and not revived and await reopen(session, incident=incident, at=alert.starts_at,
                                   actor=f"Alertmanager ({alert.alertname} fired again)",
                                   source="alertmanager") is not None and not incident.noise:
        assert incident.id is not None
        incident.related = {**incident.related,
                            "reopened": int(incident.related.get("reopened") or 0) + 1}
        await enqueue_message(
            session, org_id=incident.org_id, incident_id=incident.id,
            key=f"incident:{incident.id}:reopened:{alert.fingerprint}:"
                f"{alert.starts_at.isoformat()}", kind="incident_status",
            text=f"🔁 {incident.ref} reopened: {alert.alertname} fired again — {found[1].why}"
            if found else f"🔁 {incident.ref} reopened: {alert.alertname} fired again",
            payload={"incident_id": incident.id, "status": incident.status})
    started_earlier = alert.starts_at < incident.triggered_at
    incident.severity = _worse(incident.severity, alert.severity)
    # Alerts arrive in no particular order: an incident starts when its earliest alert did,
    # or MTTA/MTTR come out too short.
    incident.triggered_at = min(incident.triggered_at, alert.starts_at)
    if not consequence:
        incident.last_alert_at = max(incident.last_alert_at or alert.starts_at,
                                     alert.starts_at)
    kept = {k: v for k, v in (incident.related or {}).items()
            if k in ("maybe_same", "maybe_why", "alerts", "first", "reopened")} \
        if not opened else {}
    incident.related = {**related.to_json(), "why": whys[-5:], **kept}
    incident.updated_at = utcnow()
    session.add(incident)
    if opened:  # its id, for the alert and the timeline; a known one is written with them
        await session.flush()
    assert incident.id is not None
    intake.pool.add(session, incident)
    split: list[Alert] = []
    if troubled is not None:
        split = await _split_client(session, source=troubled[0], into=incident,
                                    workload=troubled[1], alert=alert, intake=intake)
    elif not consequence:
        split = await _split_stranded(session, into=incident, it=it, alert=alert,
                                      candidates=candidates, intake=intake)
    for a in split:
        related.add(about(a.labels, intake.topology), a.starts_at.timestamp())
        incident.triggered_at = min(incident.triggered_at, a.starts_at)
    if split:
        incident.related = {**related.to_json(), "why": whys[-5:]}
    began = incident.triggered_at
    absorbed = [] if consequence else await _absorb(
        session, into=incident, related=related, candidates=candidates, alert=alert,
        intake=intake, now=now)
    started_earlier = started_earlier or incident.triggered_at < began
    if absorbed:  # its subjects, alert count and first alert now include theirs
        kept = {k: v for k, v in kept.items() if k not in ("alerts", "first")}
        incident.related = {**related.to_json(), "why": whys[-5:], **kept}
    # Tied as closely to a second incident: the newer of the two may belong to the older.
    # Apart from a backend's clients and a down node's pods (`_gather_clients`,
    # `_gather_down`), the copilot does not merge a posted one on its own; the newer card
    # offers the merge to a person.
    others = [c.key for c, t, near in ranked[1:] if near and t.strength >= 2 and not consequence
              and isinstance(c.key, Incident) and c.key.id != incident.id
              and c.key.merged_into_id is None]
    if others:
        older, newer = sorted((incident, others[0]), key=lambda i: i.id or 0)
        if older.unconfirmed_until is None:  # a card points only at one that has a card
            newer.related = {**newer.related, "maybe_same": older.id,
                             "maybe_why": f"{alert.alertname} ties it to {older.ref} too"}
            session.add(newer)
    alert.incident_id = incident.id
    alert.held_until = None
    session.add(alert)
    # How many alerts it holds and which started first, kept beside its subjects: a storm's
    # hundredth alert costs no read of the ninety-nine before it.
    count, first = kept.get("alerts"), kept.get("first")
    if not isinstance(count, int) or not isinstance(first, list):
        members = await alerts_of_incident(session, org_id=alert.org_id,
                                           incident_id=incident.id)
        earliest = min(members, key=lambda a: (a.starts_at, a.id or 0))
        count, first = len(members), [earliest.starts_at.isoformat(), earliest.alertname]
    else:
        count += 1
        if alert.starts_at.isoformat() < str(first[0]):
            first = [alert.starts_at.isoformat(), alert.alertname]
    incident.reason = _reason(related, count, first=first, whys=whys)
    incident.related = {**incident.related, "alerts": count, "first": first}
    session.add(incident)
    if opened or started_earlier:  # the changes before its (earlier) start are evidence
        await link_recent_changes(session, incident=incident)
    await _record_fired(session, [alert, *absorbed], incident_id=incident.id, intake=intake)
    if consequence:
        if revived or incident.unconfirmed_until is not None:
            await _announce(session, incident)
        return incident
    # A client's incident moves to its backend's before its own card is posted, if not yet.
    into = await _gather_clients(session, incident=incident, candidates=candidates,
                                 posted=not opened and incident.unconfirmed_until is None,
                                 intake=intake, now=now)
    if into is not None and into is not incident:
        return into
    gathered = into is incident or bool(split) or await _gather_down(
        session, incident=incident, alert=alert, candidates=candidates, intake=intake, now=now)
    # An incident that gathered another's alerts holds more than one: it is confirmed.
    due = confirm_at(alert.severity, starts_at=alert.starts_at.timestamp(),
                     opened_at=now.timestamp(), rules=intake.noise) \
        if opened and not absorbed and not gathered else None
    if due is not None and due > now.timestamp():
        incident.unconfirmed_until = datetime.fromtimestamp(due, tz=now.tzinfo)
        session.add(incident)
    elif opened or revived or incident.unconfirmed_until is not None:
        await _announce(session, incident)
    return incident


async def _quiet_runs(session: AsyncSession, *, org_id: int, since: datetime,
                      until: datetime | None, intake: Intake) -> list[Candidate]:
    """Quiet one-offs that resolved since then (and before `until`): before a CronJob run's
    alert started, within the flap span — `relate.ranked_ties` ties one to it only if it is
    the same CronJob's previous run — or, for the kubelet acting on a node, within the window
    (`relate.acted_on`)."""
    stmt = (select(Incident)
            .where(Incident.org_id == org_id, Incident.source == "alertmanager",
                   Incident.noise == True,  # noqa: E712 (SQL, not Python)
                   col(Incident.merged_into_id).is_(None), col(Incident.resolved_at) >= since)
            .order_by(col(Incident.resolved_at).desc()).limit(100))
    if until is not None:
        stmt = stmt.where(col(Incident.resolved_at) < until)
    return [Candidate(key=incident, related=intake.relations(incident),
                      first=incident.triggered_at.timestamp(),
                      latest=(incident.last_alert_at or incident.triggered_at).timestamp(),
                      ended=incident.resolved_at.timestamp() if incident.resolved_at else None,
                      quiet=True)
            for incident in (await session.exec(stmt)).all()]


async def _burned_within(session: AsyncSession, *, org_id: int, alert: Alert, window: float,
                         intake: Intake, known: set[int | None]) -> list[Candidate]:
    """Incidents older than the lasting reach that began within a burn-rate alert's long window
    (a day) and hold a burn of an SLO: `relate.slo_burned` ties it to the one where the same SLO
    burned over a shorter window. Read only for such an alert; the pool's are `known`."""
    since = alert.starts_at - timedelta(seconds=window)
    stmt = (select(Incident)
            .where(Incident.org_id == org_id, Incident.source == "alertmanager",
                   Incident.noise == False,  # noqa: E712 (SQL, not Python)
                   col(Incident.merged_into_id).is_(None),
                   col(Incident.triggered_at) >= since,
                   col(Incident.triggered_at) < alert.starts_at)
            .order_by(col(Incident.triggered_at).desc()).limit(200))
    found = []
    for incident in (await session.exec(stmt)).all():
        related = intake.relations(incident)
        if not related.burns or incident.id in known:
            continue
        ended = incident.resolved_at if incident.state is IncidentStatus.RESOLVED else None
        found.append(Candidate(
            key=incident, related=related, first=incident.triggered_at.timestamp(),
            latest=(incident.last_alert_at or incident.triggered_at).timestamp(),
            ended=ended.timestamp() if ended else None))
    return found


async def _revive(session: AsyncSession, *, incident: Incident, alert: Alert, why: str
                  ) -> None:
    """A quiet one-off is a real incident after all: no longer noise, neither it nor its
    alerts, back under the group key the new alert came by, and triggered again (its card is
    posted as a new incident's: none was before)."""
    assert incident.id is not None
    for a in await alerts_of_incident(session, org_id=incident.org_id, incident_id=incident.id):
        a.noise = None
        session.add(a)
    incident.noise = False
    incident.group_key = alert.group_key
    incident.group_key_hash = group_key_hash(alert.group_key or "")
    await reopen(session, incident=incident, at=alert.starts_at,
                 actor=f"Alertmanager ({why})",
                 source="alertmanager")


async def _absorb(session: AsyncSession, *, into: Incident, related: Related,
                  candidates: list[Candidate], alert: Alert, intake: Intake, now: datetime
                  ) -> list[Alert]:
    """Incidents still waiting for their card (unconfirmed), whose alerts still fire, started
    within the lasting reach of the alert just placed and all tie to the incident it joined,
    move there. A node's alert arrives after its pods' and its scrape targets' (Alertmanager
    sends each namespace's group on its own clock, and kube-prometheus' TargetDown fires five
    minutes before KubeNodeNotReady): the node's incident gathers them. No card was posted for
    them, so none is left behind; a posted one is only offered as "maybe the same" (a
    backend's clients and a down node's pods aside: `_gather_clients`, `_gather_down`). Returns
    the alerts moved; `related` (the joined incident's) takes in their subjects."""
    moved: list[Alert] = []
    reach = alert.starts_at.timestamp() - intake.reach.total_seconds()
    first, follows = into.triggered_at.timestamp(), FOLLOWS * intake.window_s

    def tied(it: About, starts_at: datetime) -> bool:
        return tie(it, related, starts_at=young(starts_at.timestamp(), first, intake.window_s),
                   follows=follows) is not None

    for candidate in candidates:
        source = candidate.key
        if not isinstance(source, Incident) or source.id == into.id or source.id is None \
                or source.unconfirmed_until is None or source.merged_into_id is not None \
                or candidate.first < reach \
                or not tied(intake.opener(source), source.triggered_at):
            continue  # (an unconfirmed incident holds the one alert it was opened with)
        alerts = await alerts_of_incident(session, org_id=source.org_id, incident_id=source.id)
        if not alerts or any(a.status != "firing" for a in alerts) or not all(
                tied(about(a.labels, intake.topology), a.starts_at) for a in alerts):
            continue
        for a in alerts:
            related.add(about(a.labels, intake.topology), a.starts_at.timestamp())
        moved += alerts
        into.severity = _worse(into.severity, source.severity)
        await join_before_its_card(session, source=source, into=into, alerts=alerts, now=now)
    return moved


async def _gather_clients(session: AsyncSession, *, incident: Incident,
                          candidates: list[Candidate], posted: bool, intake: Intake,
                          now: datetime) -> Incident | None:
    """A shared backend's clients whose incident formed on its own join the backend's
    (`relate.clients_failing`): Alertmanager sends each namespace's group on its own clock, so
    a client's alerts may be placed — and tie to one another — before its backend's arrive.
    Both ways: the incident just changed is the backend's (its clients' incidents move into
    it) or a client's (it moves into its backend's). One still waiting for its card joins
    before it is due; a posted one is merged, its card updated to point there, as a person's
    merge is. `posted`: whether the incident's own card went out. Returns the incident that
    took the other's alerts (this one, or its backend's it moved to), or None."""
    related = intake.relations(incident)
    mine = [(c.key, c) for c in candidates if isinstance(c.key, Incident) and not c.quiet
            and c.key.id not in (None, incident.id) and c.key.merged_into_id is None
            and not c.key.noise and c.key.state is not IncidentStatus.RESOLVED]
    first = incident.triggered_at.timestamp()
    pairs: list[tuple[Incident, Incident, Related]] = []
    if serves_clients(related):
        stopped = min(float(t) for _, t in related.backends) - intake.window_s
        pairs = [(other, incident, related) for other, c in mine
                 if c.first >= stopped and may_be_client(c.related)]
    elif may_be_client(related):
        pairs = [(incident, other, c.related) for other, c in mine
                 if serves_clients(c.related)
                 and first >= min(float(t) for _, t in c.related.backends) - intake.window_s]
    for source, into, backend in pairs:
        assert source.id is not None
        alerts = await alerts_of_incident(session, org_id=source.org_id, incident_id=source.id)
        if not alerts or any(a.status != "firing" for a in alerts):
            continue
        why = clients_failing(backend, [(about(a.labels, intake.topology),
                                         a.starts_at.timestamp()) for a in alerts],
                              window=intake.window_s)
        if why is None:
            continue
        if (source is incident and not posted) or source.unconfirmed_until is not None:
            await join_before_its_card(session, source=source, into=into, alerts=alerts,
                                       now=now)
        else:
            await merge(session, source=source, into=into, by=f"the copilot ({why})")
        into.related = {**into.related, "why": [*into.related.get("why", []), why][-5:]}
        session.add(into)
        intake.pool.add(session, into)
        if into is not incident and into.unconfirmed_until is not None:
            # It holds its clients' alerts now: confirmed.
            await _announce(session, into)
        return into  # one move per alert placed: the next alert sees the rest
    return None


async def _split_client(session: AsyncSession, *, source: Incident, into: Incident,
                        workload: str, alert: Alert, intake: Intake) -> list[Alert]:
    """A workload's alerts that joined a shared backend's incident as its client move to the
    incident just opened by that workload's own trouble, begun before the backend stopped or
    a rollout stuck (`relate.troubled_client`): its unready replicas were its own, the timing
    a coincidence.
    The backend's card says so. Returns the alerts moved."""
    assert source.id is not None
    alerts = await alerts_of_incident(session, org_id=source.org_id, incident_id=source.id)
    leaving = [a for a in alerts if workload in workloads_of(about(a.labels, intake.topology))]
    if not leaving or len(leaving) == len(alerts):
        return []
    stopped, backend = min((float(t), w) for w, t in intake.relations(source).backends)
    began = alert.starts_at.timestamp()
    why = (f"{alert.alertname} on workload {workload} {stopped - began:.0f} s before "
           f"StatefulSet {backend} stopped serving") if began < stopped else (
        f"{alert.alertname} on workload {workload}: a rollout under way is its own change, "
        f"not StatefulSet {backend}'s doing")
    await _split_alerts(session, source=source, into=into, alerts=alerts, leaving=leaving,
                        what=f"{len(leaving)} alert(s) about workload {workload}",
                        subject=workload, why=why, intake=intake)
    return leaving


async def _split_stranded(session: AsyncSession, *, into: Incident, it: About, alert: Alert,
                          candidates: list[Candidate], intake: Intake) -> list[Alert]:
    """A workload's crash loop takes that workload's alerts off an open
    node outage that holds them with nothing placing its pods on the node
    (`relate.stranded_workload`), if they began no more than a window before it: a down
    node's kubelet restarts nothing, so the crash loop, not the node, explains its missing
    replicas. One that began longer before it was the node's doing, and stays. The node's card
    says so. Returns the alerts moved."""
    moved: list[Alert] = []
    for c in candidates:
        source = c.key
        if not isinstance(source, Incident) or source.id is None or source.id == into.id \
                or source.merged_into_id is not None or c.ended is not None \
                or (workload := stranded_workload(it, c.related, intake.topology)) is None:
            continue
        alerts = await alerts_of_incident(session, org_id=source.org_id, incident_id=source.id)
        leaving = [a for a in alerts
                   if strands(it, about(a.labels, intake.topology), workload)]
        if not leaving or len(leaving) == len(alerts) or alert.starts_at > min(
                a.starts_at for a in leaving) + timedelta(seconds=intake.window_s):
            continue
        nodes = sorted({node for (rule, node), n in c.related.symptoms.items()
                        if rule in NODE_DOWN and n})
        why = (f"{alert.alertname} on workload {workload}: a down node's kubelet restarts "
               f"nothing, and nothing places its pods on node {', '.join(nodes)}")
        await _split_alerts(session, source=source, into=into, alerts=alerts, leaving=leaving,
                            what=f"{len(leaving)} alert(s) about workload {workload}",
                            subject=workload, why=why, intake=intake)
        moved += leaving
    return moved


async def _split_alerts(session: AsyncSession, *, source: Incident, into: Incident,
                       alerts: list[Alert], leaving: list[Alert], what: str, subject: str,
                       why: str, intake: Intake) -> None:
    """Move some of the source's `alerts` (`leaving`: a workload's, or a down node's) to
    `into`, said on both timelines and the source's card, and rebuild the source's reason
    line without the `subject` they were about."""
    # By identity: comparing rows field by field is the slow way to tell them apart.
    gone = {id(a) for a in leaving}
    rest = [a for a in alerts if id(a) not in gone]
    staying = Related()
    for a in rest:
        it = about(a.labels, intake.topology)
        staying.add(it, a.starts_at.timestamp())
        if a.status != "firing":
            staying.resolved(it)
    await split_off(session, source=source, into=into, alerts=leaving, what=what,
                    by=f"the copilot ({why})")
    # Its card says why its alerts belong together: no longer by what left.
    whys = [w for w in source.related.get("why", []) if subject not in w]
    earliest = min(rest, key=lambda a: (a.starts_at, a.id or 0))
    first = [earliest.starts_at.isoformat(), earliest.alertname]
    source.related = {**source.related, **staying.to_json(), "why": whys,
                      "alerts": len(rest), "first": first}
    source.reason = _reason(staying, len(rest), first=first, whys=whys)
    session.add(source)
    intake.pool.add(session, source)


def _reason(related: Related, count: int, *, first: list[Any], whys: list[str]) -> str:
    """An incident's reason line: what its alerts share, since its first alert, and the ties
    that brought the others in."""
    started = datetime.fromisoformat(str(first[0]))
    return (explain(related, count, first=f"{first[1]} at {started:%H:%M} UTC")
            + ("" if not whys else f" — {'; '.join(whys[:3])}"))[:2000]


async def _gather_down(session: AsyncSession, *, incident: Incident, alert: Alert,
                       candidates: list[Candidate], intake: Intake, now: datetime) -> bool:
    """When an alert says a node is down, the incidents — posted or not — whose alerts are
    all what the node took down with it join the node's (`relate.down_with_node`): a
    namespace's unready pods may have had a card before the node's alert arrived in another
    namespace's group. One still waiting for its card joins before it is due; a posted one is
    merged, its card updated to point there, as a person's merge is. Returns whether any
    joined."""
    nodes = down_nodes(about(alert.labels, intake.topology))
    if not nodes:
        return False
    related = intake.relations(incident).copy()
    down_at, first = alert.starts_at.timestamp(), incident.triggered_at.timestamp()
    # None of its alerts may start earlier (`down_with_node`; a node agent's target down, a
    # little earlier still).
    since = first - intake.window_s * (1 + NODE_AGENT_LEAD)
    joined = False
    for c in candidates:
        source = c.key
        if not isinstance(source, Incident) or c.quiet or source.id in (None, incident.id) \
                or source.merged_into_id is not None or source.noise \
                or source.state is IncidentStatus.RESOLVED:
            continue
        whole = c.first >= since and tie(intake.opener(source), related) is not None
        if not whole and not any(c.related.own[("node", n)] or c.related.derived[("node", n)]
                                 for n in nodes):
            continue  # (its opener ties, or not all of its alerts do; nothing is placed there)
        alerts = await alerts_of_incident(session, org_id=source.org_id, incident_id=source.id)
        if not alerts:
            continue
        held = [(about(a.labels, intake.topology), a.starts_at.timestamp()) for a in alerts]
        why = next((w for node in sorted(nodes) if (w := down_with_node(
            related, node, down_at, first, held, window=intake.window_s)) is not None), None) \
            if whole and all(a.status == "firing" for a in alerts) else None
        if why is None:
            # Mostly what the node took, with something else begun before: the node's part
            # moves to the node's incident (`relate.mostly_down_with_node`).
            its = [(*h, a.status == "firing") for h, a in zip(held, alerts, strict=True)]
            most = next((m for node in sorted(nodes) if (m := mostly_down_with_node(
                related, node, down_at, first, its, window=intake.window_s)) is not None), None)
            if most is None:
                continue
            leaving = [alerts[k] for k in most[0]]
            await _split_alerts(session, source=source, into=incident, alerts=alerts,
                                leaving=leaving, what=f"{len(leaving)} alert(s) of a node down",
                                subject="node", why=most[1], intake=intake)
            for k in most[0]:
                related.add(*held[k])
            # Its stored relations take in what moved, as a merge's do (`merging._combined`).
            incident.related = {**incident.related, **related.to_json(), "why": [
                *incident.related.get("why", []), most[1]][-5:]}
            incident.triggered_at = min(incident.triggered_at,
                                        min(a.starts_at for a in leaving))
            session.add(incident)
            intake.pool.add(session, incident)
            joined = True
            continue
        if source.unconfirmed_until is not None:
            await join_before_its_card(session, source=source, into=incident, alerts=alerts,
                                       now=now)
        else:
            await merge(session, source=source, into=incident, by=f"the copilot ({why})")
        for it, at in held:
            related.add(it, at)
        incident.related = {**incident.related, "why": [*incident.related.get("why", []),
                                                        why][-5:]}
        incident.severity = _worse(incident.severity, source.severity)
        session.add(incident)
        intake.pool.add(session, incident)
        joined = True
    return joined


async def _record_fired(session: AsyncSession, alerts: list[Alert], *, incident_id: int,
                        intake: Intake) -> None:
    """The incident's timeline gets an `alert_fired` row per alert placed on it."""
    rows = [event_row(org_id=alert.org_id, incident_id=incident_id,
                      occurred_at=alert.starts_at, kind="alert_fired", source="alertmanager",
                      summary=_alert_line(alert.alertname, alert.labels, alert.annotations),
                      data={"fingerprint": alert.fingerprint, "labels": alert.labels,
                            "annotations": alert.annotations,
                            "generator_url": alert.generator_url},
                      dedupe_key=f"alert:{alert.fingerprint}:{alert.starts_at.isoformat()}"
                                 ":firing") for alert in alerts]
    if intake.deferred.session is session:
        # Without a statement per alert, the batch's rows are written together at the end.
        intake.deferred.rows.extend(rows)
    else:
        await add_events(session, rows)


async def _announce(session: AsyncSession, incident: Incident) -> None:
    """Queue a new incident's card (once: the outbox key is the incident's)."""
    assert incident.id is not None
    incident.unconfirmed_until = None
    session.add(incident)
    await enqueue_message(
        session, org_id=incident.org_id, incident_id=incident.id,
        key=f"incident:{incident.id}:opened", kind="incident_opened",
        text=f"🔥 {incident.ref} opened: {incident.title}"
             + (f" ({incident.severity})" if incident.severity else ""),
        payload={"incident_id": incident.id})


async def outlasted(session: AsyncSession, *, now: datetime, rules: NoiseRules,
                    limit: int = 500) -> list[Alert]:
    """The firings still waiting only for Alertmanager's next notification to say they did not
    resolve: held alerts past their hold, and the lone warnings of unconfirmed incidents past
    the short span. If Prometheus shows them firing, `due_now` lets them go at once."""
    held = (select(Alert)
            .where(col(Alert.held_until).is_not(None), col(Alert.held_until) > now,
                   Alert.status == "firing", col(Alert.incident_id).is_(None),
                   col(Alert.starts_at) <= now - timedelta(seconds=rules.hold_s))
            .order_by(col(Alert.id)).limit(limit))
    flapped = (select(Alert)
               .where(col(Alert.held_until).is_not(None), col(Alert.held_until) > now,
                      Alert.status == "firing", col(Alert.noise).startswith(FLAPPING),
                      col(Alert.starts_at) <= now - timedelta(seconds=rules.short_s))
               .order_by(col(Alert.id)).limit(limit))
    lone = (select(Alert).join(Incident, col(Incident.id) == col(Alert.incident_id))
            .where(col(Incident.unconfirmed_until).is_not(None),
                   col(Incident.unconfirmed_until) > now, Alert.status == "firing",
                   col(Alert.starts_at) <= now - timedelta(seconds=rules.short_s))
            .order_by(col(Alert.id)).limit(limit))
    return [*(await session.exec(held)).all(), *(await session.exec(lone)).all(),
            *(await session.exec(flapped)).all()]


async def due_now(session: AsyncSession, *, alerts: list[Alert], now: datetime) -> None:
    """Make these waiting firings due now (Prometheus shows them still firing): `release_held`
    and `confirm_due` then place and post them."""
    for alert in alerts:
        if alert.incident_id is None or alert.noise is not None:  # held, or folded flapping
            if alert.held_until is not None and alert.held_until > now:
                alert.held_until = now
                session.add(alert)
            continue
        incident = await get_incident(session, org_id=alert.org_id,
                                      incident_id=alert.incident_id)
        if incident.unconfirmed_until is not None and incident.unconfirmed_until > now:
            incident.unconfirmed_until = now
            session.add(incident)


async def confirm_due(session: AsyncSession, *, now: datetime | None = None, limit: int = 200
                      ) -> list[Incident]:
    """Post the unconfirmed incidents whose lone warning is still firing at its due time.
    Safe on several replicas at once (SKIP LOCKED on PostgreSQL; the card's outbox key is
    unique besides)."""
    now = now or utcnow()
    stmt = (select(Incident)
            .where(col(Incident.unconfirmed_until).is_not(None),
                   col(Incident.unconfirmed_until) <= now,
                   Incident.status != IncidentStatus.RESOLVED.value,
                   Incident.noise == False)  # noqa: E712 (SQL, not Python)
            .order_by(col(Incident.unconfirmed_until), col(Incident.id))
            .limit(limit).with_for_update(skip_locked=True))
    confirmed = list((await session.exec(stmt)).all())
    for incident in confirmed:
        await _announce(session, incident)
    return confirmed


async def release_held(session: AsyncSession, *, now: datetime | None = None,
                       intake_of: Callable[[int], Intake] | None = None, limit: int = 200
                       ) -> list[Incident]:
    """Place the held alerts that are due (their hold passed with no resolution heard). Safe
    to run on several replicas at once: each due alert is claimed with SKIP LOCKED on
    PostgreSQL. `intake_of(org_id)` gives each org's `Intake` (default: the defaults)."""
    now = now or utcnow()
    stmt = (select(Alert)
            .where(col(Alert.held_until).is_not(None), col(Alert.held_until) <= now,
                   Alert.status == "firing",
                   or_(col(Alert.incident_id).is_(None), col(Alert.noise).startswith(FLAPPING)))
            .order_by(col(Alert.held_until), col(Alert.starts_at), col(Alert.id))
            .limit(limit).with_for_update(skip_locked=True))
    placed = []
    for alert in (await session.exec(stmt)).all():
        intake = intake_of(alert.org_id) if intake_of else Intake()
        await _serialize(session, alert.org_id)
        if alert.incident_id is not None:
            await _unfold(session, alert=alert, now=now)
        placed.append(await _place(session, alert=alert, intake=intake, now=now))
    return placed


async def _unfold(session: AsyncSession, *, alert: Alert, now: datetime) -> None:
    """A flapping alert that has fired for the short span without a break is sustained, not
    flapping: off its quiet line (which resolves if nothing else of it fires), to be placed."""
    assert alert.incident_id is not None
    quiet = await get_incident(session, org_id=alert.org_id, incident_id=alert.incident_id)
    alert.noise, alert.incident_id, alert.held_until = None, None, None
    session.add(alert)
    await session.flush()
    rest = await alerts_of_incident(session, org_id=quiet.org_id, incident_id=quiet.id or 0)
    if not rest:  # it held only this firing (its earlier ones were on a card)
        await session.delete(quiet)
    elif all(a.status == "resolved" for a in rest):
        # Back as it was before this firing came: `_to_noise` set it triggered, quietly.
        quiet.status = IncidentStatus.RESOLVED.value
        quiet.resolved_at = max(a.ends_at or now for a in rest)
        session.add(quiet)


async def _resolved(session: AsyncSession, *, org_id: int, signal: AlertSignal,
                    alert: Alert | None, auto_resolve: bool, intake: Intake, now: datetime,
                    left_out: bool = False) -> Incident | None:
    ends_at = signal.ends_at or now
    short = resolved_within_hold(starts_at=signal.starts_at.timestamp(),
                                 ends_at=ends_at.timestamp(), rules=intake.noise)
    if alert is None:  # first news of this firing is its resolution (the firing was never sent)
        alert = _new_alert(org_id, signal, "resolved")
        alert.ends_at = ends_at
        session.add(alert)
        intake.pool.recorded(session, alert)
        if short and not is_critical(alert.severity):
            await _to_noise(session, alert=alert, why=_held_noise(intake), intake=intake)
        return None
    held = alert.incident_id is None and alert.status == "firing"
    alert.status = "resolved"
    alert.ends_at = ends_at
    alert.left_out_at = ends_at if left_out else None
    alert.updated_at = utcnow()
    session.add(alert)
    if held:
        if short and not is_critical(alert.severity):
            incident = await _to_noise(session, alert=alert, why=_held_noise(intake),
                                       intake=intake)
            await _resolve_if_done(session, incident, ends_at)
            return None
        if alert.noise is not None:
            return None
        # It outlasted the hold and resolved before its release: a short problem, but one.
        await _place(session, alert=alert, intake=intake, now=now)
    if alert.incident_id is None:
        return None
    incident = await get_incident(session, org_id=org_id, incident_id=alert.incident_id)
    assert incident.id is not None
    await session.flush()
    related = Related.from_json(incident.related)
    related.resolved(about(alert.labels, intake.topology))
    incident.related = {**incident.related, **related.to_json()}
    session.add(incident)
    await add_event(session, org_id=org_id, incident_id=incident.id, occurred_at=ends_at,
                    kind="alert_resolved", source="alertmanager",
                    summary=(f"left out by Alertmanager (muted, or ended while muted): "
                             f"{signal.alertname}" if left_out
                             else f"resolved: {signal.alertname}"),
                    data={"fingerprint": signal.fingerprint},
                    # Left out, it may be listed again and resolve later: that line too.
                    dedupe_key=f"alert:{signal.fingerprint}:{signal.starts_at.isoformat()}:"
                               + (f"left_out:{ends_at.isoformat()}" if left_out else "resolved"))
    if incident.unconfirmed_until is not None and incident.acknowledged_at is None:
        if left_out or not outlasted_short(starts_at=incident.triggered_at.timestamp(),
                                           ends_at=ends_at.timestamp(), rules=intake.noise):
            await _unconfirmed_resolved(session, incident, ends_at)
            return None
        # It fired past the short span before it resolved: no one-off, though its card was
        # not due yet (without Prometheus' alerts API, the copilot learns it outlasted the span
        # only from this notification). Its card goes out now, then says it resolved.
        await _announce(session, incident)
    if auto_resolve or incident.noise:
        await _resolve_if_done(session, incident, ends_at)
    return incident


async def _unconfirmed_resolved(session: AsyncSession, incident: Incident,
                                ends_at: datetime) -> None:
    """An unconfirmed incident whose warning resolved before its card was due: a one-off,
    kept as a quiet noise incident (never posted, listed in the digest)."""
    assert incident.id is not None
    alerts = await alerts_of_incident(session, org_id=incident.org_id, incident_id=incident.id)
    if any(a.status != "resolved" for a in alerts):
        return
    first = min(a.starts_at for a in alerts) if alerts else incident.triggered_at
    minutes = max(1, round((ends_at - first).total_seconds() / 60))
    why = f"a warning on its own that resolved after {minutes} min, before its card was due"
    for a in alerts:
        a.noise = why[:500]
        session.add(a)
    incident.noise, incident.unconfirmed_until = True, None
    incident.reason = f"noise — {why}"[:2000]
    if len({a.noise_key for a in alerts}) == 1 and alerts[0].noise_key:
        # The alert's quiet line from now on: its later noise firings fold into this one.
        incident.group_key = f"noise:{alerts[0].noise_key}"
        incident.group_key_hash = group_key_hash(incident.group_key)
    session.add(incident)
    await _resolve_if_done(session, incident, ends_at)


async def apply_listing(session: AsyncSession, *, org_id: int, group_key: str,
                        listed: list[tuple[str, datetime, str]], received_at: datetime,
                        step: str, intake: Intake | None = None, auto_resolve: bool = True
                        ) -> list[Incident]:
    """What one Alertmanager notification listed (fingerprint, start, status), received at
    `received_at`. Alertmanager lists every alert of the group it holds, so a firing it leaves
    out is muted (an inhibit rule: a critical mutes its warning; a silence) or ended while
    muted — whose end it never sends. Step `leave_out` (after the notification's alerts) takes
    such a firing as ended now; step `relist` (before them) takes a left-out alert the
    notification lists firing as firing again, while its incident is open. Only alerts the
    copilot knew before the notification came are judged. Returns the incidents changed."""
    intake = intake or Intake()
    await _serialize(session, org_id, intake.pool)
    shown = {(fp, round(at.timestamp(), 3)): status for fp, at, status in listed}
    changed: list[Incident] = []
    if step == "relist":
        firing = {fp for (fp, _), status in shown.items() if status == "firing"}
        if not firing:
            return changed
        stmt = select(Alert).where(Alert.org_id == org_id, Alert.status == "resolved",
                                   col(Alert.left_out_at) < received_at,
                                   col(Alert.fingerprint).in_(firing))
        for alert in (await session.exec(stmt)).all():
            key = (alert.fingerprint, round(alert.starts_at.timestamp(), 3))
            if shown.get(key) != "firing" or alert.incident_id is None:
                continue
            incident = await get_incident(session, org_id=org_id, incident_id=alert.incident_id)
            if incident.state is IncidentStatus.RESOLVED:
                continue  # over: a problem that comes back opens anew
            alert.status, alert.ends_at, alert.left_out_at = "firing", None, None
            alert.updated_at = utcnow()
            session.add(alert)
            related = Related.from_json(incident.related)
            related.relisted(about(alert.labels, intake.topology))
            incident.related = {**incident.related, **related.to_json()}
            session.add(incident)
            assert incident.id is not None
            await add_event(session, org_id=org_id, incident_id=incident.id,
                            occurred_at=received_at, kind="alert_fired", source="alertmanager",
                            summary=f"listed firing again by Alertmanager: {alert.alertname}",
                            data={"fingerprint": alert.fingerprint})
            changed.append(incident)
        return changed
    stmt = select(Alert).where(Alert.org_id == org_id, Alert.status == "firing",
                               Alert.group_key == group_key,
                               col(Alert.created_at) < received_at)
    for alert in (await session.exec(stmt)).all():
        if (alert.fingerprint, round(alert.starts_at.timestamp(), 3)) in shown:
            continue
        signal = AlertSignal(group_key=group_key, fingerprint=alert.fingerprint,
                             status="resolved", labels=dict(alert.labels),
                             annotations=dict(alert.annotations), starts_at=alert.starts_at,
                             ends_at=received_at, generator_url=alert.generator_url)
        ended = await _resolved(session, org_id=org_id, signal=signal, alert=alert,
                                auto_resolve=auto_resolve, intake=intake, now=received_at,
                                left_out=True)
        if ended is not None:
            changed.append(ended)
    return changed


def _held_noise(intake: Intake) -> str:
    return (f"resolved within the {intake.noise.hold_s:.0f} s hold: held, never posted")


async def _resolve_if_done(session: AsyncSession, incident: Incident, ends_at: datetime) -> None:
    """Resolve an incident once all its alerts have (a noise incident quietly)."""
    if incident.state is IncidentStatus.RESOLVED or incident.id is None:
        return
    alerts = await alerts_of_incident(session, org_id=incident.org_id, incident_id=incident.id)
    if alerts and all(a.status == "resolved" for a in alerts):
        last = max(a.ends_at or ends_at for a in alerts)
        if await advance(session, incident=incident, to=IncidentStatus.RESOLVED, at=last,
                         actor="Alertmanager (all alerts resolved)", source="alertmanager") \
                and not incident.noise:
            await _status_message(session, incident)


def _alert_line(alertname: str, labels: dict[str, Any], annotations: dict[str, Any]) -> str:
    sev = labels.get("severity")
    summary = annotations.get("summary") or annotations.get("description") or ""
    head = f"{alertname}" + (f" [{sev}]" if sev else "")
    return f"{head}: {summary}" if summary else head


async def _status_message(session: AsyncSession, incident: Incident) -> None:
    assert incident.id is not None
    took = ""
    step = incident.step_time(incident.state)
    if step is not None:
        minutes = max(0, int((step - incident.triggered_at).total_seconds() // 60))
        took = f" after {minutes} min"
    icon = {"acknowledged": "👀", "investigating": "🔎", "mitigated": "🩹", "resolved": "✅"}
    await enqueue_message(
        session, org_id=incident.org_id, incident_id=incident.id,
        # A reopened incident resolves again: each resolution is a message of its own.
        key=f"incident:{incident.id}:status:{incident.status}"
            + (f":{reopened}" if (reopened := (incident.related or {}).get("reopened")) else ""),
        kind="incident_status",
        text=f"{icon.get(incident.status, '•')} {incident.ref} {incident.status}{took}: "
             f"{incident.title}",
        payload={"incident_id": incident.id, "status": incident.status})


PD_STATUS = {"incident.acknowledged": IncidentStatus.ACKNOWLEDGED,
             "incident.resolved": IncidentStatus.RESOLVED}


async def apply_pagerduty(session: AsyncSession, *, org_id: int, signal: PagerDutySignal
                          ) -> Incident:
    """Apply one PagerDuty event: link or open the incident, move it, note it on the timeline."""
    incident = await incident_for_pagerduty(session, org_id=org_id,
                                            pd_incident_id=signal.incident_id,
                                            incident_key=signal.incident_key)
    opened = incident is None
    if incident is None:
        incident = Incident(org_id=org_id, title=(signal.title or signal.incident_id)[:500],
                            service=signal.service, severity=signal.urgency, source="pagerduty",
                            pagerduty_incident_id=signal.incident_id,
                            pagerduty_url=signal.html_url, triggered_at=signal.occurred_at)
    elif incident.pagerduty_incident_id is None:
        incident.pagerduty_incident_id = signal.incident_id
        incident.pagerduty_url = signal.html_url
    if incident is not None and incident.unconfirmed_until is not None:
        await _announce(session, incident)  # someone was paged for it: confirmed
    if signal.html_url and not incident.pagerduty_url:
        incident.pagerduty_url = signal.html_url
    session.add(incident)
    await session.flush()
    assert incident.id is not None
    by = signal.agent or "PagerDuty"
    kind, summary, data = _pagerduty_line(signal, by)
    await add_event(session, org_id=org_id, incident_id=incident.id,
                    occurred_at=signal.occurred_at, kind=kind, source="pagerduty",
                    summary=summary, data=data, dedupe_key=f"pagerduty:{signal.event_id}")
    if opened:
        await link_recent_changes(session, incident=incident)
        await enqueue_message(
            session, org_id=org_id, incident_id=incident.id, key=f"incident:{incident.id}:opened",
            kind="incident_opened",
            text=f"🔥 {incident.ref} opened from PagerDuty: {incident.title}",
            payload={"incident_id": incident.id})
    target = PD_STATUS.get(signal.event_type)
    if target is not None and await advance(session, incident=incident, to=target,
                                            at=signal.occurred_at, actor=by, source="pagerduty"):
        await _status_message(session, incident)
    return incident


def _pagerduty_line(signal: PagerDutySignal, by: str) -> tuple[str, str, dict[str, Any]]:
    data: dict[str, Any] = {"event_type": signal.event_type, "agent": signal.agent,
                            "pagerduty_incident_id": signal.incident_id,
                            "html_url": signal.html_url, "assignees": list(signal.assignees)}
    if signal.event_type == "incident.annotated":
        data["note"] = signal.note
        return "note", f"note by {by}: {signal.note or ''}".strip(), data
    verb = signal.event_type.removeprefix("incident.").replace("_", " ")
    return "pagerduty", f"PagerDuty: {verb} by {by}", data
