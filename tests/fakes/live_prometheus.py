"""A real Prometheus scraping live data, for tests that ask about "now": a tiny exporter (a
thread on loopback) serves counters that grow at set rates, Prometheus scrapes it every second
and evaluates alerting rules every second, so instant queries, `rate()` and the alerts API all
answer as in production.

`Service(name, rps, error_ratio, latency_s)` describes one service's traffic; the exporter
exposes `http_requests_total{service,code}` and `http_request_duration_seconds_bucket{service,
le}` (all requests in the bucket at `latency_s`), the names `skills.prometheus.golden` queries.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import need
from tests.fakes.alertmanager_server import _running, free_port

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
HISTORY_SECONDS = 3600


@dataclass(frozen=True)
class Service:
    """`errors_from`: seconds after the counters started (HISTORY_SECONDS before the server
    started) at which errors begin; None: `error_ratio` all along."""

    name: str
    rps: float
    error_ratio: float = 0.0
    latency_s: float = 0.1
    errors_from: float | None = None


def samples(services: Sequence[Service], elapsed: float) -> list[tuple[str, float]]:
    """Each series (name with labels) and its value after `elapsed` seconds of traffic."""
    out: list[tuple[str, float]] = []
    for s in services:
        total = s.rps * elapsed
        erring = elapsed if s.errors_from is None else max(0.0, elapsed - s.errors_from)
        errors = s.rps * erring * s.error_ratio
        out.append((f'http_requests_total{{service="{s.name}",code="200"}}', total - errors))
        out.append((f'http_requests_total{{service="{s.name}",code="500"}}', errors))
        for le in BUCKETS:
            count = total if s.latency_s <= le else 0.0
            out.append((f'http_request_duration_seconds_bucket{{service="{s.name}",'
                        f'le="{le}"}}', count))
        out.append((f'http_request_duration_seconds_bucket{{service="{s.name}",le="+Inf"}}',
                    total))
        out.append((f'http_request_duration_seconds_count{{service="{s.name}"}}', total))
        out.append((f'http_request_duration_seconds_sum{{service="{s.name}"}}',
                    total * s.latency_s))
    return out


def exposition(services: Sequence[Service], elapsed: float) -> str:
    return "".join(f"{series} {value}\n" for series, value in samples(services, elapsed))


def history(services: Sequence[Service], *, started: float, until: float,
            step: float = 15.0) -> str:
    """The same counters from `started` to `until` as OpenMetrics for `promtool tsdb
    create-blocks-from openmetrics`: every series an `unknown` family (the TSDB keeps no
    types), its points in time order, ending with `# EOF`."""
    times = []
    t = started + step
    while t < until:
        times.append(t)
        t += step
    by_series: dict[str, list[tuple[float, float]]] = {}
    for t in times:
        for series, value in samples(services, t - started):
            by_series.setdefault(series, []).append((t, value))
    families: dict[str, list[str]] = {}
    for series, points in by_series.items():
        name = series.split("{", 1)[0]
        families.setdefault(name, []).extend(f"{series} {v} {t:.3f}" for t, v in points)
    lines = []
    for name, rows in families.items():
        lines.append(f"# TYPE {name} unknown")
        lines.extend(rows)
    return "\n".join(lines) + "\n# EOF\n"


@contextmanager
def _exporter(services: Sequence[Service], started: float) -> Iterator[int]:

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exposition(services, time.time() - started).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def live_prometheus(tmp_path: Path, services: Sequence[Service], *,
                    rules: Sequence[dict[str, Any]] = (), wait_for_alerts: int = 0,
                    ready_timeout: float = 30.0) -> Iterator[str]:
    """Yields the base URL once Prometheus has two scrapes of every service (so `rate()` has
    data) and `wait_for_alerts` alerts are firing. `rules`: Prometheus alerting rules (dicts
    with alert, expr, for, labels, annotations)."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    need(prometheus is not None and promtool is not None,
         "Prometheus is not installed (apt-get install prometheus: prometheus, promtool)")
    assert prometheus is not None and promtool is not None
    tmp_path.mkdir(parents=True, exist_ok=True)
    # An hour of the same traffic backfilled up to now, so `rate(...[5m])` and range queries
    # see a steady history from the first scrape on.
    started = time.time() - HISTORY_SECONDS
    (tmp_path / "history.om").write_text(history(services, started=started, until=time.time()))
    done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                           str(tmp_path / "history.om"), str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"promtool backfill failed: {done.stderr}{done.stdout}")
    with _exporter(services, started) as exporter_port:
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "app", "honor_labels": True,
                                "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}],
        }
        if rules:
            (tmp_path / "rules.yml").write_text(json.dumps(
                {"groups": [{"name": "test", "rules": list(rules)}]}))
            config["rule_files"] = [str(tmp_path / "rules.yml")]
        (tmp_path / "prometheus.yml").write_text(json.dumps(config))
        port = free_port()
        argv = [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}"]
        with _running("prometheus", argv, log_path=tmp_path / "prometheus.log",
                      base_url=f"http://127.0.0.1:{port}", ready_path="/-/ready",
                      ready_timeout=ready_timeout) as proc:
            _wait_for_data(proc.base_url, len(services), wait_for_alerts, ready_timeout)
            yield proc.base_url


def _wait_for_data(base_url: str, services: int, alerts: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    state = "nothing yet"
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            rates = client.get("/api/v1/query", params={
                "query": "sum by (service) (rate(http_requests_total[1m]))"}).json()
            firing = [a for a in client.get("/api/v1/alerts").json()["data"]["alerts"]
                      if a["state"] == "firing"]
            # Discovery hands targets to the scraper only every 5 s: wait for a real scrape.
            up = client.get("/api/v1/query", params={"query": 'up{job="app"} == 1'}).json()
            have = len(rates["data"]["result"])
            scraped = bool(up["data"]["result"])
            if have >= services and len(firing) >= alerts and scraped:
                return
            state = (f"{have}/{services} services with a rate, {len(firing)}/{alerts} firing, "
                     f"{'scraped' if scraped else 'not scraped yet'}")
            time.sleep(0.2)
    raise TimeoutError(f"Prometheus at {base_url} not ready within {timeout:.0f} s: {state}")
