"""`POST /webhooks/alertmanager`: Alertmanager's webhook (payload version 4), authorised by a
bearer token. Each alert becomes one inbox item keyed by group key + fingerprint + status +
startsAt, so Alertmanager's repeats (every `repeat_interval`, or after a retry) are ignored while
a new alert in the same group still gets through."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints, field_validator

from bot.webhooks.bodies import parse_json, read_body, require_json
from bot.webhooks.errors import validate
from bot.webhooks.fields import EndTime, StoredTime, column_length, label_lengths
from bot.webhooks.intake import intake_of
from bot.webhooks.tokens import require_bearer
from knowledge.alerts import Alert
from knowledge.correlation import AlertSignal
from knowledge.inbox import FIRST, LATER, InboxEntry
from knowledge.noise import is_heartbeat

SOURCE = "alertmanager"


# Labels stored in columns of their own (the rest go to a JSON column, any length).
STORED_LABELS = {"alertname": column_length(Alert, "alertname"),
                 "severity": column_length(Alert, "severity")}


class AlertmanagerAlert(BaseModel):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: StoredTime
    endsAt: EndTime | None = None
    generatorURL: Annotated[str, StringConstraints(
        max_length=column_length(Alert, "generator_url"))] | None = None
    fingerprint: Annotated[str, StringConstraints(
        min_length=1, max_length=column_length(Alert, "fingerprint"))]

    @field_validator("labels")
    @classmethod
    def _stored_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        return label_lengths(labels, STORED_LABELS)


class AlertmanagerPayload(BaseModel):
    version: Literal["4"]
    groupKey: str = Field(min_length=1)
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"]
    receiver: str
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str | None = None
    alerts: list[AlertmanagerAlert] = Field(min_length=1)


def inbox_entries(payload: AlertmanagerPayload) -> list[InboxEntry]:
    group = {"groupKey": payload.groupKey, "receiver": payload.receiver,
             "groupLabels": payload.groupLabels, "commonLabels": payload.commonLabels,
             "externalURL": payload.externalURL}
    alerts = [a for a in payload.alerts if not _heartbeat(a)]
    # The first firing alert may open the group's incident: it goes ahead of a storm's
    # backlog. Only firings: a resolution must not overtake the firing it ends.
    first = next((a for a in alerts if a.status == "firing"), None)
    return [InboxEntry(source=SOURCE,
                       key=f"{payload.groupKey}|{a.fingerprint}|{a.status}|{a.startsAt.isoformat()}",
                       payload={"group": group, "alert": a.model_dump(mode="json")},
                       priority=FIRST if a is first else LATER)
            for a in alerts]


def heartbeats(payload: AlertmanagerPayload) -> set[str]:
    """The always-firing alerts (Watchdog) in a notification: heard, never incidents."""
    return {a.labels.get("alertname", "") for a in payload.alerts
            if _heartbeat(a) and a.status == "firing"}


def _heartbeat(a: AlertmanagerAlert) -> bool:
    return is_heartbeat(a.labels.get("alertname", ""), a.labels.get("severity"))


def _real_time(value: datetime | None) -> datetime | None:
    """Alertmanager sends `0001-01-01T00:00:00Z` for 'not ended'."""
    if value is None or value.year < 1971:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def signal_from_item(payload: dict[str, Any]) -> AlertSignal:
    alert = AlertmanagerAlert.model_validate(payload["alert"])
    group = payload["group"]
    starts = _real_time(alert.startsAt)
    assert starts is not None, "startsAt is always set by Alertmanager"
    return AlertSignal(group_key=group["groupKey"], fingerprint=alert.fingerprint,
                       status=alert.status, labels=alert.labels, annotations=alert.annotations,
                       starts_at=starts,
                       ends_at=_real_time(alert.endsAt) if alert.status == "resolved" else None,
                       generator_url=alert.generatorURL,
                       common_labels=group.get("commonLabels") or {})


def router() -> APIRouter:
    api = APIRouter()

    @api.post("/webhooks/alertmanager", status_code=202)
    async def alertmanager_webhook(request: Request, org: str | None = None) -> JSONResponse:
        intake = intake_of(request)
        target = await intake.org(org)
        require_bearer(request, target, digest=target.alertmanager_token_sha256,
                       env_token=intake.settings.alertmanager_webhook_token,
                       setting="ALERTMANAGER_WEBHOOK_TOKEN", option="--alertmanager",
                       hint="set it and give Alertmanager the same value in the receiver's "
                            "http_config.authorization.credentials")
        require_json(request)
        body = await read_body(request, limit=intake.settings.max_body_bytes)
        payload = validate(AlertmanagerPayload, parse_json(body),
                           what="Alertmanager webhook (version 4)")
        beats = heartbeats(payload)
        if beats:  # heard now, before the inbox drops the repeat (the dead man's switch)
            await intake.heard(org, beats)
        result = await intake.store(org, inbox_entries(payload))
        return JSONResponse({"accepted": result.accepted, "duplicates": result.duplicates},
                            status_code=202)

    return api
