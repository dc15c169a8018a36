"""Runbook search on alert texts and on-call questions, beside a plain-cosine baseline.

Ingests `--runbooks` (default ../shared/data/runbooks: the kube-prometheus runbooks) into a fresh
chromadb with the real all-MiniLM-L6-v2 model, then answers every case of tests/bench/
runbook_cases.py — alert texts and questions, in the dev splits (dev to dev4: fitted on) and the
frozen test split (never tuned on) — through `skills.runbooks.search`, exactly as `runbooks
search` does.

Per set it prints, for the engine and for the baseline (all-MiniLM-L6-v2 cosine between the query
and each runbook's best section, no threshold, never abstains): recall@1 and recall@3 on the
cases that have a runbook (an abstention counts as a miss, as a user sees it); how often it
answered when a runbook exists; abstention recall (the share of no-runbook cases it abstained on)
and precision (the share of its abstentions that were right). Then latency p50/p95 per query,
and, with --scale N, latency with N runbooks. The last line is JSON.

    .venv/bin/python tests/bench/runbook_eval.py [--split dev|dev2|dev3|dev4|test|all]
                                                 [--scale 1000] [--show-misses]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from knowledge.embedding import Embedder
from knowledge.runbooks.documents import discover
from knowledge.runbooks.index import RunbookIndex
from knowledge.vectors import open_chroma
from skills.runbooks.search import RunbookQuery, search
from tests.bench.runbook_cases import RUNBOOKS, Case, all_cases

# What a method answers for a query: runbook paths best first, and whether it abstained.
Method = Callable[[str], tuple[list[str], bool]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def engine(index: RunbookIndex) -> Method:
    def answer(text: str) -> tuple[list[str], bool]:
        got = search(index, RunbookQuery(text=text))
        return [h.path for h in got.results], got.abstained
    return answer


def plain_cosine(index: RunbookIndex) -> Method:
    """The baseline: rank runbooks by their best section's cosine to the query; never abstain."""
    def answer(text: str) -> tuple[list[str], bool]:
        vector = index.embedder.encode([text])[0]
        paths: list[str] = []
        for hit in index.nearest(vector, 60):
            if hit.key[1] not in paths:
                paths.append(hit.key[1])
        return paths[:3], False
    return answer


def score(method: Method, cases: list[Case], show_misses: bool = False) -> dict[str, Any]:
    ranks: list[int | None] = []
    ranked: list[int | None] = []  # the same, whether or not it abstained
    abstained: list[bool] = []
    latencies: list[float] = []
    for case in cases:
        t0 = time.perf_counter()
        paths, abst = method(case.query)
        latencies.append((time.perf_counter() - t0) * 1000)
        # As a user sees it: an abstention answers nothing, whatever it ranked.
        rank = None if abst else next((i for i, p in enumerate(paths[:3], 1)
                                       if case.right(p)), None)
        ranks.append(rank)
        ranked.append(next((i for i, p in enumerate(paths[:3], 1) if case.right(p)), None))
        abstained.append(abst)
        wrong = (case.expected is None) != abst or (case.expected is not None and rank != 1)
        if show_misses and wrong:
            print(f"    [{case.split}] expected {case.expected} got {paths[:2]} "
                  f"abstained={abst} rank={rank}\n      {case.query[:110]}")
    has = [r for r, c in zip(ranks, cases, strict=True) if c.expected]
    none = [c.expected is None for c in cases]
    right_abst = sum(a and n for a, n in zip(abstained, none, strict=True))
    return {
        "cases": len(cases), "with_runbook": len(has), "without": sum(none),
        "recall@1": sum(r == 1 for r in has) / max(1, len(has)),
        "recall@3": sum(r is not None for r in has) / max(1, len(has)),
        "ranked_recall@3": sum(r is not None for r, c in zip(ranked, cases, strict=True)
                               if c.expected) / max(1, len(has)),
        "answered_when_runbook": sum(not a for a, n in zip(abstained, none, strict=True)
                                     if not n) / max(1, len(has)),
        "abstention_recall": right_abst / max(1, sum(none)),
        "abstention_precision": right_abst / max(1, sum(abstained)),
        "latency_ms_p50": statistics.median(latencies),
        "latency_ms_p95": percentile(latencies, 95),
    }


