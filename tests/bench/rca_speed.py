"""Speed of one investigation at scale: a call graph big enough that the scope holds about 200
series, 2 h at a 15 s step, in a real Prometheus (backfilled with promtool). Prints the time of
each investigation (Prometheus time included) and the number of series fetched.

    python tests/bench/rca_speed.py [--services 30] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from skills.context import assemble
from skills.hypotheses.engine import rank
from skills.prometheus.client import PrometheusClient
from tests.fakes.prometheus_server import MetricFamily, openmetrics, running_prometheus

STEP = 15.0
LE = ["0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]


def build(services: int, end: datetime, rng: np.random.Generator
          ) -> tuple[list[MetricFamily], str, int]:
    """A gateway calling `services - 1` backends in a tree; the last backend fails at onset."""
    names = [f"svc{i:02d}" for i in range(services)]
    edges = [(names[(i - 1) // 3], names[i]) for i in range(1, services)]
    t = np.arange((end - timedelta(hours=3)).timestamp(), end.timestamp() + 1, STEP)
    onset = end.timestamp() - 600
    bad = names[-1]
    fams: dict[str, list[tuple[dict[str, str], list[tuple[float, float]]]]] = {
        k: [] for k in ("http_requests_total", "http_request_duration_seconds_bucket",
                        "process_cpu_seconds_total", "process_resident_memory_bytes",
                        "http_client_requests_total")}

    def counter(rate: np.ndarray) -> list[tuple[float, float]]:
        return list(zip(t.tolist(), np.cumsum(rng.poisson(np.maximum(rate, 0) * STEP)).tolist(),
                        strict=True))

    failing = t >= onset
    for name in names:
        err = np.where(failing & (name == bad), 0.3, 0.002)
        fams["http_requests_total"].append(({"service": name, "code": "200"},
                                            counter(20 * (1 - err))))
        fams["http_requests_total"].append(({"service": name, "code": "500"}, counter(20 * err)))
        for i, le in enumerate(LE):
            share = min(1.0, (i + 1) / 6)
            fams["http_request_duration_seconds_bucket"].append(
                ({"service": name, "le": le}, counter(np.full(len(t), 20 * share))))
        fams["process_cpu_seconds_total"].append(({"service": name},
                                                  list(zip(t.tolist(), (t - t[0]) * 0.3,
                                                           strict=True))))
        fams["process_resident_memory_bytes"].append(
            ({"service": name}, list(zip(t.tolist(), 4e8 + rng.normal(0, 4e6, len(t)),
                                         strict=True))))
    for caller, target in edges:
        err = np.where(failing & (target == bad), 0.3, 0.002)
        fams["http_client_requests_total"].append(
            ({"service": caller, "target": target, "code": "200"}, counter(10 * (1 - err))))
        fams["http_client_requests_total"].append(
            ({"service": caller, "target": target, "code": "500"}, counter(10 * err)))
    families = [MetricFamily(name, "counter" if name != "process_resident_memory_bytes"
                             else "gauge", samples=samples) for name, samples in fams.items()]
    return families, names[0], len(edges)


async def measure(url: str, service: str, at: datetime, runs: int) -> dict[str, float]:
    times: list[float] = []
    series = 0
    async with PrometheusClient(url) as prom:
        for _ in range(runs):
            started = time.perf_counter()
            snap = await assemble(prom, service=service, at=at, window=timedelta(hours=2))
            inv = rank(snap)
            times.append(time.perf_counter() - started)
            series = len(snap.signals)
    top = inv.hypotheses[0].cause.service if inv.hypotheses else None
    return {"series": series, "scope": len(snap.scope), "top": top,  # type: ignore[dict-item]
            "p50_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
            "min_s": round(min(times), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    families, root, n_edges = build(args.services, end, np.random.default_rng(1))
    with tempfile.TemporaryDirectory() as tmp, running_prometheus(
            Path(tmp), openmetrics(families)) as url:
        result = asyncio.run(measure(url, root, end, args.runs))
    print(f"services {args.services}  edges {n_edges}  scope {result['scope']}  "
          f"series fetched {result['series']}  range 2h @ {STEP:.0f}s")
    print(f"investigation time  p50 {result['p50_s']} s  min {result['min_s']} s  "
          f"max {result['max_s']} s  (target < 3 s)   top cause {result['top']}")
    print(json.dumps({"services": args.services, **result}))


if __name__ == "__main__":
    main()
