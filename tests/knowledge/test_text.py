"""Label values are left out of what runbook search reads: an alert that puts its host, path and
percentage in the summary is matched on its words, as one that does not."""

from __future__ import annotations

import pytest

from knowledge.text import without_values


@pytest.mark.parametrize(("text", "expected"), [
    ("[prod][p2] db-7 /data 93% full. Disk usage on db-7:9100 at /data is 93%.",
     "full. Disk usage on at is."),
    ("Pod payments/checkout-7d9f8b6c5-x2x9q (checkout) is crash looping.",
     "Pod (checkout) is crash looping."),
    ("Filesystem on nvme1n1 at 10.4.17.22:9100 has 3% left.", "Filesystem on at has left."),
])
def test_hosts_pods_paths_and_numbers_with_units_go(text: str, expected: str) -> None:
    assert without_values(text) == expected


def test_words_people_search_by_stay() -> None:
    assert without_values("k8s api 5xx, p99 up on etcd") == "k8s api 5xx, p99 up on etcd"
    assert without_values("node_filesystem_avail_bytes is low") == (
        "node_filesystem_avail_bytes is low")


def test_a_text_of_values_only_is_kept_whole() -> None:
    assert without_values("10.0.0.1:9100 db-7") == "10.0.0.1:9100 db-7"
