"""The runbook-search evaluation sets: alert texts and on-call questions in five splits.

- dev: the shared dev queries (../shared/data/eval/runbook-queries.dev.jsonl) and the
  kube-prometheus rules they cover, rendered again with other label values; the dev part of the
  questions (tests/bench/runbook_questions.jsonl).
- dev2: the other kube-prometheus rules (../shared/data/alert-rules) rendered the same way, and
  the rest of the questions. It was the first frozen test split; scored twice, then fitted on.
- dev3: tests/bench/runbook_holdout.jsonl — alert texts as other teams word their own rules and
  questions about runbooks the other sets barely touch, by a writer who never saw the runbooks,
  the rules, the other cases or the method. It was the second test split; scored once (it showed
  the abstention rule failing on other wordings), then fitted on.
- dev4: tests/bench/runbook_holdout2.jsonl — written the same way, blind, in three alert styles
  (upstream-like, terse house style, verbose) and as questions, both with cases that have no
  runbook. It was the third test split; scored once (it confirmed the failure on other
  wordings), then fitted on.
- test: tests/bench/runbook_test.jsonl — a fourth blind set written like dev4. Frozen; scored
  once, after the method (label values left out of the match) was chosen.

dev to dev4 are what the rule is fitted on (tests/bench/runbook_calibrate.py).

Rendering: every rule's summary and description through Go templates (cases_alerts.py) with
label values drawn from a seeded pool. Expected runbook: the one named after the alert under
../shared/data/runbooks, or None where there is none (the search should abstain). The blind
writers worked from one-line situations the project wrote, each mapped to its runbook. Questions
are short, vague and typo'd as on-call engineers type them; a question that fits two runbooks
lists the other under `also`.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tests.bench.cases_alerts import RULES_DIR, load_rules, render_template

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
RUNBOOKS = SHARED / "runbooks"
DEV_QUERIES = SHARED / "eval" / "runbook-queries.dev.jsonl"
QUESTIONS = Path(__file__).with_name("runbook_questions.jsonl")
HOLDOUT = Path(__file__).with_name("runbook_holdout.jsonl")
HOLDOUT2 = Path(__file__).with_name("runbook_holdout2.jsonl")
TEST = Path(__file__).with_name("runbook_test.jsonl")
SEED = 20261205

# Label values unlike the shared dev set's (which uses payments/checkout-7d9f8b6c5-x2x9q etc.).
POOL: dict[str, tuple[str, ...]] = {
    "namespace": ("ledger", "search", "data-platform", "identity", "billing", "ml-serving"),
    "pod": ("ledger-api-6c8d9f7b4-qk2lz", "indexer-0", "auth-5f6b7c8d9-tt7wm",
            "invoice-worker-84c5b9d7f-9xj2p", "model-server-1"),
    "container": ("api", "indexer", "worker", "sidecar", "server"),
    "node": ("ip-10-4-17-22.ec2.internal", "gke-prod-pool-b-91ac", "worker-17", "node-c3"),
    "instance": ("10.4.17.22:9100", "db-3.prod:9100", "worker-17:9100", "172.16.4.8:10250"),
    "job": ("node-exporter", "kubelet", "apiserver", "ledger-api", "etcd"),
    "device": ("nvme1n1", "sdb1", "md0", "eth1", "ens5"),
    "mountpoint": ("/var/lib/postgresql", "/data", "/var/log", "/"),
    "fstype": ("ext4", "xfs"),
    "persistentvolumeclaim": ("data-postgres-0", "kafka-logs-2", "es-data-1"),
    "persistentvolume": ("pvc-8f2c1e4a-5d6b", "pvc-1a2b3c4d-9e8f"),
    "deployment": ("ledger-api", "auth", "invoice-worker"),
    "statefulset": ("postgres", "kafka", "elasticsearch"),
    "daemonset": ("fluent-bit", "node-local-dns", "calico-node"),
    "job_name": ("nightly-backup-29211840", "reindex-28842", "db-migrate-v42"),
    "horizontalpodautoscaler": ("ledger-api", "indexer"),
    "cluster": ("prod-eu-1", "staging-us"),
    "resource": ("requests.cpu", "limits.memory", "pods"),
    "service": ("ledger-api", "alertmanager-main", "prometheus-k8s"),
    "integration": ("pagerduty", "opsgenie", "email"),
    "controller": ("statefulset", "deployment"),
    "reason": ("ImagePullBackOff", "CrashLoopBackOff"),
    "phase": ("Pending", "Unknown"),
    "condition": ("MemoryPressure", "DiskPressure"),
    "name": ("v1beta1.metrics.k8s.io", "v1.custom.metrics.k8s.io"),
}


@dataclass(frozen=True)
class Case:
    query: str
    expected: str | None  # a path under ../shared/data/runbooks, or None: should abstain
    kind: str  # "alert" | "question"
    split: str  # "dev" | "test"
    source: str  # alert name, or the question's author
    also: tuple[str, ...] = ()  # other runbooks as right (a question that fits two)

    def right(self, path: str) -> bool:
        return path == self.expected or path in self.also


@lru_cache(maxsize=1)
def runbook_paths() -> dict[str, str]:
    """Alert name → runbook path (relative to RUNBOOKS)."""
    return {p.stem: str(p.relative_to(RUNBOOKS)) for p in sorted(RUNBOOKS.glob("*/*.md"))
            if not p.name.startswith("_")}


def _static(text: str) -> str:
    """A template's fixed leading words: what a rendered text must start with."""
    return re.split(r"\{\{", text, maxsplit=1)[0].strip()


