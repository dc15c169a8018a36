"""Intake benchmark: Alertmanager webhooks into a real `sre-copilot serve` on PostgreSQL.

Posts --alerts unique alerts in realistic Alertmanager groups (1-20 alerts arriving in waves, each
notification carrying the group's current alerts, some sent twice, most groups later resolved; one
request per group at a time) over --seconds, open loop, then waits for the inbox to drain. Prints
accepted/s, ack latency (request -> HTTP 202), alert-to-incident latency (send of the first acked
request carrying an alert -> `alert.created_at` of its row on an incident; same host clock), the
inbox wait, alerts lost (acked, yet on no incident and not in the inbox either: must be 0; those
still pending at the drain timeout are counted apart) and incidents created.

    .venv/bin/python tests/bench/intake.py [--alerts 10000] [--seconds 60] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
SERVER = Path(sys.executable).parent / "sre-copilot"
SERVICES = [f"{a}-{b}" for a in ("checkout", "payments", "cart", "search", "auth", "catalog",
                                 "orders", "shipping", "billing", "ledger")
            for b in ("api", "worker", "db", "gateway", "cache")]
ALERTNAMES = ("HighErrorRate", "HighLatencyP99", "PodCrashLooping", "PodNotReady",
              "CPUThrottlingHigh", "DiskFillingUp")
CLUSTERS = ("eu-west-1", "us-east-1", "us-west-2", "ap-south-1")
Key = tuple[str, str, str]  # alertname, cluster, service: the group


@dataclass
class Note:
    """One planned notification: when to send it, its group, body and fingerprints."""
    at: float
    group: str
    body: bytes
    firing: list[str]
    resolved: list[str]


@dataclass
class Sent:
    ack_ms: list[float] = field(default_factory=list)
    first_sent: dict[str, float] = field(default_factory=dict)  # firing fp -> wall clock
    resolved: set[str] = field(default_factory=set)
    accepted: int = 0
    duplicates: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    max_lag: float = 0.0
    duration: float = 0.0


def iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def plan(n: int, seconds: float, rng: random.Random, t0: float) -> tuple[list[Note], int]:
    """Notes by time, and the number of group episodes (each should open one incident)."""
    gi = min(5.0, seconds / 20)  # group_interval, compressed for short runs
    salt = secrets.token_hex(4)  # fingerprints unique to this run
    keys: list[Key] = [(a, c, s) for s in SERVICES for a in ALERTNAMES for c in CLUSTERS]
    free_at: dict[Key, float] = {}  # when a new episode may start in a group (inf: still firing)
    serial: Counter[Key] = Counter()
    episodes: list[tuple[float, list[int]]] = []
    while n > 0:
        size = min(n, rng.choices(range(1, 21), [s ** -0.5 for s in range(1, 21)])[0])
        n -= size
        chunks, rest = [], size  # the episode's alerts arrive in up to 4 waves
        while rest:
            chunks.append(min(rest, rng.randint(-(-size // 4), size)))
            rest -= chunks[-1]
        span = (len(chunks) + 2) * gi * 1.5
        episodes.append((rng.uniform(0, max(0.0, seconds - span)), chunks))
    episodes.sort()
    notes: list[Note] = []

    def note(at: float, gk: str, key: Key, firing: list[dict[str, Any]],
             resolved: list[dict[str, Any]]) -> None:
        common = dict(zip(("alertname", "cluster", "service"), key, strict=True))
        body = {"version": "4", "groupKey": gk, "truncatedAlerts": 0,
                "status": "firing" if firing else "resolved", "receiver": "sre-copilot",
                "groupLabels": common, "commonLabels": common, "commonAnnotations": {},
                "externalURL": "http://alertmanager:9093", "alerts": firing + resolved}
        notes.append(Note(at, gk, json.dumps(body).encode(), [a["fingerprint"] for a in firing],
                          [a["fingerprint"] for a in resolved]))

    for start, chunks in episodes:
        free = [k for k in keys if free_at.get(k, -1.0) <= start]
        if not free:  # every group busy: add a cluster
            keys += [(a, f"c{len(keys)}", s) for s in SERVICES for a in ALERTNAMES]
            free = [k for k in keys if k not in free_at]
        key = rng.choice(free)
        name, cluster, service = key
        gk = f'{{}}:{{alertname="{name}", cluster="{cluster}", service="{service}"}}'
        sev = "critical" if name in ("HighErrorRate", "PodCrashLooping") else "warning"
        t, current = start, []
        for chunk in chunks:
            for _ in range(chunk):
                serial[key] += 1
                labels = {"alertname": name, "cluster": cluster, "service": service,
                          "severity": sev, "namespace": service.split("-")[0],
                          "pod": f"{service}-{serial[key]:05d}",
                          "instance": f"10.{rng.randrange(256)}.{rng.randrange(256)}.7:9100"}
                fp = hashlib.sha1((salt + repr(sorted(labels.items()))).encode()).hexdigest()
                current.append({"status": "firing", "labels": labels,
                                "annotations": {"summary": f"{name} on {service}"},
                                "startsAt": iso(t0 + t - rng.uniform(0, 30)),
                                "endsAt": "0001-01-01T00:00:00Z",
                                "generatorURL": f"http://prometheus:9090/graph?g0.expr={name}",
                                "fingerprint": fp[:16]})
            note(t, gk, key, current, [])
            t += gi * rng.uniform(1, 1.5)
        if rng.random() < 0.25:  # repeat_interval, or a retry: the same alerts again
            note(t, gk, key, current, [])
            t += gi * rng.uniform(1, 1.5)
        free_at[key] = float("inf")
        if rng.random() < 0.7:  # resolved: all of them, or some
            gone = current if rng.random() < 0.8 else rng.sample(current,
                                                                 rng.randint(1, len(current)))
            still = [a for a in current if a not in gone]
            note(t, gk, key, still, [{**a, "status": "resolved", "endsAt": iso(t0 + t - 1)}
                                     for a in gone])
            if not still:
                free_at[key] = t + gi
    notes.sort(key=lambda x: x.at)
    return notes, len(episodes)


async def send(notes: list[Note], url: str, token: str, concurrency: int, request_timeout: float
               ) -> Sent:
    """Open loop: each note is released at its time, and sent once its group's previous one is
    answered; at most `concurrency` requests are in flight."""
    out, sem = Sent(), asyncio.Semaphore(concurrency)
    groups: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)  # FIFO per group
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=request_timeout) as client:
        start = time.perf_counter()

        async def post(n: Note) -> None:
            async with groups[n.group], sem:
                lag = time.perf_counter() - start - n.at
                if lag > 30:  # hopelessly behind: give up rather than run on
                    out.skipped += 1
                    return
                out.max_lag = max(out.max_lag, lag)
                wall, began = time.time(), time.perf_counter()
                try:
                    r = await client.post(url, content=n.body)
                except httpx.HTTPError as exc:
                    out.errors[type(exc).__name__] += 1
                    return
                if r.status_code != 202:
                    out.errors[str(r.status_code)] += 1
                    return
                out.ack_ms.append((time.perf_counter() - began) * 1000)
                out.accepted += r.json()["accepted"]
                out.duplicates += r.json()["duplicates"]
                for fp in n.firing:
                    out.first_sent[fp] = min(wall, out.first_sent.get(fp, wall))
                out.resolved.update(n.resolved)

        tasks = []
        for n in notes:
            if (delay := start + n.at - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(n)))
        await asyncio.gather(*tasks)
        out.duration = time.perf_counter() - start
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))], 1) if s else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux)."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return float("nan")


def start_server(db_url: str, token: str, data_dir: str) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "DATABASE_URL": db_url, "ALERTMANAGER_WEBHOOK_TOKEN": token,
           "SRE_COPILOT_DATA_DIR": data_dir, "SRE_COPILOT_LOG_LEVEL": "warning"}
    log = Path(data_dir) / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SERVER), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_ready(proc, port, log)
    return proc, port


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until `serve` answers /readyz (migrations run first); else stop it and exit with its log."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    stop_server(proc)
    sys.exit(f"server not ready (exit {proc.returncode}):\n{log.read_text()}")


def stop_server(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def one(conn: psycopg.Connection[Any], sql: str, *params: Any) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def run(args: argparse.Namespace, db_url: str) -> int:
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp, psycopg.connect(
            db_url, autocommit=True) as conn:
        proc, port = start_server(db_url, token, tmp)
        try:
            incidents_before = one(conn, "SELECT count(*) FROM incident")
            t0 = time.time()
            notes, episodes = plan(args.alerts, args.seconds, random.Random(args.seed), t0)
            unique = {fp for n in notes for fp in n.firing}
            resolutions = {fp for n in notes for fp in n.resolved}
            print(f"server pid {proc.pid} on :{port}; {len(notes)} requests, {len(unique)} alerts "
                  f"in {episodes} group episodes, {len(resolutions)} resolutions", flush=True)
            cpu0 = cpu_seconds(proc.pid)
            sent = asyncio.run(send(notes, f"http://127.0.0.1:{port}/webhooks/alertmanager",
                                    token, args.concurrency, args.timeout))
            cpu_send = cpu_seconds(proc.pid) - cpu0
            drain_start = time.monotonic()
            while (time.monotonic() - drain_start < args.drain_timeout and proc.poll() is None
                   and one(conn, "SELECT count(*) FROM inbox_item WHERE status = 'pending'")):
                time.sleep(0.25)
            drain_s, cpu_all = time.monotonic() - drain_start, cpu_seconds(proc.pid) - cpu0
        finally:
            exit_code = stop_server(proc)
        since = datetime.fromtimestamp(t0, UTC)
        pending = one(conn, "SELECT count(*) FROM inbox_item WHERE status = 'pending'")
        failed = one(conn, "SELECT count(*) FROM inbox_item WHERE status = 'failed' "
                           "AND received_at >= %s", since)
        error = one(conn, "SELECT last_error FROM inbox_item WHERE last_error IS NOT NULL "
                          "AND received_at >= %s ORDER BY id DESC LIMIT 1", since)
        found = conn.execute("SELECT fingerprint, incident_id, created_at, status FROM alert "
                             "WHERE fingerprint = ANY(%s)", (sorted(unique),)).fetchall()
        waits = [float(w) * 1000 for (w,) in conn.execute(
            "SELECT extract(epoch FROM processed_at - received_at) FROM inbox_item "
            "WHERE status = 'done' AND received_at >= %s "
            "AND payload->'alert'->>'status' = 'firing'", (since,))]
        incidents = one(conn, "SELECT count(*) FROM incident") - incidents_before
        waiting = set(conn.execute("SELECT payload->'alert'->>'fingerprint', payload->'alert'->>"
                                   "'status' FROM inbox_item WHERE status = 'pending'"))
    on_incident = {fp: created.timestamp() for fp, inc, created, _ in found if inc is not None}
    status = {fp: st for fp, _, _, st in found}
    missing = [(fp, "firing") for fp in sent.first_sent if fp not in on_incident]
    missing += [(fp, "resolved") for fp in sent.resolved if status.get(fp) != "resolved"]
    lost = sorted(m for m in missing if m not in waiting)  # not even pending: really lost
    unprocessed = Counter(st for fp, st in missing if (fp, st) in waiting)
    e2e = [(on_incident[fp] - t) * 1000 for fp, t in sent.first_sent.items() if fp in on_incident]
    ack, a2i, wait = ({f"p{q}": pct(v, q) for q in (50, 95, 99)} for v in (sent.ack_ms, e2e, waits))
    rows: list[tuple[str, str, Any]] = [
        ("alerts", "alerts sent", {"unique": len(unique), "acked": len(sent.first_sent),
                                   "resolutions": len(resolutions)}),
        ("requests", "requests", {"sent": len(notes), "ok": len(sent.ack_ms),
                                  "skipped": sent.skipped}),
        ("errors", "errors (non-2xx, failed)", {"total": sum(sent.errors.values()), **sent.errors}),
        ("sending", "sending", {"s": round(sent.duration, 1),
                                "max_lag_ms": round(sent.max_lag * 1000)}),
        ("accepted_per_s", "accepted/s", round(sent.accepted / sent.duration, 1)),
        ("inbox", "inbox items", {"accepted": sent.accepted, "duplicates": sent.duplicates,
                                  "unique_acked": len(sent.first_sent) + len(sent.resolved)}),
        ("ack_ms", "ack latency ms", ack),
        ("alert_to_incident_ms", "alert->incident ms", a2i),
        ("inbox_wait_ms", "inbox wait ms", wait),
        ("drain", "after sending", {"drain_s": round(drain_s, 1), "pending": pending,
                                    "failed": failed}),
        ("alerts_lost", "alerts lost", sum(1 for _, st in lost if st == "firing")),
        ("resolutions_lost", "resolutions lost", sum(1 for _, st in lost if st == "resolved")),
        ("unprocessed", "still pending (not lost)", {"alerts": unprocessed["firing"],
                                                      "resolutions": unprocessed["resolved"]}),
        ("incidents_created", "incidents created", incidents),
        ("group_episodes", "group episodes", episodes),
        ("server_cpu_s", "server CPU s", {"sending": round(cpu_send, 1),
                                          "total": round(cpu_all, 1)})]
    for _, label, value in rows:
        text = "  ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else value
        print(f"  {label:<24} {text}")
    print("  (alert->incident: client send -> alert.created_at; inbox wait: received_at -> "
          "processed_at)")
    if lost:
        print(f"  lost, first 10: {lost[:10]}")
    if error:
        print(f"  last inbox error: {error[:500]}")
    print(json.dumps({key: value for key, _, value in rows} | {"server_exit": exit_code}))
    return 1 if lost or missing or sent.errors else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--alerts", type=int, default=10_000, help="unique alerts to send")
    ap.add_argument("--seconds", type=float, default=60.0, help="spread the sends over this long")
    ap.add_argument("--database-url", help=f"PostgreSQL URL (default: a new schema in {PG_BASE}, "
                                           "dropped afterwards)")
    ap.add_argument("--concurrency", type=int, default=32, help="requests in flight at most")
    ap.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    ap.add_argument("--drain-timeout", type=float, default=120.0, help="wait for the inbox")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the new schema")
    args = ap.parse_args()
    if args.database_url:
        return run(args, args.database_url)
    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        return run(args, f"{PG_BASE}?options=-csearch_path%3D{schema}")
    finally:
        if args.keep:
            print(f"kept schema {schema}")
        else:
            with psycopg.connect(PG_BASE, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    raise SystemExit(main())
