"""`POST /webhooks/pagerduty`: signed with PagerDuty's v1 HMAC-SHA256 scheme (secrets rotate),
keyed by event id, moving the incident and writing its timeline."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from knowledge.inbox import items
from knowledge.incidents import list_incidents
from knowledge.orgs import get_org
from knowledge.timeline import list_events
from tests.conftest import Copilot
from tests.fakes import pagerduty as pd


async def _post(copilot: Copilot, payload: dict[str, Any], *, secret: str | None = None,
                signature: str | None = None) -> httpx.Response:
    body = pd.body(payload)
    headers = {"content-type": "application/json"}
    sig = signature if signature is not None else pd.sign(
        body, secret or copilot.settings.pagerduty_secrets[0])
    if sig:
        headers["x-pagerduty-signature"] = sig
    return await copilot.client.post("/webhooks/pagerduty", content=body, headers=headers)


async def _org(copilot: Copilot) -> int:
    async with copilot.db.session() as s:
        org = await get_org(s, slug="default")
    assert org.id is not None
    return org.id


async def test_signed_events_move_the_incident(copilot: Copilot) -> None:
    triggered = pd.incident_event("incident.triggered", occurred_at=None)
    acked = pd.incident_event("incident.acknowledged", agent="Ana Ortiz")
    note = pd.note_event("Rolled back to v2.13.2", agent="Ana Ortiz")
    for payload in (triggered, acked, note):
        response = await _post(copilot, payload)
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": 1, "duplicates": 0}
    await copilot.worker.drain()
    oid = await _org(copilot)
    async with copilot.db.session() as s:
        [incident] = await list_incidents(s, org_id=oid)
        assert incident.pagerduty_incident_id == "PT4KHLK"
        assert incident.status == "acknowledged"
        events = await list_events(s, org_id=oid, incident_id=incident.id or 0)
    assert [e.summary for e in events][-2:] == ["triggered → acknowledged by Ana Ortiz",
                                                 "note by Ana Ortiz: Rolled back to v2.13.2"]


async def test_same_event_id_is_ignored(copilot: Copilot) -> None:
    event = pd.incident_event("incident.triggered")
    assert (await _post(copilot, event)).json() == {"accepted": 1, "duplicates": 0}
    again = await _post(copilot, event)
    assert again.status_code == 202 and again.json() == {"accepted": 0, "duplicates": 1}


async def test_any_configured_secret_verifies_during_rotation(copilot: Copilot) -> None:
    copilot.settings.pagerduty_webhook_secret = "old-secret, new-secret"
    event = pd.incident_event("incident.triggered")
    assert (await _post(copilot, event, secret="new-secret")).status_code == 202
    # PagerDuty signs with every active secret while it rotates: one match is enough.
    body = pd.body(pd.incident_event("incident.acknowledged"))
    both = pd.sign(body, "unknown-secret", "old-secret")
    response = await copilot.client.post("/webhooks/pagerduty", content=body, headers={
        "content-type": "application/json", "x-pagerduty-signature": both})
    assert response.status_code == 202


@pytest.mark.parametrize("signature, error", [
    ("", "missing_signature"),
    ("v1=" + "0" * 64, "invalid_signature"),
    ("v0=abc", "invalid_signature"),
])
async def test_unsigned_or_forged_events_are_refused(copilot: Copilot, signature: str,
                                                     error: str) -> None:
    response = await _post(copilot, pd.incident_event("incident.resolved"), signature=signature)
    assert response.status_code == 401
    assert response.json()["error"] == error
    async with copilot.db.session() as s:
        assert await items(s, org_id=await _org(copilot)) == []


async def test_signed_with_another_secret_is_refused(copilot: Copilot) -> None:
    response = await _post(copilot, pd.incident_event("incident.resolved"),
                           secret="attacker-secret")
    assert response.status_code == 401 and response.json()["error"] == "invalid_signature"


async def test_a_tampered_body_is_refused(copilot: Copilot) -> None:
    body = pd.body(pd.incident_event("incident.triggered"))
    signature = pd.sign(body, copilot.settings.pagerduty_secrets[0])
    tampered = body.replace(b"The server is on fire.", b"Nothing to see here.")
    response = await copilot.client.post("/webhooks/pagerduty", content=tampered, headers={
        "content-type": "application/json", "x-pagerduty-signature": signature})
    assert response.status_code == 401


async def test_subscription_ping_is_acknowledged_and_not_stored(copilot: Copilot) -> None:
    response = await _post(copilot, pd.ping())
    assert response.status_code == 202
    assert response.json()["accepted"] == 0 and "pagey.ping" in response.json()["ignored"]


async def test_signed_but_malformed_event_is_a_422(copilot: Copilot) -> None:
    event = pd.incident_event("incident.triggered")
    del event["event"]["occurred_at"]
    response = await _post(copilot, event)
    assert response.status_code == 422
    assert "event.occurred_at" in response.json()["detail"]


async def test_unconfigured_secret_says_how_to_fix_it(copilot: Copilot) -> None:
    copilot.settings.pagerduty_webhook_secret = None
    response = await _post(copilot, pd.incident_event("incident.triggered"), secret="x")
    assert response.status_code == 401
    assert "set PAGERDUTY_WEBHOOK_SECRET" in response.json()["detail"]
    assert "orgs rotate default --pagerduty-secret" in response.json()["detail"]
