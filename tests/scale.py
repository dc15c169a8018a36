"""Several `sre-copilot serve` replicas as production runs them, for the scale-out test and its
benchmark: one PostgreSQL schema, a Chroma server holding the bundled runbooks, the local Slack
Web API, and Alertmanager's load — groups of alerts arriving in waves, each notification
carrying the group's current alerts (as Alertmanager sends them), every one posted to two
replicas, retried on another when a replica is gone (as Alertmanager retries)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.alertmanager import alert, notification
from tests.fakes.alertmanager_server import free_port
from tests.fakes.slack_api import FakeSlack, app_mention, event_callback, sign

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / ".venv" / "bin" / "sre-copilot"
TOKEN = "scale-alertmanager-token"
SECRET = "scale-signing-secret"
RUNBOOKS = ROOT / "bot" / "demo" / "runbooks"




@dataclass
class Replica:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    alive: bool = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def replica_env(db_url: str, data_dir: Path, slack: FakeSlack, chroma_url: str,
                **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SRE_COPILOT_", "DIGEST_", "SLACK_", "TEAMS_", "DATABASE_",
                                "CHROMA_", "PROMETHEUS_", "ANTHROPIC_", "PAGERDUTY_"))}
    env.update(DATABASE_URL=db_url, SRE_COPILOT_DATA_DIR=str(data_dir), CHROMA_URL=chroma_url,
               ALERTMANAGER_WEBHOOK_TOKEN=TOKEN, SLACK_BOT_TOKEN=slack.bot_token,
               SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack.base_url + "/api/",
               SRE_COPILOT_SLACK_CREATE_CHANNELS="true", SRE_COPILOT_HISTORY="false",
               SRE_COPILOT_LOG_LEVEL="info")
    env.update(more)
    return env


def start_replica(name: str, directory: Path, env: dict[str, str]) -> Replica:
    data = directory / name
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = directory / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SERVER), "serve", "--port", str(port)],
                                env={**env, "SRE_COPILOT_DATA_DIR": str(data)},
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    return Replica(name, proc, port, log)


def wait_ready(replica: Replica, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert replica.proc.poll() is None, replica.text()[-3000:]
        try:
            if httpx.get(f"{replica.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{replica.name} never became ready:\n{replica.text()[-3000:]}")


def stop(replica: Replica, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    replica.alive = False
    if replica.proc.poll() is None:
        replica.proc.send_signal(sig)
    try:
        return replica.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        replica.proc.kill()
        return replica.proc.wait()


@contextmanager
def replicas(n: int, directory: Path, env: dict[str, str]) -> Iterator[list[Replica]]:
    """`n` replicas, ready; the first migrates the schema before the others start."""
    started: list[Replica] = []
    try:
        started.append(start_replica("replica-0", directory, env))
        wait_ready(started[0])
        started += [start_replica(f"replica-{i}", directory,
                                  {**env, "SRE_COPILOT_AUTO_MIGRATE": "false"})
                    for i in range(1, n)]
        for r in started[1:]:
            wait_ready(r)
        yield started
    finally:
        for r in started:
            stop(r)


def ingest_runbooks(env: dict[str, str], data_dir: Path) -> None:
    done = subprocess.run([str(SERVER), "runbooks", "ingest", str(RUNBOOKS)],
                          env={**env, "SRE_COPILOT_DATA_DIR": str(data_dir)},
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr


# -- Alertmanager's load ------------------------------------------------------------------------


@dataclass
class Load:
    """`groups` alert groups of `waves` × `per_wave` alerts: notification i of a group carries
    its first (i + 1) × per_wave alerts. In send order (wave by wave, across groups)."""
    groups: int = 30
    waves: int = 10
    per_wave: int = 10
    notifications: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        starts = datetime.now(UTC) - timedelta(minutes=10)
        group_alerts = [[alert(f"Scale{g % 6}HighErrorRate", service=f"svc-{g:02d}",
                               starts=starts, pod=f"svc-{g:02d}-{i:03d}")
                         for i in range(self.waves * self.per_wave)]
                        for g in range(self.groups)]
        for wave in range(self.waves):
            for g, alerts in enumerate(group_alerts):
                self.notifications.append(notification(
                    alerts[:(wave + 1) * self.per_wave], group_key=f'{{}}:{{group="{g}"}}'))

    @property
    def alerts(self) -> int:
        return self.groups * self.waves * self.per_wave


@dataclass
class Sender:
    """Posts each notification to two different live replicas (round-robin), each retried on
    the next live replica until one answers 202; records what was acknowledged."""
    fleet: list[Replica]
    acked: int = 0
    retried: int = 0
    latencies: list[float] = field(default_factory=list)
    _next: int = 0

    def _pick(self, exclude: Replica | None = None) -> Replica:
        live = [r for r in self.fleet if r.alive and r is not exclude]
        if not live:
            live = [r for r in self.fleet if r.alive]
        assert live, "no replica left"
        self._next += 1
        return live[self._next % len(live)]

    async def post(self, client: httpx.AsyncClient, body: dict[str, Any],
                   exclude: Replica | None = None) -> Replica:
        for _ in range(50):
            target = self._pick(exclude)
            started = time.perf_counter()
            try:
                response = await client.post(f"{target.url}/webhooks/alertmanager", json=body,
                                             headers={"Authorization": f"Bearer {TOKEN}"})
                if response.status_code == 202:
                    self.acked += 1
                    self.latencies.append(time.perf_counter() - started)
                    return target
                assert response.status_code >= 500, response.text  # 4xx would be our bug
            except httpx.TransportError:
                pass
            self.retried += 1
            await asyncio.sleep(0.1)
        raise AssertionError("a notification was never accepted")

    async def twice(self, client: httpx.AsyncClient, body: dict[str, Any]) -> None:
        first = await self.post(client, body)
        await self.post(client, body, exclude=first)


async def send_slack_event(client: httpx.AsyncClient, fleet: list[Replica], body: bytes,
                           retry: int = 0, start: int = 0) -> Replica:
    """A signed Events API request to a live replica (Slack retries go wherever the load
    balancer sends them); tried on the next replica if one is gone."""
    live = [r for r in fleet if r.alive]
    for i in range(len(live) * 3):
        target = live[(start + i) % len(live)]
        headers = {**sign(body, SECRET), "Content-Type": "application/json"}
        if retry:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        try:
            response = await client.post(f"{target.url}/slack/events", content=body,
                                         headers=headers)
            if response.status_code == 200:
                return target
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("a Slack event was never accepted")


def mention(channel: str, n: int, text: str) -> tuple[str, bytes]:
    ts = f"{1800000000 + n}.000100"
    return ts, event_callback(app_mention(f"<@U0BOT> {text}", channel, ts, "U0ANA"),
                              event_id=f"EvSCALE{n:05d}")
