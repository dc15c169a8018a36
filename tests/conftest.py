"""Shared fixtures: the two real databases (a fresh SQLite file; a fresh schema in the local
PostgreSQL), the app driven in-process, and the rule that a missing real component fails in CI
(CI=true) and skips elsewhere."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import URL, make_url

from bot.app import create_app
from bot.metrics import Metrics
from bot.settings import Settings
from bot.worker import InboxWorker
from knowledge import migrate
from knowledge.db import Database, open_database, resolve_url
from knowledge.embedding import Embedder

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_BASE = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
SHARED = Path(__file__).resolve().parents[2] / "shared"
ALERT_RULES = SHARED / "data" / "alert-rules"  # kube-prometheus's PrometheusRule manifests


def need_shared(path: Path) -> None:
    """Tests that read ../shared run where it is (CI, the developers' machines) and skip in a
    user's clone, which has no ../shared."""
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared is beside the project only on the "
                    "project's own machines)")


def need(ok: bool, why: str) -> None:
    """Skip on a developer's machine that lacks a real component; fail in CI, where it must be."""
    if not ok:
        if IN_CI:
            pytest.fail(f"CI must have this: {why}")
        pytest.skip(why)


def _pg_reachable() -> str | None:
    try:
        with psycopg.connect(make_url(PG_BASE).set(drivername="postgresql").render_as_string(
                hide_password=False), connect_timeout=3):
            return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"PostgreSQL at {PG_BASE} is not reachable: {exc}"


@pytest.fixture(scope="session")
def pg_available() -> str | None:
    return _pg_reachable()


@pytest.fixture
def pg_url(pg_available: str | None) -> Iterator[URL]:
    """A fresh schema in the test database, dropped afterwards: tests never see each other's
    rows, and the URL (with its search_path) works for Alembic, the app and subprocesses."""
    need(pg_available is None, pg_available or "")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    base = make_url(PG_BASE).set(drivername="postgresql")
    dsn = base.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield resolve_url(
            base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
                hide_password=False), Path("."))
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> URL:
    return resolve_url(None, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> URL:
    """Run the test on both databases."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: URL = request.getfixturevalue(name)
    return url


@pytest.fixture
async def database(db_url: URL) -> AsyncIterator[Database]:
    migrate.upgrade(db_url)
    db = open_database(db_url)
    try:
        yield db
    finally:
        await db.dispose()


def url_string(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@pytest.fixture
def settings(tmp_path: Path, db_url: URL) -> Settings:
    return Settings(data_dir=tmp_path, database_url=url_string(db_url),
                    alertmanager_webhook_token=secrets.token_urlsafe(16),
                    pagerduty_webhook_secret=secrets.token_urlsafe(16), worker=False,
                    # The model costs seconds to load: on only where a test asks for it.
                    history=False)


@dataclass
class Copilot:
    """The app under test, driven over ASGI: an HTTP client, its database, and its worker."""

    client: httpx.AsyncClient
    settings: Settings
    db: Database
    worker: InboxWorker
    metrics: Metrics


@asynccontextmanager
async def in_process(settings: Settings) -> AsyncIterator[Copilot]:
    """The app over ASGI on `settings`' database, without its worker (the test drives one)."""
    from bot.startup import prepare_database

    db = await prepare_database(settings)
    metrics = Metrics()
    app = create_app(settings, db=db, metrics=metrics, run_worker=False)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://copilot") as client:
            yield Copilot(client=client, settings=settings, db=db, metrics=metrics,
                          worker=InboxWorker(db=db, settings=settings, metrics=metrics))
    finally:
        await db.dispose()


@pytest.fixture
async def copilot(settings: Settings) -> AsyncIterator[Copilot]:
    async with in_process(settings) as running:
        yield running


# --- the embedding model, for the runbook and history tests ----------------------------------


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real all-MiniLM-L6-v2 from the installed package, loaded once per test run (~8 s)
    and shared with the history tests' module fixtures."""
    from tests.history_fixtures import shared_embedder

    return shared_embedder()
