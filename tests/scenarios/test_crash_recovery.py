"""Crash recovery: the inbox worker is killed with SIGKILL while items are in flight, started
again, and every accepted item ends processed exactly once — on SQLite and on PostgreSQL.

Alerts are accepted through the real intake (the app in-process, its own worker off), then the
real `sre-copilot worker` process works through them in small batches. It is killed while it is
inside a batch's transaction (checked just before the kill: PostgreSQL shows its backend in a
transaction, SQLite shows its write lock held), a second worker finishes the inbox and is stopped
with SIGTERM, and then every count is checked against what was sent: an item is marked done in
the same transaction as its effects, so the killed batch must leave no trace at all.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func
from sqlalchemy.engine import URL
from sqlmodel import col, select

from knowledge.alerts import Alert
from knowledge.inbox import InboxItem, InboxStatus, depth
from knowledge.incidents import Incident
from knowledge.outbox import OutboxMessage
from knowledge.timeline import TimelineEvent
from tests.conftest import Copilot
from tests.fakes.alertmanager import alert, notification, resolved

pytestmark = pytest.mark.slow

SRE_COPILOT = Path(sys.executable).parent / "sre-copilot"

GROUPS = 40  # one Alertmanager group (and so one incident) per service
PER_GROUP = 25  # alerts firing in each group: 1,000 firings
PARTLY_RESOLVED = range(0, 30)  # these groups see their first 3 alerts resolve …
PARTLY = 3
FULLY_RESOLVED = range(30, 36)  # … these see all their alerts resolve (their incident resolves)
BATCH = 10  # the killed worker's batch: small, so the kill lands mid-way
KILL_AT = 0.25  # kill once this share of the inbox is done
DRAIN_SECONDS = 120.0  # a hang guard; the whole test takes ~45 s per database


@dataclass
class Sent:
    """What the test sent, and so what the store must hold afterwards."""

    firings: set[tuple[str, str]] = field(default_factory=set)  # (fingerprint, startsAt)
    resolutions: set[tuple[str, str]] = field(default_factory=set)
    inbox_keys: set[tuple[str, str, str, str]] = field(default_factory=set)
    group_keys: set[str] = field(default_factory=set)
    resolved_groups: set[str] = field(default_factory=set)
    alerts_posted: int = 0
    accepted: int = 0
    duplicates: int = 0

    async def post(self, copilot: Copilot, body: dict[str, Any]) -> None:
        response = await copilot.client.post(
            "/webhooks/alertmanager", json=body,
            headers={"Authorization": f"Bearer {copilot.settings.alertmanager_webhook_token}"})
        assert response.status_code == 202, response.text
        self.accepted += response.json()["accepted"]
        self.duplicates += response.json()["duplicates"]
        self.alerts_posted += len(body["alerts"])
        self.group_keys.add(body["groupKey"])
        for a in body["alerts"]:
            self.inbox_keys.add((body["groupKey"], a["fingerprint"], a["status"], a["startsAt"]))
            which = self.firings if a["status"] == "firing" else self.resolutions
            which.add((a["fingerprint"], a["startsAt"]))


async def send_alert_storm(copilot: Copilot) -> Sent:
    """1,000 firings in 40 groups, sent as Alertmanager sends them: a group's notification
    repeats the alerts already sent (so most alerts arrive more than once), some notifications
    are repeated whole, and resolved notifications carry the still-firing alerts along. Every
    firing is sent before any resolution, so no incident resolves before all its alerts fired."""
    sent = Sent()
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    groups = [[alert(f"Alert{j % 7}", service=f"svc-{g:03d}", instance=f"10.0.{g}.{j}:8080",
                     severity=("critical" if j % 5 == 0 else "warning"),
                     starts=base + timedelta(seconds=g * PER_GROUP + j))
               for j in range(PER_GROUP)] for g in range(GROUPS)]
    ends = base + timedelta(hours=1)
    for g in groups:  # the group's first notification: its first alerts
        await sent.post(copilot, notification(g[:10]))
    for g in groups:  # group_interval later: the whole group (the first ten again)
        await sent.post(copilot, notification(g))
    for g in groups[::5]:  # repeat_interval: the same notification again
        await sent.post(copilot, notification(g))
    for i in PARTLY_RESOLVED:
        g = groups[i]
        await sent.post(copilot, notification([resolved(a, ends) for a in g[:PARTLY]]
                                              + g[PARTLY:]))
    for i in FULLY_RESOLVED:
        body = notification([resolved(a, ends) for a in groups[i]])
        await sent.post(copilot, body)
        sent.resolved_groups.add(body["groupKey"])
    for i in FULLY_RESOLVED[:5]:  # a resolved notification Alertmanager retried
        await sent.post(copilot, notification([resolved(a, ends) for a in groups[i]]))
    return sent


# --- the worker process, and a look at whether it is inside a transaction --------------------

@dataclass
class WorkerProcess:
    """`sre-copilot worker` against the test's database; its log goes to a file."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, url: URL, data_dir: Path, name: str, **more: str) -> WorkerProcess:
        assert SRE_COPILOT.exists(), f"{SRE_COPILOT} is missing; pip install -e . first"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("SRE_COPILOT_") and k != "DATABASE_URL"}
        env.update(DATABASE_URL=url.render_as_string(hide_password=False),
                   SRE_COPILOT_DATA_DIR=str(data_dir), SRE_COPILOT_WORKER_BATCH=str(BATCH),
                   SRE_COPILOT_LOG_LEVEL="info",
                   # Exactly-once inbox processing is the subject here; the history index
                   # (tests/bot/test_worker_history.py) would add a model load per restart.
                   SRE_COPILOT_HISTORY="false", **more)
        log_path = data_dir / f"{name}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([str(SRE_COPILOT), "worker"], env=env,
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT)
        return cls(proc=proc, log_path=log_path)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_running(self) -> None:
        assert self.proc.poll() is None, (
            f"the worker exited early with {self.proc.returncode}:\n{self.log()}")

    def signal(self, sig: signal.Signals, timeout: float = 30) -> int:
        os.kill(self.proc.pid, sig)
        return self.proc.wait(timeout=timeout)

    def reap(self) -> None:
        """Always called: a worker still running at the end of the test is killed."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


class Probe:
    """The test's view of the database while a worker runs, through its own plain connection so
    that watching takes no lock the worker could wait on (the app's SQLite sessions begin with
    BEGIN IMMEDIATE, which would queue the worker behind every poll).

    It also tells whether a worker is inside a transaction right now: PostgreSQL shows the
    worker's backend (found by its application_name) with a transaction start; on SQLite the
    worker's BEGIN IMMEDIATE holds the database's write lock."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self._pg: psycopg.Connection[Any] | None = None
        self._reader: sqlite3.Connection | None = None
        self._locker: sqlite3.Connection | None = None
        if url.get_backend_name() == "sqlite":
            assert url.database
            self._reader = sqlite3.connect(url.database, timeout=30, isolation_level=None)
            self._locker = sqlite3.connect(url.database, timeout=0, isolation_level=None)
        else:
            self._pg = psycopg.connect(
                url.set(drivername="postgresql").render_as_string(hide_password=False),
                autocommit=True)

    def worker_url(self, app_name: str) -> URL:
        if self._pg is None:
            return self.url
        return self.url.update_query_dict({"application_name": app_name})

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._pg is not None:
            return list(self._pg.execute(sql.replace("?", "%s"), params).fetchall())
        assert self._reader is not None
        return list(self._reader.execute(sql, params).fetchall())

    def inbox_counts(self) -> dict[str, int]:
        # The alerts' items (each notification's listing has items of its own source).
        rows = self._query("SELECT status, count(*) FROM inbox_item "
                           "WHERE source = 'alertmanager' GROUP BY status")
        return {status: int(n) for status, n in rows}

    def in_transaction(self, app_name: str) -> bool:
        if self._pg is not None:
            return bool(self._query("SELECT count(*) FROM pg_stat_activity "
                                    "WHERE application_name = ? AND xact_start IS NOT NULL",
                                    (app_name,))[0][0])
        assert self._locker is not None
        try:
            self._locker.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                return True
            raise
        self._locker.execute("ROLLBACK")
        return False

    def wait_gone(self, app_name: str, timeout: float = 10) -> None:
        """After a kill, PostgreSQL ends the dead client's backend (rolling back its transaction
        and releasing its row locks) once it sees the connection closed; wait for that, so the
        next worker does not merely skip the still-locked rows. SQLite's lock dies with the
        process."""
        if self._pg is None:
            return
        deadline = time.monotonic() + timeout
        while self._query("SELECT count(*) FROM pg_stat_activity WHERE application_name = ?",
                          (app_name,))[0][0]:
            assert time.monotonic() < deadline, "the killed worker's backend is still there"
            time.sleep(0.05)

    def close(self) -> None:
        for conn in (self._pg, self._reader, self._locker):
            if conn is not None:
                conn.close()


