"""Statements per alert at the intake (issue 24): the storm's notifications (tests/bench/storm.py's
plan: --groups groups of 10 alerts, first half, then all, then repeated) put in the inbox as the
webhook puts them, then applied by the inbox worker on PostgreSQL until the inbox is empty. Every
statement the worker sends is counted (SQLAlchemy's cursor events): a figure a busy CPU does not
move, unlike the storm's seconds. Prints statements per item and per batch, batches, and items/s
on this machine. The last line is JSON.

    .venv/bin/python -m tests.bench.intake_statements [--groups 200] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event

from bot.metrics import Metrics
from bot.settings import Settings
from bot.webhooks.alertmanager import AlertmanagerPayload, inbox_entries
from bot.worker import InboxWorker
from knowledge import migrate
from knowledge.db import open_database, resolve_url
from knowledge.inbox import enqueue
from knowledge.inbox import items as inbox_items
from knowledge.orgs import ensure_org
from tests.bench.intake import PG_BASE
from tests.bench.storm import Storm


async def measure(url: str, groups: int, batch: int) -> dict[str, Any]:
    db = open_database(resolve_url(url, Path(".")))
    statements = 0
    kinds: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        nonlocal statements
        statements += 1
        words = sql.split()
        verb = words[0].upper() if words else "?"
        table = next((w for w, prev in zip(words[1:], words, strict=False)
                      if prev.upper() in ("FROM", "INTO", "UPDATE")), "")
        kinds[(verb + " " + table.strip('"')).strip()] += 1

    try:
        async with db.session() as session, session.begin():
            org = await ensure_org(session, slug="default")
            await session.flush()
            assert org.id is not None
            for _, body in Storm(groups=groups).plan():
                entries = inbox_entries(AlertmanagerPayload.model_validate(body))
                await enqueue(session, org_id=org.id, entries=entries)  # repeats kept once
            items = len(await inbox_items(session, org_id=org.id))
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), database_url=url, worker_batch=batch,
                                history=False, alertmanager_webhook_token=secrets.token_hex(8))
            worker = InboxWorker(db=db, settings=settings, metrics=Metrics())
            event.listen(db.engine.sync_engine, "before_cursor_execute", count)
            batches, started = 0, time.perf_counter()
            while await worker.run_once():
                batches += 1
            seconds = time.perf_counter() - started
    finally:
        await db.dispose()
    return {"groups": groups, "items": items, "batch": batch, "batches": batches,
            "statements": statements, "per_item": round(statements / items, 2),
            "per_batch": round(statements / max(1, batches), 1),
            "items_per_s": round(items / seconds),
            "kinds": {k: round(v / items, 2) for k, v in kinds.most_common(12)}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100, help="SRE_COPILOT_WORKER_BATCH")
    args = parser.parse_args()
    schema = f"bench_statements_{secrets.token_hex(4)}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    try:
        migrate.upgrade(resolve_url(url, Path(".")))
        result = asyncio.run(measure(url, args.groups, args.batch))
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print(f"{result['items']} inbox items ({result['groups']} groups) in {result['batches']} "
          f"batches: {result['statements']} statements, {result['per_item']} per item, "
          f"{result['per_batch']} per batch; {result['items_per_s']} items/s")
    print("per item: " + ", ".join(f"{k} {v}" for k, v in result["kinds"].items()))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
