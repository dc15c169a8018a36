"""Runs the demo: a fresh SQLite database in the data directory, the real app (signature and
token checks, inbox, worker, incident engine) driven in-process over ASGI — no network, no keys,
no servers — then the incident, its timeline, the channel messages and the runbook for its
alert printed."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import httpx
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from bot.app import create_app
from bot.demo.investigation import DemoReport, investigate_incident
from bot.demo.runbook_advice import lead_of, runbook_advice, show_runbooks
from bot.demo.scenario import Delivery, deliveries
from bot.demo.week import week_deliveries
from bot.digest import make_digest
from bot.investigate import render
from bot.metrics import Metrics
from bot.render import terminal
from bot.render.digest import digest_markdown
from bot.settings import Settings
from bot.startup import prepare_database
from bot.webhooks.pagerduty import signature_header
from bot.worker import InboxWorker
from knowledge.alerts import Alert, alerts_of_incident
from knowledge.db import Database
from knowledge.incidents import list_incidents
from knowledge.orgs import get_org
from knowledge.outbox import messages
from knowledge.timeline import list_events
from skills.digest.metrics import Period


async def run_demo(settings: Settings, console: Console | None = None) -> int:
    console = console or Console()
    path = (settings.data_dir / "demo.sqlite3").resolve()
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    settings = settings.model_copy(update={
        "database_url": f"sqlite:///{path}",
        "alertmanager_webhook_token": secrets.token_urlsafe(24),
        "pagerduty_webhook_secret": secrets.token_urlsafe(24),
        "changes_webhook_token": secrets.token_urlsafe(24),
    })
    console.print(Text.assemble(("SRE Copilot demo", "bold"),
                                " — replaying a bundled incident through the real intake path"))
    console.print(f"[dim]database: {path} (SQLite, the embedded default)[/dim]\n")

    db = await prepare_database(settings)
    metrics = Metrics()
    app = create_app(settings, db=db, metrics=metrics, run_worker=False)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://copilot") as client:
            worker = InboxWorker(db=db, settings=settings, metrics=metrics)
            table = Table(title="webhooks received", title_justify="left", expand=False)
            table.add_column("time", no_wrap=True)
            table.add_column("from", no_wrap=True)
            table.add_column("what", min_width=28)
            table.add_column("answer", min_width=24)
            now = datetime.now(UTC)
            for delivery in deliveries(now):
                response = await _send(client, delivery, settings)
                await worker.drain()
                table.add_row(terminal.clock(delivery.at), delivery.source, delivery.what,
                              _answer(response))
            console.print(table)
        advice = await runbook_advice(console, settings, await _newest_alerts(settings, db))
        report = await investigate_incident(settings, db, now=now, runbook=lead_of(advice))
        await _show_incident(console, settings, db, report)
        show_runbooks(console, advice)
        await _show_digest(console, settings, db, now=now)
    finally:
        await db.dispose()
    console.print("\n[dim]Next: `sre-copilot serve` takes these webhooks for real "
                  "(see README, Settings).[/dim]")
    return 0


async def _show_digest(console: Console, settings: Settings, db: Database, *,
                       now: datetime) -> None:
    """The week before, replayed through the webhooks, and its digest."""
    metrics = Metrics()
    app = create_app(settings, db=db, metrics=metrics, run_worker=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://copilot") as client:
        worker = InboxWorker(db=db, settings=settings, metrics=metrics)
        for delivery in week_deliveries(now):
            await _send(client, delivery, settings)
        await worker.drain()
    async with db.session() as session:
        org = await get_org(session, slug=settings.default_org)
    digest = await make_digest(settings, db, org=org,
                               period=Period(now - timedelta(days=7), now + timedelta(hours=1)),
                               forecasts=False)
    console.print(Text("\nthe weekly digest of the bundled week (`sre-copilot digest`)",
                       style="bold"))
    console.print(Markdown(digest_markdown(digest)))


async def _send(client: httpx.AsyncClient, delivery: Delivery, settings: Settings
                ) -> httpx.Response:
    body = json.dumps(delivery.body).encode()
    headers = {"content-type": "application/json"}
    if delivery.source == "alertmanager":
        headers["authorization"] = f"Bearer {settings.alertmanager_webhook_token}"
        return await client.post("/webhooks/alertmanager", content=body, headers=headers)
    if delivery.source == "changes":
        headers["authorization"] = f"Bearer {settings.changes_webhook_token}"
        return await client.post("/webhooks/changes", content=body, headers=headers)
    secret = "not-the-secret" if delivery.forged else settings.pagerduty_secrets[0]
    headers["x-pagerduty-signature"] = signature_header(body, secret)
    return await client.post("/webhooks/pagerduty", content=body, headers=headers)


def _answer(response: httpx.Response) -> Text:
    data = response.json()
    if response.status_code >= 400:
        return Text.assemble((f"{response.status_code} refused", "bold red"),
                             f" ({data.get('error')}): {data.get('detail', '')}")
    stored = f"{data['accepted']} stored"
    if data.get("duplicates"):
        stored += f", {data['duplicates']} repeat{'s' if data['duplicates'] > 1 else ''} ignored"
    return Text.assemble((str(response.status_code), "green"), f" {stored}")


async def _newest_alerts(settings: Settings, db: Database) -> list[Alert]:
    async with db.session() as session:
        org = await get_org(session, slug=settings.default_org)
        assert org.id is not None
        incidents = await list_incidents(session, org_id=org.id, limit=1)
        if not incidents or incidents[0].id is None:
            return []
        return await alerts_of_incident(session, org_id=org.id, incident_id=incidents[0].id)


async def _show_incident(console: Console, settings: Settings, db: Database,
                         report: DemoReport) -> list[Alert]:
    """Prints each incident; returns the alerts of the newest."""
    alerts: list[Alert] = []
    async with db.session() as session:
        org = await get_org(session, slug=settings.default_org)
        assert org.id is not None
        for incident in reversed(await list_incidents(session, org_id=org.id)):
            assert incident.id is not None
            alerts = await alerts_of_incident(session, org_id=org.id, incident_id=incident.id)
            events = await list_events(session, org_id=org.id, incident_id=incident.id)
            posts = await messages(session, org_id=org.id, incident_id=incident.id)
            console.print()
            console.print(terminal.incident_card(incident, alerts))
            console.print(Text("\nwhere to look first — the evidence engine, no model needed",
                               style="bold"))
            render(report.investigation, console)
            console.print(terminal.timeline_table(events))
            console.print(terminal.channel_messages(posts))
    console.print(Text.assemble(("\nchart        ", "bold"), str(report.chart)))
    console.print(Text.assemble(("post-mortem  ", "bold"), str(report.postmortem)))
    console.print(Text.assemble(("chat         ", "bold"), f"{report.slack} (Block Kit), "
                                f"{report.teams} (Adaptive Cards): the briefing as posted"))
    return alerts
