"""Alembic owns the schema: upgrading gives exactly the models' schema, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import URL

from knowledge import migrate
from knowledge.schema import metadata


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
    assert migrate.current(db_url) == "0003"


def test_upgrade_twice_is_a_no_op(db_url: URL) -> None:
    migrate.upgrade(db_url)
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == "0003"
