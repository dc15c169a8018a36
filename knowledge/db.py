"""Engines and sessions: PostgreSQL through psycopg 3 when a URL is given, else a SQLite file.

`DATABASE_URL` comes in the usual `postgresql://user:pass@host/db` form; the driver names
(`+psycopg`, `+aiosqlite`) are added here so users never need to know them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, func, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

# What a database that is down, refusing or stalled raises: answered as "unavailable, retry"
# (a 503, a not-ready start), not as a bug.
# psycopg's own: start-up's advisory lock (`startup_lock`) connects without SQLAlchemy.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, SQLAlchemyTimeoutError, OSError, TimeoutError,
    psycopg.OperationalError)
CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 10
STATEMENT_TIMEOUT_S = 60


class DatabaseURLError(ValueError):
    """A DATABASE_URL this project cannot use; the message says what to write instead."""


def resolve_url(database_url: str | None, data_dir: Path) -> URL:
    """The sync URL for the configured database: the given one, or SQLite in the data directory."""
    if not database_url:
        return make_url(f"sqlite:///{(data_dir / 'sre-copilot.sqlite3').resolve()}")
    try:
        url = make_url(database_url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with little context
        raise DatabaseURLError(
            f"DATABASE_URL {database_url!r} is not a URL; expected e.g. "
            "postgresql://user:pass@host:5432/db"
        ) from exc
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return url.set(drivername="sqlite")
    raise DatabaseURLError(
        f"DATABASE_URL uses {backend!r}; only postgresql:// and sqlite:/// are supported"
    )


def ensure_sqlite_dir(url: URL) -> None:
    """SQLite creates the file but not its folder (the data directory on a fresh machine)."""
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def libpq_url(url: URL) -> str:
    """A PostgreSQL URL as libpq (psycopg itself) takes it: the driver suffix goes, everything
    else (options=-csearch_path…) is kept."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


# The key of the advisory lock that start-up work takes (any 64-bit number no other
# application on the database uses: the first bytes of "sre-copilot startup").
STARTUP_LOCK = 0x7372652D636F7069
STARTUP_LOCK_POLL_S = 0.1


@asynccontextmanager
async def startup_lock(url: URL) -> AsyncIterator[None]:
    """Held while one process creates or migrates tables (Alembic, langgraph's checkpointer
    setup), so replicas starting together on an empty PostgreSQL take turns instead of
    racing on the same CREATE TABLE (`UniqueViolation … checkpoint_migrations_pkey`). The lock
    is PostgreSQL's session-level advisory lock on a connection of its own, released when the
    work ends or the process dies. SQLite has one writer and one process anyway: no lock."""
    if url.get_backend_name() != "postgresql":
        yield
        return
    async with await psycopg.AsyncConnection.connect(
            libpq_url(url), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        # Asked for again and again rather than waited on: a session blocked in
        # pg_advisory_lock is an open transaction, and langgraph's CREATE INDEX CONCURRENTLY
        # in the holder waits for every open transaction to end — a deadlock PostgreSQL
        # does not detect (seen: five replicas hung for good).
        while True:
            if await _try_lock(conn):
                break
            await asyncio.sleep(STARTUP_LOCK_POLL_S)
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (STARTUP_LOCK,))


async def _try_lock(conn: psycopg.AsyncConnection[Any]) -> bool:
    row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (STARTUP_LOCK,))).fetchone()
    return bool(row and row[0])


def async_url(url: URL) -> URL:
    """The same database through an async driver (psycopg 3 async, aiosqlite)."""
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    return url.set(drivername="postgresql+psycopg")


def _sqlite_transactions(engine: AsyncEngine) -> None:
    """Make SQLite transactions real: BEGIN IMMEDIATE takes the write lock up front, so a worker
    that reads pending inbox rows and then marks them cannot race another writer, and the
    busy timeout makes concurrent writers wait instead of failing (SQLAlchemy's documented
    recipe for pysqlite/aiosqlite)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def upsert_dialect(session: AsyncSession) -> Any:
    """The dialect module whose `insert` has `on_conflict_do_nothing` for this session's
    database (PostgreSQL and SQLite spell it the same way)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


# PostgreSQL notification channels: new inbox items (for the workers of every process) and new
# outbox messages (for every process's deliveries). bot/wakeups.py listens.
INBOX_CHANNEL = "sre_copilot_inbox"
OUTBOX_CHANNEL = "sre_copilot_outbox"


FIRST_WAITING = "first"  # an inbox notification's payload: an item that may open an incident


async def announce(session: AsyncSession, channel: str, payload: str = "") -> None:
    """Wake the processes listening on `channel` once this transaction commits (PostgreSQL
    sends a notification only then, and one per channel however often it is asked): a
    replica or `sre-copilot worker` hears new work at once instead of at its next poll.
    Nothing on SQLite, whose one process wakes itself."""
    if session.get_bind().dialect.name == "postgresql":
        await session.exec(select(func.pg_notify(channel, payload)))


@dataclass
class Database:
    """One database: its async engine and a session factory. Passed down, never global."""

    url: URL
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def open_database(url: URL, *, pool_size: int = 10, connect_args: dict[str, Any] | None = None
                  ) -> Database:
    """Open (lazily) the database at a sync URL from `resolve_url`."""
    aurl = async_url(url)
    # Errors and logs never carry the statement's parameters: they hold alert text, which may
    # hold secrets, and they would be logged on every retry.
    kwargs: dict[str, Any] = {"connect_args": dict(connect_args or {}), "hide_parameters": True}
    ensure_sqlite_dir(aurl)
    if aurl.get_backend_name() != "sqlite":
        # A database that is down or stalled must fail a request in seconds (a 503 the sender
        # retries), not hold it: bounded connect, wait for a pooled connection, and statement.
        kwargs["connect_args"].setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        # Beside any `options` the URL carries (a search_path, say), not instead of them.
        given = str(aurl.query.get("options") or "")
        kwargs["connect_args"].setdefault(
            "options", f"{given} -c statement_timeout={STATEMENT_TIMEOUT_S * 1000}".strip())
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                      pool_timeout=POOL_TIMEOUT_S)
    engine = create_async_engine(aurl, **kwargs)
    if aurl.get_backend_name() == "sqlite":
        _sqlite_transactions(engine)
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    return Database(url=url, engine=engine, sessions=sessions)
