"""`POST /webhooks/alertmanager`: Alertmanager's webhook (payload version 4), authorised by a
bearer token. Each alert becomes one inbox item keyed by group key + fingerprint + status +
startsAt, so Alertmanager's repeats (every `repeat_interval`, or after a retry) are ignored while
a new alert in the same group still gets through. What the notification lists goes too
(`listing_entries`): an alert it leaves out is muted or ended unsaid."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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
from knowledge.types import utcnow

SOURCE = "alertmanager"
# What each notification listed (`listing_entries`): inbox items of their own source, so the
# alert counts per source stay the alerts'.
LISTING = "alertmanager-listing"


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
    """The notification's alerts, one item each, between the two steps of its listing (see
    `listing_entries`)."""
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


def listing_entries(payload: AlertmanagerPayload) -> tuple[InboxEntry, InboxEntry] | None:
    """What the notification lists, as two items around its alerts. Alertmanager lists every
    alert of the group it still holds; one it leaves out was muted (an inhibit rule: a
    critical mutes its warning; a silence) or ended while muted, and its end is never sent.
    `relist` goes before the notification's resolutions (a left-out alert listed firing again
    fires again before they judge whether its incident is over); `leave_out` goes last (so
    the critical that muted a warning is placed while the warning still fires). None when
    the notification is truncated: then it does not list everything."""
    listed = [[a.fingerprint, a.startsAt.isoformat(), a.status] for a in payload.alerts
              if not _heartbeat(a)]
    if payload.truncatedAlerts or not listed:
        return None
    received = utcnow().isoformat()
    once = uuid.uuid4().hex  # each notification's listing is its own, repeats included

    def step(name: str, priority: int) -> InboxEntry:
        return InboxEntry(source=LISTING, key=f"{payload.groupKey}|{name}|{once}",
                          payload={"listing": name, "group_key": payload.groupKey,
                                   "listed": listed, "received_at": received},
                          priority=priority)

    # Both wait behind any notification's first firing (FIRST): a listing opens nothing.
    return step("relist", LATER), step("leave_out", LATER)


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


@dataclass(frozen=True)
class Listing:
    group_key: str
    listed: list[tuple[str, datetime, str]]  # fingerprint, startsAt, status
    received_at: datetime
    step: str  # relist | leave_out


def listing_from_item(payload: dict[str, Any]) -> Listing:
    return Listing(group_key=payload["group_key"],
                   listed=[(fp, datetime.fromisoformat(at), status)
                           for fp, at, status in payload["listed"]],
                   received_at=datetime.fromisoformat(payload["received_at"]),
                   step=payload["listing"])


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
        result = await intake.store(org, inbox_entries(payload),
                                    around=listing_entries(payload))
        return JSONResponse({"accepted": result.accepted, "duplicates": result.duplicates},
                            status_code=202)

    return api
