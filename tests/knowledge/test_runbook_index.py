"""The runbook index on a real chromadb with the real model: ingesting is idempotent, follows
edits and deletions, keeps each directory's runbooks, and survives a restart."""

from __future__ import annotations

from pathlib import Path

from knowledge.embedding import Embedder
from knowledge.runbooks.index import RunbookIndex
from skills.runbooks.search import RunbookQuery, search
from tests.runbook_fixtures import (
    CERTIFICATE_EXPIRY,
    DISK_FULL,
    HIGH_ERROR_RATE,
    KAFKA_CONSUMER_LAG,
    RUNBOOKS,
    runbook_index,
    write_runbooks,
)

INODES = """
### Inodes exhausted

The filesystem has run out of inodes: `df -i` shows 100% IUse% although free space is left.
Millions of tiny session files under /var/lib/php/sessions are the usual cause; delete them.
"""


def _paths(index: RunbookIndex, text: str, **query: str) -> list[str]:
    return [h.path for h in search(index, RunbookQuery(text=text, **query)).results]


def test_ingest_adds_every_runbook_and_a_second_ingest_changes_nothing(
        tmp_path: Path, embedder: Embedder) -> None:
    runbooks = write_runbooks(tmp_path / "runbooks")
    (runbooks / "README.md").write_text("# Our runbooks\n", encoding="utf-8")
    (runbooks / "broken.md").write_text("---\nalerts: [Oops\n---\n# Oops\n", encoding="utf-8")
    with runbook_index(tmp_path / "data", embedder) as index:
        report = index.ingest(runbooks)
        assert sorted(report.added) == sorted(RUNBOOKS)
        assert (report.updated, report.removed, report.unchanged) == ([], [], 0)
        assert report.root == str(runbooks.resolve())
        assert len(report.errors) == 1 and report.errors[0].startswith("broken.md: ")
        chunks = index.collection.count()
        # One chunk for each title and one for each section: 5 titles, 19 sections.
        assert chunks == 24
        version = index.version()

        again = index.ingest(runbooks)
        assert (again.added, again.updated, again.removed, again.unchanged) == ([], [], [], 5)
        assert index.collection.count() == chunks
        assert index.version() == version  # nothing changed: searches keep their corpus
        assert sorted(e.path for e in index.corpus().entries.values()) == sorted(RUNBOOKS)


def test_an_edited_runbook_is_updated_and_searched_by_its_new_content(
        tmp_path: Path, embedder: Embedder) -> None:
    runbooks = write_runbooks(tmp_path / "runbooks", {
        "node/DiskFull.md": DISK_FULL, "kafka/KafkaConsumerLag.md": KAFKA_CONSUMER_LAG})
    question = "Millions of tiny session files fill up the inodes"
    with runbook_index(tmp_path / "data", embedder) as index:
        index.ingest(runbooks)
        before = search(index, RunbookQuery(text=question)).results
        assert all(h.section != "Inodes exhausted" for h in before)
        chunks = index.collection.count()

        edited = DISK_FULL.replace("## Mitigation", INODES.strip() + "\n\n## Remediation")
        (runbooks / "node/DiskFull.md").write_text(edited, encoding="utf-8")
        report = index.ingest(runbooks)
        assert (report.added, report.updated, report.removed, report.unchanged) == (
            [], ["node/DiskFull.md"], [], 1)
        # The old chunks are replaced, not kept beside the new: one section more.
        assert index.collection.count() == chunks + 1
        top = search(index, RunbookQuery(text=question)).results[0]
        assert (top.path, top.section) == ("node/DiskFull.md", "Inodes exhausted")
        # An alert naming the runbook is sent to what to do: now called "Remediation".
        pinned = search(index, RunbookQuery(text="disk alert", alertname="DiskFull")).results[0]
        assert (pinned.path, pinned.section, pinned.reason) == (
            "node/DiskFull.md", "Remediation", "alert name")
        entry = next(e for e in index.corpus().entries.values() if e.path == "node/DiskFull.md")
        assert entry.sections == ["Meaning", "Impact", "Diagnosis", "Inodes exhausted",
                                  "Remediation"]


def test_a_deleted_runbook_is_removed_and_never_found_again(
        tmp_path: Path, embedder: Embedder) -> None:
    runbooks = write_runbooks(tmp_path / "runbooks", {
        "HighErrorRate.md": HIGH_ERROR_RATE, "ingress/CertificateExpiry.md": CERTIFICATE_EXPIRY,
        "node/DiskFull.md": DISK_FULL})
    question = "The TLS certificate for api.example.com expires in 6 days."
    with runbook_index(tmp_path / "data", embedder) as index:
        index.ingest(runbooks)
        assert _paths(index, question)[0] == "ingress/CertificateExpiry.md"
        gone = "ingress/CertificateExpiry.md"

        (runbooks / gone).unlink()
        report = index.ingest(runbooks)
        assert (report.added, report.updated, report.removed, report.unchanged) == (
            [], [], [gone], 2)
        for _ in range(2):  # and a later ingest does not bring it back
            assert gone not in _paths(index, question)
            assert gone not in _paths(index, "CertificateExpiry firing for api.example.com")
            assert gone not in _paths(index, question, alertname="CertificateExpiry")
            assert all(h.key[1] != gone for h in index.nearest(embedder.encode([question])[0]))
            again = index.ingest(runbooks)
            assert (again.removed, again.unchanged) == ([], 2)
        # Its alert name no longer pins anything; the remaining runbooks still answer.
        answer = search(index, RunbookQuery(text="checkout 5xx", alertname="CertificateExpiry"))
        assert all(h.reason != "alert name" for h in answer.results)
        assert _paths(index, "DiskFull on db-3")[0] == "node/DiskFull.md"