COLUMNS = ("recall@1", "recall@3", "ranked_recall@3", "answered_when_runbook", "abstention_recall",
           "abstention_precision")


def report(cases: list[Case], methods: dict[str, Method], show_misses: bool
           ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    print(f"{'set':16} {'method':13} {'n':>4} {'r@1':>5} {'r@3':>5} {'rk@3':>5} {'kept':>5} "
          f"{'abst-R':>6} {'abst-P':>6}")
    for kind in ("alert", "question"):
        for split in ("dev", "dev2", "dev3", "dev4", "test"):
            subset = [c for c in cases if c.kind == kind and c.split == split]
            if not subset:
                continue
            for name, method in methods.items():
                result = score(method, subset, show_misses and name == "engine")
                out[f"{kind}/{split}/{name}"] = result
                print(f"{kind + '/' + split:16} {name:13} {len(subset):4} "
                      + " ".join(f"{result[c]:5.2f} " if c.startswith("abst") else
                                 f"{result[c]:5.2f}" for c in COLUMNS))
    return out


def make_variants(source: Path, target: Path, scale: int) -> int:
    """Copies of every runbook, each owned by another team, until there are `scale` runbooks."""
    files = discover(source)
    count, i = 0, 0
    while count < scale:
        for f in files:
            if count >= scale:
                break
            rel = f.relative_to(source)
            text = f.read_text(encoding="utf-8")
            if i:
                rel = rel.with_name(f"{rel.stem}-team{i}{rel.suffix}")
                text = re.sub(r"^# (.+)$", rf"# \1 (team {i})", text, count=1, flags=re.M)
                text += f"\n\n## Ownership\n\nOwned by team {i}; page #team-{i}-oncall.\n"
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            (target / rel).write_text(text, encoding="utf-8")
            count += 1
        i += 1
    return count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runbooks", type=Path, default=RUNBOOKS)
    ap.add_argument("--split", default="all",
                    choices=("dev", "dev2", "dev3", "dev4", "test", "all"))
    ap.add_argument("--scale", type=int, default=0)
    ap.add_argument("--show-misses", action="store_true")
    args = ap.parse_args()
    cases = [c for c in all_cases() if args.split in ("all", c.split)]
    t0 = time.perf_counter()
    embedder = Embedder()
    embedder.encode(["load"])
    load_s = time.perf_counter() - t0
    work = Path(tempfile.mkdtemp(prefix="runbook-eval-"))
    try:
        index = RunbookIndex(open_chroma(work / "data"), embedder, work / "data" / "vectors")
        t0 = time.perf_counter()
        ingested = index.ingest(args.runbooks)
        ingest_s = time.perf_counter() - t0
        print(f"model load {load_s:.1f}s; ingested {ingested.total} runbooks in {ingest_s:.1f}s")
        search(index, RunbookQuery(text="warm the model up before timing"))
        results = report(cases, {"engine": engine(index), "plain-cosine": plain_cosine(index)},
                         args.show_misses)
        lat = [r["latency_ms_p50"] for k, r in results.items() if k.endswith("/engine")]
        p95 = [r["latency_ms_p95"] for k, r in results.items() if k.endswith("/engine")]
        print(f"engine latency per query: p50 {max(lat):.1f} ms, p95 {max(p95):.1f} ms "
              f"(worst set)")
        scaled: dict[str, Any] = {}
        if args.scale:
            big = work / "scaled"
            n = make_variants(args.runbooks, big, args.scale)
            big_index = RunbookIndex(open_chroma(work / "data-scaled"), embedder,
                                     work / "data-scaled" / "vectors")
            t0 = time.perf_counter()
            big_index.ingest(big)
            scaled_ingest = time.perf_counter() - t0
            timed = score(engine(big_index), cases[:60])
            print(f"with {n} runbooks (ingest {scaled_ingest:.1f}s): latency p50 "
                  f"{timed['latency_ms_p50']:.1f} ms, p95 {timed['latency_ms_p95']:.1f} ms")
            scaled = {"runbooks": n, "ingest_s": round(scaled_ingest, 1),
                      "latency_ms_p50": timed["latency_ms_p50"],
                      "latency_ms_p95": timed["latency_ms_p95"]}
        print(json.dumps({"sets": results, "scaled": scaled, "ingest_s": round(ingest_s, 2),
                          "model_load_s": round(load_s, 2)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
