"""Fits the evidence engine's two confidence constants — the softmax temperature and the score
of "no clear cause" — on the development splits of every generator, never the test split:
each case's snapshot is fetched once, then ranked for every pair on a grid, and the pair with
the lowest Brier score of the top-1 confidence (outcome: top-1 right) is printed beside the
constants in use. The ranking itself does not depend on them; only the confidences do.

    .venv/bin/python -m tests.bench.rca_calibrate [--splits dev,dev2] [--cases 40]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.rca_cases import GENERATORS, EvalCase, cases, merge
from tests.bench.rca_eval import WINDOW, change_records
from tests.fakes.prometheus_server import openmetrics, running_prometheus

TEMPERATURES = (0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.5)
NONE_SCORES = (5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0)


async def snapshots(url: str, all_cases: list[EvalCase]) -> list[Any]:
    from skills.context import assemble
    from skills.prometheus.client import PrometheusClient

    gate = asyncio.Semaphore(4)
    async with PrometheusClient(url, timeout=60) as prom:
        async def one(case: EvalCase) -> Any:
            async with gate:
                return await assemble(prom, service=case.alert_service, at=case.alert_at,
                                      window=WINDOW)
        return list(await asyncio.gather(*(one(c) for c in all_cases)))


def brier(all_cases: list[EvalCase], snaps: list[Any]) -> tuple[float, float]:
    from skills.hypotheses.engine import rank

    errors, right = [], []
    for case, snap in zip(all_cases, snaps, strict=True):
        inv = rank(snap, extra_changes=change_records(case))
        top = inv.hypotheses[0] if inv.hypotheses else None
        hit = top is not None and top.cause.service == case.root_service
        conf = top.confidence if top else 0.0
        errors.append((conf - float(hit)) ** 2)
        right.append(hit)
    return float(np.mean(errors)), float(np.mean(right))


def main() -> int:
    from skills.hypotheses import engine

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", default="dev,dev2")
    parser.add_argument("--cases", type=int, default=40)
    args = parser.parse_args()
    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    splits = [s for s in args.splits.split(",") if s]
    if "test" in splits:
        raise SystemExit("the test split is never used to fit anything")
    every = [c for split in splits for g in GENERATORS for c in cases(g, split, args.cases,
                                                                     anchor)]
    # Cases of different splits share prefixes: give each its own Prometheus.
    snaps: list[Any] = []
    chosen: list[EvalCase] = []
    for split in splits:
        mine = [c for g in GENERATORS for c in cases(g, split, args.cases, anchor)]
        tmp = Path(tempfile.mkdtemp(prefix="rca-calibrate-"))
        try:
            with running_prometheus(tmp, openmetrics(merge(mine)), max_block_duration="240h",
                                    ready_timeout=120) as url:
                snaps += asyncio.run(snapshots(url, mine))
                chosen += mine
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    assert len(chosen) == len(every)
    now = (engine.TEMPERATURE, engine.NONE_SCORE)
    results = []
    for t in TEMPERATURES:
        for n in NONE_SCORES:
            engine.TEMPERATURE, engine.NONE_SCORE = t, n
            b, acc = brier(chosen, snaps)
            results.append((b, t, n, acc))
    engine.TEMPERATURE, engine.NONE_SCORE = now
    results.sort()
    print(f"{len(chosen)} cases ({', '.join(splits)}; {', '.join(GENERATORS)})")
    for b, t, n, acc in results[:8]:
        print(f"  temperature {t:4.2f}  none score {n:4.1f}  Brier {b:.4f}  (top-1 {acc:.2f})")
    current = next(r for r in results if (r[1], r[2]) == now)
    print(f"in use: temperature {now[0]}, none score {now[1]}: Brier {current[0]:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
