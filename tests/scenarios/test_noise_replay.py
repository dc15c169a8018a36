"""Issue 23 end to end, on real parts: a stream from our generator (a node failing across
namespaces, a claim filling up with a second problem in its namespace, crash loops, a disk;
info, flapping, chronic and one-off noise; Watchdog) is pushed into a real Alertmanager with
kube-prometheus's route (group_by namespace) and inhibit rules, which notifies a real
`sre-copilot serve`; a real Prometheus serves the cluster's topology as kube-state-metrics
series; the copilot posts into the local Slack Web API. Then `sre-copilot incidents --json` is
checked against the stream's ground truth, the Slack cards are counted against Alertmanager's
own notification count, and Watchdog is stopped to trip the dead man's switch.

Time runs SCALE times faster than the stream's: the two windows are set (scaled), and the
copilot derives the rest; Alertmanager's waits are scaled alike. Runs on PostgreSQL.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL

from tests.bench import noise_cases
from tests.conftest import need, url_string
from tests.fakes.alertmanager_replay import Replayer, kube_prometheus_config, settings_env
from tests.fakes.alertmanager_server import (
    alertmanager,
    copilot_server,
    find_alertmanager,
    free_port,
)
from tests.fakes.prometheus_server import MetricFamily, openmetrics, running_prometheus
from tests.fakes.real_copilot import _executable
from tests.fakes.slack_api import running_slack

pytestmark = pytest.mark.slow

SCALE = 120.0  # stream seconds per wall-clock second
SEED, INCIDENTS, NOISE, DURATION = 3, 4, 12, 1800.0  # a 30-minute stream: 15 s of wall clock


def topology_series(stream: noise_cases.Stream, now: float) -> str:
    """kube-state-metrics' kube_pod_info for the stream's pods and the claims they mount, over
    the last ten minutes."""
    points = [(now - 600 + 30 * i, 1.0) for i in range(21)]
    samples = []
    for key, (node, kind, workload) in stream.pods.items():
        ns, pod = key.split("/", 1)
        owner_kind, owner = (("ReplicaSet", pod.rsplit("-", 1)[0]) if kind == "Deployment"
                             else (kind, workload))
        samples.append(({"namespace": ns, "pod": pod, "node": node,
                         "created_by_kind": owner_kind, "created_by_name": owner}, points))
    mounts = [({"namespace": key.split("/", 1)[0], "pod": pod.split("/", 1)[1],
                "volume": "data", "persistentvolumeclaim": key.split("/", 1)[1]}, points)
              for key, pods in stream.claims.items() for pod in pods]
    return openmetrics([MetricFamily("kube_pod_info", "gauge", samples=samples),
                        MetricFamily("kube_pod_spec_volumes_persistentvolumeclaims_info",
                                     "gauge", samples=mounts)])


@pytest.fixture
def db_url(pg_url: URL) -> URL:
    """PostgreSQL, as replicas in production share it; the intake's rules run on SQLite too in
    tests/knowledge/test_noise_intake.py (one minute of suite time saved)."""
    return pg_url


@pytest.fixture
def parts(tmp_path: Path, db_url: URL) -> Iterator[tuple[str, str, Any, str]]:
    binary = find_alertmanager()
    need(binary is not None, "the Alertmanager binary is not installed "
                             "(apt-get install prometheus-alertmanager)")
    assert binary is not None
    token, port = secrets.token_urlsafe(16), free_port()
    stream = noise_cases.generate(SEED, incidents=INCIDENTS, noise_episodes=NOISE,
                                  duration_s=DURATION)
    config = kube_prometheus_config(f"http://127.0.0.1:{port}/webhooks/alertmanager", token,
                                    SCALE)
    with running_prometheus(tmp_path / "prom", topology_series(stream, time.time())) as prom, \
            running_slack() as slack, alertmanager(binary, tmp_path / "am", config) as am, \
            copilot_server(_executable(), tmp_path / "copilot", database_url=url_string(db_url),
                           token=token, port=port, ready_timeout=90, extra_env={
                               **slack.copilot_env(), "PROMETHEUS_URL": prom,
                               "SRE_COPILOT_HISTORY": "false",
                               "SRE_COPILOT_WORKER_POLL_SECONDS": "0.1",
                               **settings_env(SCALE)}) as copilot:
        yield am.base_url, copilot.base_url, (stream, slack), url_string(db_url)


def incidents_json(db_url: str, workdir: Path) -> list[dict[str, Any]]:
    done = subprocess.run([_executable(), "incidents", "--json"], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={"DATABASE_URL": db_url, "SRE_COPILOT_DATA_DIR": str(workdir),
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    listed: list[dict[str, Any]] = json.loads(done.stdout)
    return listed


def test_a_stream_through_real_alertmanager_posts_one_card_per_problem(
        parts: tuple[str, str, Any, str], tmp_path: Path) -> None:
    am_url, _copilot_url, (stream, slack), db_url = parts
    start = datetime.now(UTC) + timedelta(seconds=1)
    replay = Replayer(am_url, stream, start, SCALE)
    # Watchdog stops a little after the stream: the switch trips 2 windows later.
    thread = threading.Thread(target=replay.run, args=(DURATION + 60,), daemon=True)
    thread.start()
    thread.join(timeout=DURATION / SCALE + 60)
    assert not replay.errors, replay.errors

    def truth(alert: dict[str, Any]) -> noise_cases.StreamAlert:
        """The stream's alert an incident lists: the same labels, the nearest start."""
        at = (datetime.fromisoformat(alert["starts_at"].replace("Z", "+00:00"))
              - start).total_seconds() * SCALE
        same = [a for a in stream.alerts if a.labels == alert["labels"]]
        return min(same, key=lambda a: abs(a.starts_at - at))

    deadline = time.monotonic() + 30
    listed: list[dict[str, Any]] = []
    while time.monotonic() < deadline:  # until the switch tripped, held alerts are placed and
        listed = incidents_json(db_url, tmp_path / "cli")  # lone warnings' cards are settled
        if any(i["title"].startswith("No Watchdog") for i in listed) and not any(
                i["unconfirmed_until"] and not i["noise"] for i in listed):
            break
        time.sleep(1)
    silent = [i for i in listed if i["title"].startswith("No Watchdog")]
    assert len(silent) == 1 and "alerting itself may be down" in silent[0]["title"]
    # An incident gathered into another before its card was due has no card: it points there.
    real = [i for i in listed if not i["noise"] and not i["merged_into"] and i not in silent]
    # Every real incident is posted, none shares a card with another, and noise stays out.
    where: dict[str, set[str]] = {}
    for incident in real:
        truths = {truth(a).truth for a in incident["alerts"]} - {None}
        assert len(truths) <= 1, f"{incident['id']} merges {truths}: {incident['reason']}"
        for t in truths:
            where.setdefault(str(t), set()).add(incident["id"])
        assert incident["reason"], incident
    assert set(where) == set(stream.incidents), "a real incident was never posted"
    fragmented = [t for t, ids in where.items() if len(ids) > 1]
    assert len(fragmented) <= 1, f"fragmented: {fragmented}"
    # A Deployment's full claim and the crash loop of the pod that mounts it are one card:
    # only kube-state-metrics' mount series, read from Prometheus, ties the two.
    for claim in stream.claims:
        tid = next(a.truth for a in stream.alerts
                   if a.labels.get("persistentvolumeclaim") == claim.split("/", 1)[1])
        assert len(where[str(tid)]) == 1, f"{claim}'s incident {tid} is split: {where[str(tid)]}"
    posted_noise = [a for i in real for a in i["alerts"] if truth(a).noise]
    noise_total = sum(1 for a in stream.alerts if a.noise and a.labels["alertname"]
                      not in ("Watchdog", "InfoInhibitor"))
    assert len(posted_noise) <= 0.15 * noise_total, posted_noise
    assert all(i["noise"] for i in listed
               if {a["labels"].get("severity") for a in i["alerts"]} == {"info"})
    # The cards in Slack: one per posted incident (and the switch's), far fewer than the
    # notifications Alertmanager sent.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(slack.incident_cards()) < len(real) + 1:
        time.sleep(0.5)
    metrics = httpx.get(f"{am_url}/metrics", timeout=10).text
    sent = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("alertmanager_notifications_total")
               and 'integration="webhook"' in line)
    assert len(slack.incident_cards()) == len(real) + 1
    assert len(real) <= 0.5 * sent, (len(real), sent)
