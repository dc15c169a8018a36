"""Scale-out benchmark: the same Alertmanager load against 1 and against 3 `sre-copilot serve`
replicas on one PostgreSQL, with a Chroma server and the local Slack Web API (tests/scale.py).

The load: --groups alert groups of --waves × --per-wave alerts (3,000 by default), each
notification carrying the group's current alerts and sent twice, to two different replicas
where there are two, --concurrency requests at a time. Prints, per replica count:
accepted/s (202s per second of sending), ack p50/p95, alert-to-post p50/p95 (a group's first
202 → its incident channel's card seen in Slack, polled every 50 ms), the time until the inbox
is empty, and RSS per replica (now and peak). The last line is JSON.

    .venv/bin/python -m tests.bench.scale [--groups 30] [--waves 10] [--per-wave 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.bench.intake import PG_BASE, pct
from tests.chroma_server import running_chroma
from tests.fakes.slack_api import FakeSlack, running_slack
from tests.scale import Load, Sender, ingest_runbooks, replica_env, replicas


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


class PostWatch:
    """Records when each incident channel's card first appears in the Slack fake."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack
        self.seen: dict[str, float] = {}  # service → wall time of its card
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PostWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            now = time.time()
            for channel in list(self.slack.channels.values()):
                # inc-<n>-<subject>: the subject names the service (svc-07) or one of its
                # pods (pod-svc-07-001).
                m = re.match(r"inc-\d+-.*?(svc-\d+)", channel.name)
                if m and m[1] not in self.seen and any(
                        not msg.thread_ts for msg in list(self.slack.messages.get(channel.id,
                                                                                 []))):
                    self.seen[m[1]] = now


async def drive(load: Load, sender: Sender, concurrency: int) -> tuple[float, dict[str, float]]:
    """Send everything; returns the sending time and each service's first 202 (wall time)."""
    first_ack: dict[str, float] = {}
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=64)) as client:

        async def one(body: dict[str, Any]) -> None:
            async with sem:
                await sender.twice(client, body)
            service = body["alerts"][0]["labels"]["service"]
            first_ack.setdefault(service, time.time())

        started = time.perf_counter()
        await asyncio.gather(*(one(b) for b in load.notifications))
        return time.perf_counter() - started, first_ack


async def inbox_empty(dsn: str, schema: str, limit: float = 300) -> float:
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        while time.perf_counter() - started < limit:
            row = conn.execute("SELECT count(*) FROM inbox_item WHERE status = 'pending'"
                               ).fetchone()
            if row is not None and row[0] == 0:
                return time.perf_counter() - started
            await asyncio.sleep(0.2)
    return float("nan")


@dataclass
class Setting:
    """What a run needs beside its replicas: a fresh PostgreSQL schema, a Chroma server holding
    the bundled runbooks, the local Slack Web API, and the replicas' environment."""

    schema: str
    directory: Path
    slack: FakeSlack
    env: dict[str, str]


@contextmanager
def setting(prefix: str) -> Iterator[Setting]:
    """A `Setting`, removed afterwards (the schema dropped)."""
    schema = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    db_url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    try:
        with tempfile.TemporaryDirectory() as tmp, running_slack() as slack, \
                running_chroma(Path(tmp) / "chroma") as chroma:
            env = replica_env(db_url, Path(tmp), slack, chroma, SRE_COPILOT_LOG_LEVEL="warning")
            ingest_runbooks(env, Path(tmp) / "ingest")
            yield Setting(schema, Path(tmp), slack, env)
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run_once(n: int, load: Load, concurrency: int) -> dict[str, Any]:
    with setting("bench_scale") as at, replicas(n, at.directory, at.env) as fleet, \
            PostWatch(at.slack) as watch:
        sender = Sender(fleet)
        seconds, first_ack = asyncio.run(drive(load, sender, concurrency))
        drained = asyncio.run(inbox_empty(PG_BASE, at.schema))
        deadline = time.time() + 120
        while len(watch.seen) < load.groups and time.time() < deadline:
            time.sleep(0.1)
        to_post = [watch.seen[s] - first_ack[s] for s in first_ack if s in watch.seen]
        memory = [rss_mb(r.proc.pid) for r in fleet]
    acks = [x * 1000 for x in sender.latencies]
    return {
        "replicas": n, "alerts": load.alerts, "requests": sender.acked,
        "accepted_per_s": sender.acked / seconds,
        "alerts_per_s": load.alerts / seconds,
        "ack_p50_ms": statistics.median(acks), "ack_p95_ms": pct(acks, 95),
        "inbox_empty_after_send_s": drained,
        "incidents_posted": len(to_post),
        "alert_to_post_p50_s": statistics.median(to_post) if to_post else None,
        "alert_to_post_p95_s": pct(to_post, 95) if to_post else None,
        "rss_mb": [round(m[0]) for m in memory],
        "peak_rss_mb": [round(m[1]) for m in memory],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=30)
    parser.add_argument("--waves", type=int, default=10)
    parser.add_argument("--per-wave", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--replicas", default="1,3", help="replica counts to compare")
    args = parser.parse_args()
    results = []
    for n in (int(x) for x in args.replicas.split(",")):
        load = Load(args.groups, args.waves, args.per_wave)
        result = run_once(n, load, args.concurrency)
        print(f"{n} replica(s): {result}", file=sys.stderr)
        results.append(result)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
