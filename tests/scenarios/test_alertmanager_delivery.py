"""Real Alertmanager webhooks, end to end: a real Alertmanager (grouping by service) notifies a
real `sre-copilot serve` process over HTTP with a bearer token; the copilot stores each alert in
its inbox, its worker turns them into incidents, and resolved notifications resolve them — with
the sources' own timestamps. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.engine import URL

from knowledge.alerts import Alert, alerts_of_incident
from knowledge.db import Database, open_database
from knowledge.inbox import InboxStatus, items
from knowledge.incidents import Incident, IncidentStatus, list_incidents
from knowledge.orgs import get_org
from knowledge.timeline import TimelineEvent, list_events
from tests.conftest import need, url_string
from tests.fakes import alertmanager as payloads
from tests.fakes.alertmanager_server import (
    Process,
    alertmanager,
    api_alert,
    copilot_server,
    find_alertmanager,
    webhook_config,
)

pytestmark = pytest.mark.slow

T = TypeVar("T")

DELIVERY_TIMEOUT = 20.0  # Alertmanager notifies after group_wait/group_interval = 1 s


def _copilot_executable() -> str | None:
    beside = Path(sys.executable).with_name("sre-copilot")
    if beside.is_file():
        return str(beside)
    return shutil.which("sre-copilot")


@pytest.fixture
def alertmanager_binary() -> str:
    binary = find_alertmanager()
    need(binary is not None,
         "the Alertmanager binary is not installed "
         "(apt-get install --no-install-recommends prometheus-alertmanager)")
    assert binary is not None
    return binary


@pytest.fixture
def token() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture
def copilot_process(alertmanager_binary: str, tmp_path: Path, db_url: URL,
                    token: str) -> Iterator[Process]:
    """`sre-copilot serve` for real, on the test's database; stopped (SIGTERM, then SIGKILL)
    afterwards whatever happens."""
    executable = _copilot_executable()
    need(executable is not None, "the sre-copilot console script is not installed")
    assert executable is not None
    with copilot_server(executable, tmp_path, database_url=url_string(db_url),
                        token=token) as proc:
        yield proc


@pytest.fixture
def alertmanager_process(alertmanager_binary: str, tmp_path: Path, copilot_process: Process,
                         token: str) -> Iterator[Process]:
    config = webhook_config(webhook_url=f"{copilot_process.base_url}/webhooks/alertmanager",
                            token=token, group_by=["service"], group_wait="1s",
                            group_interval="1s", repeat_interval="1h")
    with alertmanager(alertmanager_binary, tmp_path / "alertmanager", config) as proc:
        yield proc


@pytest.fixture
async def store(db_url: URL, copilot_process: Process) -> AsyncIterator[Database]:
    """The copilot's database, opened from the test (the copilot migrated it on start)."""
    db = open_database(db_url)
    try:
        yield db
    finally:
        await db.dispose()


@dataclass
class IncidentView:
    incident: Incident
    alerts: list[Alert]
    events: list[TimelineEvent]

    def events_of(self, kind: str) -> list[TimelineEvent]:
        return [e for e in self.events if e.kind == kind]


async def _org_id(db: Database) -> int:
    async with db.session() as session:
        org = await get_org(session, slug="default")
    assert org.id is not None
    return org.id


async def _incidents(db: Database, org_id: int) -> dict[str, IncidentView]:
    """Every incident of the org by service, with its alerts and timeline."""
    views: dict[str, IncidentView] = {}
    async with db.session() as session:
        for incident in await list_incidents(session, org_id=org_id):
            assert incident.id is not None
            assert incident.service is not None, incident
            assert incident.service not in views, f"two incidents for {incident.service}"
            views[incident.service] = IncidentView(
                incident=incident,
                alerts=await alerts_of_incident(session, org_id=org_id, incident_id=incident.id),
                events=await list_events(session, org_id=org_id, incident_id=incident.id))
    return views


