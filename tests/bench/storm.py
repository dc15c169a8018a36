"""Alert-storm benchmark (issue 24): how fast incident cards go out when everything breaks at once.

`sre-copilot serve` on PostgreSQL, with a Chroma server holding the bundled runbooks and the local
Slack Web API creating a channel per incident (tests/scale.py sets them up as production runs
them). A second process plays Alertmanager: --groups groups of --alerts-per-group critical alerts
arriving at --rate new alerts per second — each group's first notification carries half its
alerts, its second all of them — then every group re-sent as Alertmanager's repeats would be.

Prints, once with one replica and once with --replicas started together on an empty database
(no replica migrates first): accepted/s, ack p50/p95/p99, a group's first 202 → its incident card
in Slack (p50/p95/max; the fake is polled every 50 ms), how long the inbox took to drain after
sending ended, alerts lost (acknowledged, yet on no incident: must be 0), duplicate cards (a
second incident channel, with its card, for a group: must be 0), and each replica's RSS: idle
once ready, and peak. Targets on the project's 2-core machine: card p95 < 2 s, RSS < 400 MB.
The last line is JSON.

    .venv/bin/python -m tests.bench.storm [--groups 200] [--alerts-per-group 10] [--rate 100]
                                         [--replicas 1,3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.bench.intake import PG_BASE, pct
from tests.bench.scale import PostWatch, inbox_empty, rss_mb, setting
from tests.fakes.alertmanager import alert, notification
from tests.scale import (
    TOKEN,
    Replica,
    start_replica,
    stop,
    wait_ready,
)


@dataclass(frozen=True)
class Storm:
    groups: int = 200
    per_group: int = 10
    rate: float = 100.0  # new alerts per second

    @property
    def alerts(self) -> int:
        return self.groups * self.per_group

    def plan(self) -> list[tuple[float, dict[str, Any]]]:
        """(seconds after the start, notification) in send order: the first halves, the full
        groups, then the repeats, paced so that new alerts arrive at `rate` per second."""
        starts = datetime.now(UTC) - timedelta(minutes=1)
        groups = [[alert(f"Storm{g % 7}Failing", service=f"svc-{g:03d}", starts=starts,
                         pod=f"svc-{g:03d}-{i:02d}") for i in range(self.per_group)]
                  for g in range(self.groups)]
        half = self.per_group // 2
        every = half / self.rate  # seconds between notifications: each brings `half` new alerts
        out: list[tuple[float, dict[str, Any]]] = []
        for wave, cut in enumerate((half, self.per_group, self.per_group)):
            for g, alerts in enumerate(groups):
                at = (wave * self.groups + g) * every
                out.append((at, notification(alerts[:cut], group_key=f'{{}}:{{group="{g}"}}')))
        return out


# -- the second process: Alertmanager ----------------------------------------------------------


async def _send(urls: list[str], plan: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """Post each notification at its time (open loop), to the replicas in turn, retried on the
    next until one answers 202, as Alertmanager retries; returns what was acknowledged."""
    acks: list[float] = []
    first_202: dict[str, float] = {}
    failures = 0
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=256)) as client:

        async def one(n: int, at: float, body: dict[str, Any], t0: float) -> None:
            nonlocal failures
            await asyncio.sleep(max(0.0, t0 + at - time.perf_counter()))
            for attempt in range(100):
                url = urls[(n + attempt) % len(urls)]
                started = time.perf_counter()
                try:
                    r = await client.post(f"{url}/webhooks/alertmanager", json=body,
                                          headers={"Authorization": f"Bearer {TOKEN}"})
                    if r.status_code == 202:
                        acks.append(time.perf_counter() - started)
                        first_202.setdefault(body["alerts"][0]["labels"]["service"], time.time())
                        return
                except httpx.TransportError:
                    pass
                failures += 1
                await asyncio.sleep(0.2)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(n, at, body, t0) for n, (at, body) in enumerate(plan)))
        seconds = time.perf_counter() - t0
    return {"acks": acks, "first_202": first_202, "seconds": seconds, "failures": failures,
            "ended": time.time()}


def _alertmanager(urls: list[str], plan: list[tuple[float, dict[str, Any]]], out: Any) -> None:
    out.put(asyncio.run(_send(urls, plan)))


def play(urls: list[str], storm: Storm) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_alertmanager, args=(urls, storm.plan(), results))
    proc.start()
    sent: dict[str, Any] = results.get()
    proc.join()
    return sent


# -- one run -----------------------------------------------------------------------------------


def start_together(n: int, directory: Path, env: dict[str, str]) -> list[Replica]:
    """`n` replicas started at the same moment on an empty schema, each migrating it."""
    fleet = [start_replica(f"replica-{i}", directory, env) for i in range(n)]
    for r in fleet:
        wait_ready(r)
    return fleet


def count(dsn: str, schema: str, sql: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _stages(dsn: str, schema: str) -> dict[str, tuple[float, float | None]]:
    """Each group's incident: when it was written, and when a replica claimed the delivery of
    its card (the ledger's marker), in unix seconds."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        rows = conn.execute(
            "SELECT a.labels->>'service', min(i.created_at), min(m.created_at) FROM alert a "
            "JOIN incident i ON i.id = a.incident_id LEFT JOIN outbox_message m "
            "ON m.key = 'slack:outbox:incident:' || i.id || ':opened' GROUP BY 1").fetchall()

    def unix(at: datetime) -> float:
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()

    return {svc: (unix(opened), unix(claimed) if claimed else None)
            for svc, opened, claimed in rows if svc and opened}


