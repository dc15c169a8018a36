"""`POST /webhooks/changes`: a pipeline's deploys and config changes are stored before the 2xx,
processed onto the timelines of their service's incidents, retries ignored, and bad input refused
with a JSON 4xx and nothing stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.settings import Settings
from knowledge.changes import changes_between
from knowledge.inbox import InboxStatus, items
from knowledge.incidents import list_incidents
from knowledge.orgs import get_org
from knowledge.timeline import TimelineEvent, list_events
from tests.conftest import Copilot
from tests.fakes.alertmanager import alert, iso, notification

TOKEN = "ci-token-7f3a"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, with the pipelines' token configured."""
    settings.changes_webhook_token = TOKEN
    return settings


def change(version: str | None = "v2.14.0", *, service: str = "checkout", kind: str = "deploy",
           at: datetime | None = None, **extra: Any) -> dict[str, Any]:
    return {"service": service, "kind": kind, "version": version,
            "previous_version": "v2.13.2", "description": "Faster cart totals",
            "author": "ci", "link": "https://ci.example.com/builds/1234",
            "occurred_at": iso(at or NOW - timedelta(minutes=10)), **extra}


def _headers(**extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}", "content-type": "application/json", **extra}


async def _post(copilot: Copilot, payload: Any, **headers: str) -> httpx.Response:
    return await copilot.client.post("/webhooks/changes", content=json.dumps(payload),
                                     headers=_headers(**headers))


async def _org(copilot: Copilot) -> int:
    async with copilot.db.session() as s:
        org = await get_org(s, slug="default")
    assert org.id is not None
    return org.id


async def _open_incident(copilot: Copilot, *, starts: datetime) -> None:
    response = await copilot.client.post(
        "/webhooks/alertmanager", json=notification([alert("HighErrorRate", starts=starts)]),
        headers={"authorization": f"Bearer {copilot.settings.alertmanager_webhook_token}"})
    assert response.status_code == 202
    await copilot.worker.drain()


async def _timeline(copilot: Copilot) -> list[TimelineEvent]:
    oid = await _org(copilot)
    async with copilot.db.session() as s:
        [incident] = await list_incidents(s, org_id=oid)
        return await list_events(s, org_id=oid, incident_id=incident.id or 0)


async def test_a_deploy_lands_on_the_open_incidents_timeline(copilot: Copilot) -> None:
    await _open_incident(copilot, starts=NOW - timedelta(minutes=5))
    response = await _post(copilot, change())
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    oid = await _org(copilot)
    async with copilot.db.session() as s:  # stored before the answer, not yet processed
        [pending] = await items(s, org_id=oid, status=InboxStatus.PENDING)
    assert pending.source == "changes"
    assert await copilot.worker.drain() == 1
    deploy = [e for e in await _timeline(copilot) if e.kind == "deploy"]
    assert [(e.summary, e.occurred_at) for e in deploy] == [
        ("Deploy checkout v2.13.2 → v2.14.0 by ci: Faster cart totals",
         NOW - timedelta(minutes=10))]
    assert deploy[0].data["link"] == "https://ci.example.com/builds/1234"
    async with copilot.db.session() as s:
        [stored] = await changes_between(s, org_id=oid, start=NOW - timedelta(hours=1), end=NOW)
    assert stored.source == "webhook" and stored.author == "ci"


async def test_an_incident_opened_later_shows_the_deploy_before_it(copilot: Copilot) -> None:
    assert (await _post(copilot, change())).status_code == 202
    await copilot.worker.drain()
    await _open_incident(copilot, starts=NOW - timedelta(minutes=5))
    assert [e.kind for e in await _timeline(copilot)] == ["deploy", "alert_fired"]


async def test_retries_are_answered_2xx_and_ignored(copilot: Copilot) -> None:
    await _open_incident(copilot, starts=NOW - timedelta(minutes=5))
    assert (await _post(copilot, change())).json() == {"accepted": 1, "duplicates": 0}
    again = await _post(copilot, change())
    assert again.status_code == 202 and again.json() == {"accepted": 0, "duplicates": 1}
    # With the sender's id, the id alone says it is the same report.
    first = await _post(copilot, change("v2.15.0", id=1234))
    retried = await _post(copilot, change("v2.15.0", id=1234, at=NOW - timedelta(minutes=9)))
    assert (first.json(), retried.json()) == ({"accepted": 1, "duplicates": 0},
                                              {"accepted": 0, "duplicates": 1})
    assert await copilot.worker.drain() == 2
    assert [e.kind for e in await _timeline(copilot)].count("deploy") == 2


