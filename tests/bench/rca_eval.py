"""Accuracy and calibration of the evidence engine on incidents with a known root cause, beside
the naive baseline, per generator and per fault kind.

Cases come from every generator (`tests/bench/rca_cases.py`: the project's own and one written
independently, by someone who never read the engine), each case at its own time within the last
~10 days under its own name prefix. All are backfilled into ONE real Prometheus (promtool), then
each is investigated where and when its alert fired, exactly as `sre-copilot investigate
--service S --at T` does (`skills.investigation.investigate`), with the changes its pipeline
reported fed in as the changes webhook would. The naive baseline (`tests/bench/rca_baseline.py`,
deepest anomalous service by robust z-score) ranks the same series.

Scores: top-1 / top-3 of the root-cause service for the engine and the baseline side by side,
the engine's kind accuracy when its top-1 is right, the share of no-cause cases answered with a
top confidence < 0.5, and the Brier score of the top-1 confidence (outcome: top-1 right; all
cases) beside the constant-confidence reference. The last line is JSON.

    .venv/bin/python -m tests.bench.rca_eval [--split dev|test] [--cases 40]
        [--generators project,independent] [--concurrency 4] [--dump-cases DIR] [--keep]

`--split test` runs the frozen seeds never used for tuning (see rca_cases.SEEDS). The
Kubernetes/node alert cases (`--alerts N`, tests/bench/alert_eval.py) are scored on whether the
failing resource is named, beside the alert's own labels; `--real` adds the five real faults
(tests/bench/rca_real.py).
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
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench import rca_baseline
from tests.bench.rca_cases import GENERATORS, EvalCase, cases, merge
from tests.fakes.prometheus_server import openmetrics, running_prometheus

BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0000001)
WINDOW = timedelta(hours=2)


@dataclass
class Outcome:
    case: EvalCase
    seconds: float = 0.0
    error: str | None = None
    top: list[dict[str, Any]] = field(default_factory=list)  # service, kind, confidence
    baseline: list[str] = field(default_factory=list)
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
    def base1(self) -> bool:
        return bool(self.baseline) and self.baseline[0] == self.case.root_service

    @property
    def base3(self) -> bool:
        return self.case.root_service in self.baseline[:3]

    @property
    def kind_ok(self) -> bool:
        return self.top1 and self.top[0]["kind"] in self.case.acceptable_kinds

    @property
    def quiet(self) -> bool:  # for "none": no confident answer
        return self.confidence < 0.5


def change_records(case: EvalCase) -> list[Any]:
    from skills.context import ChangeRecord

    return [ChangeRecord(service=c["service"], kind=c.get("kind", "deploy"),
                         occurred_at=datetime.fromisoformat(
                             str(c["occurred_at"]).replace("Z", "+00:00")),
                         source="webhook", version=c.get("version"),
                         previous_version=c.get("previous_version"),
                         description=c.get("description", ""))
            for c in case.changes]


async def run_all(url: str, all_cases: list[EvalCase], concurrency: int) -> list[Outcome]:
    from skills.context import assemble
    from skills.investigation import InvestigationRequest, investigate
    from skills.prometheus.client import PrometheusClient

    gate = asyncio.Semaphore(concurrency)
    async with PrometheusClient(url, timeout=60) as prom:

        async def one(case: EvalCase) -> Outcome:
            out = Outcome(case)
            async with gate:
                began = time.perf_counter()
                try:
                    inv = await investigate(prom, InvestigationRequest(
                        service=case.alert_service, at=case.alert_at, window=WINDOW),
                        changes=change_records(case))
                    out.top = [{"service": h.cause.service, "kind": h.cause.kind,
                                "confidence": round(h.confidence, 4), "statement": h.statement}
                               for h in inv.hypotheses]
                    out.verdict = inv.verdict
                except Exception as exc:  # a failed investigation counts as no answer
                    out.error = f"{type(exc).__name__}: {exc}"
                out.seconds = time.perf_counter() - began
                snap = await assemble(prom, service=case.alert_service, at=case.alert_at,
                                      window=WINDOW)
                out.baseline = [s for s, _ in rca_baseline.rank(snap)]
            return out

        return list(await asyncio.gather(*(one(c) for c in all_cases)))


def share(xs: list[bool]) -> float | None:
    return round(sum(xs) / len(xs), 3) if xs else None


def pct(x: float | None) -> str:
    return "   -" if x is None else f"{100 * x:4.0f}%"


def score(outcomes: list[Outcome]) -> dict[str, Any]:
    known = [o for o in outcomes if o.case.root_service is not None]
    none = [o for o in outcomes if o.case.root_service is None]
    brier = [(o.confidence - float(o.top1)) ** 2 for o in outcomes]
    hit = float(np.mean([float(o.top1) for o in outcomes])) if outcomes else 0.0
    reliability = []
    for lo, hi in pairwise(BINS):
        inside = [o for o in outcomes if lo <= o.confidence < hi]
        reliability.append({
            "bin": f"{lo:.1f}-{min(hi, 1.0):.1f}", "n": len(inside),
            "mean_confidence": round(float(np.mean([o.confidence for o in inside])), 3)
            if inside else None, "accuracy": share([o.top1 for o in inside])})
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in sorted({o.case.kind for o in outcomes}):
        these = [o for o in outcomes if o.case.kind == kind]
        fault = these[0].case.root_service is not None
        per_kind[kind] = {
            "n": len(these),
            "top1": share([o.top1 for o in these]) if fault else None,
            "top3": share([o.top3 for o in these]) if fault else None,
            "base1": share([o.base1 for o in these]) if fault else None,
            "base3": share([o.base3 for o in these]) if fault else None,
            "kind_given_top1": share([o.kind_ok for o in these if o.top1]),
            "quiet": None if fault else share([o.quiet for o in these]),
            "mean_top_confidence": round(float(np.mean([o.confidence for o in these])), 3)}
    seconds = np.array([o.seconds for o in outcomes])
    return {
        "cases": len(outcomes), "known_cause": len(known), "no_cause": len(none),
        "top1": share([o.top1 for o in known]), "top3": share([o.top3 for o in known]),
        "baseline_top1": share([o.base1 for o in known]),
        "baseline_top3": share([o.base3 for o in known]),
        "kind_given_top1": share([o.kind_ok for o in known if o.top1]),
        "none_quiet": share([o.quiet for o in none]),
        "brier": round(float(np.mean(brier)), 4) if brier else None,
        "brier_constant": round(hit * (1 - hit), 4),
        "failed": sum(o.error is not None for o in outcomes),
        "seconds": {"p50": round(float(np.percentile(seconds, 50)), 3),
                    "p95": round(float(np.percentile(seconds, 95)), 3),
                    "max": round(float(seconds.max()), 3)} if len(seconds) else {},
        "reliability": reliability, "per_kind": per_kind}


def report(generator: str, outcomes: list[Outcome], f: dict[str, Any], verbose: bool) -> None:
    print(f"\n=== generator {generator}: {f['cases']} cases ({f['known_cause']} with a known "
          f"cause, {f['no_cause']} without), {f['failed']} investigations failed")
    if verbose:
        print("per case (✓ top-1 right, · in top 3, ✗ missed; none: ✓ = confidence < 0.5)")
        for o in outcomes:
            c = o.case
            if c.root_service is None:
                mark = "✓" if o.quiet else "✗"
            else:
                mark = "✓" if o.top1 else ("·" if o.top3 else "✗")
            top = o.top[0] if o.top else None
            said = (f"{top['service']} {top['kind']} {top['confidence']:.2f}" if top
                    else (o.error or "no hypothesis")[:80])
            base = "✓" if o.base1 else ("·" if o.base3 else "✗")
            print(f"  {mark} {c.name:34s} alert {c.alert_service:24s} root "
                  f"{c.root_service or '-':24s} -> {said}  | baseline {base} "
                  f"{(o.baseline or ['-'])[0]}")
    print(f"  root cause         engine top-1 {pct(f['top1'])}  top-3 {pct(f['top3'])}"
          f"    baseline top-1 {pct(f['baseline_top1'])}  top-3 {pct(f['baseline_top3'])}")
    print(f"  kind right when top-1 right {pct(f['kind_given_top1'])}   no-cause quiet "
          f"{pct(f['none_quiet'])}   Brier {f['brier']} (constant {f['brier_constant']})")
    print("  per kind                   n   top-1  top-3 | base-1 base-3 | kind  quiet  conf")
    for kind, k in f["per_kind"].items():
        print(f"    {kind:24s} {k['n']:3d}  {pct(k['top1'])}  {pct(k['top3'])} | "
              f"{pct(k['base1'])}  {pct(k['base3'])} | {pct(k['kind_given_top1'])} "
              f"{pct(k['quiet'])}  {k['mean_top_confidence']:.2f}")
    print("  reliability    n   mean conf   observed")
    for row in f["reliability"]:
        mc = "     -" if row["mean_confidence"] is None else f"{row['mean_confidence']:6.2f}"
        print(f"    {row['bin']:9s} {row['n']:4d}    {mc}      {pct(row['accuracy'])}")
    s = f["seconds"]
    if s:
        print(f"  time per investigation  p50 {s['p50']:.2f}s  p95 {s['p95']:.2f}s  "
              f"max {s['max']:.2f}s")


def dump(directory: Path, outcomes: list[Outcome]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for o in outcomes:
        c = o.case
        (directory / f"{c.generator}-{c.name}.json").write_text(json.dumps({
            "generator": c.generator, "name": c.name, "kind": c.kind,
            "root_service": c.root_service, "alert_service": c.alert_service,
            "alert_at": c.alert_at.isoformat(), "notes": c.notes, "changes": c.changes,
            "engine": {"hypotheses": o.top, "verdict": o.verdict, "error": o.error},
            "baseline": o.baseline[:5]}, indent=2) + "\n")
    print(f"{len(outcomes)} cases written to {directory}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("dev", "dev2", "dev3", "dev4", "test"), default="dev")
    parser.add_argument("--cases", type=int, default=40, help="cases per generator")
    parser.add_argument("--generators", default=",".join(GENERATORS))
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--quiet", action="store_true", help="no per-case lines")
    parser.add_argument("--keep", action="store_true", help="keep the TSDB and logs")
    parser.add_argument("--dump-cases", type=Path, metavar="DIR")
    parser.add_argument("--alerts", type=int, default=27, metavar="N",
                        help="Kubernetes/node alert cases (tests/bench/cases_alerts.py); 0: none")
    parser.add_argument("--real", action="store_true",
                        help="also the five real faults on this machine (about 5 minutes)")
    args = parser.parse_args()

    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    began = time.perf_counter()
    generators = [g.strip() for g in args.generators.split(",") if g.strip()]
    by_generator = {g: cases(g, args.split, args.cases, anchor) for g in generators}
    every = [c for cs in by_generator.values() for c in cs]
    print(f"split {args.split}: generated {len(every)} cases in "
          f"{time.perf_counter() - began:.1f}s")
    tmp = Path(tempfile.mkdtemp(prefix="rca-eval-"))
    try:
        text = openmetrics(merge(every))
        print(f"OpenMetrics: {text.count(chr(10)):,} lines, {len(text) / 1e6:.0f} MB")
        began = time.perf_counter()
        with running_prometheus(tmp, text, max_block_duration="240h",
                                ready_timeout=120) as url:
            del text
            print(f"backfilled and started Prometheus in {time.perf_counter() - began:.1f}s")
            began = time.perf_counter()
            outcomes = asyncio.run(run_all(url, every, args.concurrency))
            print(f"{len(outcomes)} investigations in {time.perf_counter() - began:.1f}s")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    figures: dict[str, Any] = {"split": args.split, "anchor": anchor.isoformat()}
    for g in generators:
        mine = [o for o in outcomes if o.case.generator == g]
        figures[g] = score(mine)
        report(g, mine, figures[g], verbose=not args.quiet)
    beats = all((figures[g]["top1"] or 0) > (figures[g]["baseline_top1"] or 0)
                and (figures[g]["top3"] or 0) >= (figures[g]["baseline_top3"] or 0)
                for g in generators)
    if args.alerts:
        from tests.bench import alert_eval

        print("\n=== generator alerts (Kubernetes and node alerts; the failing resource)")
        split = "test" if args.split == "test" else "dev"
        figures["alerts"] = alert_eval.evaluate(split, args.alerts, quiet=args.quiet)
        beats = beats and figures["alerts"]["top1"] > figures["alerts"]["baseline"]
    if args.real:
        from tests.bench import rca_real

        print("\n=== real faults on this machine (real exporters, Prometheus, Alertmanager, "
              "serve)")
        figures["real"] = [o.__dict__ for o in rca_real.evaluate()]
    print(f"\nengine beats the baseline on every generator (top-1 higher, top-3 no lower): "
          f"{'yes' if beats else 'NO'}")
    if args.dump_cases:
        dump(args.dump_cases, outcomes)
    print(json.dumps(figures, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
