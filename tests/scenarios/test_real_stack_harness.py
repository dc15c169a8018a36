"""The real-stack harness (`tests.fakes.real_stack`) does what it promises: each real fault makes
its real alert fire in Prometheus and reach a webhook through Alertmanager — labels,
annotations, generatorURL and bearer token intact — and healing it sends the resolution.
Watchdog stays away from the webhook. One stack serves the whole module; faults run one after
another and each is healed before the next."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes.real_stack import RealStack, real_stack

pytestmark = pytest.mark.slow

TOKEN = "harness-token"
FIRE_TIMEOUT = 30.0  # `for:` is at most 5 s and everything runs every second
DELIVERY_TIMEOUT = 15.0  # Alertmanager waits 1 s (group_wait, group_interval)
FSTYPES = {"tmpfs": "tmpfs", "loop ext4": "ext4"}  # RealStack.mount_method → fstype label


@dataclass(frozen=True)
class Delivery:
    """One POST that Alertmanager made to the webhook."""

    at: float  # time.monotonic()
    authorization: str | None
    body: dict[str, Any]


class WebhookReceiver:
    """A thread HTTP server recording every POST body."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    receiver._deliveries.append(Delivery(
                        time.monotonic(), self.headers.get("Authorization"), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alertmanager"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def wait_for(self, labels: Mapping[str, str], *, status: str = "firing",
                 since: float = 0.0, timeout: float = DELIVERY_TIMEOUT
                 ) -> tuple[Delivery, dict[str, Any]]:
        """The first delivery after `since` holding an alert in `status` whose labels include
        `labels`, and that alert."""
        deadline = time.monotonic() + timeout
        while True:
            for delivery in self.deliveries():
                for alert in delivery.body["alerts"]:
                    if (delivery.at >= since and alert["status"] == status
                            and labels.items() <= alert["labels"].items()):
                        return delivery, alert
            if time.monotonic() > deadline:
                seen = [(a["labels"].get("alertname"), a["status"])
                        for d in self.deliveries() for a in d.body["alerts"]]
                raise TimeoutError(f"no {status} {dict(labels)} at the webhook within "
                                   f"{timeout:g} s; seen {seen}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory,
          receiver: WebhookReceiver) -> Iterator[RealStack]:
    with real_stack(tmp_path_factory.mktemp("real-stack"), webhook_url=receiver.url,
                    webhook_token=TOKEN) as s:
        yield s


