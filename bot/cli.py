"""The `sre-copilot` command: serve, worker, db upgrade/current, runbooks ingest/search, demo,
investigate, ask, chat, teams package."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from bot import orgs_cli
from bot.logs import configure_logging
from bot.outgoing import RedactingStream
from bot.settings import Settings
from bot.topology import TopologyCache
from knowledge.db import DatabaseURLError
from knowledge.vectors import ChromaURLError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sre-copilot",
        description="SRE Copilot: the on-call teammate in your incident channel.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP server (webhooks, health, metrics) "
                                         "with the inbox worker")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on")
    serve.add_argument("--no-worker", action="store_true",
                       help="only take webhooks; process them with `sre-copilot worker`")

    sub.add_parser("worker", help="process the inbox without serving HTTP")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="apply migrations (Alembic)")
    up.add_argument("--revision", default="head")
    db_sub.add_parser("current", help="print the database's schema revision")

    rb = sub.add_parser("runbooks", help="ingest and search runbooks")
    rb_sub = rb.add_subparsers(dest="runbooks_command", required=True, metavar="ACTION")
    ing = rb_sub.add_parser("ingest", help="index a directory of Markdown runbooks "
                                           "(idempotent: changed files update, deleted go)")
    ing.add_argument("path", type=Path, help="the runbooks directory")
    srch = rb_sub.add_parser("search", help="the top runbooks for a query, or 'no runbook "
                                            "found'; no QUERY: one query per line on stdin")
    srch.add_argument("query", nargs="?", help="an alert text or a question")
    srch.add_argument("--json", action="store_true",
                      help="one JSON line per query: {query, results: [{path, section, score}], "
                           "abstained}")
    srch.add_argument("-k", type=int, default=3, help="how many runbooks (default 3)")

    sub.add_parser("demo", help="replay a bundled incident end to end on a local SQLite file")

    inv = sub.add_parser("investigate", help="rank root-cause hypotheses for a service or an "
                                             "alert from Prometheus (PROMETHEUS_URL)")
    inv.add_argument("--service", help="the alerting service (its call graph is followed)")
    inv.add_argument("--alert", help="an alert's name, or NAME{label=\"value\"}: start from "
                                     "its expression, broken down by its labels")
    inv.add_argument("--match", action="append", default=[], metavar="LABEL=VALUE",
                     help="a label the alert carries (repeatable), e.g. instance=db-1:9100")
    inv.add_argument("--at", help="ISO 8601 time to investigate (default: now)")
    inv.add_argument("--window", default="2h", help="how far back to look (default: 2h)")
    inv.add_argument("--json", action="store_true", help="print the ranked hypotheses as JSON")
    ask = sub.add_parser("ask", help="ask the copilot one question (Claude with "
                                     "ANTHROPIC_API_KEY, else the evidence engine)")
    ask.add_argument("question", help="e.g. \"error rate of checkout over the last hour\"")
    ask.add_argument("--thread", default="cli",
                     help="conversation to continue (default: cli); follow-ups keep context")
    ask.add_argument("--json", action="store_true",
                     help="print the answer as JSON: text, hypotheses, evidence, notes")
    teams = sub.add_parser("teams", help="Microsoft Teams")
    teams_sub = teams.add_subparsers(dest="teams_command", required=True, metavar="ACTION")
    pkg = teams_sub.add_parser("package", help="write the Teams app package (manifest.json and "
                                               "icons) an admin uploads; needs TEAMS_APP_ID")
    pkg.add_argument("--out", type=Path, default=Path("sre-copilot-teams.zip"),
                     help="the zip to write (default: sre-copilot-teams.zip)")
    pkg.add_argument("--domain", help="your server's public host name (validDomains)")
    pkg.add_argument("--version", default="1.0.0", help="the app's version (default 1.0.0)")
    dig = sub.add_parser("digest", help="the weekly digest: incidents, MTTA/MTTR, on-call load, "
                                        "noisy alerts, capacity forecasts")
    _org_period(dig, since="ISO 8601 start (with --until; default: last full week)",
                until="ISO 8601 end", json="print the digest's data as JSON")
    dig.add_argument("--post", action="store_true",
                     help="also post it to DIGEST_SLACK_CHANNEL / DIGEST_TEAMS_CHANNEL")
    inc = sub.add_parser("incidents", help="an org's incidents: why their alerts belong "
                                           "together, which were judged noise, their alerts")
    _org_period(inc, since="ISO 8601: opened at or after (default: any time)",
                until="ISO 8601: opened before (default: now)", json="print them as JSON")
    chat = sub.add_parser("chat", help="a conversation with the copilot in the terminal")
    chat.add_argument("--thread", default="cli", help="conversation to continue (default: cli)")
    fc = sub.add_parser("forecast", help="when the series of a PromQL query cross a threshold "
                                         "(Prometheus at PROMETHEUS_URL)")
    fc.add_argument("--query", required=True, help="PromQL; one forecast per result series")
    fc.add_argument("--threshold", type=float, required=True, help="the value not to cross")
    fc.add_argument("--below", action="store_true",
                    help="crossing means falling below (e.g. free space); default: rising above")
    fc.add_argument("--days-history", type=float, default=28.0,
                    help="days of hourly history to learn from (default 28)")
    fc.add_argument("--horizon-days", type=float, default=14.0,
                    help="how many days ahead to look (default 14)")
    fc.add_argument("--json", action="store_true",
                    help="print a JSON list: labels, days_to_threshold, lower, upper, model, "
                         "mase, evidence, …")
    fc.add_argument("--chart", type=Path, help="also write a PNG of the worst series to CHART")
    orgs_cli.add_parser(sub)
    return parser


def _org_period(parser: argparse.ArgumentParser, *, since: str, until: str, json: str) -> None:
    """--org, --since, --until and --json, as the commands over an org's period take them."""
    parser.add_argument("--org", help="the org's slug (default: SRE_COPILOT_DEFAULT_ORG)")
    parser.add_argument("--since", help=since)
    parser.add_argument("--until", help=until)
    parser.add_argument("--json", action="store_true", help=json)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Whatever a command prints (an incident's alert text, a post-mortem, an error naming a
    # query) is redacted.
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(stdout), RedactingStream(stderr)
    try:
        return _main(args)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = stdout, stderr


def _main(args: argparse.Namespace) -> int:
    try:
        settings = Settings()
        # The demo prints its own story; logs would only interleave with it.
        configure_logging(settings, quiet=args.command in ("demo", "runbooks", "ask", "chat"))
        return _dispatch(args, settings)
    except (ValidationError, DatabaseURLError, ChromaURLError) as exc:
        print(f"sre-copilot: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        # `--no-worker` or SRE_COPILOT_WORKER=false: either turns the worker off.
        return _serve(settings, args.host, args.port,
                      worker=settings.worker and not args.no_worker)
    if args.command == "worker":
        return asyncio.run(_worker(settings))
    if args.command == "db":
        from knowledge import migrate

        if args.db_command == "upgrade":
            migrate.upgrade(settings.db_url(), args.revision)
            print(f"database at {settings.db_url().render_as_string()} is at "
                  f"{migrate.current(settings.db_url())}")
        else:
            print(migrate.current(settings.db_url()) or "(no schema yet)")
        return 0
    if args.command == "orgs":
        try:
            return orgs_cli.run(args, settings)
        except orgs_cli.OrgsError as exc:
            print(f"sre-copilot orgs: {exc}", file=sys.stderr)
            return 2
    if args.command == "investigate":
        from bot.investigate import UsageError, run

        try:
            return asyncio.run(run(settings, service=args.service, at=args.at,
                                   window=args.window, json_out=args.json, alert=args.alert,
                                   matches=args.match))
        except UsageError as exc:
            print(f"sre-copilot investigate: {exc}", file=sys.stderr)
            return 2
    if args.command == "runbooks":
        from bot import runbooks_cli

        if args.runbooks_command == "ingest":
            return runbooks_cli.ingest(settings, args.path)
        return runbooks_cli.run_search(settings, args.query, json_out=args.json, k=args.k)
    if args.command == "teams":
        from bot.teams.package import PackageError, write_package

        try:
            out = write_package(args.out, app_id=settings.teams_app_id, version=args.version,
                                domain=args.domain)
        except PackageError as exc:
            print(f"sre-copilot teams package: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {out}: upload it in Teams (Apps → Manage your apps → Upload an app)")
        return 0
    if args.command == "incidents":
        from bot import digest_cli, incidents_cli

        try:
            return asyncio.run(incidents_cli.run(settings, org=args.org, since=args.since,
                                                 until=args.until, json_out=args.json))
        except digest_cli.UsageError as exc:
            print(f"sre-copilot incidents: {exc}", file=sys.stderr)
            return 2
    if args.command == "digest":
        from bot import digest_cli

        try:
            return asyncio.run(digest_cli.run(settings, org=args.org, since=args.since,
                                              until=args.until, json_out=args.json,
                                              post=args.post))
        except digest_cli.UsageError as exc:
            print(f"sre-copilot digest: {exc}", file=sys.stderr)
            return 2
    if args.command in ("ask", "chat"):
        from bot import ask

        if args.command == "ask":
            return asyncio.run(ask.ask(settings, args.question, thread=args.thread,
                                       json_out=args.json))
        return asyncio.run(ask.chat(settings, thread=args.thread))
    if args.command == "forecast":
        return asyncio.run(_forecast(settings, args))
    if args.command == "demo":
        from bot.demo.run import run_demo

        return asyncio.run(run_demo(settings))
    raise AssertionError(args.command)


async def _forecast(settings: Settings, args: argparse.Namespace) -> int:
    import json
    from datetime import UTC, datetime, timedelta

    from skills.forecast import CapacityCheck, check_capacity, render_forecast
    from skills.prometheus.client import PrometheusClient

    def fail(message: str) -> int:
        print(f"sre-copilot forecast: {message}", file=sys.stderr)
        return 2

    if not settings.prometheus_url:
        return fail("PROMETHEUS_URL is not set; e.g. PROMETHEUS_URL=http://prometheus:9090")
    if args.days_history < 3 or args.horizon_days <= 0:
        return fail("--days-history must be at least 3 and --horizon-days above 0")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    check = CapacityCheck(name="query", query=args.query, threshold=args.threshold,
                          direction="below" if args.below else "above")
    async with PrometheusClient(settings.prometheus_url,
                                timeout=settings.prometheus_timeout_seconds) as prom:
        report = await check_capacity(prom, [check], datetime.now(UTC),
                                      history=timedelta(days=args.days_history),
                                      horizon=timedelta(days=args.horizon_days))
    if report.failed:
        return fail(report.failed[0].error)
    for skipped in report.skipped:
        print(f"skipped {skipped.labels}: {skipped.reason}", file=sys.stderr)
    if args.json:
        print(json.dumps([f.model_dump(mode="json") for f in report.forecasts], indent=2))
    elif not report.forecasts:
        print(f"nothing to forecast: the query returned no usable series over the last "
              f"{args.days_history:g} days")
    for forecast in [] if args.json else report.forecasts:
        print(forecast.line(with_check=False))
    if args.chart is not None and report.forecasts:
        render_forecast(report.forecasts, path=args.chart, title=f"Forecast of {args.query}")
        print(f"chart: {args.chart}", file=sys.stderr)
    return 0


def _serve(settings: Settings, host: str, port: int, *, worker: bool) -> int:
    import uvicorn

    from bot.app import create_app
    from knowledge.allocator import hand_back_large_blocks

    hand_back_large_blocks()  # before the model's first buffers

    app = create_app(settings, run_worker=worker, warm_up=True)
    # uvicorn handles SIGTERM/SIGINT: stops accepting, finishes requests, runs the lifespan's
    # shutdown (which lets the worker commit its batch). `log_config=None`: its loggers keep
    # no handlers of their own and propagate to ours (`bot.logs`), so its lines, access log
    # included, come out in SRE_COPILOT_LOG_FORMAT with the request's id.
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(),
                log_config=None, proxy_headers=True, timeout_graceful_shutdown=30)
    return 0


async def _worker(settings: Settings) -> int:
    from bot.chat import running_chat
    from bot.indexes import try_open_indexes
    from bot.metrics import Metrics
    from bot.startup import open_history, prepare_database, sweep_history
    from bot.wakeups import Wakeups, listening
    from bot.worker import InboxWorker
    from knowledge.allocator import hand_back_large_blocks

    hand_back_large_blocks()  # before the model's first buffers
    # Handle SIGTERM from the very start: a stop during migration still exits cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    db = await prepare_database(settings)
    log = logging.getLogger("bot.worker")
    log.info("worker started on %s", settings.db_url().render_as_string())
    try:
        if not stop.is_set():
            metrics = Metrics()  # counted as in serve, though this process has no /metrics
            # One embedding model per process, loaded before work starts.
            indexes = (try_open_indexes(settings, metrics=metrics) if settings.history
                       or settings.slack_enabled or settings.teams_enabled else None)
            if indexes is not None:
                await asyncio.to_thread(indexes.embedder.warm)
            history = open_history(settings, indexes=indexes)
            if history is not None:
                await sweep_history(db, history)
            async with contextlib.AsyncExitStack() as stack:
                # Slack and Teams answers come from workers too.
                platforms = await stack.enter_async_context(running_chat(
                    settings, db, with_worker=True, metrics=metrics, indexes=indexes))
                worker = InboxWorker(db=db, settings=settings, metrics=metrics,
                                     history=history, changed=platforms.deliveries,
                                     topology=TopologyCache(settings))
                # Woken by what `serve` replicas accept, not only by polling.
                await stack.enter_async_context(listening(db, Wakeups(
                    inbox=[worker.wake, *platforms.answers], outbox=platforms.deliveries,
                    first=[worker.first])))
                await worker.run(stop)
    finally:
        await db.dispose()
    log.info("worker stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
