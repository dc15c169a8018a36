"""`sre-copilot runbooks ingest|search` as a user runs them: real processes, the real model, a
local chromadb under the data directory or a real Chroma server at CHROMA_URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chroma_server import running_chroma
from tests.runbook_fixtures import RUNBOOKS, write_runbooks

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "bot.cli"]
ROOT = Path(__file__).resolve().parents[2]

QUERIES = [
    "High HTTP error rate. 12% of requests to checkout fail with a 5xx status code.",
    "",
    "TLS certificate expiring soon. The certificate of api.example.com served by the ingress "
    "expires in 6 days.",
    "   ",
    "The office coffee machine is out of beans again.",
    "[FIRING:1] KafkaConsumerLag orders (critical)",
]


def _run(args: list[str], data_dir: Path, stdin: str | None = None,
         **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SRE_COPILOT_", "CHROMA_URL", "DATABASE_URL"))}
    clean |= {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
              "SRE_COPILOT_DATA_DIR": str(data_dir)}
    return subprocess.run([*CLI, "runbooks", *args], cwd=data_dir.parent, env={**clean, **env},
                          input=stdin, capture_output=True, text=True, timeout=300, check=False)


def _search_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _check_answers(all_lines: list[dict[str, Any]]) -> None:
    """One JSON line per input line, in order (line N answers line N, a blank one with an
    abstention and its reason), with the documented keys and nothing else."""
    assert [line["query"] for line in all_lines] == [q.strip() for q in QUERIES]
    blanks = [line for q, line in zip(QUERIES, all_lines, strict=True) if not q.strip()]
    assert blanks == [{"query": "", "abstained": True, "results": [], "reason": "empty query"}] * 2
    lines = [line for q, line in zip(QUERIES, all_lines, strict=True) if q.strip()]
    for line in lines:
        assert set(line) == ({"query", "results", "abstained", "reason"} if line["abstained"]
                             else {"query", "results", "abstained"})
        results = line["results"]
        assert isinstance(results, list) and 1 <= len(results) <= 3
        for hit in results:
            assert set(hit) == {"path", "section", "score"}
            assert hit["path"] in RUNBOOKS  # relative to the ingested directory
            assert isinstance(hit["score"], float) and 0.0 <= hit["score"] <= 1.0
    errors, tls, coffee, kafka = lines
    assert errors["abstained"] is False and errors["results"][0]["path"] == "HighErrorRate.md"
    assert tls["abstained"] is False
    assert tls["results"][0]["path"] == "ingress/CertificateExpiry.md"
    assert coffee["abstained"] is True and coffee["reason"] == "no runbook is close enough"
    assert kafka["abstained"] is False
    assert kafka["results"][0] == {"path": "kafka/KafkaConsumerLag.md", "section": "Mitigation",
                                   "score": 1.0}


def test_ingest_then_search_queries_piped_on_stdin(tmp_path: Path) -> None:
    runbooks = write_runbooks(tmp_path / "runbooks")
    data = tmp_path / "state"
    ingest = _run(["ingest", str(runbooks)], data)
    assert ingest.returncode == 0, ingest.stderr
    assert ingest.stdout.strip() == (
        f"{runbooks.resolve()}: 5 added, 0 updated, 0 removed, 0 unchanged")
    assert "Traceback" not in ingest.stderr
    assert list((data / "chroma").iterdir())  # the local index lives in the data dir

    lines = _search_lines(_run(["search", "--json"], data, stdin="\n".join(QUERIES) + "\n"))
    _check_answers(lines)


def test_ingest_of_something_that_is_not_a_directory_exits_2(tmp_path: Path) -> None:
    file = tmp_path / "runbook.md"
    file.write_text("# DiskFull\n", encoding="utf-8")
    for target in (file, tmp_path / "missing"):
        result = _run(["ingest", str(target)], tmp_path / "state")
        assert result.returncode == 2
        assert result.stderr.strip() == (
            f"sre-copilot runbooks ingest: {target} is not a directory")
        assert result.stdout == ""


def test_search_with_no_query_exits_2(tmp_path: Path) -> None:
    result = _run(["search", "--json"], tmp_path / "state", stdin="")
    assert result.returncode == 2
    assert "no query" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    empty = _run(["search", "--json", "  "], tmp_path / "state")
    assert empty.returncode == 2 and empty.stdout == ""
    assert "the query is empty" in empty.stderr


def test_blank_lines_piped_in_each_get_their_answer(tmp_path: Path) -> None:
    """Blank lines alone still answer line for line: nothing is dropped, nothing is an error."""
    result = _run(["search", "--json"], tmp_path / "state", stdin="\n  \n")
    lines = _search_lines(result)
    assert lines == [{"query": "", "abstained": True, "results": [],
                      "reason": "empty query"}] * 2


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    with running_chroma(tmp_path / "chroma-server") as url:
        yield url


def test_a_chroma_server_holds_the_index_for_every_replica(tmp_path: Path,
                                                           chroma_url: str) -> None:
    runbooks = write_runbooks(tmp_path / "runbooks")
    first, second = tmp_path / "replica-1", tmp_path / "replica-2"
    ingest = _run(["ingest", str(runbooks)], first, CHROMA_URL=chroma_url)
    assert ingest.returncode == 0, ingest.stderr
    assert "5 added" in ingest.stdout
    # Another replica, with its own (empty) data dir, searches the server's index.
    lines = _search_lines(_run(["search", "--json"], second, CHROMA_URL=chroma_url,
                               stdin="\n".join(QUERIES) + "\n"))
    _check_answers(lines)
    for data in (first, second):
        assert not (data / "chroma").exists()  # nothing went to a local chromadb
    assert list((tmp_path / "chroma-server" / "data").iterdir())