def alert_cases(rng_seed: int = SEED) -> list[Case]:
    """Every alert rule's summary and description rendered with fresh labels, plus the shared dev
    queries (dev). A rule the shared dev queries cover is dev; every other rule is test."""
    shared = [json.loads(line) for line in DEV_QUERIES.read_text().splitlines() if line.strip()]
    rng = random.Random(rng_seed)
    paths = runbook_paths()
    rules = sorted(load_rules(str(RULES_DIR)).items())

    def alert_of(query: str) -> str:
        """The rule a shared dev query was rendered from: the longest fixed summary prefix."""
        heads = [(len(h), alert) for (alert, _), r in rules
                 if (h := _static(r.annotations.get("summary", ""))) and query.startswith(h)]
        return max(heads)[1] if heads else "shared-dev"

    cases = [Case(query=row["query"], expected=row["expected_runbook"], kind="alert",
                  split="dev", source=alert_of(row["query"])) for row in shared]
    seen: set[str] = set()
    for (alert, _severity), rule in rules:
        summary = rule.annotations.get("summary", "")
        description = rule.annotations.get("description") or rule.annotations.get("message", "")
        head = _static(summary) or _static(description)
        in_dev = any(row["query"].startswith(head) for row in shared) if head else False
        labels = {name: rng.choice(values) for name, values in POOL.items()}
        labels.update(rule.labels)
        labels["alertname"] = alert
        value = rng.choice((0.07, 0.93, 3.0, 17.0, 250.0, 0.8312))
        try:
            text = " ".join(render_template(t, labels, value).strip()
                            for t in (summary, description) if t)
        except (ValueError, TypeError):
            continue  # a template this renderer does not speak: leave the rule out
        text = re.sub(r"\s+", " ", text.replace("..", ".")).strip()
        if not text or text in seen:
            continue
        seen.add(text)
        cases.append(Case(query=text, expected=paths.get(alert), kind="alert",
                          split="dev" if in_dev else "dev2", source=alert))
    return cases


def question_cases() -> list[Case]:
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    return [Case(query=r["question"], expected=r["expected_runbook"], kind="question",
                 split=r["split"], source=r["author"], also=tuple(r.get("also") or ()))
            for r in rows]


def written_cases(path: Path, split: str) -> list[Case]:
    """Cases a blind writer wrote (`runbook_holdout*.jsonl`, `runbook_test.jsonl`)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [Case(query=r["query"], expected=r["expected_runbook"], kind=r["kind"], split=split,
                 source=r["author"]) for r in rows]


def all_cases() -> list[Case]:
    return (alert_cases() + question_cases() + written_cases(HOLDOUT, "dev3")
            + written_cases(HOLDOUT2, "dev4") + written_cases(TEST, "test"))


if __name__ == "__main__":
    from collections import Counter
    cases = all_cases()
    print(Counter((c.kind, c.split, c.expected is not None) for c in cases))