async def inbox_counts(copilot: Copilot) -> dict[str, int]:
    async with copilot.db.session() as session:
        rows = (await session.exec(select(InboxItem.status, func.count())
                                   .where(InboxItem.source == "alertmanager")
                                   .group_by(col(InboxItem.status)))).all()
    return {status: int(n) for status, n in rows}


# --- the test ---------------------------------------------------------------------------------

async def test_sigkilled_worker_restarts_and_every_item_is_processed_exactly_once(
        copilot: Copilot, db_url: URL, tmp_path: Path) -> None:
    started = time.monotonic()
    sent = await send_alert_storm(copilot)
    total = len(sent.inbox_keys)
    assert (len(sent.firings), len(sent.resolutions)) == (
        GROUPS * PER_GROUP, len(PARTLY_RESOLVED) * PARTLY + len(FULLY_RESOLVED) * PER_GROUP)
    assert sent.accepted == total == len(sent.firings) + len(sent.resolutions)
    assert sent.duplicates == sent.alerts_posted - total > 0
    assert await inbox_counts(copilot) == {"pending": total}
    accepted_in = time.monotonic() - started

    probe = Probe(db_url)
    run = uuid.uuid4().hex[:8]
    workers: list[WorkerProcess] = []
    try:
        # 1. A worker starts on the inbox and is killed mid-batch, a quarter of the way in.
        name = f"crash-test-{run}-1"
        first = WorkerProcess.start(probe.worker_url(name), tmp_path, "worker-1")
        workers.append(first)
        deadline = time.monotonic() + DRAIN_SECONDS
        in_transaction = False
        while True:
            first.assert_running()
            done = probe.inbox_counts().get("done", 0)
            assert done < total, "the worker finished before it could be killed"
            if done >= total * KILL_AT and (in_transaction := probe.in_transaction(name)):
                break
            assert time.monotonic() < deadline, f"the first worker made no headway:\n{first.log()}"
            await asyncio.sleep(0.01)
        assert in_transaction
        assert first.signal(signal.SIGKILL) == -signal.SIGKILL, first.log()
        killed_at = time.monotonic() - started
        probe.wait_gone(name)
        at_kill = probe.inbox_counts()
        assert set(at_kill) == {"pending", "done"}, at_kill
        assert at_kill["done"] > 0 and at_kill["pending"] > 0, at_kill
        assert "Traceback" not in first.log(), first.log()

        # 2. A new worker finishes the inbox, then stops gracefully on SIGTERM.
        name = f"crash-test-{run}-2"
        second = WorkerProcess.start(probe.worker_url(name), tmp_path, "worker-2")
        workers.append(second)
        deadline = time.monotonic() + DRAIN_SECONDS
        while (counts := probe.inbox_counts()).get("pending", 0):
            second.assert_running()
            assert not counts.get("failed"), f"{counts}\n{second.log()}"
            assert time.monotonic() < deadline, f"inbox not drained: {counts}\n{second.log()}"
            await asyncio.sleep(0.05)
        drained_at = time.monotonic() - started
        assert second.signal(signal.SIGTERM) == 0, second.log()
        assert "Traceback" not in second.log(), second.log()
    finally:
        for w in workers:
            w.reap()
        probe.close()

    # 3. Exactly once: every item done in one attempt, every effect there once.
    async with copilot.db.session() as session:
        left = await depth(session)
        assert (left.pending, left.failed) == (0, 0)
        items = (await session.exec(
            select(InboxItem.status, InboxItem.attempts, func.count())
            .where(col(InboxItem.last_error).is_(None), col(InboxItem.processed_at).isnot(None))
            .group_by(col(InboxItem.status), col(InboxItem.attempts)))).all()
        # Each notification's listing adds two items of its own, done exactly once as well.
        listings = (await session.exec(select(func.count()).where(
            InboxItem.source == "alertmanager-listing"))).one()
        assert [tuple(r) for r in items] == [(InboxStatus.DONE.value, 1, total + listings)], (
            "every item must be done, in its first counted attempt, without an error")

        alerts = (await session.exec(select(Alert))).all()
        assert len(alerts) == len(sent.firings)
        assert {(a.fingerprint, a.starts_at) for a in alerts} == {
            (fp, datetime.fromisoformat(s.replace("Z", "+00:00"))) for fp, s in sent.firings}
        assert {(a.fingerprint, a.starts_at) for a in alerts if a.status == "resolved"} == {
            (fp, datetime.fromisoformat(s.replace("Z", "+00:00"))) for fp, s in sent.resolutions}

        incidents = (await session.exec(select(Incident))).all()
        assert len(incidents) == GROUPS, "one incident per group"
        assert {i.group_key for i in incidents} == sent.group_keys
        assert {i.group_key for i in incidents if i.status == "resolved"} == sent.resolved_groups
        incident_of_group = {i.group_key: i.id for i in incidents}
        assert all(a.incident_id == incident_of_group[a.group_key] for a in alerts), (
            "every alert joins its own group's incident")

        kinds = dict((await session.exec(
            select(TimelineEvent.kind, func.count()).group_by(col(TimelineEvent.kind)))).all())
        assert kinds == {"alert_fired": len(sent.firings),
                         "alert_resolved": len(sent.resolutions),
                         "status_changed": len(sent.resolved_groups)}
        fired_keys = (await session.exec(
            select(func.count(func.distinct(TimelineEvent.dedupe_key)))
            .where(TimelineEvent.kind == "alert_fired"))).one()
        assert fired_keys == len(sent.firings), "one alert_fired event per firing"

        messages = (await session.exec(select(OutboxMessage))).all()
        opened = [m for m in messages if m.kind == "incident_opened"]
        assert sorted(m.incident_id for m in opened) == sorted(incident_of_group.values()), (
            "one incident_opened message per incident")
        assert len(messages) == len(opened) + len(sent.resolved_groups)
        assert {m.payload["status"] for m in messages if m.kind == "incident_status"} == {
            "resolved"}

    print(f"\n[{db_url.get_backend_name()}] {total} items accepted in {accepted_in:.1f}s; "
          f"worker killed inside a batch at {killed_at:.1f}s with {at_kill['done']} done and "
          f"{at_kill['pending']} pending; drained by {drained_at:.1f}s; "
          f"checked by {time.monotonic() - started:.1f}s")
