"""PagerDutyClient against the fake PagerDuty REST API on loopback: incidents, log entries and
on-calls parsed from PagerDuty's JSON shapes, pagination followed, and the failures a skill must
be able to explain — a wrong token, an unknown incident, rate limits, a 5xx, nothing listening."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from skills.pagerduty.client import PagerDutyClient, PagerDutyError
from tests.fakes.alertmanager_server import free_port
from tests.fakes.pagerduty_api import FakePagerDuty, running_pagerduty

TOKEN = "pd-test-token"
T0 = datetime(2024, 5, 14, 9, 0, tzinfo=UTC)


@pytest.fixture
def pd() -> Iterator[FakePagerDuty]:
    with running_pagerduty(TOKEN) as fake:
        yield fake


def client_for(fake: FakePagerDuty, *, max_retries: int = 2) -> PagerDutyClient:
    return PagerDutyClient(TOKEN, base_url=fake.base_url, max_retries=max_retries)


async def test_incident_details_are_parsed(pd: FakePagerDuty) -> None:
    seeded = pd.add_incident("Checkout 5xx above 2%", incident_id="PT4KHLK",
                             status="acknowledged", urgency="high", service="Checkout API",
                             escalation_policy="Checkout On-Call",
                             assignees=("Earline Greenholt", "Kelvin Pouros"),
                             incident_key="checkout-5xx", priority="P1", created_at=T0,
                             last_status_change_at=T0 + timedelta(minutes=4))
    async with client_for(pd) as client:
        incident = await client.incident("PT4KHLK")
    assert incident.id == "PT4KHLK"
    assert incident.number == seeded["incident_number"] == 1
    assert incident.title == "Checkout 5xx above 2%"
    assert (incident.status, incident.urgency) == ("acknowledged", "high")
    assert incident.service_name == "Checkout API"
    assert incident.service_id == pd.id_of("service", "Checkout API")
    assert incident.escalation_policy == "Checkout On-Call"
    assert incident.escalation_policy_id == pd.id_of("escalation_policy", "Checkout On-Call")
    assert incident.assignees == ["Earline Greenholt", "Kelvin Pouros"]
    assert incident.incident_key == "checkout-5xx"
    assert incident.priority == "P1"
    assert incident.created_at == T0
    assert incident.last_status_change_at == T0 + timedelta(minutes=4)
    assert incident.html_url == seeded["html_url"]
    [request] = pd.requests
    assert request.path == "/incidents/PT4KHLK"
    assert request.headers["authorization"] == f"Token token={TOKEN}"
    assert request.headers["accept"] == "application/vnd.pagerduty+json;version=2"


async def test_incident_without_priority_and_id_is_url_quoted(pd: FakePagerDuty) -> None:
    pd.add_incident("Odd id", incident_id="P/1 X", priority=None, status="resolved")
    async with client_for(pd) as client:
        incident = await client.incident("P/1 X")
    assert incident.priority is None
    assert incident.assignees == []  # PagerDuty clears assignments on resolve
    assert pd.requests[0].path == "/incidents/P%2F1%20X"


async def test_incidents_filter_by_status(pd: FakePagerDuty) -> None:
    pd.add_incident("open", status="triggered")
    pd.add_incident("acked", status="acknowledged")
    pd.add_incident("done", status="resolved")
    async with client_for(pd) as client:
        open_ = await client.incidents()
        resolved = await client.incidents(statuses=("resolved",))
    assert [i.title for i in open_] == ["open", "acked"]
    assert [i.title for i in resolved] == ["done"]
    assert pd.requests[0].query["statuses[]"] == ["triggered", "acknowledged"]


async def test_log_entries_newest_first_within_one_page(pd: FakePagerDuty) -> None:
    pd.add_incident("Checkout 5xx", incident_id="PINC1", created_at=T0)
    pd.add_log_entry("PINC1", "trigger_log_entry", "Triggered through the API", agent=None,
                     at=T0, channel="api")
    pd.add_log_entry("PINC1", "acknowledge_log_entry", "Acknowledged by Earline Greenholt",
                     at=T0 + timedelta(minutes=3))
    pd.add_log_entry("PINC1", "resolve_log_entry", "Resolved by Earline Greenholt",
                     at=T0 + timedelta(minutes=9))
    async with client_for(pd) as client:
        entries = await client.log_entries("PINC1")
    assert [e.type for e in entries] == ["resolve_log_entry", "acknowledge_log_entry",
                                         "trigger_log_entry"]
    assert entries[1].summary == "Acknowledged by Earline Greenholt"
    assert entries[1].agent == "Earline Greenholt"
    assert entries[1].channel == "website"
    assert entries[1].created_at == T0 + timedelta(minutes=3)
    assert (entries[2].agent, entries[2].channel) == (None, "api")
    assert len(pd.requests) == 1


async def test_log_entries_follow_pagination_up_to_limit() -> None:
    # The fake caps pages at PagerDuty's default of 25, so 40 entries take two pages.
    with running_pagerduty(TOKEN, max_limit=25) as pd:
        pd.add_incident("Noisy", incident_id="PINC2", created_at=T0)
        for minute in range(60):
            pd.add_log_entry("PINC2", "notify_log_entry", f"entry {minute}",
                             at=T0 + timedelta(minutes=minute))
        async with client_for(pd) as client:
            entries = await client.log_entries("PINC2", limit=40)
            fewer = await client.log_entries("PINC2", limit=10)
    assert [e.summary for e in entries] == [f"entry {m}" for m in range(59, 19, -1)]
    assert [(r.query["offset"], r.query["limit"]) for r in pd.requests[:2]] == [
        (["0"], ["40"]), (["25"], ["15"])]
    assert len(fewer) == 10 and len(pd.requests) == 3


async def test_log_entries_stop_when_there_are_no_more(pd: FakePagerDuty) -> None:
    pd.add_incident("Short", incident_id="PINC3", created_at=T0)
    for minute in range(30):
        pd.add_log_entry("PINC3", "annotate_log_entry", f"note {minute}",
                         at=T0 + timedelta(minutes=minute))
    async with client_for(pd) as client:
        entries = await client.log_entries("PINC3", limit=40)
    assert len(entries) == 30 and entries[0].summary == "note 29"
    assert len(pd.requests) == 1


async def test_oncalls_filtered_by_escalation_policy_and_time(pd: FakePagerDuty) -> None:
    day, night = T0.replace(hour=8), T0.replace(hour=20)
    pd.add_oncall("Earline Greenholt", "earline@example.com", "Checkout On-Call", 1,
                  schedule="Checkout Primary", start=day, end=night)
    pd.add_oncall("Kelvin Pouros", "kelvin@example.com", "Checkout On-Call", 1,
                  schedule="Checkout Primary", start=night, end=night + timedelta(hours=12))
    pd.add_oncall("Ada Manager", "ada@example.com", "Checkout On-Call", 2)  # always on call
    pd.add_oncall("Someone Else", "else@example.com", "Payments On-Call", 1,
                  schedule="Payments Primary", start=day, end=night)
    policy = pd.id_of("escalation_policy", "Checkout On-Call")
    async with client_for(pd) as client:
        at_noon = await client.oncalls(escalation_policy_ids=[policy], at=T0.replace(hour=12))
        at_night = await client.oncalls(escalation_policy_ids=[policy], at=night)
        by_schedule = await client.oncalls(
            schedule_ids=[pd.id_of("schedule", "Payments Primary")], at=T0.replace(hour=12))
    assert [(o.user_name, o.escalation_level) for o in at_noon] == [
        ("Earline Greenholt", 1), ("Ada Manager", 2)]
    first, manager = at_noon
    assert first.user_email == "earline@example.com"
    assert first.user_id == pd.id_of("user", "Earline Greenholt")
    assert (first.escalation_policy, first.escalation_policy_id) == ("Checkout On-Call", policy)
    assert first.schedule == "Checkout Primary"
    assert (first.start, first.end) == (day, night)
    assert (manager.schedule, manager.start, manager.end) == (None, None, None)
    assert [o.user_name for o in at_night] == ["Kelvin Pouros", "Ada Manager"]
    assert [o.user_name for o in by_schedule] == ["Someone Else"]
    query = pd.requests[0].query
    assert query["escalation_policy_ids[]"] == [policy]
    assert query["include[]"] == ["users"]
    assert query["since"] == ["2024-05-14T12:00:00Z"]


async def test_oncalls_follow_every_page() -> None:
    with running_pagerduty(TOKEN, max_limit=25) as pd:
        for n in range(30):
            pd.add_oncall(f"User {n}", f"u{n}@example.com", "Big Policy", 1)
        async with client_for(pd) as client:
            oncalls = await client.oncalls()
    assert [o.user_name for o in oncalls] == [f"User {n}" for n in range(30)]
    assert len(pd.requests) == 2


async def test_wrong_token_is_http_401(pd: FakePagerDuty) -> None:
    pd.add_incident("x", incident_id="PINC4")
    async with PagerDutyClient("wrong", base_url=pd.base_url) as client:
        with pytest.raises(PagerDutyError) as caught:
            await client.incident("PINC4")
    assert (caught.value.status, caught.value.code) == (401, 2006)
    assert "HTTP 401" in str(caught.value)
    assert "GET /incidents/PINC4" in str(caught.value)


async def test_unknown_incident_is_404_naming_the_id(pd: FakePagerDuty) -> None:
    async with client_for(pd) as client:
        with pytest.raises(PagerDutyError) as caught:
            await client.incident("PXXXX")
    error = caught.value
    assert (error.status, error.code, error.message) == (404, 2100, "Not Found")
    assert error.endpoint == "GET /incidents/PXXXX"
    assert error.errors == ["Incident PXXXX not found"]
    assert str(error).startswith(
        "PagerDuty GET /incidents/PXXXX failed (HTTP 404, code 2100): Not Found")


async def test_one_rate_limit_is_waited_out(pd: FakePagerDuty) -> None:
    pd.add_incident("x", incident_id="PINC5")
    pd.fail_next(1, status=429, retry_after="0")
    async with client_for(pd) as client:
        incident = await client.incident("PINC5")
    assert incident.id == "PINC5"
    assert len(pd.requests) == 2


async def test_pagerdutys_own_ratelimit_reset_header_is_honoured(pd: FakePagerDuty) -> None:
    pd.add_incident("x", incident_id="PINC6")
    pd.fail_next(1, status=429, retry_after=None, ratelimit_reset="0")
    async with client_for(pd) as client:
        await client.incident("PINC6")
    assert len(pd.requests) == 2


async def test_rate_limit_forever_gives_up_after_max_retries(pd: FakePagerDuty) -> None:
    pd.add_incident("x", incident_id="PINC7")
    pd.fail_next(10, status=429, retry_after="0")
    async with client_for(pd, max_retries=2) as client:
        with pytest.raises(PagerDutyError) as caught:
            await client.incident("PINC7")
    assert (caught.value.status, caught.value.code) == (429, 2020)
    assert "Rate Limit Exceeded" in str(caught.value)
    assert len(pd.requests) == 3


async def test_server_error_is_retried_once(pd: FakePagerDuty) -> None:
    pd.add_incident("x", incident_id="PINC8")
    pd.fail_next(1, status=503, retry_after="0")
    async with client_for(pd) as client:
        assert (await client.incident("PINC8")).id == "PINC8"
        pd.fail_next(2, status=500, retry_after="0")
        with pytest.raises(PagerDutyError) as caught:
            await client.incident("PINC8")
    assert caught.value.status == 500
    assert len(pd.requests) == 4


async def test_connection_refused_has_no_status() -> None:
    base_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with PagerDutyClient(TOKEN, base_url=base_url, max_retries=0) as client:
        with pytest.raises(PagerDutyError) as caught:
            await client.oncalls()
    assert caught.value.status is None
    assert "no HTTP response" in str(caught.value)
    assert base_url in str(caught.value)


async def test_rate_limit_waits_are_capped_and_default_to_one_second(
        pd: FakePagerDuty, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr("skills.pagerduty.client.asyncio.sleep", record)
    pd.add_incident("x", incident_id="PINC9")
    pd.fail_next(1, status=429, retry_after="120")
    pd.fail_next(1, status=429, retry_after=None)
    async with client_for(pd) as client:
        await client.incident("PINC9")
    assert waits == [5.0, 1.0]


async def test_bad_json_and_timeouts_are_pagerduty_errors() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/incidents/SLOW":
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, text="<html>maintenance</html>")

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        async with PagerDutyClient(TOKEN, base_url="http://pd.test", http=http) as client:
            with pytest.raises(PagerDutyError) as bad:
                await client.incident("PINC1")
            with pytest.raises(PagerDutyError) as slow:
                await client.incident("SLOW")
        assert not http.is_closed  # a shared client is the caller's to close
    assert bad.value.status == 200 and "maintenance" in bad.value.message
    assert slow.value.status is None and "no answer within 10 s" in str(slow.value)
