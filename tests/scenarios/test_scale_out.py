"""Three replicas behave like one: three `sre-copilot serve` processes on one PostgreSQL, with a
Chroma server (`chroma run`) holding the runbooks, the local Slack Web API and the local Bot
Framework.

1,800 Alertmanager alerts in 30 groups arrive in six waves, round-robin across the replicas, every
notification sent twice to different replicas; Slack mentions arrive at one replica and Slack's
retry of each at another, Teams mentions at one replica and their redelivery at another. A third
of the way in, one replica is killed with SIGKILL; two thirds in, another gets SIGTERM.
Afterwards: every alert stored once, one incident per group, one channel and one incident card
per incident, one answer per Slack or Teams mention (from the Chroma server's runbooks),
nothing left in the inbox, and the SIGTERMed replica drained and exited cleanly. Then, with all
three gone, a new replica continues one of the mentions' threads."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.chroma_server import running_chroma
from tests.conftest import url_string
from tests.fakes.botframework import FakeBotFramework, running_botframework
from tests.fakes.slack_api import FakeSlack, event_callback, message, running_slack
from tests.scale import (
    SERVER,
    Load,
    Replica,
    Sender,
    ingest_runbooks,
    mention,
    replica_env,
    replicas,
    send_slack_event,
    start_replica,
    stop,
    wait_ready,
)

pytestmark = pytest.mark.slow
MENTIONS = 12
TEAMS_CHANNEL = "19:chan@thread.tacv2"


async def send_teams_activity(client: httpx.AsyncClient, fleet: list[Replica],
                              teams: FakeBotFramework, activity: dict[str, Any],
                              start: int = 0) -> Replica:
    """A Bot Framework-signed activity to a live replica (Teams redelivers the same activity,
    same id, when it gets no answer in time: wherever the load balancer sends it)."""
    live = [r for r in fleet if r.alive]
    for i in range(len(live) * 3):
        target = live[(start + i) % len(live)]
        try:
            response = await client.post(f"{target.url}/api/messages",
                                         content=json.dumps(activity),
                                         headers=teams.sign_activity(activity))
            if response.status_code in (200, 201, 202):
                return target
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("a Teams activity was never accepted")


def _dsn(url: URL) -> tuple[str, str]:
    """A psycopg DSN and the schema the test's URL points at."""
    schema = str(url.query["options"]).split("search_path=", 1)[1]
    plain = url.set(drivername="postgresql", query={})
    return plain.render_as_string(hide_password=False), schema


