"""Accuracy and calibration of the evidence engine on incidents with a known root cause.

Generates --cases scenarios (`tests/fakes/scenarios.py`: a balanced mix of bad deploys, saturated
databases, failing external dependencies, CPU and memory exhaustion, and ~10% with no cause, each
on its own call graph with noise), each at its own time within the last ~10 days and with its own
service-name prefix, backfills them all into ONE real Prometheus (promtool), then investigates
each one where and when its alert fired: `investigate(PrometheusClient(url),
InvestigationRequest(service=alert_service, at=alert_at, window=2h))`.

Scores: top-1 / top-3 accuracy of the root-cause service (cases with a known cause), kind
accuracy of a correct top-1, the share of no-cause cases answered with a top confidence < 0.5,
the Brier score of the top-1 confidence (outcome: top-1 service right; all cases), a
reliability table, per-kind figures and the time per investigation. The last line is JSON.

    .venv/bin/python tests/bench/rca_eval.py [--cases 60] [--seed 1] [--keep]
                                             [--dump-cases DIR] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fakes.prometheus_server import openmetrics, running_prometheus
from tests.fakes.scenarios import KINDS, Case, generate_case, merge_families

FAULTS = [k for k in KINDS if k != "none"]
BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0000001)


@dataclass
class Outcome:
    case: Case
    seconds: float = 0.0
    error: str | None = None
    top: list[dict[str, Any]] = field(default_factory=list)  # service, kind, confidence
    verdict: str = ""

    @property
    def confidence(self) -> float:
        return float(self.top[0]["confidence"]) if self.top else 0.0

    @property
    def top1(self) -> bool:
        return bool(self.top) and self.top[0]["service"] == self.case.root_service

    @property
    def top3(self) -> bool:
        return any(h["service"] == self.case.root_service for h in self.top[:3])

    @property
    def kind_ok(self) -> bool:
        return self.top1 and self.top[0]["kind"] in self.case.acceptable_kinds

    @property
    def quiet(self) -> bool:  # for "none": no confident answer
        return self.confidence < 0.5


def plan(n: int, seed: int) -> list[tuple[int, str]]:
    """(seed, kind) per case: ~10% "none", the rest spread evenly over the fault kinds."""
    n_none = round(n * 0.1)
    kinds = ["none"] * n_none + [FAULTS[i % len(FAULTS)] for i in range(n - n_none)]
    order = np.random.default_rng(seed).permutation(len(kinds))
    return [(seed * 100_000 + i, kinds[int(k)]) for i, k in enumerate(order)]


def make_cases(n: int, seed: int, anchor: datetime) -> list[Case]:
    return [generate_case(s, kind=kind, prefix=f"c{i:03d}-", anchor=anchor,
                          spread=timedelta(days=10))
            for i, (s, kind) in enumerate(plan(n, seed))]


@contextmanager
def prometheus(tmp: Path, text: str) -> Iterator[str]:
    """A real Prometheus over the backfilled `text`, in long blocks: promtool parses its whole
    input once per block range, so ten days of sparse cases in 2 h blocks would take minutes."""
    with running_prometheus(tmp, text, max_block_duration="240h", ready_timeout=60) as url:
        yield url


async def run_all(url: str, cases: list[Case], concurrency: int) -> list[Outcome]:
    from skills.investigation import InvestigationRequest, investigate
    from skills.prometheus.client import PrometheusClient

    gate = asyncio.Semaphore(concurrency)
    async with PrometheusClient(url, timeout=60) as prom:

        async def one(case: Case) -> Outcome:
            out = Outcome(case)
            async with gate:
                began = time.perf_counter()
                try:
                    inv = await investigate(prom, InvestigationRequest(
                        service=case.alert_service, at=case.alert_at,
                        window=timedelta(hours=2)))
                    out.top = [{"service": h.cause.service, "kind": h.cause.kind,
                                "confidence": round(h.confidence, 4), "statement": h.statement}
                               for h in inv.hypotheses]
                    out.verdict = inv.verdict
                except Exception as exc:  # a failed investigation counts as no answer
                    out.error = f"{type(exc).__name__}: {exc}"
                out.seconds = time.perf_counter() - began
            return out

        return list(await asyncio.gather(*(one(c) for c in cases)))


def share(xs: list[bool]) -> float | None:
    return round(sum(xs) / len(xs), 3) if xs else None


def pct(x: float | None) -> str:
    return "   -" if x is None else f"{100 * x:4.0f}%"


def score(outcomes: list[Outcome]) -> dict[str, Any]:
    known = [o for o in outcomes if o.case.root_service is not None]
    none = [o for o in outcomes if o.case.root_service is None]
    right = [o for o in known if o.top1]
    brier = [(o.confidence - float(o.top1)) ** 2 for o in outcomes]
    reliability = []
    for lo, hi in pairwise(BINS):
        inside = [o for o in outcomes if lo <= o.confidence < hi]
        reliability.append({
            "bin": f"{lo:.1f}-{min(hi, 1.0):.1f}", "n": len(inside),
            "mean_confidence": round(float(np.mean([o.confidence for o in inside])), 3)
            if inside else None,
            "accuracy": share([o.top1 for o in inside])})
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        these = [o for o in outcomes if o.case.kind == kind]
        if not these:
            continue
        per_kind[kind] = {
            "n": len(these), "top1": share([o.top1 for o in these]) if kind != "none" else None,
            "top3": share([o.top3 for o in these]) if kind != "none" else None,
            "kind_given_top1": share([o.kind_ok for o in these if o.top1]),
            "quiet": share([o.quiet for o in these]) if kind == "none" else None,
            "alert_on_root": share([o.case.alert_service == o.case.root_service
                                    for o in these]),
            "mean_top_confidence": round(float(np.mean([o.confidence for o in these])), 3)}
    seconds = np.array([o.seconds for o in outcomes])
    hit = float(np.mean([float(o.top1) for o in outcomes])) if outcomes else 0.0
    return {
        "cases": len(outcomes), "known_cause": len(known), "no_cause": len(none),
        "top1": share([o.top1 for o in known]), "top3": share([o.top3 for o in known]),
        "kind_given_top1": share([o.kind_ok for o in right]),
        "none_quiet": share([o.quiet for o in none]),
        "brier": round(float(np.mean(brier)), 4) if brier else None,
        # reference: one constant confidence, the observed top-1 hit rate, for every case
        "brier_constant": round(hit * (1 - hit), 4),
        "failed": sum(o.error is not None for o in outcomes),
        "seconds": {"p50": round(float(np.percentile(seconds, 50)), 3),
                    "p95": round(float(np.percentile(seconds, 95)), 3),
                    "max": round(float(seconds.max()), 3)} if len(seconds) else {},
        "reliability": reliability, "per_kind": per_kind}


def report(outcomes: list[Outcome], figures: dict[str, Any]) -> None:
    print("\nper case (✓ top-1 right, · in top 3, ✗ missed; none: ✓ = top confidence < 0.5)")
    for o in outcomes:
        c = o.case
        if c.root_service is None:
            mark = "✓" if o.quiet else "✗"
        else:
            mark = "✓" if o.top1 else ("·" if o.top3 else "✗")
        top = o.top[0] if o.top else None
        said = (f"{top['service']} {top['kind']} {top['confidence']:.2f}" if top
                else (o.error or "no hypothesis")[:80])
        print(f"  {mark} {c.name:32s} alert {c.alert_service:26s} root "
              f"{c.root_service or '-':26s} -> {said}  ({o.seconds:.2f}s)")
    f = figures
    print(f"\n{f['cases']} cases ({f['known_cause']} with a known cause, {f['no_cause']} without),"
          f" {f['failed']} investigations failed")
    print(f"  root-cause service  top-1 {pct(f['top1'])}   top-3 {pct(f['top3'])}")
    print(f"  kind right when the top-1 service is right  {pct(f['kind_given_top1'])}")
    print(f"  no-cause cases answered with confidence < 0.5  {pct(f['none_quiet'])}")
    print(f"  Brier score of the top-1 confidence  {f['brier']}   (one constant confidence: "
          f"{f['brier_constant']})")
    print("\n  reliability    n   mean conf   observed")
    for row in f["reliability"]:
        mc = "     -" if row["mean_confidence"] is None else f"{row['mean_confidence']:6.2f}"
        print(f"    {row['bin']:9s} {row['n']:4d}    {mc}      {pct(row['accuracy'])}")
    print("\n  per kind               n  top-1  top-3  kind  quiet  alert-on-root  mean conf")
    for kind, k in f["per_kind"].items():
        print(f"    {kind:20s} {k['n']:3d}  {pct(k['top1'])}  {pct(k['top3'])} "
              f"{pct(k['kind_given_top1'])}  {pct(k['quiet'])}     {pct(k['alert_on_root'])}"
              f"       {k['mean_top_confidence']:.2f}")
    s = f["seconds"]
    if s:
        print(f"\n  time per investigation  p50 {s['p50']:.2f}s  p95 {s['p95']:.2f}s  "
              f"max {s['max']:.2f}s")


def dump(directory: Path, outcomes: list[Outcome]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for o in outcomes:
        truth = o.case.truth()
        truth["engine"] = {"hypotheses": o.top, "verdict": o.verdict, "error": o.error,
                           "seconds": round(o.seconds, 3)} if (o.top or o.error or o.verdict) \
            else None
        (directory / f"{o.case.name}.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"ground truth of {len(outcomes)} cases written to {directory}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (TSDB, Prometheus log)")
    parser.add_argument("--dump-cases", type=Path, metavar="DIR",
                        help="write each case's ground truth (and the engine's answer) as JSON")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="investigations in flight at once (time per investigation is "
                             "measured under this load)")
    args = parser.parse_args()

    engine_error: str | None = None
    try:
        from skills.investigation import InvestigationRequest, investigate  # noqa: F401
    except Exception as exc:
        engine_error = f"{type(exc).__name__}: {exc}"

    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    began = time.perf_counter()
    cases = make_cases(args.cases, args.seed, anchor)
    print(f"generated {len(cases)} cases in {time.perf_counter() - began:.1f}s: "
          + ", ".join(f"{k} {sum(c.kind == k for c in cases)}" for k in KINDS))
    if engine_error is not None:
        print(f"\nThe evidence engine cannot be imported (skills.investigation: {engine_error}).\n"
              "Nothing to evaluate yet; the cases were generated.", file=sys.stderr)
        if args.dump_cases:
            dump(args.dump_cases, [Outcome(c) for c in cases])
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="rca-eval-"))
    try:
        began = time.perf_counter()
        text = openmetrics(merge_families(cases))
        samples = text.count("\n")
        print(f"OpenMetrics: {samples:,} lines, {len(text) / 1e6:.0f} MB "
              f"in {time.perf_counter() - began:.1f}s")
        began = time.perf_counter()
        with prometheus(tmp, text) as url:
            del text
            print(f"backfilled and started Prometheus at {url} in "
                  f"{time.perf_counter() - began:.1f}s")
            began = time.perf_counter()
            outcomes = asyncio.run(run_all(url, cases, args.concurrency))
            print(f"{len(outcomes)} investigations in {time.perf_counter() - began:.1f}s")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    figures = score(outcomes)
    report(outcomes, figures)
    if args.dump_cases:
        dump(args.dump_cases, outcomes)
    figures["seed"], figures["anchor"] = args.seed, anchor.isoformat()
    print(json.dumps(figures, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
