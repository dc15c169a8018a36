"""Does an investigation that starts from the alert name the failing resource? On Kubernetes and
node incidents where a real kube-prometheus alert fires because one resource failed
(`tests/bench/cases_alerts.py`, written independently of the engine: filesystems and inodes
filling, crash loops, stuck rollouts on a broken node, nodes not ready, one target of a service
down, CPU throttling, one pod eating a node's memory, failed jobs), backfilled into one real
Prometheus and investigated as the incident flow does (`skills.investigation.investigate_alert`
with the alert as Alertmanager delivers it).

A hypothesis names the culprit when one of the case's `truth_names` is among the label values of
its resource (or in its name). Beside the engine: the naive reading of the alert's own labels
(its identifying labels, all of them), which is right whenever the alert already names the
culprit. Prints top-1 / top-3 per kind, both side by side, and the Brier score of the top
confidence; the last line is JSON.

    .venv/bin/python -m tests.bench.alert_eval [--split dev|test] [--cases 27] [--quiet]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.cases_alerts import KINDS, AlertCase, generate_case, merge_families
from tests.fakes.prometheus_server import openmetrics, running_prometheus

SEEDS = {"dev": 7, "test": 9_090_909}  # the test seed is never looked at while tuning


@dataclass
class Outcome:
    case: AlertCase
    top: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = ""
    error: str | None = None
    seconds: float = 0.0

    def names(self, i: int) -> bool:
        h = self.top[i]
        values = set(h["resource"].values())
        return any(n in values or n in h["service"] for n in self.case.truth_names)

    @property
    def top1(self) -> bool:
        return bool(self.top) and self.names(0)

    @property
    def top3(self) -> bool:
        return any(self.names(i) for i in range(min(3, len(self.top))))

    @property
    def baseline(self) -> bool:
        from knowledge.subjects import identity

        values = set(identity(self.case.alert["labels"]).values())
        return any(n in values for n in self.case.truth_names)

    @property
    def confidence(self) -> float:
        return float(self.top[0]["confidence"]) if self.top else 0.0


def make(split: str, n: int, anchor: datetime) -> list[AlertCase]:
    seed = SEEDS[split]
    return [generate_case(seed * 1000 + i, prefix=f"a{i:02d}-", anchor=anchor,
                          spread=timedelta(days=5), kind=KINDS[i % len(KINDS)])
            for i in range(n)]


async def run_all(url: str, cases: list[AlertCase], concurrency: int) -> list[Outcome]:
    from skills.alert_context import AlertRef
    from skills.investigation import investigate_alert
    from skills.prometheus.client import PrometheusClient

    gate = asyncio.Semaphore(concurrency)
    async with PrometheusClient(url, timeout=60) as prom:

        async def one(case: AlertCase) -> Outcome:
            out = Outcome(case)
            a = case.alert
            ref = AlertRef(name=a["labels"]["alertname"], labels=a["labels"],
                           annotations=a.get("annotations") or {},
                           generator_url=a.get("generatorURL"),
                           starts_at=datetime.fromisoformat(a["startsAt"].replace("Z",
                                                                                  "+00:00")))
            async with gate:
                began = time.perf_counter()
                try:
                    inv, _ = await investigate_alert(prom, ref, at=case.alert_at,
                                                     window=timedelta(hours=2))
                    evidence = inv.evidence_by_id()
                    out.top = [{"service": h.cause.service, "kind": h.cause.kind,
                                "resource": h.cause.resource, "confidence": h.confidence,
                                "statement": h.statement,
                                "evidence": [evidence[e].summary for e in h.evidence_ids]}
                               for h in inv.hypotheses]
                    out.verdict = inv.verdict
                except Exception as exc:  # a failed investigation names nothing
                    out.error = f"{type(exc).__name__}: {exc}"
                out.seconds = time.perf_counter() - began
            return out

        return list(await asyncio.gather(*(one(c) for c in cases)))


def pct(x: float) -> str:
    return f"{100 * x:4.0f}%"


def evaluate(split: str, n: int, *, concurrency: int = 4, quiet: bool = False,
             explain: bool = False) -> dict[str, Any]:
    """Generate, backfill, investigate and print; returns the figures."""
    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    cases = make(split, n, anchor)
    tmp = Path(tempfile.mkdtemp(prefix="alert-eval-"))
    try:
        text = openmetrics(merge_families(cases))
        print(f"split {split}: {len(cases)} alert cases, OpenMetrics {len(text) / 1e6:.0f} MB")
        with running_prometheus(tmp, text, max_block_duration="240h",
                                ready_timeout=180) as url:
            del text
            began = time.perf_counter()
            outcomes = asyncio.run(run_all(url, cases, concurrency))
            print(f"{len(outcomes)} investigations in {time.perf_counter() - began:.1f}s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        for o in outcomes:
            mark = "✓" if o.top1 else ("·" if o.top3 else "✗")
            said = (f"{o.top[0]['service']} [{o.top[0]['kind']}] {o.top[0]['confidence']:.2f}"
                    if o.top else (o.error or "nothing"))
            print(f"  {mark} {o.case.name:26s} {o.case.alert['labels']['alertname']:32s} "
                  f"truth {o.case.truth_names[0]:34s} -> {said[-90:]}  | baseline "
                  f"{'✓' if o.baseline else '✗'}")
    if explain:
        for o in outcomes:
            if o.top1:
                continue
            print(f"\n--- {o.case.name}: truth {o.case.truth_labels}; {o.verdict}")
            for note in o.case.notes[:3]:
                print(f"    note: {note}")
            for h in o.top:
                print(f"  {h['confidence']:.2f} [{h['kind']}] {h['statement'][:300]}")
                for line in h["evidence"][:5]:
                    print(f"       {line[:200]}")
    figures: dict[str, Any] = {"split": split, "cases": len(outcomes)}
    brier = [(o.confidence - float(o.top1)) ** 2 for o in outcomes]
    figures.update({
        "top1": round(float(np.mean([o.top1 for o in outcomes])), 3),
        "top3": round(float(np.mean([o.top3 for o in outcomes])), 3),
        "baseline": round(float(np.mean([o.baseline for o in outcomes])), 3),
        "brier": round(float(np.mean(brier)), 4),
        "failed": sum(o.error is not None for o in outcomes),
        "seconds_p50": round(float(np.median([o.seconds for o in outcomes])), 2),
        "per_kind": {}})
    print(f"\n  failing resource named: engine top-1 {pct(figures['top1'])}  top-3 "
          f"{pct(figures['top3'])}    alert's own labels {pct(figures['baseline'])}    "
          f"Brier {figures['brier']}  ({figures['failed']} failed)")
    print("  per kind              n   top-1  top-3 | labels")
    for kind in KINDS:
        these = [o for o in outcomes if o.case.kind == kind]
        if not these:
            continue
        row = {"n": len(these), "top1": float(np.mean([o.top1 for o in these])),
               "top3": float(np.mean([o.top3 for o in these])),
               "baseline": float(np.mean([o.baseline for o in these]))}
        figures["per_kind"][kind] = row
        print(f"    {kind:18s} {row['n']:3d}  {pct(row['top1'])}  {pct(row['top3'])} | "
              f"{pct(row['baseline'])}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=tuple(SEEDS), default="dev")
    parser.add_argument("--cases", type=int, default=27)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--explain", action="store_true",
                        help="print the hypotheses and evidence of every case not right at top-1")
    args = parser.parse_args()
    figures = evaluate(args.split, args.cases, concurrency=args.concurrency, quiet=args.quiet,
                       explain=args.explain)
    print(json.dumps(figures, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
