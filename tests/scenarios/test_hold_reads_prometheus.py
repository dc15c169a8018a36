"""A held warning need not wait for Alertmanager's next notification when Prometheus shows it
still firing: a real `serve` with `PROMETHEUS_URL` set to a real Prometheus whose rule fires,
Alertmanager's group interval left at kube-prometheus' five minutes, and the local Slack Web API
counting cards.

The warning Prometheus shows firing is held for the hold, opens an incident of its own, and is
posted once it has fired for the short span — seconds, not the five minutes until Alertmanager
would say it did not resolve. A warning Prometheus does not show (it already resolved there;
Alertmanager has not said so yet) keeps waiting for Alertmanager, and posts nothing."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.fakes import alertmanager as payloads
from tests.fakes.alertmanager_server import copilot_server
from tests.fakes.live_prometheus import Service, live_prometheus
from tests.fakes.real_copilot import _executable
from tests.fakes.slack_api import running_slack

pytestmark = pytest.mark.slow

HOLD = 2.0  # seconds; the short span (a lone warning's wait for its card) is 5 × the hold
SHORT = 5 * HOLD
FIRING_RULE = {"alert": "CheckoutSlow", "expr": "vector(1)", "for": "0s",
               "labels": {"severity": "warning", "service": "checkout"},
               "annotations": {"summary": "checkout answers slowly"}}


def test_a_warning_prometheus_shows_firing_is_posted_without_waiting_for_alertmanager(
        tmp_path: Path) -> None:
    token = secrets.token_urlsafe(16)
    with live_prometheus(tmp_path / "prometheus", [Service("checkout", rps=5.0)],
                         rules=[FIRING_RULE], wait_for_alerts=1) as prom, \
            running_slack() as slack, \
            copilot_server(_executable(), tmp_path / "copilot",
                           database_url=f"sqlite:///{tmp_path / 'copilot.db'}", token=token,
                           ready_timeout=90, extra_env={
                               **slack.copilot_env(), "PROMETHEUS_URL": prom,
                               "SRE_COPILOT_HISTORY": "false",
                               "SRE_COPILOT_WORKER_POLL_SECONDS": "0.2",
                               "SRE_COPILOT_NOISE_HOLD_SECONDS": str(HOLD),
                               "SRE_COPILOT_ALERTMANAGER_GROUP_INTERVAL_SECONDS": "300"}
                           ) as copilot:
        started = datetime.now(UTC)
        # As Alertmanager sends them: Prometheus' external label added to the rule's labels.
        shown = payloads.alert("CheckoutSlow", service="checkout", severity="warning",
                               starts=started, summary="checkout answers slowly",
                               prometheus="monitoring/k8s")
        gone = payloads.alert("PaymentsSlow", service="payments", severity="warning",
                              starts=started, prometheus="monitoring/k8s")
        with httpx.Client(base_url=copilot.base_url, timeout=10,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            for alert in (shown, gone):
                answer = client.post("/webhooks/alertmanager",
                                     json=payloads.notification([alert]))
                assert answer.status_code == 202, answer.text

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not slack.incident_cards():
            time.sleep(0.25)
        waited = (datetime.now(UTC) - started).total_seconds()
        cards = slack.incident_cards()
        assert len(cards) == 1, f"no card within 60 s:\n{copilot.log_tail()}"
        assert "checkout" in json.dumps(cards[0].blocks)
        # Alone, it waited out the short span — and not Alertmanager's five minutes.
        assert SHORT - 1 <= waited < 60, waited
        time.sleep(2 * HOLD)
        assert len(slack.incident_cards()) == 1  # the warning Prometheus does not show still waits

    listed = json.loads(subprocess.run(
        [_executable(), "incidents", "--json"], capture_output=True, text=True, timeout=60,
        check=True, env={"DATABASE_URL": f"sqlite:///{tmp_path / 'copilot.db'}",
                         "SRE_COPILOT_DATA_DIR": str(tmp_path / "cli"),
                         "PATH": "/usr/bin:/bin"}).stdout)
    assert [(i["title"], i["noise"], i["unconfirmed_until"]) for i in listed] == [
        ("checkout answers slowly", False, None)]
