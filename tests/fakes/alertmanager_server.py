"""Real processes on loopback for end-to-end tests: a real Alertmanager (the Debian/upstream
`alertmanager` binary) and the copilot's own `sre-copilot serve`.

Both are started with `subprocess.Popen`, their output goes to a log file (quoted in failure
messages), readiness is polled with a bound, and they are always stopped: SIGTERM, then SIGKILL
after a timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

ALERTMANAGER_NAMES = ("prometheus-alertmanager", "alertmanager")


def find_alertmanager() -> str | None:
    """Path of the Alertmanager binary (Debian names it `prometheus-alertmanager`), or None."""
    explicit = os.environ.get("ALERTMANAGER_BIN")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in ALERTMANAGER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def iso(t: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as Alertmanager's API takes it."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Process:
    """A started process, its log file and its base URL."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    base_url: str

    def log_tail(self, chars: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return text[-chars:]

    def describe(self) -> str:
        code = self.popen.poll()
        state = "running" if code is None else f"exited with {code}"
        return f"{self.name} ({state}); log {self.log_path}:\n{self.log_tail()}"


def stop_process(popen: subprocess.Popen[Any], *, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=timeout)


@contextmanager
def _running(name: str, argv: Sequence[str], *, log_path: Path, base_url: str,
             ready_path: str, env: Mapping[str, str] | None = None,
             ready_timeout: float = 30.0, stop_timeout: float = 10.0) -> Iterator[Process]:
    log: TextIO = log_path.open("w")
    try:
        popen = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=dict(env) if env else None)
    except BaseException:
        log.close()
        raise
    proc = Process(name=name, popen=popen, log_path=log_path, base_url=base_url)
    try:
        _wait_ready(proc, ready_path, timeout=ready_timeout)
        yield proc
    finally:
        try:
            stop_process(popen, timeout=stop_timeout)
        finally:
            log.close()


def _wait_ready(proc: Process, path: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(base_url=proc.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited before it was ready\n{proc.describe()}")
            try:
                response = client.get(path)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:300]}"
            time.sleep(0.1)
    raise TimeoutError(f"{proc.name} not ready at {proc.base_url}{path} within {timeout:.0f} s "
                       f"({last})\n{proc.describe()}")


def webhook_config(*, webhook_url: str, token: str, group_by: Sequence[str] = ("service",),
                   group_wait: str = "1s", group_interval: str = "1s",
                   repeat_interval: str = "1h") -> dict[str, Any]:
    """An Alertmanager configuration with one route to one webhook receiver that authorises
    with a bearer token and sends resolved notifications."""
    return {
        "route": {
            "receiver": "sre-copilot",
            "group_by": list(group_by),
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [{
            "name": "sre-copilot",
            "webhook_configs": [{
                "url": webhook_url,
                "send_resolved": True,
                "http_config": {"authorization": {"type": "Bearer", "credentials": token}},
            }],
        }],
    }


@contextmanager
def alertmanager(binary: str, workdir: Path, config: Mapping[str, Any], *,
                 ready_timeout: float = 30.0) -> Iterator[Process]:
    """A real Alertmanager on a free loopback port, clustering off, with `config` (written as
    JSON, which is YAML). Yields once `/-/ready` answers 200."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "alertmanager.yml"
    config_file.write_text(json.dumps(config, indent=2))
    storage = workdir / "data"
    storage.mkdir(exist_ok=True)
    port = free_port()
    argv = [binary, f"--config.file={config_file}", f"--storage.path={storage}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
            "--log.level=debug"]
    with _running("alertmanager", argv, log_path=workdir / "alertmanager.log",
                  base_url=f"http://127.0.0.1:{port}", ready_path="/-/ready",
                  ready_timeout=ready_timeout) as proc:
        yield proc


@contextmanager
def copilot_server(executable: str, workdir: Path, *, database_url: str, token: str,
                   extra_env: Mapping[str, str] | None = None,
                   ready_timeout: float = 30.0, port: int | None = None) -> Iterator[Process]:
    """`sre-copilot serve` on a loopback port (free, unless given: a sender configured before
    the copilot starts needs its address) with the given database and Alertmanager token.
    Yields once `/readyz` answers 200 (migrations done, database reachable)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    # Start from this environment (PATH, locale…) without any copilot setting leaking in.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SRE_COPILOT_")
           and k not in ("DATABASE_URL", "ALERTMANAGER_WEBHOOK_TOKEN",
                         "PAGERDUTY_WEBHOOK_SECRET")}
    env.update({"DATABASE_URL": database_url, "ALERTMANAGER_WEBHOOK_TOKEN": token,
                "SRE_COPILOT_DATA_DIR": str(workdir), "PYTHONUNBUFFERED": "1",
                **(extra_env or {})})
    argv = [executable, "serve", "--host", "127.0.0.1", "--port", str(port)]
    with _running("sre-copilot serve", argv, log_path=workdir / "copilot.log",
                  base_url=f"http://127.0.0.1:{port}", ready_path="/readyz", env=env,
                  ready_timeout=ready_timeout) as proc:
        yield proc


def api_alert(alertname: str, *, service: str, severity: str, starts: datetime,
              ends: datetime | None = None, summary: str | None = None) -> dict[str, Any]:
    """One alert for Alertmanager's `POST /api/v2/alerts`, as Prometheus would send it."""
    alert: dict[str, Any] = {
        "labels": {"alertname": alertname, "service": service, "severity": severity},
        "annotations": {"summary": summary or f"{alertname} on {service}"},
        "startsAt": iso(starts),
        "generatorURL": f"http://prometheus.test:9090/graph?g0.expr={alertname}",
    }
    if ends is not None:
        alert["endsAt"] = iso(ends)
    return alert
