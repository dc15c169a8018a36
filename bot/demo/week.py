"""The demo's bundled week, for its digest: the six days before the replayed incident — pages
from PagerDuty (one at night, one on the weekend) that were acknowledged and resolved, and a
disk alert that flaps — sent through the same webhooks with their past times, so the digest's
figures come from the sources' own timestamps like in production."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from bot.demo.scenario import EXTERNAL_URL, Delivery

# (days before now, hour, service, who, minutes to acknowledge, minutes to resolve)
PAGES = ((6, 3, "payments", "Ana Ortiz", 9, 52), (5, 14, "checkout", "Bo Chen", 3, 31),
         (3, 11, "search", "Bo Chen", 6, 95), (2, 23, "checkout", "Ana Ortiz", 14, 40))
FLAPS = ((4, 8, 0, 3), (4, 8, 11, 13), (4, 8, 29, 33), (1, 16, 2, 5))  # day, h, start, end min


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _page(n: int, kind: str, at: datetime, service: str, who: str) -> dict[str, Any]:
    incident_id = f"QWEEK{n:04d}"
    return {"event": {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"week:{n}:{kind}")), "event_type": kind,
        "resource_type": "incident", "occurred_at": _iso(at),
        "agent": {"id": "PUSER01", "type": "user_reference", "summary": who},
        "client": {"name": "PagerDuty"},
        "data": {"id": incident_id, "type": "incident", "status": kind.split(".")[-1],
                 "html_url": f"https://shop.pagerduty.com/incidents/{incident_id}",
                 "incident_key": incident_id, "title": f"{service}: error budget burning",
                 "service": {"id": "PSVC", "type": "service_reference", "summary": service},
                 "assignees": [{"id": "PUSER01", "type": "user_reference", "summary": who}],
                 "urgency": "high"}}}


def _disk(starts: datetime, ends: datetime | None) -> dict[str, Any]:
    labels = {"alertname": "NodeFilesystemAlmostFull", "service": "orders-db",
              "instance": "db-2:9100", "mountpoint": "/var/lib/postgresql", "severity": "warning"}
    alert = {"status": "resolved" if ends else "firing", "labels": labels,
             "annotations": {"summary": "Filesystem on db-2 has less than 10% space left"},
             "startsAt": _iso(starts),
             "endsAt": _iso(ends) if ends else "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus.shop.internal:9090/graph?g0.expr="
                             "node_filesystem_avail_bytes",
             "fingerprint": hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16]}
    return {"version": "4", "groupKey": '{}:{alertname="NodeFilesystemAlmostFull"}',
            "truncatedAlerts": 0, "status": alert["status"], "receiver": "sre-copilot",
            "groupLabels": {"alertname": "NodeFilesystemAlmostFull"},
            "commonLabels": labels, "commonAnnotations": {}, "externalURL": EXTERNAL_URL,
            "alerts": [alert]}


def week_deliveries(now: datetime) -> list[Delivery]:
    day = now.replace(minute=0, second=0, microsecond=0)
    out: list[Delivery] = []
    for n, (ago, hour, service, who, ack, fix) in enumerate(PAGES):
        start = (day - timedelta(days=ago)).replace(hour=hour)
        for kind, at in (("incident.triggered", start),
                         ("incident.acknowledged", start + timedelta(minutes=ack)),
                         ("incident.resolved", start + timedelta(minutes=fix))):
            out.append(Delivery(at, "pagerduty", f"{kind.split('.')[-1]}: {service}",
                                _page(n, kind, at, service, who)))
    for ago, hour, start_min, end_min in FLAPS:
        base = (day - timedelta(days=ago)).replace(hour=hour)
        starts, ends = base + timedelta(minutes=start_min), base + timedelta(minutes=end_min)
        out.append(Delivery(starts, "alertmanager", "disk almost full", _disk(starts, None)))
        out.append(Delivery(ends, "alertmanager", "disk: resolved", _disk(starts, ends)))
    return sorted(out, key=lambda d: d.at)