def _count(conn: psycopg.Connection[tuple[int]], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


async def _wait_until_quiet(dsn: str, schema: str, seconds: float = 120) -> None:
    """Until the inbox has nothing pending and every queued Slack delivery is marked."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        for _ in range(int(seconds * 2)):
            pending = _count(conn, "SELECT count(*) FROM inbox_item WHERE status = 'pending'")
            opened = _count(conn, "SELECT count(*) FROM outbox_message "
                                  "WHERE kind = 'incident_opened'")
            # Each new incident's own delivery marker, not any marker: status updates have
            # theirs too, and counting them called it quiet while a card was still on its way
            # (a killed replica's claim runs out after the lease).
            marked = _count(conn, "SELECT count(*) FROM outbox_message o WHERE o.kind = "
                                  "'incident_opened' AND EXISTS (SELECT 1 FROM outbox_message m "
                                  "WHERE m.key = 'slack:outbox:' || o.key AND m.status = 'sent')")
            if pending == 0 and opened and marked >= opened:
                return
            await asyncio.sleep(0.5)
    raise AssertionError(f"not quiet after {seconds} s: {pending} pending, "
                         f"{marked}/{opened} incident channels delivered")


def _thread_replies(slack: FakeSlack, channel: str, ts: str) -> int:
    return sum(1 for m in slack.messages.get(channel, []) if m.thread_ts == ts)


async def test_three_replicas_lose_nothing_and_double_nothing(pg_url: URL,
                                                              tmp_path: Path) -> None:
    assert SERVER.exists(), f"{SERVER} is missing; pip install -e . first"
    dsn, schema = _dsn(pg_url)
    # Six waves of ten alerts per group: 180 notifications carrying 12,600 alert states, enough
    # for the kills to land mid-load (`python -m tests.bench.scale` floods harder).
    load = Load(waves=6)
    with running_slack() as slack, running_chroma(tmp_path / "chroma") as chroma, \
            running_botframework() as teams:
        ops = slack.add_channel("ops", members=["U0ANA"]).id
        env = replica_env(url_string(pg_url), tmp_path, slack, chroma,
                          SRE_COPILOT_CHAT_LEASE_SECONDS="20", **teams.trust_environ(),
                          TEAMS_APP_ID=teams.app_id, TEAMS_APP_PASSWORD=teams.app_password,
                          TEAMS_OPENID_METADATA_URL=teams.openid_metadata_url,
                          TEAMS_LOGIN_URL=teams.base_url)
        ingest_runbooks(env, tmp_path / "ingest")
        with replicas(3, tmp_path, env) as fleet:
            sender = Sender(fleet)
            asked: list[str] = []
            threads: list[str] = []  # Teams conversations (channel threads) asked in
            async with httpx.AsyncClient(timeout=30) as client:
                await send_teams_activity(client, fleet, teams,
                                          teams.conversation_update_installed())
                third = len(load.notifications) // 3
                sem = asyncio.Semaphore(8)

                async def one(body: dict[str, object]) -> None:
                    async with sem:
                        await sender.twice(client, body)

                async def ask(n: int) -> None:
                    ts, body = mention(ops, n, "/runbook HighErrorRate")
                    first = await send_slack_event(client, fleet, body, start=n)
                    await send_slack_event(client, [r for r in fleet if r is not first] or
                                           fleet, body, retry=1, start=n)
                    asked.append(ts)

                async def ask_teams(n: int) -> None:
                    thread = f"{TEAMS_CHANNEL};messageid={1800000000000 + n}"
                    activity = teams.message("/runbook HighErrorRate", conversation_id=thread)
                    first = await send_teams_activity(client, fleet, teams, activity, start=n)
                    await send_teams_activity(client, [r for r in fleet if r is not first] or
                                              fleet, teams, activity, start=n)
                    threads.append(thread)

                await asyncio.gather(*(one(b) for b in load.notifications[:third]))
                await asyncio.to_thread(stop, fleet[1], signal.SIGKILL)  # mid-load, no goodbye
                await asyncio.gather(*(one(b) for b in load.notifications[third:2 * third]),
                                     *(ask(n) for n in range(MENTIONS)),
                                     *(ask_teams(n) for n in range(MENTIONS)))
                # uvicorn shuts down gracefully, then re-raises SIGTERM to end the process.
                assert await asyncio.to_thread(stop, fleet[2], signal.SIGTERM) in (
                    0, -signal.SIGTERM)
                await asyncio.gather(*(one(b) for b in load.notifications[2 * third:]))
                # The SIGKILLed replica's leases run out; the survivor finishes its work.
                await _wait_until_quiet(dsn, schema)
            assert sender.acked == 2 * len(load.notifications)
            sigterm_log = fleet[2].text()
            assert "Traceback" not in sigterm_log, sigterm_log[-3000:]
            assert "Application shutdown complete" in sigterm_log
            assert "Finished server process" in sigterm_log

            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'SET search_path TO "{schema}"')
                # Every alert stored once, one incident per group.
                assert _count(conn, "SELECT count(*) FROM alert") == load.alerts
                assert _count(conn, "SELECT count(DISTINCT fingerprint) FROM alert") == \
                    load.alerts
                assert _count(conn, "SELECT count(*) FROM incident") == load.groups
                assert _count(conn, "SELECT count(*) FROM alert WHERE incident_id IS NULL") == 0
                assert _count(conn, "SELECT count(*) FROM inbox_item "
                                    "WHERE status <> 'done'") == 0
                # The inbox keeps an alert's state once, however many notifications carried
                # it (up to 10 here) and however many replicas each reached (2).
                assert _count(conn, "SELECT count(*) FROM inbox_item "
                                    "WHERE source = 'alertmanager'") == load.alerts

            # One channel per incident, with one incident card at its top.
            created = [c for c in slack.calls_to("conversations.create")
                       if (c.response or {}).get("ok")]
            assert len(created) == load.groups, [c.params for c in created]
            for call in created:
                channel = str((call.response or {})["channel"]["id"])
                roots = [m for m in slack.messages.get(channel, []) if not m.thread_ts]
                assert len(roots) == 1, (call.params, [m.text for m in roots])
                assert "INC-" in (roots[0].text or "")
            # Every mention answered once, whichever replica got it or its retry.
            assert len(asked) == MENTIONS
            replies = Counter({ts: _thread_replies(slack, ops, ts) for ts in asked})
            assert set(replies.values()) == {1}, replies
            answers = " ".join(str(m.blocks) for m in slack.messages.get(ops, []) if m.thread_ts)
            assert "runbook" in answers.lower()
            # And every Teams mention, delivered twice to different replicas, answered once.
            assert len(threads) == MENTIONS
            sends = Counter(c.conversation_id for c in list(teams.calls) if c.kind == "send")
            assert {t: sends[t] for t in threads} == {t: 1 for t in threads}, sends

            # Any replica continues a thread: with every replica that answered gone, a new one
            # takes a follow-up (no mention: only the thread's memory, in PostgreSQL, says the
            # bot takes part) and answers it in the thread.
            stop(fleet[0])
            fresh = start_replica("replica-3", tmp_path, {**env,
                                                         "SRE_COPILOT_AUTO_MIGRATE": "false"})
            try:
                wait_ready(fresh)
                follow = event_callback(message("and for disk full?", ops, "1800000999.000100",
                                                "U0ANA", thread_ts=asked[0]),
                                        event_id="EvSCALEFOLLOW")
                async with httpx.AsyncClient(timeout=30) as client:
                    await send_slack_event(client, [fresh], follow)
                for _ in range(120):
                    if _thread_replies(slack, ops, asked[0]) > 1:
                        break
                    await asyncio.sleep(0.5)
                assert _thread_replies(slack, ops, asked[0]) == 2, fresh.text()[-3000:]
            finally:
                stop(fresh)
