"""Runbook Markdown as the index reads it: title, alerts and services, sections, which files
count as runbooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.runbooks.documents import RunbookParseError, discover, is_runbook_file, parse
from tests.runbook_fixtures import (
    CERTIFICATE_EXPIRY,
    DISK_FULL,
    HIGH_ERROR_RATE,
    KAFKA_CONSUMER_LAG,
    POSTGRES_REPLICATION_LAG,
    write_runbooks,
)


def test_front_matter_names_the_alerts_and_services_and_the_h1_is_the_title() -> None:
    doc = parse(HIGH_ERROR_RATE, "HighErrorRate.md")
    assert doc.title == "HighErrorRate"  # the H1 wins over front matter's `title`
    assert doc.headline == "High Error Rate"
    # The H1 is itself an alert name, already listed: not repeated.
    assert doc.alerts == ["HighErrorRate", "CheckoutHighErrorRate"]
    assert doc.services == ["checkout", "payments"]


def test_front_matter_title_is_used_when_there_is_no_h1() -> None:
    text = "---\ntitle: Redis memory high\nservices: cache, sessions\n---\n\n## Meaning\n\nFull.\n"
    doc = parse(text, "redis/memory.md")
    assert doc.title == "Redis memory high"
    assert doc.services == ["cache", "sessions"]  # a comma-separated string is a list too
    assert doc.alerts == []


def test_a_single_alert_in_front_matter_as_a_string() -> None:
    doc = parse(KAFKA_CONSUMER_LAG, "kafka/KafkaConsumerLag.md")
    assert doc.alerts == ["KafkaConsumerLag"]
    assert doc.services == ["orders"]
    doc = parse(CERTIFICATE_EXPIRY, "ingress/CertificateExpiry.md")
    assert doc.services == ["ingress"]


@pytest.mark.parametrize(("text", "path", "alerts"), [
    # A CamelCase H1 is the alert's name (kube-prometheus runbooks are written so).
    ("# KubePodCrashLooping\n\n## Meaning\n\nRestarts.\n", "pods.md", ["KubePodCrashLooping"]),
    # A prose H1, but the file is named after the alert.
    ("# Node disk pressure\n\n## Meaning\n\nFull.\n", "node/NodeDiskPressure.md",
     ["NodeDiskPressure"]),
    # Both, different: the title's first.
    ("# TargetDown\n\n## Meaning\n\nDown.\n", "general/ScrapeTargetDown.md",
     ["TargetDown", "ScrapeTargetDown"]),
    # Prose title, kebab-case file: no alert name at all.
    (POSTGRES_REPLICATION_LAG, "postgres-replication-lag.md", []),
])
def test_alert_names_are_recognised_from_the_title_and_the_file_name(
        text: str, path: str, alerts: list[str]) -> None:
    assert parse(text, path).alerts == alerts


def test_no_h1_and_no_front_matter_title_falls_back_to_the_file_name() -> None:
    doc = parse("## Meaning\n\nThe pod restarts.\n", "kubernetes/KubePodNotReady.md")
    assert doc.title == "KubePodNotReady"
    assert doc.headline == "Kube Pod Not Ready"
    assert doc.alerts == ["KubePodNotReady"]


def test_sections_are_cut_at_second_and_third_level_headings() -> None:
    doc = parse(KAFKA_CONSUMER_LAG, "kafka/KafkaConsumerLag.md")
    assert [s.heading for s in doc.sections] == [
        "Meaning", "Impact", "Diagnosis", "Rebalancing storms", "Mitigation"]
    by = {s.heading: s.text for s in doc.sections}
    assert by["Rebalancing storms"].startswith("Frequent consumer group rebalances")
    assert "max.poll.interval.ms" not in by["Diagnosis"]
    assert by["Mitigation"].startswith("Scale out the consumers")
    assert all("# KafkaConsumerLag" not in s.text for s in doc.sections)  # the H1 is the title


def test_hash_lines_inside_code_fences_are_not_headings() -> None:
    doc = parse(DISK_FULL, "node/DiskFull.md")
    assert [s.heading for s in doc.sections] == ["Meaning", "Impact", "Diagnosis", "Mitigation"]
    diagnosis = next(s.text for s in doc.sections if s.heading == "Diagnosis")
    assert "# Find what grew: this comment is not a heading" in diagnosis
    assert "du -xh /var | sort -h | tail -20" in diagnosis

    text = ("# SomeAlert\n\n## Diagnosis\n\n```bash\n## not a section either\n### nor this\n"
            "echo ok\n```\n\nAfter the fence.\n\n## Mitigation\n\nRestart.\n")
    doc = parse(text, "SomeAlert.md")
    assert [s.heading for s in doc.sections] == ["Diagnosis", "Mitigation"]
    assert "## not a section either" in doc.sections[0].text
    assert "After the fence." in doc.sections[0].text


def test_text_before_the_first_section_is_an_overview() -> None:
    doc = parse("# DiskFull\n\nThe disk is nearly full.\n\n## Mitigation\n\nDelete logs.\n",
                "DiskFull.md")
    assert [(s.heading, s.text) for s in doc.sections] == [
        ("Overview", "The disk is nearly full."), ("Mitigation", "Delete logs.")]


def test_each_chunk_carries_the_runbook_title_for_context() -> None:
    doc = parse(KAFKA_CONSUMER_LAG, "kafka/KafkaConsumerLag.md")
    chunks = list(doc.chunks())
    assert chunks[0] == ("", "Kafka Consumer Lag")
    assert [h for h, _ in chunks[1:]] == [s.heading for s in doc.sections]
    assert all(text.startswith("Kafka Consumer Lag. ") for _, text in chunks[1:])
    assert doc.summary.startswith("Kafka Consumer Lag. A Kafka consumer group is falling behind")


def test_the_digest_changes_with_the_text() -> None:
    a = parse(DISK_FULL, "node/DiskFull.md")
    assert parse(DISK_FULL, "node/DiskFull.md").digest == a.digest
    assert parse(DISK_FULL + "\nOne more line.\n", "node/DiskFull.md").digest != a.digest


def test_invalid_yaml_front_matter_is_a_parse_error() -> None:
    text = "---\nalerts: [HighErrorRate\nservices: checkout\n---\n\n# HighErrorRate\n"
    with pytest.raises(RunbookParseError, match=r"broken\.md: front matter is not valid YAML"):
        parse(text, "broken.md")


def test_only_markdown_runbooks_are_discovered(tmp_path: Path) -> None:
    write_runbooks(tmp_path)
    for name in ("README.md", "_index.md", "SOURCE.md", "node/_index.md", "kafka/readme.md",
                 "CHANGELOG.md", "notes.txt", ".github/PULL_REQUEST.md", "LICENSE"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("# Not a runbook\n", encoding="utf-8")
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "OldAlert.markdown").write_text("# OldAlert\n", encoding="utf-8")
    found = [p.relative_to(tmp_path).as_posix() for p in discover(tmp_path)]
    assert found == ["HighErrorRate.md", "ingress/CertificateExpiry.md",
                     "kafka/KafkaConsumerLag.md", "legacy/OldAlert.markdown",
                     "node/DiskFull.md", "postgres-replication-lag.md"]
    assert not is_runbook_file(Path("docs/_index.md"))
    assert is_runbook_file(Path("docs/IndexOutOfRange.md"))
