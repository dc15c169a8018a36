"""Fits the runbook abstention rule on the dev splits (dev to dev4) only, by cross-validation.

For every dev-split case of tests/bench/runbook_cases.py (alert texts and questions
together: one rule for both) it ranks the runbooks as `skills.runbooks.search` does and records
what the rule reads (`features`): the best score of the first three, how far the best cosine
stands out from the runbooks at large, whether the query is brief, and those two again for brief
queries. A logistic regression (scikit-learn) learns P(a right runbook is among the first three)
from them; 5-fold cross-validation, stratified by kind and outcome with an alert's texts (or a
question) kept in one fold, picks inside each fold the bar on P that maximises the mean of four
rates: right answers where a runbook exists and abstentions where none does, for alert texts and
for questions. It prints the cross-validated figures per kind beside the old single-score rule,
and the constants to paste into skills/runbooks/search.py. The test split is never read.

    .venv/bin/python tests/bench/runbook_calibrate.py
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from knowledge.embedding import Embedder
from knowledge.runbooks.index import RunbookIndex
from knowledge.vectors import open_chroma
from skills.runbooks.search import RunbookQuery, features, rank
from tests.bench.runbook_cases import RUNBOOKS, Case, all_cases


def rows(index: RunbookIndex, cases: list[Case]) -> tuple[np.ndarray, np.ndarray]:
    x, y = [], []
    for case in cases:
        ranking = rank(index, RunbookQuery(text=case.query))
        top3 = [c.entry.path for c in ranking.candidates[:3]]
        x.append(features(ranking))
        y.append(int(case.expected is not None and any(case.right(p) for p in top3)))
    return np.asarray(x, dtype=float), np.asarray(y)


def figures(cases: list[Case], answer: np.ndarray, y: np.ndarray, kind: str) -> str:
    pick = [i for i, c in enumerate(cases) if c.kind == kind]
    has = [i for i in pick if cases[i].expected]
    none = [i for i in pick if not cases[i].expected]
    recall = sum(bool(answer[i] and y[i]) for i in has) / max(1, len(has))
    abst = sum(not answer[i] for i in none) / max(1, len(none))
    return f"{kind:9} recall@3 (answered) {recall:.2f}  abstained when none {abst:.2f}"


def main() -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cases = [c for c in all_cases() if c.split != "test"]
    work = Path(tempfile.mkdtemp(prefix="runbook-calibrate-"))
    try:
        index = RunbookIndex(open_chroma(work / "data"), Embedder(), work / "data" / "vectors")
        index.ingest(RUNBOOKS)
        x, y = rows(index, cases)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    kinds = np.asarray([c.kind for c in cases])
    has = np.asarray([c.expected is not None for c in cases])

    def fit(train: np.ndarray) -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(x[train], y[train])

    def objective(answer: np.ndarray, pick: np.ndarray) -> float:
        """The mean, over alert texts and questions, of right answers where a runbook exists
        and abstentions where none does."""
        rates = []
        for kind in ("alert", "question"):
            ok, none = pick & (kinds == kind) & has, pick & (kinds == kind) & ~has
            rates += [float(np.mean(answer[ok] & (y[ok] == 1))), float(np.mean(~answer[none]))]
        return float(np.mean(rates))

    strata = np.asarray([f"{c.kind}{c.split}{yy}" for c, yy in zip(cases, y, strict=True)])
    thresholds = np.arange(0.2, 0.81, 0.05)
    answer = np.zeros(len(y), dtype=bool)
    everything = np.ones(len(y), dtype=bool)
    # An alert rule's renderings share a group (they differ only in label values); every
    # written case is its own.
    groups = np.asarray([c.source if c.kind == "alert" and not c.source.startswith(
        ("independent", "shared")) else c.query for c in cases])
    for train, test in StratifiedGroupKFold(5, shuffle=True, random_state=0).split(
            x, strata, groups):
        model = fit(train)
        inside = np.zeros(len(y), dtype=bool)
        inside[train] = True
        p_train = model.predict_proba(x)[:, 1]
        t = max(thresholds, key=lambda t: objective(p_train >= t, inside))
        answer[test] = (p_train >= t)[test]
    print("logistic, 5-fold cross-validated, an alert's texts kept in one fold (threshold picked "
          "inside each fold):")
    for kind in ("alert", "question"):
        print("  " + figures(cases, answer, y, kind))
        for split in ("dev", "dev2", "dev3", "dev4"):
            pick = [c.split == split for c in cases]
            print("    " + split + " " + figures([c for c, p in zip(cases, pick, strict=True)
                                                  if p], answer[pick], y[pick], kind))
    model = fit(everything)
    prob = model.predict_proba(x)[:, 1]
    t = float(max(thresholds, key=lambda t: objective(prob >= t, everything)))
    scaler, logistic = model.named_steps["standardscaler"], model.named_steps["logisticregression"]
    weights = logistic.coef_[0] / scaler.scale_
    intercept = logistic.intercept_[0] - float(np.sum(weights * scaler.mean_))
    print(f"ABSTAIN_WEIGHTS = ({', '.join(f'{w:.3f}' for w in weights)})")
    print(f"ABSTAIN_INTERCEPT = {intercept:.3f}")
    print(f"ABSTAIN_LOGIT = {math.log(t / (1 - t)):.3f}  # P >= {t:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
