"""Alertmanager webhook payloads (version 4) as Alertmanager's documentation shows them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert(name: str, *, service: str = "checkout", severity: str = "critical",
          starts: datetime | None = None, ends: datetime | None = None,
          summary: str | None = None, **labels: str) -> dict[str, Any]:
    starts = starts or datetime.now(UTC) - timedelta(minutes=5)
    all_labels = {"alertname": name, "service": service, "severity": severity, **labels}
    fingerprint = hashlib.sha1(repr(sorted(all_labels.items())).encode()).hexdigest()[:16]
    return {
        "status": "resolved" if ends else "firing",
        "labels": all_labels,
        "annotations": {"summary": summary or f"{name} on {service}",
                        "description": f"{name} has been active for 5 minutes."},
        "startsAt": iso(starts),
        "endsAt": iso(ends) if ends else "0001-01-01T00:00:00Z",
        "generatorURL": f"http://prometheus:9090/graph?g0.expr={name}",
        "fingerprint": fingerprint,
    }


def notification(alerts: list[dict[str, Any]], *, group_key: str | None = None,
                 receiver: str = "sre-copilot") -> dict[str, Any]:
    service = alerts[0]["labels"].get("service", "")
    return {
        "version": "4",
        "groupKey": group_key or f'{{}}:{{service="{service}"}}',
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": {"service": service},
        "commonLabels": {"service": service},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }


def resolved(a: dict[str, Any], ends: datetime) -> dict[str, Any]:
    return {**a, "status": "resolved", "endsAt": iso(ends)}
