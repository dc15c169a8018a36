"""Thread memory: the langgraph checkpointer for the configured database — PostgreSQL (through
psycopg 3, in the same database and schema as the copilot's tables) or, for the embedded
default, a SQLite file beside the copilot's own. langgraph creates and migrates its tables with
`setup()`, under the start-up lock so replicas starting together do not race on it; Alembic
leaves them alone (migrations/env.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from bot.settings import Settings
from knowledge.db import libpq_url, startup_lock

SQLITE_FILE = "threads.sqlite"


@asynccontextmanager
async def open_checkpointer(settings: Settings) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    url = settings.db_url()
    if url.get_backend_name() == "postgresql":
        # Threads live in the same schema as the rest (the URL keeps its search_path).
        async with AsyncPostgresSaver.from_conn_string(libpq_url(url)) as saver:
            async with startup_lock(url):
                await saver.setup()
            yield saver
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(settings.data_dir / SQLITE_FILE)) as saver:
        await saver.setup()
        yield saver
