"""Schema migrations: runs Alembic (scripts in the top-level `migrations/` package) against a
database URL. Alembic owns the schema; nothing calls `create_all`."""

from __future__ import annotations

import asyncio
from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL

from knowledge.db import ensure_sqlite_dir


def alembic_config(url: URL) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("migrations")))
    # ConfigParser treats % as interpolation; a password may contain one.
    cfg.set_main_option("sqlalchemy.url",
                        url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(url: URL, revision: str = "head") -> None:
    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: URL, revision: str = "head") -> None:
    """Alembic is synchronous; run it in a thread so the event loop keeps serving."""
    await asyncio.to_thread(upgrade, url, revision)


def current(url: URL) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
