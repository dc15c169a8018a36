"""The weekly digest's figures against hand-computed ones, on SQLite and PostgreSQL: PagerDuty v3
webhooks really signed, with past `occurred_at` times (delivered a week late, and twice), and
Alertmanager alerts with past `startsAt`/`endsAt`, including one that flaps. The week is Monday
2026-11-09 to Monday 2026-11-16 UTC."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from knowledge.hypotheses import HypothesisStatus, add_hypothesis, record_feedback
from knowledge.incidents import Incident
from knowledge.orgs import create_org, get_org
from skills.digest.metrics import Period, last_full_week
from skills.digest.report import build_digest
from tests.conftest import Copilot, url_string
from tests.fakes import pagerduty as pd
from tests.fakes.alertmanager import alert, notification, resolved

WEEK = Period(datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))
EVIDENCE = [{"id": "ev-1", "source": "prometheus", "summary": "errors 0% → 20%"}]


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


# (incident id, service, assignee, triggered, acknowledged, resolved)
PAGES = [("PD0", "checkout", "Ana", at(3, 10), at(3, 10, 15), at(3, 11)),  # the week before
         ("PD1", "payments", "Ana", at(10, 3), at(10, 3, 10), at(10, 4)),  # Tue 03:00: night
         ("PD2", "checkout", "Bo", at(11, 10), at(11, 10, 2), at(11, 10, 30)),  # Wed, in hours
         ("PD3", "checkout", "Ana", at(14, 12), at(14, 12, 20), at(14, 14))]  # Saturday


async def _pagerduty(copilot: Copilot, payload: dict[str, Any]) -> None:
    body = pd.body(payload)
    response = await copilot.client.post("/webhooks/pagerduty", content=body, headers={
        "content-type": "application/json",
        "x-pagerduty-signature": pd.sign(body, copilot.settings.pagerduty_secrets[0])})
    assert response.status_code in (200, 202), response.text


async def _alertmanager(copilot: Copilot, payload: dict[str, Any], token: str) -> None:
    response = await copilot.client.post(
        "/webhooks/alertmanager?org=alerts", json=payload,
        headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 202, response.text


async def _week(copilot: Copilot) -> None:
    async with copilot.db.session() as s, s.begin():
        _, tokens = await create_org(s, slug="alerts")  # with its own Alertmanager token
    token = tokens.alertmanager_token or ""
    for pd_id, service, who, triggered, acked, done in PAGES:
        for kind, when in (("incident.triggered", triggered), ("incident.acknowledged", acked),
                           ("incident.resolved", done)):
            payload = pd.incident_event(kind, incident_id=pd_id, incident_key=pd_id,
                                        occurred_at=when, assignees=(who,), service=service,
                                        event_id=f"{pd_id}-{kind}")
            await _pagerduty(copilot, payload)
            await _pagerduty(copilot, payload)  # redelivered: counted once
    # A disk alert that flaps: three short firings 7 and 18 minutes apart, none acknowledged;
    # a latency alert that fired once for two hours.
    flaps = [(at(12, 8), at(12, 8, 3)), (at(12, 8, 10), at(12, 8, 12)),
             (at(12, 8, 30), at(12, 8, 34))]
    for starts, ends in flaps:
        firing = alert("DiskPressure", service="storage", starts=starts, instance="db-1")
        await _alertmanager(copilot, notification([firing]), token)
        await _alertmanager(copilot, notification([resolved(firing, ends)]), token)
        await _alertmanager(copilot, notification([resolved(firing, ends)]), token)  # resent
    slow = alert("HighLatency", service="search", starts=at(13, 9))
    await _alertmanager(copilot, notification([slow]), token)
    await _alertmanager(copilot, notification([resolved(slow, at(13, 11))]), token)
    await copilot.worker.drain()


async def _feedback(copilot: Copilot) -> None:
    """Responders confirmed two hypotheses and rejected one; one was never reviewed."""
    from sqlmodel import select

    async with copilot.db.session() as s, s.begin():
        org = await get_org(s, slug="default")
        incidents = list((await s.exec(select(Incident).where(
            Incident.org_id == org.id, Incident.triggered_at >= WEEK.start))).all())
        verdicts = [HypothesisStatus.CONFIRMED, HypothesisStatus.CONFIRMED,
                    HypothesisStatus.REJECTED, None]
        for n, verdict in enumerate(verdicts):
            incident = incidents[n % len(incidents)]
            assert org.id is not None and incident.id is not None
            h = await add_hypothesis(s, org_id=org.id, incident_id=incident.id,
                                     statement=f"cause {n}", confidence=0.5, evidence=EVIDENCE)
            if verdict is not None and h.id is not None:
                await record_feedback(s, org_id=org.id, hypothesis_id=h.id, status=verdict,
                                      by="Ana")


async def test_the_week_in_numbers(copilot: Copilot) -> None:
    await _week(copilot)
    await _feedback(copilot)
    async with copilot.db.session() as s:
        org = await get_org(s, slug="default")
        assert org.id is not None
        digest = await build_digest(s, org_id=org.id, org="default", period=WEEK)
    assert digest.incidents.total == 3 and digest.incidents.previous_total == 1
    assert digest.incidents.by_service == {"checkout": 2, "payments": 1}
    # MTTA: 600, 120, 1200 s → p50 600; p90 = 600 + 0.8 × (1200 − 600) = 1080.
    assert (digest.mtta_seconds.p50, digest.mtta_seconds.p90) == (600.0, 1080.0)
    assert digest.mtta_seconds.change_p50 == -300.0  # the week before: 900 s
    # MTTR: 3600, 1800, 7200 s → p50 3600; p90 = 3600 + 0.8 × 3600 = 6480.
    assert (digest.mttr_seconds.p50, digest.mttr_seconds.p90) == (3600.0, 6480.0)
    assert digest.mttr_seconds.change_p50 == 0.0
    assert digest.time_in_state_seconds["acknowledged"].p50 == 3000.0  # 50, 28, 100 min
    # Pages: Tue 03:00 and Saturday are out of hours.
    assert (digest.oncall.pages, digest.oncall.out_of_hours) == (3, 2)
    assert digest.oncall.by_responder == {"Ana": 2, "Bo": 1}
    assert (digest.feedback.confirmed, digest.feedback.rejected,
            digest.feedback.unreviewed) == (2, 1, 1)
    assert digest.feedback.confirmed_share == 0.667

    async with copilot.db.session() as s:
        alerts_org = await get_org(s, slug="alerts")
        assert alerts_org.id is not None
        noisy = await build_digest(s, org_id=alerts_org.id, org="alerts", period=WEEK)
    assert noisy.alerts.total == 4  # three flaps and one long firing, each counted once
    worst = noisy.noisy_alerts[0]
    assert (worst.alertname, worst.fired, worst.flapping) == ("DiskPressure", 3, 2)
    assert worst.auto_resolved_share == 1.0 and worst.unacknowledged_share == 1.0
    assert worst.labels["instance"] == "db-1" and "for:" in worst.suggestion
    assert [n.alertname for n in noisy.noisy_alerts] == ["DiskPressure", "HighLatency"]
    assert noisy.noisy_alerts[1].auto_resolved_share == 0.0


async def test_the_digest_command_prints_json(copilot: Copilot, tmp_path: Path) -> None:
    await _week(copilot)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SRE_COPILOT", "DIGEST"))}
    env.update(DATABASE_URL=url_string(copilot.settings.db_url()),
               SRE_COPILOT_DATA_DIR=str(tmp_path), PROMETHEUS_URL="")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot.cli", "digest", "--since", "2026-11-09T00:00:00Z",
         "--until", "2026-11-16T00:00:00Z", "--json"], env=env, capture_output=True, text=True,
        timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["incidents"]["total"] == 3
    assert data["incidents"]["by_service"] == {"checkout": 2, "payments": 1}
    assert data["mtta_seconds"]["p50"] == 600.0 and data["mttr_seconds"]["p90"] == 6480.0
    assert data["forecasts"] == [] and "PROMETHEUS_URL" in data["notes"][0]
    text = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot.cli", "digest", "--org", "alerts", "--since",
         "2026-11-09T00:00:00Z", "--until", "2026-11-16T00:00:00Z"], env=env,
        capture_output=True, text=True, timeout=120, check=False)
    assert text.returncode == 0, text.stderr
    assert "DiskPressure" in text.stdout and "flapped 2×" in text.stdout
    bad = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot.cli", "digest", "--since", "yesterday",
                         "--until", "2026-11-16"], env=env, capture_output=True, text=True,
        timeout=120, check=False)
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr


def test_the_default_period_is_the_last_full_week() -> None:
    wednesday = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    assert last_full_week(wednesday) == Period(at(16, 0), at(23, 0))
    # 23:30 UTC on Sunday 22nd is Monday 12:30 in Auckland (UTC+13): the week that just
    # ended there ended at Monday 00:00 local, 11:00 UTC on Sunday.
    week = last_full_week(datetime(2026, 11, 22, 23, 30, tzinfo=UTC), "Pacific/Auckland")
    assert week == Period(datetime(2026, 11, 15, 11, tzinfo=UTC), at(22, 11))
    assert week.end - week.start == timedelta(days=7)
