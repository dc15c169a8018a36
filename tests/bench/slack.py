"""Slack benchmark: a real `sre-copilot serve` (PostgreSQL, a live Prometheus, the local Slack
Web API, no model) under Slack's traffic.

1. Ack latency: a second process posts signed Slack events to `/slack/events` at --rate per
   second for --seconds (channel messages, reactions and mentions, as in a busy workspace) and
   reports request → HTTP 200 latency p50/p95/p99 (Slack's deadline is 3 s; the target is p99
   < 100 ms), and how many were stored.
2. Alert → hypotheses: --incidents Alertmanager webhooks for new incidents, with
   SRE_COPILOT_SLACK_CREATE_CHANNELS on; for each, the time from the webhook's 202 until the
   incident's channel shows the investigation (hypotheses with Confirm buttons) in its thread
   (target p95 < 2 s with the evidence engine). The first incident (which loads the embedding
   model for the runbook search) is reported apart.

    .venv/bin/python tests/bench/slack.py [--rate 100] [--seconds 30] [--incidents 20]

The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.intake import PG_BASE, pct, start_server, stop_server
from tests.fakes.alertmanager import alert, notification
from tests.fakes.live_prometheus import HISTORY_SECONDS, Service, live_prometheus
from tests.fakes.slack_api import (
    FakeSlack,
    app_mention,
    event_callback,
    message,
    reaction_added,
    running_slack,
    sign,
)

SECRET = "bench-signing-secret"


async def drive(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """The second process: open-loop signed events at `rate`/s; latencies in ms."""
    latencies: list[float] = []
    failures = 0
    total = int(rate * seconds)
    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=64)) as client:

        async def one(i: int) -> None:
            nonlocal failures
            ts = f"{1700000000 + i}.{i % 1000000:06d}"
            kind = i % 10
            if kind < 7:
                event = message(f"deploy {i} went out", "C0OPS", ts, "U0ANA")
            elif kind < 9:
                event = reaction_added("eyes", "C0OPS", ts, "U0BOB")
            else:
                event = app_mention("<@U0BOT> /help", "C0OPS", ts, "U0ANA")
            body = event_callback(event, event_id=f"Ev{i:08d}")
            headers = {**sign(body, SECRET), "Content-Type": "application/json"}
            sent = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers=headers)
                if response.status_code != 200:
                    failures += 1
                latencies.append((time.perf_counter() - sent) * 1000)
            except httpx.HTTPError:
                failures += 1

        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return {"sent": total, "failed": failures, "elapsed_s": time.perf_counter() - start,
            "ack_p50_ms": statistics.median(latencies), "ack_p95_ms": pct(latencies, 95),
            "ack_p99_ms": pct(latencies, 99), "ack_max_ms": max(latencies)}


def investigation_posted(slack: FakeSlack, incident: int) -> bool:
    try:
        channel = slack.channel(f"inc-{incident}-checkout")
    except (KeyError, LookupError):
        return False
    return any(m.thread_ts and any(e.get("action_id") == "hypothesis_confirm"
                                   for b in m.blocks or [] if b.get("type") == "actions"
                                   for e in b.get("elements", []))
               for m in slack.messages.get(channel.id, []))


def run(args: argparse.Namespace, db_url: str) -> dict[str, Any]:
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as tmp, running_slack() as slack, live_prometheus(
            Path(tmp) / "prom", [Service("checkout", rps=50, error_ratio=0.2,
                                         errors_from=HISTORY_SECONDS - 900)]) as prom:
        slack.add_channel("ops", id="C0OPS", is_member=True, members=["U0ANA", "U0BOB"])
        os.environ.update({
            "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.base_url + "/api/", "PROMETHEUS_URL": prom,
            "SRE_COPILOT_SLACK_CREATE_CHANNELS": "true", "SRE_COPILOT_HISTORY": "false"})
        proc, port = start_server(db_url, token, tmp)
        base = f"http://127.0.0.1:{port}"
        try:
            done = subprocess.run(
                [sys.executable, __file__, "--drive", f"{base}/slack/events",
                 "--rate", str(args.rate), "--seconds", str(args.seconds)],
                capture_output=True, text=True, check=True)
            acks = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"acks: {acks}")
            times = []
            for n in range(1, args.incidents + 1):
                sent = time.perf_counter()
                response = httpx.post(f"{base}/webhooks/alertmanager", headers={
                    "Authorization": f"Bearer {token}"}, json=notification(
                        [alert(f"CheckoutErrors{n}", service="checkout")],
                        group_key=f"bench-{n}"), timeout=10)
                assert response.status_code == 202, response.text
                while not investigation_posted(slack, n):
                    if time.perf_counter() - sent > 120:
                        raise SystemExit(f"incident {n}: no investigation in 120 s")
                    time.sleep(0.02)
                times.append((time.perf_counter() - sent) * 1000)
                print(f"incident {n}: hypotheses in the thread after {times[-1]:.0f} ms")
            warm = times[1:] or times
            return {**acks, "incidents": len(times), "first_incident_ms": times[0],
                    "alert_to_hypotheses_p50_ms": statistics.median(warm),
                    "alert_to_hypotheses_p95_ms": pct(warm, 95),
                    "alert_to_hypotheses_max_ms": max(warm)}
        finally:
            stop_server(proc)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--incidents", type=int, default=20)
    ap.add_argument("--drive", help=argparse.SUPPRESS)  # the load process: events to this URL
    args = ap.parse_args()
    if args.drive:
        print(json.dumps(asyncio.run(drive(args.drive, args.rate, args.seconds))))
        return 0
    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        result = run(args, f"{PG_BASE}?options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
