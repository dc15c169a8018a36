"""Alembic owns the schema: upgrading gives exactly the models' schema, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import URL

from bot.agent.memory import open_checkpointer
from bot.settings import Settings
from knowledge import migrate
from knowledge.schema import metadata, owned_by_alembic
from tests.conftest import url_string


def test_autogenerate_finds_no_difference(db_url: URL) -> None:
    migrate.upgrade(db_url)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"
    assert migrate.current(db_url) == "0012"


def test_upgrade_twice_is_a_no_op(db_url: URL) -> None:
    migrate.upgrade(db_url)
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == "0012"


async def test_langgraph_tables_are_left_to_langgraph(pg_url: URL, tmp_path: object) -> None:
    """The agent's thread memory lives beside the copilot's tables on PostgreSQL: upgrading
    keeps it and autogenerate does not report it."""
    settings = Settings(data_dir=tmp_path, database_url=url_string(pg_url))
    migrate.upgrade(pg_url)
    async with open_checkpointer(settings) as saver:
        await saver.aput({"configurable": {"thread_id": "t", "checkpoint_ns": ""}},
                         {"v": 1, "id": "1", "ts": "2026-11-25T00:00:00+00:00",
                          "channel_values": {}, "channel_versions": {},
                          "versions_seen": {}}, {}, {})
    migrate.upgrade(pg_url)
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={
                "compare_type": True, "include_object": owned_by_alembic})
            assert compare_metadata(ctx, metadata) == []
            raw = MigrationContext.configure(conn, opts={"compare_type": True})
            assert any(d[0] == "remove_table" and d[1].name == "checkpoints"
                       for d in compare_metadata(raw, metadata))  # they are really there
    finally:
        engine.dispose()
