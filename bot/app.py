"""The ASGI app: webhooks, health, readiness and metrics, with the inbox worker running beside
them. Built by `create_app(settings)`; nothing happens at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.chat import running_chat
from bot.indexes import try_open_indexes
from bot.logs import current_request
from bot.metrics import Metrics
from bot.settings import Settings
from bot.slack.intake import guard as slack_guard
from bot.startup import open_history, prepare_database, sweep_history
from bot.topology import TopologyCache
from bot.wakeups import Wakeups, listening
from bot.webhooks import alertmanager, changes, pagerduty
from bot.webhooks.errors import RequestRejected, rejected_response
from bot.webhooks.intake import RETRY_AFTER_S, Intake, database_unavailable
from bot.worker import InboxWorker
from knowledge import inbox, outbox
from knowledge.db import DATABASE_UNAVAILABLE, Database
from knowledge.types import utcnow

log = logging.getLogger(__name__)
# An incoming X-Request-Id is kept only if it looks like an id: it goes into every log line.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
METRICS_DB_WAIT_S = 3.0  # well inside Prometheus' default 10 s scrape timeout


def create_app(settings: Settings, *, db: Database | None = None,
               metrics: Metrics | None = None, run_worker: bool | None = None,
               warm_up: bool = False) -> FastAPI:
    """The app. Pass `db` to share an open database (tests, the demo); otherwise the lifespan
    opens the configured one. `run_worker` overrides `settings.worker`. With `warm_up`
    (`serve`), the embedding model loads at start and `/readyz` waits for it: a replica
    takes traffic only once it can answer at full speed."""
    metrics = metrics or Metrics()
    with_worker = settings.worker if run_worker is None else run_worker
    chatting = with_worker and (settings.slack_enabled or settings.teams_enabled)

    async def start(app: FastAPI, database: Database, stack: contextlib.AsyncExitStack,
                    *, owned: bool) -> None:
        """Everything that needs the database: intake, worker, chat, scheduler, history.
        What it starts is stopped by `stack`, in reverse order."""
        if owned:
            stack.push_async_callback(database.dispose)
        intake = Intake(settings=settings, db=database, metrics=metrics)
        stop = asyncio.Event()
        # One embedding model per process, shared by the history index and the chat agent.
        indexes = (try_open_indexes(settings, metrics=metrics)
                   if settings.history or chatting else None)
        app.state.indexes = indexes
        if warm_up and indexes is not None:
            app.state.warming = asyncio.create_task(asyncio.to_thread(indexes.embedder.warm),
                                                    name="warm-up")
        history = open_history(settings, indexes=indexes)
        platforms = await stack.enter_async_context(running_chat(
            settings, database, with_worker=with_worker, metrics=metrics, indexes=indexes))
        app.state.slack, app.state.teams = platforms.slack, platforms.teams
        if settings.digest_enabled:
            from bot.scheduler import start_scheduler

            scheduler = start_scheduler(settings, database)
            stack.callback(scheduler.shutdown, wait=False)
        if with_worker:
            worker = InboxWorker(db=database, settings=settings, metrics=metrics,
                                 wake=intake.wake, first=intake.first, history=history,
                                 changed=platforms.deliveries,
                                 topology=TopologyCache(settings))
            app.state.worker = worker
            # Items another replica accepted, messages another replica's worker queued.
            await stack.enter_async_context(listening(database, Wakeups(
                inbox=[worker.wake, *platforms.answers], outbox=platforms.deliveries,
                first=[worker.first])))
            task = asyncio.create_task(worker.run(stop), name="inbox-worker")

            async def stop_worker() -> None:
                stop.set()
                # Let the current batch commit; its transaction is short.
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=30)

            stack.push_async_callback(stop_worker)
            if history is not None:
                app.state.history_sweep = asyncio.create_task(
                    sweep_history(database, history), name="history-sweep")
        # Last: a request finds the intake only once what serves it is running.
        app.state.db, app.state.intake = database, intake

    async def start_when_reachable(app: FastAPI, stack: contextlib.AsyncExitStack) -> None:
        """The database was down at start: try again until it answers, then start. Until
        then `/readyz` and the webhooks answer 503, so nothing is sent here and lost."""
        while True:
            await asyncio.sleep(settings.database_retry_seconds)
            try:
                database = await prepare_database(settings)
            except DATABASE_UNAVAILABLE as exc:
                log.warning("database still unavailable (%s); retrying in %ss",
                            type(exc).__name__, settings.database_retry_seconds)
                continue
            await start(app, database, stack, owned=True)
            log.info("database reachable: serving")
            return

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stack = contextlib.AsyncExitStack()
        waiting: asyncio.Task[None] | None = None
        try:
            if db is not None:
                await start(app, db, stack, owned=False)
            else:
                try:
                    database = await prepare_database(settings)
                except DATABASE_UNAVAILABLE as exc:
                    log.error("the database is unavailable at start (%s: %s); serving "
                              "not-ready and retrying every %ss", type(exc).__name__,
                              str(exc).splitlines()[0][:300], settings.database_retry_seconds)
                    waiting = asyncio.create_task(start_when_reachable(app, stack),
                                                  name="database-wait")
                else:
                    await start(app, database, stack, owned=True)
            yield
        finally:
            if waiting is not None:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
            await stack.aclose()

    app = FastAPI(title="SRE Copilot", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.warming = None  # the model's warm-up task, while `serve` starts
    # Set once the database answers (at start, or later when it was down at start).
    app.state.db = app.state.intake = app.state.slack = app.state.teams = None
    app.add_exception_handler(RequestRejected, rejected_response)
    _measure(app, metrics)

    app.include_router(alertmanager.router())
    app.include_router(pagerduty.router())
    app.include_router(changes.router())

    @app.post("/slack/events")
    @app.get("/slack/install")
    @app.get("/slack/oauth_redirect")
    async def slack_events(request: Request) -> Response:
        """Events, slash commands, interactions and shortcuts, all at one Request URL; and the
        OAuth install flow when SLACK_CLIENT_ID/SECRET are set."""
        if app.state.slack is None and app.state.intake is None:
            raise database_unavailable()
        if app.state.slack is None:
            return JSONResponse({"error": "Slack is not configured: set SLACK_SIGNING_SECRET "
                                          "and SLACK_BOT_TOKEN (or SLACK_CLIENT_ID and "
                                          "SLACK_CLIENT_SECRET)"}, status_code=404)
        if request.method == "POST" and not settings.slack_signing_secret:
            return JSONResponse({"error": "Slack over HTTP needs SLACK_SIGNING_SECRET (this "
                                          "server uses Socket Mode)"}, status_code=404)
        if request.method == "POST":
            await slack_guard(request, settings)
        response: Response = await app.state.slack.intake.handle(request)
        return response

    @app.post("/api/messages")
    async def teams_messages(request: Request) -> Response:
        """Teams (Bot Framework) activities: validated, stored, acknowledged."""
        if app.state.teams is None and app.state.intake is None:
            raise database_unavailable()
        if app.state.teams is None:
            return JSONResponse({"error": "Teams is not configured: set TEAMS_APP_ID and "
                                          "TEAMS_APP_PASSWORD"}, status_code=404)
        response: Response = await app.state.teams.intake.receive(request)
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        warming = app.state.warming
        if warming is not None and not warming.done():
            return JSONResponse({"status": "starting",
                                 "detail": "loading the embedding model"}, status_code=503)
        if warming is not None and warming.exception() is not None:
            app.state.warming = None  # said once: runbook search reports it on every use
            log.error("the embedding model did not load: %s", warming.exception())
        if app.state.db is None:
            return JSONResponse({"status": "unavailable",
                                 "detail": "database unreachable since start; retrying"},
                                status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
        try:
            await asyncio.wait_for(app.state.db.ping(), timeout=5)
        except Exception as exc:
            return JSONResponse({"status": "unavailable",
                                 "detail": f"database unreachable: {type(exc).__name__}: {exc}"},
                                status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        # A scrape must not fail, nor wait, because the database is away: the figures it
        # reads from the database are skipped after METRICS_DB_WAIT_S.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(METRICS_DB_WAIT_S), app.state.db.session() as session:
                depth = await inbox.depth(session)
                posts = await outbox.post_counts(session)
            metrics.inbox_depth.set(depth.pending)
            metrics.inbox_failed.set(depth.failed)
            age = ((utcnow() - depth.oldest_pending_at).total_seconds()
                   if depth.oldest_pending_at else 0.0)
            metrics.inbox_oldest_age.set(max(0.0, age))
            metrics.outbox_failed.set(posts.failed)
            metrics.outbox_pending.set(posts.pending)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _measure(app: FastAPI, metrics: Metrics) -> None:
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(RequestIds)  # added last: outermost, so everything inside has the id


class RequestIds:
    """Gives each HTTP request an id — the caller's `X-Request-Id`, else a new one — that every
    log line of its work carries (`bot.logs`) and the response returns as `X-Request-Id`, so a
    caller's report finds the logs. Plain ASGI, like `RequestMetrics`; uvicorn writes its
    access log line from inside `send`, so that line has the id too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"]
                      if k == b"x-request-id"), "")
        request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        token = current_request.set(request_id)
        try:
            await self.app(scope, receive, sending)
        finally:
            current_request.reset(token)


class RequestMetrics:
    """Counts requests and times them by route, method and status. A plain ASGI middleware:
    Starlette's `BaseHTTPMiddleware` runs every request in an extra task, which cost about a
    millisecond of CPU per Slack event under load."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.http_requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.http_latency.labels(route).observe(time.perf_counter() - started)
