"""`POST /webhooks/pagerduty`: PagerDuty v3 webhooks. The `X-PagerDuty-Signature` header
(`v1=<hex HMAC-SHA256 of the raw body>`, several comma-separated while PagerDuty rotates) must
match one of the configured secrets. Items are keyed by the event's `id`."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bot.webhooks.errors import RequestRejected, parse_json, read_body, require_json, validate
from bot.webhooks.intake import intake_of
from knowledge.correlation import PagerDutySignal
from knowledge.inbox import InboxEntry

SOURCE = "pagerduty"


class PagerDutyReference(BaseModel):
    id: str | None = None
    type: str | None = None
    summary: str | None = None
    html_url: str | None = None


class PagerDutyEvent(BaseModel):
    id: str = Field(min_length=1)
    event_type: str = Field(min_length=1)
    resource_type: str
    occurred_at: datetime
    agent: PagerDutyReference | None = None
    client: dict[str, Any] | None = None
    data: dict[str, Any]


class PagerDutyWebhook(BaseModel):
    event: PagerDutyEvent


def verify_signature(body: bytes, header: str | None, secrets: list[str]) -> None:
    if not secrets:
        raise RequestRejected(401, "not_configured",
                              "PAGERDUTY_WEBHOOK_SECRET is not set on the copilot; set it to the "
                              "webhook subscription's signing secret")
    if not header:
        raise RequestRejected(401, "missing_signature", "X-PagerDuty-Signature header is missing")
    given = [s.strip().removeprefix("v1=") for s in header.split(",")
             if s.strip().startswith("v1=")]
    if not given:
        raise RequestRejected(401, "invalid_signature",
                              "X-PagerDuty-Signature has no v1= signature")
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, g) for g in given):
            return
    raise RequestRejected(401, "invalid_signature",
                          "X-PagerDuty-Signature matches none of the configured secrets")


def _incident_of(data: dict[str, Any]) -> dict[str, Any]:
    """Incident events carry the incident as `data`; note events carry it as `data.incident`."""
    inner = data.get("incident")
    return inner if isinstance(inner, dict) else data


def signal_from_item(payload: dict[str, Any]) -> PagerDutySignal:
    event = PagerDutyEvent.model_validate(payload["event"])
    incident = _incident_of(event.data)
    service = incident.get("service") if isinstance(incident.get("service"), dict) else {}
    occurred = event.occurred_at if event.occurred_at.tzinfo else event.occurred_at.replace(
        tzinfo=UTC)
    return PagerDutySignal(
        event_id=event.id, event_type=event.event_type, occurred_at=occurred,
        incident_id=str(incident.get("id")),
        incident_key=incident.get("incident_key"),
        title=incident.get("title") or incident.get("summary"),
        html_url=incident.get("html_url"),
        service=(service or {}).get("summary"),
        urgency=incident.get("urgency"),
        agent=event.agent.summary if event.agent else None,
        note=event.data.get("content") if isinstance(event.data.get("content"), str) else None,
        assignees=tuple(str(a.get("summary") or a.get("id")) for a in
                        incident.get("assignees") or [] if isinstance(a, dict)))


def router() -> APIRouter:
    api = APIRouter()

    @api.post("/webhooks/pagerduty", status_code=202)
    async def pagerduty_webhook(request: Request, org: str | None = None) -> JSONResponse:
        intake = intake_of(request)
        body = await read_body(request, limit=intake.settings.max_body_bytes)
        verify_signature(body, request.headers.get("x-pagerduty-signature"),
                         intake.settings.pagerduty_secrets)
        require_json(request)
        hook = validate(PagerDutyWebhook, parse_json(body), what="PagerDuty v3 webhook")
        event = hook.event
        if event.resource_type != "incident":
            # Subscription pings (pagey.ping) and service events carry nothing for an incident.
            return JSONResponse({"accepted": 0, "duplicates": 0,
                                 "ignored": f"{event.event_type} is not an incident event"},
                                status_code=202)
        incident = _incident_of(event.data)
        if not incident.get("id"):
            raise RequestRejected(422, "invalid_payload",
                                  "not a valid PagerDuty v3 webhook: event.data has no incident id")
        result = await intake.store(org, [InboxEntry(source=SOURCE, key=event.id,
                                                     payload=hook.model_dump(mode="json"))])
        return JSONResponse({"accepted": result.accepted, "duplicates": result.duplicates},
                            status_code=202)

    return api


def signature_header(body: bytes, secret: str) -> str:
    """What PagerDuty sends for `body` signed with `secret` (used by the demo)."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