def _delivered_as_fired(stack: RealStack, receiver: WebhookReceiver, fired: dict[str, Any],
                        since: float) -> float:
    """Asserts that the alert Prometheus fired reached the webhook unchanged; returns when."""
    delivery, posted = receiver.wait_for(fired["labels"], since=since)
    assert delivery.authorization == f"Bearer {TOKEN}"
    assert delivery.body["version"] == "4"
    assert delivery.body["receiver"] == (
        "Critical" if fired["labels"]["severity"] == "critical" else "Default")
    assert delivery.body["externalURL"] == stack.alertmanager_url
    assert posted["labels"] == fired["labels"]
    assert posted["annotations"] == fired["annotations"]
    assert posted["annotations"]["runbook_url"].startswith("https://")
    url = urlsplit(posted["generatorURL"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{stack.prometheus_url}/graph"
    assert parse_qs(url.query)["g0.expr"][0].strip()
    return delivery.at


def _wait_suppressed(stack: RealStack, labels: Mapping[str, str], timeout: float = 10.0) -> None:
    """Until Alertmanager holds the alert with `labels` and inhibits it."""
    deadline = time.monotonic() + timeout
    while True:
        alerts = stack.alertmanager_alerts(**labels)
        if alerts and all(a["status"]["state"] == "suppressed" for a in alerts):
            return
        assert time.monotonic() < deadline, f"{dict(labels)} not inhibited: {alerts}"
        time.sleep(0.2)


def _report(fault: str, start: float, fired_at: float, delivered_at: float) -> None:
    print(f"\n{fault}: firing after {fired_at - start:.1f} s, "
          f"at the webhook after {delivered_at - start:.1f} s")


def test_watchdog_and_clock_alerts_fire_by_themselves(stack: RealStack,
                                                      receiver: WebhookReceiver) -> None:
    watchdog = stack.wait_for_alert("Watchdog", timeout=FIRE_TIMEOUT)
    assert watchdog["labels"]["severity"] == "none"
    in_alertmanager = stack.alertmanager_alerts(alertname="Watchdog")
    assert [r["name"] for r in in_alertmanager[0]["receivers"]] == ["Watchdog"]
    # This VM's clock is not NTP-synchronised; where it is, the alert must stay quiet.
    unsynced = stack.query('min_over_time(node_timex_sync_status{job="node-exporter"}[5m]) == 0'
                           ' and node_timex_maxerror_seconds{job="node-exporter"} >= 16')
    if unsynced:
        fired = stack.wait_for_alert("NodeClockNotSynchronising", timeout=FIRE_TIMEOUT,
                                     labels={"instance": stack.node_exporter_address})
        _delivered_as_fired(stack, receiver, fired, since=0.0)
    else:
        assert not [a for a in stack.alerts()
                    if a["labels"]["alertname"] == "NodeClockNotSynchronising"]
    assert not [a for d in receiver.deliveries() for a in d.body["alerts"]
                if a["labels"]["alertname"] == "Watchdog"]


def test_filling_filesystem(stack: RealStack, receiver: WebhookReceiver) -> None:
    where = {"instance": stack.node_exporter_address, "mountpoint": str(stack.mountpoint)}
    start = time.monotonic()
    used = stack.fill_filesystem(97)
    try:
        assert used >= 97
        # Below 3 % available: the critical rule fires, and inhibits its warning twin in
        # Alertmanager (same namespace and alertname).
        fired = stack.wait_for_alert("NodeFilesystemAlmostOutOfSpace", timeout=FIRE_TIMEOUT,
                                     labels={**where, "severity": "critical"})
        fired_at = time.monotonic()
        assert fired["labels"]["fstype"] == FSTYPES[stack.mount_method]
        _report("filesystem 97 % full", start, fired_at,
                _delivered_as_fired(stack, receiver, fired, since=start))
        _wait_suppressed(stack, {**where, "alertname": "NodeFilesystemAlmostOutOfSpace",
                                 "severity": "warning"})
        # predict_linear over [6h] needs only two samples: the jump from empty to full
        # predicts exhaustion, so the "filling up" alerts fire as well.
        filling = stack.wait_for_alert("NodeFilesystemSpaceFillingUp", timeout=FIRE_TIMEOUT,
                                       labels={**where, "severity": "critical"})
        _report("filesystem 97 % full (FillingUp)", start, time.monotonic(),
                _delivered_as_fired(stack, receiver, filling, since=start))
    finally:
        stack.free_filesystem()
    healed = time.monotonic()
    resolved, _ = receiver.wait_for(fired["labels"], status="resolved", since=start)
    print(f"  resolved at the webhook {resolved.at - healed:.1f} s after healing")
    stack.wait_for_no_alert("NodeFilesystemSpaceFillingUp", labels=where)


def test_redis_killed(stack: RealStack, receiver: WebhookReceiver) -> None:
    start = time.monotonic()
    stack.stop_redis()
    try:
        fired = stack.wait_for_alert("RedisDown", timeout=FIRE_TIMEOUT,
                                     labels={"instance": stack.redis_exporter_address,
                                             "job": "redis"})
        fired_at = time.monotonic()
        assert fired["annotations"]["summary"] == (
            f"Redis down (instance {stack.redis_exporter_address})")
        _report("redis-server killed", start, fired_at,
                _delivered_as_fired(stack, receiver, fired, since=start))
    finally:
        stack.restart_redis()
    healed = time.monotonic()
    resolved, _ = receiver.wait_for(fired["labels"], status="resolved", since=start)
    print(f"  resolved at the webhook {resolved.at - healed:.1f} s after healing")


def test_redis_exporter_killed(stack: RealStack, receiver: WebhookReceiver) -> None:
    start = time.monotonic()
    stack.stop_redis_exporter()
    try:
        # count(up == 0) / count(up) by job: 100 % of job="redis" is down.
        fired = stack.wait_for_alert("TargetDown", timeout=FIRE_TIMEOUT,
                                     labels={"job": "redis"})
        fired_at = time.monotonic()
        assert fired["labels"]["namespace"] == "default"
        assert float(fired["value"]) == 100.0
        _report("redis exporter killed", start, fired_at,
                _delivered_as_fired(stack, receiver, fired, since=start))
    finally:
        stack.restart_redis_exporter()
    healed = time.monotonic()
    resolved, _ = receiver.wait_for(fired["labels"], status="resolved", since=start)
    print(f"  resolved at the webhook {resolved.at - healed:.1f} s after healing")


def test_endpoint_answering_500(stack: RealStack, receiver: WebhookReceiver) -> None:
    where = {"instance": stack.endpoint_url, "job": "blackbox"}
    start = time.monotonic()
    stack.fail_endpoint(500)
    try:
        fired = {name: stack.wait_for_alert(name, labels=where, timeout=FIRE_TIMEOUT)
                 for name in ("BlackboxProbeFailed", "BlackboxProbeHttpFailure")}
        fired_at = time.monotonic()
        assert fired["BlackboxProbeHttpFailure"]["value"].startswith("5e+02")
        for name, alert in fired.items():
            _report(f"endpoint answering 500 ({name})", start, fired_at,
                    _delivered_as_fired(stack, receiver, alert, since=start))
    finally:
        stack.heal_endpoint()
    healed = time.monotonic()
    for alert in fired.values():
        resolved, _ = receiver.wait_for(alert["labels"], status="resolved", since=start)
        print(f"  resolved at the webhook {resolved.at - healed:.1f} s after healing")
