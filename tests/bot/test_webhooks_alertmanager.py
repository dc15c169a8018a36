"""`POST /webhooks/alertmanager`: stored before the 2xx, repeats ignored, bad input refused with
a JSON 4xx and nothing half-written."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from knowledge.alerts import list_alerts
from knowledge.inbox import InboxStatus, items
from knowledge.incidents import list_incidents
from knowledge.orgs import get_org
from knowledge.timeline import list_events
from tests.conftest import Copilot
from tests.fakes.alertmanager import alert, notification, resolved


def _headers(copilot: Copilot, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {copilot.settings.alertmanager_webhook_token}",
            "content-type": "application/json", **extra}


async def _post(copilot: Copilot, payload: Any, **headers: str) -> httpx.Response:
    return await copilot.client.post("/webhooks/alertmanager", content=json.dumps(payload),
                                     headers=_headers(copilot, **headers))


async def _org(copilot: Copilot) -> int:
    async with copilot.db.session() as s:
        org = await get_org(s, slug="default")
    assert org.id is not None
    return org.id


async def test_accepted_alerts_are_in_the_inbox_before_the_answer(copilot: Copilot) -> None:
    payload = notification([alert("HighErrorRate"), alert("HighLatency", severity="warning")])
    response = await _post(copilot, payload)
    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "duplicates": 0}
    oid = await _org(copilot)
    async with copilot.db.session() as s:  # no worker has run: the items wait in the inbox
        pending = await items(s, org_id=oid, status=InboxStatus.PENDING)
    # The two alerts, between the two steps of what the notification listed.
    assert [x.payload.get("listing") or x.payload["alert"]["labels"]["alertname"]
            for x in pending] == ["relist", "HighErrorRate", "HighLatency", "leave_out"]
    assert await copilot.worker.drain() == 4
    async with copilot.db.session() as s:
        [incident] = await list_incidents(s, org_id=oid)
        assert incident.service == "checkout" and incident.severity == "critical"
        assert len(await list_alerts(s, org_id=oid)) == 2
        assert [e.kind for e in await list_events(s, org_id=oid, incident_id=incident.id or 0)
                ] == ["alert_fired", "alert_fired"]


async def test_repeats_are_answered_2xx_and_ignored(copilot: Copilot) -> None:
    a, b = alert("HighErrorRate"), alert("HighLatency")
    assert (await _post(copilot, notification([a]))).json() == {"accepted": 1, "duplicates": 0}
    # Alertmanager re-sends the group with the old alert and a new one, then retries it.
    assert (await _post(copilot, notification([a, b]))).json() == {"accepted": 1,
                                                                    "duplicates": 1}
    again = await _post(copilot, notification([a, b]))
    assert again.status_code == 202 and again.json() == {"accepted": 0, "duplicates": 2}
    ended = resolved(a, datetime.now(UTC))
    assert (await _post(copilot, notification([ended, b]))).json() == {"accepted": 1,
                                                                        "duplicates": 1}
    await copilot.worker.drain()
    oid = await _org(copilot)
    async with copilot.db.session() as s:
        alerts = await list_alerts(s, org_id=oid)
    assert sorted((x.alertname, x.status) for x in alerts) == [
        ("HighErrorRate", "resolved"), ("HighLatency", "firing")]


@pytest.mark.parametrize("headers, error", [
    ({"authorization": ""}, "missing_token"),
    ({"authorization": "Basic dXNlcjpwYXNz"}, "missing_token"),
    ({"authorization": "Bearer not-the-token"}, "invalid_token"),
])
async def test_wrong_or_missing_token_is_refused(copilot: Copilot, headers: dict[str, str],
                                                 error: str) -> None:
    response = await _post(copilot, notification([alert("HighErrorRate")]), **headers)
    assert response.status_code == 401
    assert response.json()["error"] == error
    await _nothing_stored(copilot)


async def test_unconfigured_token_says_how_to_fix_it(copilot: Copilot) -> None:
    copilot.settings.alertmanager_webhook_token = None
    response = await copilot.client.post(
        "/webhooks/alertmanager", json=notification([alert("X")]),
        headers={"authorization": "Bearer anything"})
    assert response.status_code == 401
    assert "ALERTMANAGER_WEBHOOK_TOKEN is not set" in response.json()["detail"]


def _without(payload: dict[str, Any], *path: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(payload))
    target = copy
    for step in path[:-1]:
        target = target[int(step)] if isinstance(target, list) else target[step]
    del target[path[-1]]
    return copy


GOOD = notification([alert("HighErrorRate"), alert("HighLatency")])


@pytest.mark.parametrize("body, status, error, detail", [
    (b"{not json", 400, "malformed_json", "not valid JSON"),
    (b"", 400, "empty_body", "empty"),
    (json.dumps(_without(GOOD, "groupKey")).encode(), 422, "invalid_payload", "groupKey"),
    (json.dumps(_without(GOOD, "alerts", "1", "fingerprint")).encode(), 422, "invalid_payload",
     "alerts.1.fingerprint"),
    (json.dumps({**GOOD, "version": "3"}).encode(), 422, "invalid_payload", "version"),
    (json.dumps({**GOOD, "alerts": []}).encode(), 422, "invalid_payload", "alerts"),
    (json.dumps([GOOD]).encode(), 422, "invalid_payload", "(body)"),
])
async def test_bad_payloads_are_refused_and_nothing_is_half_written(
        copilot: Copilot, body: bytes, status: int, error: str, detail: str) -> None:
    response = await copilot.client.post("/webhooks/alertmanager", content=body,
                                         headers=_headers(copilot))
    assert response.status_code == status
    assert response.json()["error"] == error
    assert detail in response.json()["detail"]
    await _nothing_stored(copilot)


async def test_wrong_content_type_is_refused(copilot: Copilot) -> None:
    response = await copilot.client.post(
        "/webhooks/alertmanager", content=json.dumps(GOOD),
        headers=_headers(copilot, **{"content-type": "text/plain"}))
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


async def test_body_over_the_limit_is_refused(copilot: Copilot) -> None:
    copilot.settings.max_body_bytes = 2000
    big = notification([alert(f"Alert{i}") for i in range(20)])
    response = await _post(copilot, big)
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the stream is counted
        data = json.dumps(big).encode()
        for i in range(0, len(data), 500):
            yield data[i:i + 500]

    streamed = await copilot.client.post("/webhooks/alertmanager", content=chunks(),
                                         headers=_headers(copilot))
    assert streamed.status_code == 413
    await _nothing_stored(copilot)
    small = await _post(copilot, notification([alert("One")]))
    assert small.status_code == 202


async def test_unknown_org_is_a_404(copilot: Copilot) -> None:
    response = await copilot.client.post("/webhooks/alertmanager?org=nope",
                                         content=json.dumps(GOOD), headers=_headers(copilot))
    assert response.status_code == 404
    assert response.json() == {"error": "unknown_org", "detail": "no org with slug 'nope'"}


async def test_alertmanagers_not_ended_marker_is_not_a_time(copilot: Copilot) -> None:
    starts = datetime.now(UTC) - timedelta(minutes=3)
    await _post(copilot, notification([alert("HighErrorRate", starts=starts)]))
    await copilot.worker.drain()
    async with copilot.db.session() as s:
        [a] = await list_alerts(s, org_id=await _org(copilot))
    assert a.ends_at is None
    assert abs((a.starts_at - starts).total_seconds()) < 1


async def _nothing_stored(copilot: Copilot) -> None:
    async with copilot.db.session() as s:
        assert await items(s, org_id=await _org(copilot)) == []