async def _eventually(probe: Callable[[], Awaitable[T | None]], *, what: str,
                      processes: list[Process], within: float = DELIVERY_TIMEOUT) -> T:
    """Poll `probe` until it returns something; fail with both processes' logs otherwise."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = await probe()
        if found is not None:
            return found
        await asyncio.sleep(0.2)
    logs = "\n\n".join(p.describe() for p in processes)
    pytest.fail(f"timed out after {within:.0f} s waiting for {what}\n\n{logs}")


def _by_name(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["labels"]["alertname"]: a for a in alerts}


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _seconds(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(microsecond=0)


async def test_alertmanager_notifications_open_and_resolve_incidents(
        copilot_process: Process, alertmanager_process: Process, store: Database,
        token: str) -> None:
    procs = [copilot_process, alertmanager_process]
    org_id = await _org_id(store)
    now = datetime.now(UTC).replace(microsecond=0)
    checkout = [
        # The earliest alert sorts last by name: the incident must still start with it.
        api_alert("CheckoutErrorRateHigh", service="checkout", severity="critical",
                  starts=now - timedelta(minutes=4, seconds=30)),
        api_alert("CheckoutLatencyHigh", service="checkout", severity="warning",
                  starts=now - timedelta(minutes=7)),
    ]
    payments = [api_alert("PaymentsDeclinesHigh", service="payments", severity="critical",
                          starts=now - timedelta(minutes=3))]

    async with httpx.AsyncClient(base_url=alertmanager_process.base_url, timeout=5) as am:
        posted = await am.post("/api/v2/alerts", json=checkout + payments)
        assert posted.status_code == 200, posted.text

        # Alertmanager's own view: its fingerprints are what the copilot must store.
        listed = await am.get("/api/v2/alerts")
        assert listed.status_code == 200, listed.text
        am_fingerprints = {a["labels"]["alertname"]: a["fingerprint"] for a in listed.json()}
        assert set(am_fingerprints) == {"CheckoutErrorRateHigh", "CheckoutLatencyHigh",
                                        "PaymentsDeclinesHigh"}

        # 1. Firing: one incident per Alertmanager group (service).
        async def opened() -> dict[str, IncidentView] | None:
            views = await _incidents(store, org_id)
            alerts = sum(len(v.alerts) for v in views.values())
            return views if len(views) >= 2 and alerts >= 3 else None

        views = await _eventually(opened, what="two incidents with three alerts",
                                  processes=procs)
        assert set(views) == {"checkout", "payments"}, views

        co = views["checkout"]
        assert co.incident.source == "alertmanager"
        assert co.incident.state is IncidentStatus.TRIGGERED
        assert co.incident.group_key == '{}:{service="checkout"}'
        assert co.incident.severity == "critical"
        assert co.incident.resolved_at is None
        assert co.incident.triggered_at == now - timedelta(minutes=7)
        sent = _by_name(checkout)
        assert {a.alertname for a in co.alerts} == set(sent)
        for alert in co.alerts:
            source = sent[alert.alertname]
            assert alert.status == "firing"
            assert alert.service == "checkout"
            assert alert.fingerprint == am_fingerprints[alert.alertname]
            assert alert.starts_at == _time(source["startsAt"])
            assert alert.ends_at is None
            assert alert.generator_url == source["generatorURL"]
            assert alert.annotations == source["annotations"]
        fired = co.events_of("alert_fired")
        assert sorted(e.occurred_at for e in fired) == sorted(
            _time(a["startsAt"]) for a in checkout)
        assert {e.data["fingerprint"] for e in fired} == {a.fingerprint for a in co.alerts}

        pay = views["payments"]
        assert pay.incident.state is IncidentStatus.TRIGGERED
        assert pay.incident.group_key == '{}:{service="payments"}'
        assert [a.alertname for a in pay.alerts] == ["PaymentsDeclinesHigh"]
        assert pay.incident.triggered_at == _time(payments[0]["startsAt"])
        assert [e.occurred_at for e in pay.events_of("alert_fired")] == [
            _time(payments[0]["startsAt"])]

        # 2. Resolving: Alertmanager sends the resolved notification; the incident resolves at
        # the latest endsAt (the source's time, not the time the webhook arrived).
        resolve_at = datetime.now(UTC).replace(microsecond=0)
        ends = {"CheckoutErrorRateHigh": resolve_at - timedelta(seconds=1),
                "CheckoutLatencyHigh": resolve_at}
        resolved_alerts = [{**a, "endsAt": payloads.iso(ends[a["labels"]["alertname"]])}
                           for a in checkout]
        posted = await am.post("/api/v2/alerts", json=resolved_alerts)
        assert posted.status_code == 200, posted.text

    async def resolved() -> dict[str, IncidentView] | None:
        views = await _incidents(store, org_id)
        checkout_view = views.get("checkout")
        if checkout_view is None or checkout_view.incident.state is not IncidentStatus.RESOLVED:
            return None
        return views

    views = await _eventually(resolved, what="the checkout incident to resolve",
                              processes=procs)
    assert set(views) == {"checkout", "payments"}, "a resolution must not open an incident"
    co = views["checkout"]
    latest_end = max(ends.values())
    assert co.incident.resolved_at is not None
    assert _seconds(co.incident.resolved_at) == latest_end
    assert co.incident.triggered_at == now - timedelta(minutes=7)
    for alert in co.alerts:
        assert alert.status == "resolved"
        assert alert.ends_at is not None
        assert _seconds(alert.ends_at) == ends[alert.alertname]
    assert sorted(_seconds(e.occurred_at) for e in co.events_of("alert_resolved")) == sorted(
        ends.values())
    to_resolved = [e for e in co.events_of("status_changed") if e.data.get("to") == "resolved"]
    assert len(to_resolved) == 1
    assert _seconds(to_resolved[0].occurred_at) == latest_end
    assert len(co.events_of("alert_fired")) == 2, "no alert fired twice"

    pay = views["payments"]
    assert pay.incident.state is IncidentStatus.TRIGGERED
    assert pay.incident.resolved_at is None
    assert [a.status for a in pay.alerts] == ["firing"]

    async with store.session() as session:
        inbox = await items(session, org_id=org_id)
    assert inbox, "the webhooks went through the inbox"
    assert [i for i in inbox if i.status != InboxStatus.DONE.value] == []

    # 3. A wrong bearer token is refused before anything is stored.
    body = payloads.notification([payloads.alert("Intruder", service="intruder")])
    async with httpx.AsyncClient(base_url=copilot_process.base_url, timeout=5) as client:
        refused = await client.post("/webhooks/alertmanager", json=body,
                                    headers={"Authorization": f"Bearer {token}-wrong"})
    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"].startswith("application/json")
    assert "error" in refused.json()
    async with store.session() as session:
        assert len(await items(session, org_id=org_id)) == len(inbox)
