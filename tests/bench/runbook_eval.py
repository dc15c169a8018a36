"""Runbook recommendation quality and speed on real runbooks.

Ingests `--runbooks` (default ../shared/data/runbooks: 117 kube-prometheus runbooks) into a fresh
chromadb under a temporary data directory with the real all-MiniLM-L6-v2 model, then asks each
query of `--queries` (default ../shared/data/eval/runbook-queries.dev.jsonl: an alert's summary and
description → the expected runbook, or null where none exists) through `skills.runbooks.search`.

Scores, on queries with a runbook: recall@1, recall@3 (from the results, whether or not the
search abstained), MRR; on abstention: precision and recall (the positive class is "no runbook
exists"), the share of no-runbook queries abstained on; latency p50/p95 per query (warm model).
Then it adds variants of every runbook until there are --scale (default 1000) and measures latency
again. The last line is JSON.

    .venv/bin/python tests/bench/runbook_eval.py [--runbooks DIR] [--queries FILE]
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from knowledge.embedding import Embedder
from knowledge.runbooks.documents import discover
from knowledge.runbooks.index import RunbookIndex
from knowledge.vectors import open_chroma
from skills.runbooks.search import RunbookQuery, search

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def evaluate(index: RunbookIndex, rows: list[dict[str, Any]], show_misses: bool
             ) -> dict[str, Any]:
    search(index, RunbookQuery(text="warm the model up before timing"))
    ranks: list[int | None] = []
    abstained: list[bool] = []
    latencies: list[float] = []
    for row in rows:
        t0 = time.perf_counter()
        answer = search(index, RunbookQuery(text=row["query"]))
        latencies.append((time.perf_counter() - t0) * 1000)
        paths = [h.path for h in answer.results]
        expected = row["expected_runbook"]
        rank = paths.index(expected) + 1 if expected in paths else None
        ranks.append(rank)
        abstained.append(answer.abstained)
        wrong = (expected is None) != answer.abstained or (expected is not None and rank != 1)
        if show_misses and wrong:
            top = answer.results[0] if answer.results else None
            print(f"  expected {expected} got {top.path if top else '-'} "
                  f"({top.score if top else 0:.3f}) abstained={answer.abstained} rank={rank}"
                  f"\n    {row['query'][:110]}")
    has = [r for r, row in zip(ranks, rows, strict=True) if row["expected_runbook"]]
    none = [row["expected_runbook"] is None for row in rows]
    true_abst = sum(a and n for a, n in zip(abstained, none, strict=True))
    return {
        "queries": len(rows), "with_runbook": len(has), "without": sum(none),
        "recall@1": sum(r == 1 for r in has) / len(has),
        "recall@3": sum(r is not None and r <= 3 for r in has) / len(has),
        "mrr": sum(1 / r for r in has if r) / len(has),
        "kept_when_runbook": sum(not a for a, n in zip(abstained, none, strict=True) if not n)
        / len(has),
        "abstention_precision": true_abst / max(1, sum(abstained)),
        "abstention_recall": true_abst / max(1, sum(none)),
        "latency_ms_p50": statistics.median(latencies),
        "latency_ms_p95": percentile(latencies, 95),
    }


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
    ap.add_argument("--runbooks", type=Path, default=SHARED / "runbooks")
    ap.add_argument("--queries", type=Path, default=SHARED / "eval" / "runbook-queries.dev.jsonl")
    ap.add_argument("--scale", type=int, default=1000)
    ap.add_argument("--show-misses", action="store_true")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.queries.read_text().splitlines() if line.strip()]
    t0 = time.perf_counter()
    embedder = Embedder()
    embedder.encode(["load"])
    load_s = time.perf_counter() - t0
    work = Path(tempfile.mkdtemp(prefix="runbook-eval-"))
    try:
        index = RunbookIndex(open_chroma(work / "data"), embedder, work / "data" / "vectors")
        t0 = time.perf_counter()
        report = index.ingest(args.runbooks)
        ingest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = index.ingest(args.runbooks)
        reingest_s = time.perf_counter() - t0
        print(f"model load {load_s:.1f}s; ingested {report.total} runbooks in {ingest_s:.1f}s; "
              f"re-ingest (nothing changed: {again.unchanged} unchanged) {reingest_s:.2f}s")
        result = evaluate(index, rows, args.show_misses)
        for key, value in result.items():
            print(f"  {key:22} {value:.3f}" if isinstance(value, float) else f"  {key:22} {value}")
        scaled: dict[str, Any] = {}
        if args.scale:
            big = work / "scaled"
            n = make_variants(args.runbooks, big, args.scale)
            big_index = RunbookIndex(open_chroma(work / "data-scaled"), embedder,
                                     work / "data-scaled" / "vectors")
            t0 = time.perf_counter()
            big_index.ingest(big)
            scaled_ingest = time.perf_counter() - t0
            scaled = evaluate(big_index, rows, False)
            print(f"with {n} runbooks (ingest {scaled_ingest:.1f}s): latency p50 "
                  f"{scaled['latency_ms_p50']:.1f} ms, p95 {scaled['latency_ms_p95']:.1f} ms")
            scaled = {"runbooks": n, "ingest_s": round(scaled_ingest, 1),
                      "latency_ms_p50": scaled["latency_ms_p50"],
                      "latency_ms_p95": scaled["latency_ms_p95"]}
        print(json.dumps({"dev": result, "scaled": scaled, "ingest_s": round(ingest_s, 2),
                          "model_load_s": round(load_s, 2)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