async def test_a_pipeline_may_send_a_list(copilot: Copilot) -> None:
    await _open_incident(copilot, starts=NOW - timedelta(minutes=5))
    batch = [change("v2.14.0"), change(kind="config", version=None, description="pool 40"),
             change("v2.14.0"), change(service="search", version="v7")]
    response = await _post(copilot, batch)
    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "duplicates": 1}
    assert await copilot.worker.drain() == 3
    kinds = [e.kind for e in await _timeline(copilot)]
    assert sorted(kinds) == ["alert_fired", "change", "deploy"]  # search is another service
    async with copilot.db.session() as s:
        stored = await changes_between(s, org_id=await _org(copilot),
                                       start=NOW - timedelta(hours=1), end=NOW)
    assert sorted(c.service for c in stored) == ["checkout", "checkout", "search"]


@pytest.mark.parametrize("headers, error", [
    ({"authorization": ""}, "missing_token"),
    ({"authorization": "Basic dXNlcjpwYXNz"}, "missing_token"),
    ({"authorization": "Bearer not-the-token"}, "invalid_token"),
])
async def test_wrong_or_missing_token_is_refused(copilot: Copilot, headers: dict[str, str],
                                                 error: str) -> None:
    response = await _post(copilot, change(), **headers)
    assert response.status_code == 401
    assert response.json()["error"] == error
    assert response.headers["www-authenticate"] == "Bearer"
    await _nothing_stored(copilot)


async def test_unconfigured_token_says_how_to_fix_it(copilot: Copilot) -> None:
    copilot.settings.changes_webhook_token = None
    response = await _post(copilot, change())
    assert response.status_code == 401
    assert response.json()["error"] == "not_configured"
    assert "CHANGES_WEBHOOK_TOKEN is not set" in response.json()["detail"]
    await _nothing_stored(copilot)


def test_an_empty_token_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHANGES_WEBHOOK_TOKEN", "")
    assert Settings().changes_webhook_token is None
    monkeypatch.setenv("CHANGES_WEBHOOK_TOKEN", "s3cret")
    assert Settings().changes_webhook_token == "s3cret"


def _without(payload: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != name}


@pytest.mark.parametrize("body, status, error, detail", [
    (change(kind="restart"), 422, "invalid_payload", "kind: Input should be 'deploy'"),
    (_without(change(), "service"), 422, "invalid_payload", "service: Field required"),
    (change(service="  "), 422, "invalid_payload", "service:"),
    (_without(change(), "occurred_at"), 422, "invalid_payload", "occurred_at: Field required"),
    ({**change(), "occurred_at": "2026-11-20T03:00:00"}, 422, "invalid_payload",
     "occurred_at: Input should have timezone info"),
    ({**change(), "occurred_at": "yesterday"}, 422, "invalid_payload", "occurred_at"),
    ([change(), change(kind="nope")], 422, "invalid_payload", "1.kind"),
    ([], 422, "invalid_payload", "(body)"),
    ("deploy", 422, "invalid_payload", "(body)"),
])
async def test_bad_changes_are_refused_naming_the_field(
        copilot: Copilot, body: Any, status: int, error: str, detail: str) -> None:
    response = await _post(copilot, body)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert detail in response.json()["detail"]
    await _nothing_stored(copilot)


@pytest.mark.parametrize("body, content_type, status, error", [
    (b"{not json", "application/json", 400, "malformed_json"),
    (b"", "application/json", 400, "empty_body"),
    (json.dumps(change()).encode(), "text/plain", 415, "unsupported_media_type"),
])
async def test_unreadable_bodies_are_refused(copilot: Copilot, body: bytes, content_type: str,
                                             status: int, error: str) -> None:
    response = await copilot.client.post("/webhooks/changes", content=body,
                                         headers=_headers(**{"content-type": content_type}))
    assert response.status_code == status and response.json()["error"] == error
    await _nothing_stored(copilot)


async def test_body_over_the_limit_is_refused(copilot: Copilot) -> None:
    copilot.settings.max_body_bytes = 1000
    response = await _post(copilot, [change(f"v{i}") for i in range(10)])
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"
    await _nothing_stored(copilot)


async def test_unknown_org_is_a_404(copilot: Copilot) -> None:
    response = await copilot.client.post("/webhooks/changes?org=nope",
                                         content=json.dumps(change()), headers=_headers())
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_org"


async def _nothing_stored(copilot: Copilot) -> None:
    async with copilot.db.session() as s:
        assert await items(s, org_id=await _org(copilot)) == []