def run_once(n: int, storm: Storm) -> dict[str, Any]:
    with setting("bench_storm") as at:
        slack = at.slack
        fleet = start_together(n, at.directory, at.env)
        try:
            time.sleep(2)  # settle: the idle figure is a replica at rest, model loaded
            idle = [rss_mb(r.proc.pid)[0] for r in fleet]
            with PostWatch(slack) as watch:
                sent = play([r.url for r in fleet], storm)
                drained = asyncio.run(inbox_empty(PG_BASE, at.schema))
                deadline = time.time() + 120
                while len(watch.seen) < storm.groups and time.time() < deadline:
                    time.sleep(0.1)
            memory = [rss_mb(r.proc.pid) for r in fleet]
            alive = [r.proc.poll() is None for r in fleet]
        finally:
            for r in fleet:
                stop(r)
        first = sent["first_202"]
        to_card = [watch.seen[s] - first[s] for s in first if s in watch.seen]
        on_incidents = count(PG_BASE, at.schema, "SELECT count(DISTINCT fingerprint) FROM alert "
                                                 "WHERE incident_id IS NOT NULL")
        stages = _stages(PG_BASE, at.schema)
        channels = Counter(m[1] for c in slack.channels.values()
                           if (m := re.match(r"inc-\d+-.*?(svc-\d+)", c.name)))
    acks = [x * 1000 for x in sent["acks"]]
    # Where a card's time went: accepted → its incident written, and written → card in Slack.
    to_incident = [stages[s][0] - first[s] for s in first if s in stages]
    to_claim = [c - o for o, c in stages.values() if c is not None]
    claim_to_card = [watch.seen[s] - c for s, (_, c) in stages.items()
                     if c is not None and s in watch.seen]
    return {
        "replicas": n, "alerts": storm.alerts, "notifications": len(acks),
        "replicas_up": sum(alive),
        "accepted_per_s": round(len(acks) / sent["seconds"], 1),
        "ack_p50_ms": round(statistics.median(acks), 1), "ack_p95_ms": pct(acks, 95),
        "ack_p99_ms": pct(acks, 99), "retried": sent["failures"],
        "cards": len(to_card),
        "card_p50_s": round(statistics.median(to_card), 2) if to_card else None,
        "card_p95_s": round(sorted(to_card)[int(0.95 * (len(to_card) - 1))], 2)
        if to_card else None,
        "card_max_s": round(max(to_card), 2) if to_card else None,
        "to_incident_p50_s": round(statistics.median(to_incident), 2) if to_incident else None,
        "to_incident_p95_s": pct(to_incident, 95) if to_incident else None,
        "to_claim_p50_s": round(statistics.median(to_claim), 2) if to_claim else None,
        "to_claim_p95_s": pct(to_claim, 95) if to_claim else None,
        "claim_to_card_p50_s": round(statistics.median(claim_to_card), 2)
        if claim_to_card else None,
        "claim_to_card_p95_s": pct(claim_to_card, 95) if claim_to_card else None,
        "inbox_drained_after_s": round(drained, 1),
        "alerts_lost": storm.alerts - on_incidents,
        "duplicate_cards": sum(v - 1 for v in channels.values() if v > 1),
        "idle_rss_mb": [round(x) for x in idle],
        "rss_mb": [round(m[0]) for m in memory],
        "peak_rss_mb": [round(m[1]) for m in memory],
    }


def show(r: dict[str, Any]) -> str:
    return (f"{r['replicas']} replica(s), {r['replicas_up']} up: {r['accepted_per_s']} accepted/s, "
            f"ack p50/p95/p99 {r['ack_p50_ms']}/{r['ack_p95_ms']}/{r['ack_p99_ms']} ms; "
            f"{r['cards']} cards, first 202 → card p50/p95/max {r['card_p50_s']}/"
            f"{r['card_p95_s']}/{r['card_max_s']} s (p50/p95: to its incident "
            f"{r['to_incident_p50_s']}/{r['to_incident_p95_s']} s, to the claim of its card "
            f"{r['to_claim_p50_s']}/{r['to_claim_p95_s']} s, to the card "
            f"{r['claim_to_card_p50_s']}/{r['claim_to_card_p95_s']} s); "
            f"inbox drained {r['inbox_drained_after_s']} s "
            f"after sending; lost {r['alerts_lost']}, duplicate cards {r['duplicate_cards']}; "
            f"RSS idle {r['idle_rss_mb']} MB, peak {r['peak_rss_mb']} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--alerts-per-group", type=int, default=10)
    parser.add_argument("--rate", type=float, default=100.0, help="new alerts per second")
    parser.add_argument("--replicas", default="1,3", help="replica counts, one run each")
    args = parser.parse_args()
    storm = Storm(args.groups, args.alerts_per_group, args.rate)
    results = []
    for n in (int(x) for x in args.replicas.split(",")):
        result = run_once(n, storm)
        print(show(result), file=sys.stderr)
        results.append(result)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
