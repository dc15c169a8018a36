"""PagerDuty v3 webhook payloads and their signing, written from PagerDuty's documentation
(independently of the copilot's own verification code)."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any


def sign(body: bytes, *secrets: str) -> str:
    """`X-PagerDuty-Signature`: one `v1=<hex HMAC-SHA256>` per active secret, comma-separated."""
    return ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest()
                    for s in secrets)


def incident_event(event_type: str, *, incident_id: str = "PT4KHLK",
                   incident_key: str | None = None, title: str = "The server is on fire.",
                   agent: str | None = "Earline Greenholt", occurred_at: datetime | None = None,
                   event_id: str | None = None, status: str | None = None,
                   assignees: tuple[str, ...] = (), service: str = "API Service"
                   ) -> dict[str, Any]:
    when = (occurred_at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return {"event": {
        "id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": when,
        "agent": ({"html_url": "https://acme.pagerduty.com/users/PLH1HKV", "id": "PLH1HKV",
                   "self": "https://api.pagerduty.com/users/PLH1HKV", "summary": agent,
                   "type": "user_reference"} if agent else None),
        "client": None,
        "data": {
            "id": incident_id, "type": "incident",
            "self": f"https://api.pagerduty.com/incidents/{incident_id}",
            "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
            "number": 2, "status": status or event_type.split(".")[-1],
            "incident_key": incident_key or "d3640fbd41094207a1c11e58e46b1662",
            "created_at": when, "title": title,
            "service": {"html_url": "https://acme.pagerduty.com/services/PF9KMXH",
                        "id": "PF9KMXH", "self": "https://api.pagerduty.com/services/PF9KMXH",
                        "summary": service, "type": "service_reference"},
            "assignees": [
                {"id": f"PU{i:05d}", "summary": name, "type": "user_reference",
                 "html_url": f"https://acme.pagerduty.com/users/PU{i:05d}"}
                for i, name in enumerate(assignees)],
            "escalation_policy": {"id": "PJ3EKOK", "summary": "Default",
                                  "type": "escalation_policy_reference"},
            "teams": [], "priority": None, "urgency": "high", "conference_bridge": None,
            "resolve_reason": None,
        },
    }}


def note_event(content: str, *, incident_id: str = "PT4KHLK", agent: str = "Earline Greenholt",
               occurred_at: datetime | None = None) -> dict[str, Any]:
    when = (occurred_at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return {"event": {
        "id": str(uuid.uuid4()), "event_type": "incident.annotated", "resource_type": "incident",
        "occurred_at": when,
        "agent": {"id": "PLH1HKV", "summary": agent, "type": "user_reference"},
        "client": None,
        "data": {"incident": {"html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
                              "id": incident_id,
                              "self": f"https://api.pagerduty.com/incidents/{incident_id}",
                              "summary": "The server is on fire.",
                              "type": "incident_reference"},
                 "content": content, "trimmed": False, "type": "incident_note"},
    }}


def ping() -> dict[str, Any]:
    return {"event": {"id": str(uuid.uuid4()), "event_type": "pagey.ping",
                      "resource_type": "pagey", "occurred_at": "2026-11-25T10:00:00Z",
                      "agent": None, "client": None,
                      "data": {"message": "Hello from your friend Pagey!", "type": "ping"}}}


def body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
