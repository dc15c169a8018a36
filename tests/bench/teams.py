"""Teams benchmark: a real `sre-copilot serve --no-worker` and `sre-copilot worker` (PostgreSQL,
a live Prometheus, the local Bot Framework over HTTPS, no model: the evidence engine) under
Teams' traffic.

After installing the bot in a team and one warm-up question (which loads what the first answer
needs; reported apart), a second process POSTs Bot Framework-signed activities to
`/api/messages` at --rate per second for --seconds, open loop: --mentions of them @mention the
bot with a question about checkout (each in its own channel thread), --personal are 1:1 chat
questions, the rest are thread replies without a mention (stored, then ignored by the worker).
It reports:

1. Inbound answer time: POST → HTTP response p50/p95/p99 over all activities (Teams gives a bot
   15 s; the target is p99 < 100 ms), non-2xx answers, serve's CPU per activity.
2. Mention → first reply: POST → the first connector `send` into that conversation (the
   progress card), p50/p95/max, and → the final answer (the `update` replacing the progress
   card), how many were answered within --wait, worker CPU per activity, and when the inbox
   was empty again.

    .venv/bin/python -m tests.bench.teams [--rate 50] [--seconds 30] [--quick]

Activities are built and signed before the timed loop (the fake's keys live in this process).
Times across the two processes use CLOCK_MONOTONIC, which is system-wide on Linux. The last
line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
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

from tests.bench.intake import PG_BASE, SERVER, cpu_seconds, pct, stop_server, wait_ready
from tests.fakes.botframework import FakeBotFramework, running_botframework
from tests.fakes.live_prometheus import HISTORY_SECONDS, Service, live_prometheus

CHANNEL = "19:chan@thread.tacv2"
QUESTION = "what is failing in checkout?"
PROGRESS = "🔎 Investigat"  # the progress card's summary; the answer replaces it


def chosen(i: int, share: float) -> bool:
    """Every 1/share-th index, evenly spread."""
    return int((i + 1) * share) > int(i * share)


def plan(fake: FakeBotFramework, total: int, mentions: float, personal: float
         ) -> list[dict[str, Any]]:
    """The activities to send, built and signed: kind, conversation id, body, headers."""
    out, others = [], 0
    for i in range(total):
        if chosen(i, mentions):
            kind, conversation = "mention", f"{CHANNEL};messageid={1_800_000_000_000 + i}"
            activity = fake.message(QUESTION, conversation_id=conversation)
        elif (others := others + 1) and chosen(others - 1, personal / (1 - mentions)):
            kind, conversation = "personal", f"a:bench-chat-{i}"
            activity = fake.personal_message(QUESTION, conversation_id=conversation,
                                             from_id=f"29:user-{i}")
        else:  # a reply in one of 100 threads the bot is not part of
            root = str(1_600_000_000_000 + i % 100)
            kind, conversation = "reply", f"{CHANNEL};messageid={root}"
            activity = fake.message(f"deploy {i} went out, watching", mention_bot=False,
                                    conversation_id=conversation, reply_to_id=root)
        out.append({"kind": kind, "conversation": conversation, "body": json.dumps(activity),
                    "headers": fake.sign_activity(activity)})
    return out


async def drive(url: str, items: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    """The second process: open loop at `rate`/s; per activity [sent (monotonic), ms, status]."""
    results: list[list[Any]] = [[0.0, None, 0] for _ in items]
    start = time.monotonic()
    async with httpx.AsyncClient(timeout=20, limits=httpx.Limits(max_connections=64)) as client:

        async def one(i: int) -> None:
            sent = time.monotonic()
            results[i][0] = sent
            with contextlib.suppress(httpx.HTTPError):
                response = await client.post(url, content=items[i]["body"],
                                             headers=items[i]["headers"])
                results[i][1:] = [(time.monotonic() - sent) * 1000, response.status_code]

        tasks = []
        for i in range(len(items)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return {"elapsed_s": time.monotonic() - start, "results": results}


def post(fake: FakeBotFramework, url: str, activity: dict[str, Any]) -> None:
    response = httpx.post(url, content=json.dumps(activity), headers=fake.sign_activity(activity),
                          timeout=30)
    assert response.status_code == 200, (response.status_code, response.text)


def replies(fake: FakeBotFramework) -> dict[str, tuple[float, float | None]]:
    """conversation → (first `send` into it, first `update` that is not progress)."""
    seen: dict[str, tuple[float, float | None]] = {}
    for call in list(fake.calls):
        conversation = call.conversation_id or ""
        if call.kind == "send" and conversation not in seen:
            seen[conversation] = (call.at, None)
        elif call.kind == "update" and conversation in seen and seen[conversation][1] is None \
                and not str((call.body or {}).get("summary", "")).startswith(PROGRESS):
            seen[conversation] = (seen[conversation][0], call.at)
    return seen


def server_side(metrics: str, route: str = "/api/messages") -> dict[str, float]:
    """The share of `route` requests the server answered within 50 and 100 ms (its histogram)."""
    buckets: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("sre_copilot_http_request_duration_seconds_bucket") and \
                f'route="{route}"' in line:
            buckets[line.split('le="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
    total = buckets.get("+Inf", 0.0) or float("nan")
    return {"server_within_50ms": buckets.get("0.05", 0.0) / total,
            "server_within_100ms": buckets.get("0.1", 0.0) / total}


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([str(SERVER), *command], env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def start_serve(env: dict[str, str], tmp: str) -> tuple[subprocess.Popen[bytes], int]:
    """`serve --no-worker` with the Teams settings; the port once /readyz answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log = Path(tmp) / "server.log"
    proc = start(["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)], env, log)
    wait_ready(proc, port, log)
    return proc, port


def inbox(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM inbox_item WHERE source = 'teams' "
                            "GROUP BY status").fetchall()
    return {str(status): int(n) for status, n in rows}


def wait_answered(fake: FakeBotFramework, conversations: list[str], deadline: float
                  ) -> dict[str, tuple[float, float | None]]:
    while True:
        seen = replies(fake)
        if all(seen.get(c, (0, None))[1] for c in conversations) or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def run(args: argparse.Namespace, db_url: str) -> dict[str, Any]:
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as tmp, running_botframework() as fake, live_prometheus(
            Path(tmp) / "prom", [Service("checkout", rps=50, error_ratio=0.2,
                                         errors_from=HISTORY_SECONDS - 900)]) as prom:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        env.update(fake.trust_environ())
        env.update({"TEAMS_APP_ID": fake.app_id, "TEAMS_APP_PASSWORD": fake.app_password,
                    "TEAMS_OPENID_METADATA_URL": fake.openid_metadata_url,
                    "TEAMS_LOGIN_URL": fake.base_url, "PROMETHEUS_URL": prom,
                    "DATABASE_URL": db_url, "ALERTMANAGER_WEBHOOK_TOKEN": token,
                    "SRE_COPILOT_DATA_DIR": tmp, "SRE_COPILOT_LOG_LEVEL": "warning",
                    "SRE_COPILOT_HISTORY": "false", "SRE_COPILOT_WORKER": "false"})
        proc, port = start_serve(env, tmp)
        worker = start(["worker"], env, Path(tmp) / "worker.log")
        url = f"http://127.0.0.1:{port}/api/messages"
        try:
            post(fake, url, fake.conversation_update_installed())
            warm = f"{CHANNEL};messageid=1799999999999"
            sent = time.monotonic()
            post(fake, url, fake.message(QUESTION, conversation_id=warm))
            first = wait_answered(fake, [warm], sent + 180).get(warm, (0.0, None))[1]
            if first is None:
                raise SystemExit(f"warm-up question unanswered in 180 s:\n"
                                 f"{(Path(tmp) / 'worker.log').read_text()[-3000:]}")
            signing = time.monotonic()
            items = plan(fake, int(args.rate * args.seconds), args.mentions, args.personal)
            signing = (time.monotonic() - signing) * 1000 / len(items)
            (Path(tmp) / "plan.json").write_text(json.dumps(items))
            print(f"installed; first answer after {(first - sent) * 1000:.0f} ms; "
                  f"{len(items)} activities signed ({signing:.1f} ms each)", flush=True)
            cpu = cpu_seconds(proc.pid), cpu_seconds(worker.pid)
            done = subprocess.run(
                [sys.executable, __file__, "--drive", url, "--plan", str(Path(tmp) / "plan.json"),
                 "--rate", str(args.rate)], capture_output=True, text=True, check=True)
            driven = json.loads(done.stdout.strip().splitlines()[-1])
            load_end = time.monotonic()
            results = driven["results"]
            ms = [r[1] for r in results if r[1] is not None]
            out: dict[str, Any] = {
                "sent": len(items), "elapsed_s": round(driven["elapsed_s"], 2),
                "non_2xx": sum(not 200 <= r[2] < 300 for r in results),
                "answer_p50_ms": round(statistics.median(ms), 1), "answer_p95_ms": pct(ms, 95),
                "answer_p99_ms": pct(ms, 99), "answer_max_ms": round(max(ms), 1),
                "serve_cpu_ms_per_activity": round(
                    (cpu_seconds(proc.pid) - cpu[0]) * 1000 / len(items), 2)}
            out.update(server_side(httpx.get(f"http://127.0.0.1:{port}/metrics",
                                             timeout=10).text))
            print(f"inbound: {out}", flush=True)
            asked = {items[i]["conversation"]: (items[i]["kind"], r[0])
                     for i, r in enumerate(results) if items[i]["kind"] != "reply"}
            seen = wait_answered(fake, list(asked), load_end + args.wait)
            while inbox(db_url).get("pending") and time.monotonic() < load_end + args.wait:
                time.sleep(0.2)
            out["inbox_drained_after_load_s"] = round(time.monotonic() - load_end, 1)
            out["worker_cpu_ms_per_activity"] = round(
                (cpu_seconds(worker.pid) - cpu[1]) * 1000 / len(items), 2)
            out["inbox"] = inbox(db_url)
            out["connector_non_2xx"] = sum(not 200 <= c.status < 300 for c in list(fake.calls))
            for kind in ("mention", "personal"):
                convs = [c for c, (k, _) in asked.items() if k == kind]
                firsts = [(seen[c][0] - asked[c][1]) * 1000 for c in convs if c in seen]
                finals = [(seen[c][1] - asked[c][1]) * 1000
                          for c in convs if seen.get(c, (0, None))[1] is not None]
                out[f"{kind}s"], out[f"{kind}s_answered"] = len(convs), len(finals)
                if firsts:
                    out[f"{kind}_first_reply_p50_ms"] = round(statistics.median(firsts))
                    out[f"{kind}_first_reply_p95_ms"] = round(pct(firsts, 95))
                    out[f"{kind}_first_reply_max_ms"] = round(max(firsts))
                if finals:
                    out[f"{kind}_final_answer_p50_ms"] = round(statistics.median(finals))
                    out[f"{kind}_final_answer_p95_ms"] = round(pct(finals, 95))
            out["first_answer_ms"] = round((first - sent) * 1000)
            out["log_errors"] = {name: sum(w in line for line in (Path(tmp) / name).read_text(
                errors="replace").splitlines() for w in ("ERROR", "Traceback"))
                for name in ("server.log", "worker.log")}
            return out
        finally:
            stop_server(worker)
            stop_server(proc)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rate", type=float, default=50.0, help="activities per second")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--mentions", type=float, default=0.1,
                    help="share of activities that @mention the bot with a question")
    ap.add_argument("--personal", type=float, default=0.02,
                    help="share that are 1:1 chat questions (also answered)")
    ap.add_argument("--wait", type=float, default=300.0,
                    help="seconds after the load to wait for every answer")
    ap.add_argument("--quick", action="store_true", help="--rate 20 --seconds 5")
    ap.add_argument("--drive", help=argparse.SUPPRESS)  # the load process: activities to this URL
    ap.add_argument("--plan", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drive:
        items = json.loads(Path(args.plan).read_text())
        print(json.dumps(asyncio.run(drive(args.drive, items, args.rate))))
        return 0
    if args.quick:
        args.rate, args.seconds = 20.0, 5.0
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