def test_ingesting_a_second_directory_keeps_the_first(tmp_path: Path, embedder: Embedder) -> None:
    team_a = write_runbooks(tmp_path / "team-a", {
        "HighErrorRate.md": HIGH_ERROR_RATE, "node/DiskFull.md": DISK_FULL})
    team_b = write_runbooks(tmp_path / "team-b", {
        "kafka/KafkaConsumerLag.md": KAFKA_CONSUMER_LAG})
    with runbook_index(tmp_path / "data", embedder) as index:
        index.ingest(team_a)
        report = index.ingest(team_b)
        assert (report.added, report.removed) == (["kafka/KafkaConsumerLag.md"], [])
        roots = {(e.root, e.path) for e in index.corpus().entries.values()}
        assert roots == {(str(team_a.resolve()), "HighErrorRate.md"),
                         (str(team_a.resolve()), "node/DiskFull.md"),
                         (str(team_b.resolve()), "kafka/KafkaConsumerLag.md")}
        # Re-ingesting the first, even emptied of a runbook, leaves the second alone.
        (team_a / "node/DiskFull.md").unlink()
        assert index.ingest(team_a).removed == ["node/DiskFull.md"]
        top = search(index, RunbookQuery(
            text="Consumer group orders keeps rebalancing and its lag grows")).results[0]
        assert (top.path, top.root) == ("kafka/KafkaConsumerLag.md", str(team_b.resolve()))
        assert _paths(index, "HighErrorRate firing for checkout")[0] == "HighErrorRate.md"


def test_a_new_process_sees_what_was_ingested(tmp_path: Path, embedder: Embedder) -> None:
    runbooks = write_runbooks(tmp_path / "runbooks", {
        "HighErrorRate.md": HIGH_ERROR_RATE, "kafka/KafkaConsumerLag.md": KAFKA_CONSUMER_LAG})
    data = tmp_path / "data"
    with runbook_index(data, embedder) as index:
        index.ingest(runbooks)
        chunks = index.collection.count()
    # A new chromadb client on the same directory: the first one is closed, nothing is shared.
    with runbook_index(data, embedder) as index:
        assert index.collection.count() == chunks
        assert {e.path for e in index.corpus().entries.values()} == {
            "HighErrorRate.md", "kafka/KafkaConsumerLag.md"}
        answer = search(index, RunbookQuery(
            text="The checkout service is failing 12% of HTTP requests with 5xx errors since "
                 "the last deploy."))
        assert not answer.abstained
        assert answer.results[0].path == "HighErrorRate.md"
        again = index.ingest(runbooks)
        assert (again.added, again.updated, again.unchanged) == ([], [], 2)
    assert list((data / "chroma").iterdir())


BOMB = """---
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
---
# Bomb
"""


def test_ingest_reads_only_regular_files_inside_the_folder_and_survives_bad_ones(
        tmp_path: Path, embedder: Embedder) -> None:
    """A symlink out of the folder (to a file or a folder) is not followed; an alias bomb in
    front matter and an oversized file are reported, and every valid runbook is indexed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Secret.md").write_text("# Secret\n\n## Meaning\n\nroot:x:0:0 hunter2\n",
                                       encoding="utf-8")
    runbooks = write_runbooks(tmp_path / "runbooks")
    (runbooks / "passwd.md").symlink_to(outside / "Secret.md")
    (runbooks / "elsewhere").symlink_to(outside, target_is_directory=True)
    (runbooks / "Bomb.md").write_text(BOMB, encoding="utf-8")
    (runbooks / "Huge.md").write_text("# Huge\n\n" + "word " * 300_000, encoding="utf-8")
    with runbook_index(tmp_path / "data", embedder) as index:
        report = index.ingest(runbooks)
        assert sorted(report.added) == sorted(RUNBOOKS)
        errors = dict(e.split(": ", 1) for e in report.errors)
        assert set(errors) == {"Bomb.md", "Huge.md"}
        assert "aliases" in errors["Bomb.md"] and "bytes" in errors["Huge.md"]
        answer = search(index, RunbookQuery(text="root:x:0:0 hunter2"))
        assert all("passwd" not in h.path and "Secret" not in h.path for h in answer.results)
