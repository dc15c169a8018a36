"""Runbooks written by tests: five short, realistic Markdown runbooks, a factory that puts them
(or others) into a directory, and a runbook index on a real chromadb under a data directory. The
embedding model is the session fixture `embedder` in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from knowledge.embedding import Embedder
from knowledge.runbooks.index import RunbookIndex
from knowledge.vectors import open_chroma

HIGH_ERROR_RATE = """\
---
title: High Error Rate
alerts: [HighErrorRate, CheckoutHighErrorRate]
services: [checkout, payments]
---

# HighErrorRate

## Meaning

More than 5% of HTTP requests to the service fail with a 5xx status code over the last
five minutes. Users see errors on checkout and payment pages.

## Impact

Customers cannot complete purchases; revenue is lost for every minute the error rate stays up.

## Diagnosis

Compare the error rate with recent deploys and feature flag changes. Look at the service's logs
for stack traces and at its dependencies' latency.

```promql
sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))
```

## Mitigation

Roll back the last deploy with `kubectl rollout undo deployment/checkout` if the errors started
right after it. Otherwise scale out the service or fail over to the other region.
"""

DISK_FULL = """\
# DiskFull

## Meaning

A filesystem on a host is more than 90% full and will run out of space within hours. Writes
will fail once the disk is full.

## Impact

Databases stop accepting writes, logs are lost and services crash when the disk fills up.

## Diagnosis

Find the biggest directories with `du -xh / | sort -h | tail` and check
node_filesystem_avail_bytes on the dashboard.

```shell
# Find what grew: this comment is not a heading
du -xh /var | sort -h | tail -20
```

## Mitigation

Delete old log files, rotate logs, prune unused container images with `crictl rmi --prune`,
or grow the volume.
"""

CERTIFICATE_EXPIRY = """\
---
title: TLS certificate expiry
services: ingress
---

# CertificateExpiry

## Meaning

A TLS certificate served by the ingress expires in less than 14 days. Browsers and clients
will refuse the connection once it has expired.

## Diagnosis

Check the certificate's expiry date with `openssl s_client -connect host:443` and look at
cert-manager's Certificate resources and their renewal events.

## Mitigation

Renew the certificate: trigger a cert-manager renewal with `cmctl renew`, or replace the
secret with a new certificate from the CA.
"""

KAFKA_CONSUMER_LAG = """\
---
alerts: KafkaConsumerLag
services: [orders]
---

# KafkaConsumerLag

## Meaning

A Kafka consumer group is falling behind: its lag (messages produced but not yet consumed)
keeps growing on one or more partitions of the topic.

## Impact

Orders are processed late; downstream systems see stale data.

## Diagnosis

Run `kafka-consumer-groups --describe --group orders` to see the lag per partition. A stuck
partition points to a poison message; lag on all partitions to too few consumers.

### Rebalancing storms

Frequent consumer group rebalances stop consumption. Look for consumers that exceed
max.poll.interval.ms.

## Mitigation

Scale out the consumers up to the number of partitions, or skip the poison message.
"""

POSTGRES_REPLICATION_LAG = """\
# Postgres replication lag

## Meaning

A PostgreSQL replica is behind its primary by more than 30 seconds of WAL replay. Reads from
the replica return stale rows.

## Diagnosis

Query pg_stat_replication on the primary and compare sent_lsn with replay_lsn. Check the
replica's disk I/O and network throughput.

## Mitigation

Stop heavy queries on the replica, or take it out of the read pool until it catches up.
"""

RUNBOOKS: dict[str, str] = {
    "HighErrorRate.md": HIGH_ERROR_RATE,
    "node/DiskFull.md": DISK_FULL,
    "ingress/CertificateExpiry.md": CERTIFICATE_EXPIRY,
    "kafka/KafkaConsumerLag.md": KAFKA_CONSUMER_LAG,
    "postgres-replication-lag.md": POSTGRES_REPLICATION_LAG,
}


def write_runbooks(directory: Path, runbooks: dict[str, str] | None = None) -> Path:
    """Write `runbooks` (default: the five above) under `directory`, return it."""
    for rel, text in (RUNBOOKS if runbooks is None else runbooks).items():
        file = directory / rel
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
    return directory


@contextmanager
def runbook_index(data_dir: Path, embedder: Embedder) -> Iterator[RunbookIndex]:
    """A runbook index as the app opens it: a chromadb `PersistentClient` under `data_dir`,
    closed on exit (so opening it again really reads what is on disk)."""
    client = open_chroma(data_dir)
    try:
        yield RunbookIndex(client, embedder, data_dir / "vectors")
    finally:
        client.close()
