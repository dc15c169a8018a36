"""`POST /webhooks/pagerduty`: PagerDuty v3 webhooks. The `X-PagerDuty-Signature` header
(`v1=<hex HMAC-SHA256 of the raw body>`, several comma-separated while PagerDuty rotates) must
match one of the configured secrets. Items are keyed by the event's `id`."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bot.webhooks.bodies import parse_json, read_body, require_json
from bot.webhooks.errors import RequestRejected, validate
from bot.webhooks.fields import StoredTime, column_length
from bot.webhooks.intake import intake_of
from knowledge.correlation import PagerDutySignal
from knowledge.inbox import InboxEntry
from knowledge.incidents import Incident

SOURCE = "pagerduty"


Name = Annotated[str, StringConstraints(max_length=200)]
Url = Annotated[str, StringConstraints(max_length=column_length(Incident, "pagerduty_url"))]


class PagerDutyReference(BaseModel):
    id: Name | None = None
    type: str | None = None
    summary: Name | None = None
    html_url: Url | None = None


class PagerDutyIncident(BaseModel):
    """The fields of `event.data` (or `event.data.incident`) the copilot stores, typed as
    PagerDuty sends them; the rest is kept as it came."""

    model_config = ConfigDict(extra="allow")

    id: Annotated[str, StringConstraints(
        min_length=1, max_length=column_length(Incident, "pagerduty_incident_id"))]
    title: str | None = None
    summary: str | None = None
    incident_key: str | None = None
    html_url: Url | None = None
    urgency: Annotated[str, StringConstraints(
        max_length=column_length(Incident, "severity"))] | None = None
    service: PagerDutyReference | None = None
    assignees: list[PagerDutyReference] = Field(default_factory=list)


class PagerDutyEvent(BaseModel):
    # Part of the timeline's dedupe key (`pagerduty:<id>`, 500 characters); PagerDuty's are
    # UUIDs.
    id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    event_type: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    resource_type: str
    occurred_at: StoredTime
    agent: PagerDutyReference | None = None
    client: dict[str, Any] | None = None
    data: dict[str, Any]


class PagerDutyWebhook(BaseModel):
    event: PagerDutyEvent


def verify_signature(body: bytes, header: str | None, secrets: list[str], *,
                     org: str = "default") -> None:
    if not secrets:
        raise RequestRejected(401, "not_configured",
                              f"org {org!r} has no PagerDuty signing secret: set "
                              "PAGERDUTY_WEBHOOK_SECRET (the default org) or run `sre-copilot "
                              f"orgs rotate {org} --pagerduty-secret S` with the webhook "
                              "subscription's signing secret")
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


def _check_incident(data: dict[str, Any]) -> None:
    """The incident an event is about must carry what storage takes, typed as PagerDuty
    types it; a note's `content` must be text."""
    where = "event.data.incident" if isinstance(data.get("incident"), dict) else "event.data"
    validate(PagerDutyIncident, _incident_of(data), what="PagerDuty v3 webhook", at=where)
    if "content" in data and not isinstance(data["content"], str | None):
        raise RequestRejected(422, "invalid_payload",
                              "not a valid PagerDuty v3 webhook: event.data.content: Input "
                              "should be a valid string")


def signal_from_item(payload: dict[str, Any]) -> PagerDutySignal:
    event = PagerDutyEvent.model_validate(payload["event"])
    incident = PagerDutyIncident.model_validate(_incident_of(event.data))
    occurred = event.occurred_at if event.occurred_at.tzinfo else event.occurred_at.replace(
        tzinfo=UTC)
    content = event.data.get("content")
    return PagerDutySignal(
        event_id=event.id, event_type=event.event_type, occurred_at=occurred,
        incident_id=incident.id, incident_key=incident.incident_key,
        title=incident.title or incident.summary, html_url=incident.html_url,
        service=incident.service.summary if incident.service else None,
        urgency=incident.urgency,
        agent=event.agent.summary if event.agent else None,
        note=content if isinstance(content, str) else None,
        assignees=tuple(str(a.summary or a.id) for a in incident.assignees))


def router() -> APIRouter:
    api = APIRouter()

    @api.post("/webhooks/pagerduty", status_code=202)
    async def pagerduty_webhook(request: Request, org: str | None = None) -> JSONResponse:
        intake = intake_of(request)
        target = await intake.org(org)
        body = await read_body(request, limit=intake.settings.max_body_bytes)
        # The org's own secrets; the environment's open the default org only. The signature
        # does not cover `?org=`: one org's signed bytes replayed to another are refused here.
        secrets = [*target.pagerduty_secrets,
                   *(intake.settings.pagerduty_secrets if target.is_default else [])]
        verify_signature(body, request.headers.get("x-pagerduty-signature"), secrets,
                         org=target.slug)
        require_json(request)
        hook = validate(PagerDutyWebhook, parse_json(body), what="PagerDuty v3 webhook")
        event = hook.event
        if event.resource_type != "incident":
            # Subscription pings (pagey.ping) and service events carry nothing for an incident.
            return JSONResponse({"accepted": 0, "duplicates": 0,
                                 "ignored": f"{event.event_type} is not an incident event"},
                                status_code=202)
        _check_incident(event.data)
        result = await intake.store(org, [InboxEntry(source=SOURCE, key=event.id,
                                                     payload=hook.model_dump(mode="json"))])
        return JSONResponse({"accepted": result.accepted, "duplicates": result.duplicates},
                            status_code=202)

    return api


def signature_header(body: bytes, secret: str) -> str:
    """What PagerDuty sends for `body` signed with `secret` (used by the demo)."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
