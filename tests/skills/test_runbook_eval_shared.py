"""Runbook search on the real kube-prometheus runbooks and the development queries in ../shared
(an alert's summary and description → the runbook, or none): the quality floor the tuning was
held to. Skipped where ../shared is absent (a user's clone)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.embedding import Embedder
from knowledge.runbooks.index import RunbookIndex
from skills.runbooks.search import RunbookAnswer, RunbookQuery, search
from tests.runbook_fixtures import runbook_index

pytestmark = pytest.mark.slow

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
RUNBOOKS = SHARED / "runbooks"
QUERIES = SHARED / "eval" / "runbook-queries.dev.jsonl"

QUESTIONS = Path(__file__).resolve().parents[1] / "bench" / "runbook_questions.jsonl"

Row = dict[str, str | None]


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
                 ) -> Iterator[RunbookIndex]:
    """One ingest of the shared runbooks for the module."""
    if not RUNBOOKS.is_dir() or not QUERIES.is_file():
        pytest.skip(f"{SHARED} is not here (it is beside the project only on its developers' "
                    f"machines and in CI)")
    with runbook_index(tmp_path_factory.mktemp("shared-runbooks"), embedder) as index:
        report = index.ingest(RUNBOOKS)
        assert report.errors == []
        assert len(report.added) == 108
        yield index


@pytest.fixture(scope="module")
def answered(shared_index: RunbookIndex) -> list[tuple[Row, RunbookAnswer]]:
    """Every development query with its answer."""
    rows: list[Row] = [json.loads(line) for line in QUERIES.read_text().splitlines()
                       if line.strip()]
    return [(row, search(shared_index, RunbookQuery(text=str(row["query"])))) for row in rows]


def test_questions_as_people_type_them_get_their_runbook_or_an_abstention(
        shared_index: RunbookIndex) -> None:
    """The project's on-call questions (dev and dev2, both authors): a question with a runbook
    gets it among the first three, answered rather than abstained on; one with none gets an
    abstention that still names the closest runbooks. The floors sit under the bench's figures
    (tests/bench/runbook_eval.py: 0.76 answered, 0.91 abstained) so a regression, not noise,
    fails; they are below what issue 19 asks (0.85), which this rule does not reach yet."""
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    assert len(rows) >= 60
    found, abstained, closest = 0, 0, 0
    with_runbook = [r for r in rows if r["expected_runbook"]]
    for row in rows:
        answer = search(shared_index, RunbookQuery(text=row["question"]))
        right = {row["expected_runbook"], *row["also"]}
        if row["expected_runbook"]:
            found += not answer.abstained and any(h.path in right for h in answer.results)
        else:
            abstained += answer.abstained
            closest += answer.abstained and answer.results[0].path in answer.message
    without = len(rows) - len(with_runbook)
    assert found / len(with_runbook) >= 0.70, found
    assert abstained / without >= 0.80, abstained
    assert closest == abstained  # an abstention still says which runbooks came closest


def test_the_expected_runbook_is_in_the_top_three(
        answered: list[tuple[Row, RunbookAnswer]]) -> None:
    with_runbook = [(row, answer) for row, answer in answered if row["expected_runbook"]]
    assert len(with_runbook) >= 40
    misses = [(row["expected_runbook"], [h.path for h in answer.results])
              for row, answer in with_runbook
              if row["expected_runbook"] not in [h.path for h in answer.results[:3]]]
    recall_at_3 = 1 - len(misses) / len(with_runbook)
    assert recall_at_3 >= 0.95, misses


def test_it_abstains_when_no_runbook_exists(answered: list[tuple[Row, RunbookAnswer]]) -> None:
    without = [(row, answer) for row, answer in answered if row["expected_runbook"] is None]
    assert len(without) >= 5
    answered_wrongly = [(row["query"], answer.message) for row, answer in without
                        if not answer.abstained]
    abstained = 1 - len(answered_wrongly) / len(without)
    assert abstained >= 0.80, answered_wrongly
