"""Runbook search as a responder sees it: the right runbook and section for an alert, the alert's
own runbook_url and name winning outright, and an honest "no runbook found"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.embedding import Embedder
from knowledge.runbooks.documents import parse
from knowledge.runbooks.index import RunbookIndex
from skills.runbooks.search import RunbookQuery, search, search_async
from tests.runbook_fixtures import RUNBOOKS, runbook_index, write_runbooks


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
          ) -> Iterator[RunbookIndex]:
    """The five test runbooks, ingested once for the module (searches do not change it)."""
    work = tmp_path_factory.mktemp("runbook-search")
    with runbook_index(work / "data", embedder) as idx:
        report = idx.ingest(write_runbooks(work / "runbooks"))
        assert len(report.added) == len(RUNBOOKS)
        yield idx


def _headings(path: str) -> list[str]:
    return [s.heading for s in parse(RUNBOOKS[path], path).sections]


@pytest.mark.parametrize(("alert", "expected"), [
    pytest.param("High HTTP error rate. 12% of requests to checkout fail with a 5xx status code.",
                 "HighErrorRate.md", id="errors"),
    pytest.param("Filesystem almost full. /var on host db-3 is 95% full and will run out of "
                 "space in 3 hours.", "node/DiskFull.md", id="disk"),
    pytest.param("TLS certificate expiring soon. The certificate of api.example.com served by "
                 "the ingress expires in 6 days.", "ingress/CertificateExpiry.md", id="tls"),
    pytest.param("Kafka consumer group lag is growing. Consumer group orders has 120000 "
                 "messages of lag on topic orders-v2.", "kafka/KafkaConsumerLag.md", id="kafka"),
    pytest.param("PostgreSQL replica is lagging. Replica pg-2 is 45 seconds behind its primary.",
                 "postgres-replication-lag.md", id="postgres"),
])
def test_an_alert_text_finds_its_runbook_and_section(
        index: RunbookIndex, alert: str, expected: str) -> None:
    answer = search(index, RunbookQuery(text=alert))
    assert not answer.abstained, answer.message
    top = answer.results[0]
    assert (top.path, top.reason) == (expected, "similarity")
    assert top.section in _headings(expected)
    assert 0.65 <= top.score <= 1.0
    # The other results are other runbooks, each once, well below the answer.
    assert len(answer.results) == 3
    assert len({h.path for h in answer.results}) == 3
    assert all(h.score < top.score for h in answer.results[1:])
    assert answer.message.startswith("Runbook: ") and f"{expected} § {top.section}" in (
        answer.message)


def test_the_matching_section_is_the_one_about_the_question(index: RunbookIndex) -> None:
    answer = search(index, RunbookQuery(text="kafka consumers keep rebalancing"))
    assert not answer.abstained
    top = answer.results[0]
    assert (top.path, top.section) == ("kafka/KafkaConsumerLag.md", "Rebalancing storms")


@pytest.mark.parametrize("url", [
    "https://runbooks.example.com/node/DiskFull",
    "https://github.com/acme/runbooks/blob/main/node/DiskFull.md",
    "https://wiki.example.com/ops/runbooks/diskfull/",
])
def test_an_ingested_runbook_the_alert_links_to_wins(index: RunbookIndex, url: str) -> None:
    # The text is about Kafka; the alert's own runbook_url says otherwise, and wins.
    answer = search(index, RunbookQuery(
        text="Kafka consumer group lag is growing on topic orders-v2.", runbook_url=url))
    assert not answer.abstained
    top = answer.results[0]
    assert (top.path, top.score, top.reason) == ("node/DiskFull.md", 1.0, "runbook_url")
    assert top.section == "Mitigation"  # where to go when the alert names the runbook
    assert top.root is not None and Path(top.root, top.path).is_file()
    assert answer.results[1].path == "kafka/KafkaConsumerLag.md"


def test_a_runbook_url_that_is_not_ingested_is_returned_as_is(index: RunbookIndex) -> None:
    url = "https://wiki.example.com/display/OPS/RedisMemoryHigh"
    answer = search(index, RunbookQuery(text="Redis memory usage is above 90%.",
                                        runbook_url=url))
    assert not answer.abstained
    top = answer.results[0]
    assert (top.path, top.section, top.score, top.reason, top.root) == (
        url, "", 1.0, "runbook_url", None)
    assert url in answer.message


def test_an_alert_name_a_runbook_covers_wins(index: RunbookIndex) -> None:
    # Covered through front matter (not the title), with a text that says little.
    answer = search(index, RunbookQuery(text="checkout is unhappy",
                                        alertname="CheckoutHighErrorRate"))
    assert not answer.abstained
    top = answer.results[0]
    assert (top.path, top.score, top.reason) == ("HighErrorRate.md", 1.0, "alert name")
    assert top.section == "Mitigation"
    # Named in the text itself, as Alertmanager's notification does.
    top = search(index, RunbookQuery(
        text="[FIRING:1] KafkaConsumerLag orders (critical)")).results[0]
    assert (top.path, top.score, top.reason) == ("kafka/KafkaConsumerLag.md", 1.0, "alert name")


def test_an_alert_name_no_runbook_covers_pins_nothing(index: RunbookIndex) -> None:
    answer = search(index, RunbookQuery(
        text="High HTTP error rate. 12% of requests to checkout fail with a 5xx status code.",
        alertname="PaymentsLatencyHigh"))
    assert [h.reason for h in answer.results] == ["similarity"] * 3
    assert answer.results[0].path == "HighErrorRate.md"
    assert answer.results[0].score < 1.0


@pytest.mark.parametrize("text", [
    pytest.param("The office coffee machine is out of beans again.", id="coffee"),
    pytest.param("How do I export the payroll report to the accounting system?", id="payroll"),
])
def test_an_unrelated_question_finds_no_runbook(index: RunbookIndex, text: str) -> None:
    answer = search(index, RunbookQuery(text=text))
    assert answer.abstained
    assert answer.message.startswith("No runbook found for this")
    # The closest are still shown, for a human to judge, all scoring low.
    assert all(h.score < 0.65 for h in answer.results)
    assert answer.as_json_line()["abstained"] is True


def test_k_limits_the_results(index: RunbookIndex) -> None:
    text = "PostgreSQL replica is lagging. Replica pg-2 is 45 seconds behind its primary."
    assert [h.path for h in search(index, RunbookQuery(text=text), k=1).results] == [
        "postgres-replication-lag.md"]
    assert len(search(index, RunbookQuery(text=text), k=5).results) == 5


def test_the_json_line_is_query_abstained_and_results(index: RunbookIndex) -> None:
    text = "TLS certificate expiring soon for api.example.com."
    line = search(index, RunbookQuery(text=text)).as_json_line()
    assert set(line) == {"query", "abstained", "results"}
    assert line["query"] == text
    results = line["results"]
    assert isinstance(results, list) and results
    assert all(set(r) == {"path", "section", "score"} for r in results)


async def test_search_async_answers_like_search(index: RunbookIndex) -> None:
    query = RunbookQuery(text="Kafka consumer group lag is growing on topic orders-v2.")
    assert await search_async(index, query) == search(index, query)


def test_an_empty_index_says_to_ingest(tmp_path: Path, embedder: Embedder) -> None:
    with runbook_index(tmp_path / "data", embedder) as empty:
        answer = search(empty, RunbookQuery(
            text="High HTTP error rate.", alertname="HighErrorRate",
            runbook_url="https://runbooks.example.com/HighErrorRate"))
    assert answer.abstained
    assert answer.results == []
    assert "sre-copilot runbooks ingest PATH" in answer.message
