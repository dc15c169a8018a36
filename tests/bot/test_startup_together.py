"""Replicas starting together on an empty PostgreSQL all come up: the first migrates the schema
and sets up the thread memory's tables while the others wait their turn, instead of racing on
the same CREATE TABLE (`UniqueViolation … checkpoint_migrations_pkey` killed one of three)."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from bot.agent.memory import open_checkpointer
from bot.settings import Settings
from bot.startup import prepare_database
from knowledge import migrate
from knowledge.db import libpq_url

pytestmark = pytest.mark.postgres


async def _start(tmp_path: Path, url: URL, n: int) -> str:
    """What `serve` does first, as replica `n`: migrate, open the database, then the thread
    memory. Returns the revision it found."""
    settings = Settings(data_dir=tmp_path / f"replica-{n}",
                        database_url=url.render_as_string(hide_password=False),
                        alertmanager_webhook_token=secrets.token_urlsafe(16), worker=False,
                        history=False)
    db = await prepare_database(settings)
    try:
        async with open_checkpointer(settings) as saver:
            config = {"configurable": {"thread_id": f"t{n}", "checkpoint_ns": ""}}
            assert await saver.aget_tuple(config) is None  # its tables are there and empty
    finally:
        await db.dispose()
    return await asyncio.to_thread(migrate.current, url)


async def test_five_replicas_started_at_once_on_an_empty_database_all_come_up(
        tmp_path: Path, pg_url: URL) -> None:
    revisions = await asyncio.gather(*(_start(tmp_path, pg_url, n) for n in range(5)))
    assert len(set(revisions)) == 1 and revisions[0] is not None
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema()")}
        migrations = conn.execute("SELECT count(*) FROM checkpoint_migrations").fetchone()
    assert {"incident", "alert", "alembic_version", "checkpoints"} <= tables
    assert migrations is not None and migrations[0] > 0
