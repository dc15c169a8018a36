"""Property-based fuzzing of the webhook routes against the real app on SQLite and PostgreSQL
(hypothesis): real payload shapes with fields swapped for hostile values — huge, empty, NUL,
lone surrogates, wrong types, long numbers, dates from year 1 to 9999, deep nesting. For every
request: no 5xx; and every 2xx is applied by the worker (nothing left pending or parked).
Run with `-s` to see the tally."""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL

from knowledge.db import open_database
from knowledge.inbox import InboxStatus, items
from knowledge.orgs import get_org
from tests.bot.exposed import CHANGES_TOKEN, SLACK_SECRET, Exposed
from tests.bot.test_operations import SRE_COPILOT, serving
from tests.fakes import pagerduty as pd
from tests.fakes.alertmanager import alert, notification
from tests.fakes.slack_api import sign

EXAMPLES = 200  # per test and database: 2,400 requests in all, about 20 s
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
TALLY: Counter[str] = Counter()

_SPECIAL = st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x\udfff", "💥", "\u202e", " ",
                            "null", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
_LONG = st.integers(0, 6000).map(lambda n: "y" * n)
_TEXT = st.one_of(_SPECIAL, _LONG, st.text(st.characters(codec=None, exclude_categories=()),
                                           max_size=40))
_TIME = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
                     timezones=st.sampled_from([UTC, None])).map(
    lambda t: t.isoformat().replace("+00:00", "Z"))
_SCALAR = st.one_of(_TEXT, _TIME, st.integers(-(10 ** 30), 10 ** 30), st.booleans(), st.none(),
                    st.floats(allow_nan=False, allow_infinity=False))
_HOSTILE = st.recursive(_SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_TEXT, inner, max_size=3)), max_leaves=6)


def _mutated(base: dict[str, Any], paths: list[tuple[Any, ...]]) -> st.SearchStrategy[Any]:
    """`base` with a few of `paths` set to hostile values (or dropped)."""

    def apply(changes: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
        out = copy.deepcopy(base)
        for path, value in changes:
            target = out
            try:
                for step in path[:-1]:
                    target = target[step]
                if value is _DROP:
                    del target[path[-1]]
                else:
                    target[path[-1]] = value
            except (KeyError, IndexError, TypeError):
                continue  # an earlier change replaced what this path went through
        return out

    change = st.tuples(st.sampled_from(paths), st.one_of(_HOSTILE, st.just(_DROP)))
    return st.lists(change, min_size=1, max_size=4).map(apply)


_DROP = object()
AM_PATHS: list[tuple[Any, ...]] = [
    ("version",), ("groupKey",), ("status",), ("receiver",), ("truncatedAlerts",),
    ("commonLabels",), ("groupLabels", "service"), ("alerts", 0, "status"),
    ("alerts", 0, "labels", "alertname"), ("alerts", 0, "labels", "severity"),
    ("alerts", 0, "labels", "service"), ("alerts", 0, "labels", "instance"),
    ("alerts", 0, "annotations", "summary"), ("alerts", 0, "annotations", "runbook_url"),
    ("alerts", 0, "startsAt"), ("alerts", 0, "endsAt"), ("alerts", 0, "generatorURL"),
    ("alerts", 0, "fingerprint"), ("alerts", 0, "labels")]
PD_PATHS: list[tuple[Any, ...]] = [
    ("event", "id"), ("event", "event_type"), ("event", "resource_type"),
    ("event", "occurred_at"), ("event", "agent"), ("event", "agent", "summary"),
    ("event", "data", "id"), ("event", "data", "title"), ("event", "data", "html_url"),
    ("event", "data", "incident_key"), ("event", "data", "urgency"),
    ("event", "data", "service"), ("event", "data", "service", "summary"),
    ("event", "data", "assignees"), ("event", "data", "status")]
CHANGE_PATHS: list[tuple[Any, ...]] = [
    ("service",), ("kind",), ("occurred_at",), ("version",), ("previous_version",),
    ("description",), ("author",), ("link",), ("id",)]


async def _applied(exposed: Exposed) -> None:
    """The worker applies everything accepted: nothing pending, nothing parked."""
    await exposed.worker.drain()
    async with exposed.db.session() as s:
        org = await get_org(s, slug="default")
        left = [*await items(s, org_id=org.id or 0, status=InboxStatus.PENDING),
                *await items(s, org_id=org.id or 0, status=InboxStatus.FAILED)]
    assert left == [], [(i.source, i.last_error) for i in left]


def _tally(route: str, status: int) -> None:
    TALLY[f"{route} {status // 100}xx"] += 1
    TALLY["requests"] += 1
    assert status < 500, f"{route} answered {status}"


def _body(payload: Any) -> bytes:
    # ensure_ascii keeps lone surrogates as \\udXXX escapes: valid JSON a sender could send.
    return json.dumps(payload, ensure_ascii=True).encode()


@FUZZ
@given(payload=_mutated(notification([alert("HighErrorRate"), alert("HighLatency")]),
                        AM_PATHS))
async def test_alertmanager_fuzz(exposed: Exposed, payload: dict[str, Any]) -> None:
    response = await exposed.am(_body(payload))
    _tally("alertmanager", response.status_code)
    if response.status_code < 300:
        await _applied(exposed)


@FUZZ
@given(payload=_mutated(pd.incident_event("incident.triggered", assignees=("Ann",)), PD_PATHS))
async def test_pagerduty_fuzz(exposed: Exposed, payload: dict[str, Any]) -> None:
    response = await exposed.pd(_body(payload))
    _tally("pagerduty", response.status_code)
    if response.status_code < 300:
        await _applied(exposed)


@FUZZ
@given(payload=_mutated({"service": "checkout", "kind": "deploy", "version": "v2",
                         "previous_version": "v1", "description": "faster", "author": "ci",
                         "link": "https://ci/1", "occurred_at": "2026-11-20T03:00:00Z",
                         "id": "build-1"}, CHANGE_PATHS),
       as_list=st.booleans())
async def test_changes_fuzz(exposed: Exposed, payload: dict[str, Any], as_list: bool) -> None:
    response = await exposed.client.post(
        "/webhooks/changes", content=_body([payload] if as_list else payload),
        headers={"authorization": f"Bearer {CHANGES_TOKEN}",
                 "content-type": "application/json"})
    _tally("changes", response.status_code)
    if response.status_code < 300:
        await _applied(exposed)


@FUZZ
@given(body=st.one_of(_HOSTILE.map(_body), st.binary(max_size=200)),
       route=st.sampled_from(["/slack/events", "/api/messages"]))
async def test_chat_routes_fuzz_unsigned(exposed: Exposed, body: bytes, route: str) -> None:
    response = await exposed.client.post(route, content=body,
                                         headers={"content-type": "application/json"})
    _tally(route.strip("/").split("/")[0], response.status_code)
    assert response.status_code in (400, 401, 413, 422)


_SLACK_EVENT = {"token": "x", "team_id": "T0001", "api_app_id": "A1", "type": "event_callback",
                "event_id": "Ev1", "event_time": 1700000000, "event": {
                    "type": "app_mention", "user": "U0ANA", "text": "<@UBOT> status",
                    "ts": "1700000000.000100", "channel": "C1", "event_ts": "1700000000.000100"}}
SLACK_PATHS: list[tuple[Any, ...]] = [
    ("type",), ("team_id",), ("event_id",), ("event",), ("event", "type"), ("event", "user"),
    ("event", "text"), ("event", "ts"), ("event", "channel"), ("event", "thread_ts"),
    ("event", "blocks"), ("authorizations",)]
TEAMS_PATHS: list[tuple[Any, ...]] = [
    ("type",), ("id",), ("text",), ("from",), ("from", "id"), ("conversation",),
    ("conversation", "id"), ("conversation", "conversationType"), ("channelData",),
    ("channelData", "tenant"), ("entities",), ("recipient",), ("value",), ("name",),
    ("replyToId",), ("attachments",)]


@FUZZ
@given(payload=_mutated(_SLACK_EVENT, SLACK_PATHS))
async def test_slack_fuzz_signed(exposed: Exposed, payload: dict[str, Any]) -> None:
    """Signed as Slack signs: whatever the event holds, an answer below 500."""
    body = _body(payload)
    response = await exposed.client.post("/slack/events", content=body, headers={
        **sign(body, SLACK_SECRET), "content-type": "application/json"})
    _tally("slack signed", response.status_code)


@FUZZ
@given(data=st.data())
async def test_teams_fuzz_signed(exposed: Exposed, data: st.DataObject) -> None:
    """Signed as the Bot Framework channel signs: whatever the activity holds, below 500."""
    activity = data.draw(_mutated(exposed.teams.message("status"), TEAMS_PATHS))
    response = await exposed.client.post(
        "/api/messages", content=_body(activity),
        headers={**exposed.teams.sign_activity(activity if isinstance(
            activity.get("serviceUrl"), str) else {}), "content-type": "application/json"})
    _tally("teams signed", response.status_code)


def test_print_the_tally() -> None:
    """The figures for people (`pytest -s`): requests fuzzed in this process, by answer."""
    print("\nfuzz tally:", dict(sorted(TALLY.items())))


# --- the same, over HTTP against a real `sre-copilot serve` ------------------------------------

SERVE_EXAMPLES = 150  # per route and database


AM_TOKEN, PD_SECRET = "am-token", "pd-secret"


def test_fuzz_a_real_serve(db_url: URL, tmp_path: Path) -> None:
    """Hostile payloads for all three webhooks over HTTP to `serve` (uvicorn, its worker):
    no 5xx, and when the worker is done nothing accepted is pending or parked."""
    assert SRE_COPILOT.exists(), f"{SRE_COPILOT} is missing; pip install -e . first"
    answers: Counter[str] = Counter()
    with serving(db_url, tmp_path, "text", PAGERDUTY_WEBHOOK_SECRET=PD_SECRET,
                 CHANGES_WEBHOOK_TOKEN=CHANGES_TOKEN) as (base, log), httpx.Client(
            base_url=base, timeout=30) as client:

        def send(route: str, body: bytes, headers: dict[str, str]) -> None:
            status = client.post(route, content=body, headers={
                "content-type": "application/json", **headers}).status_code
            answers[f"{route} {status}"] += 1
            assert status < 500, f"{route} answered {status}"

        @settings(max_examples=SERVE_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(am=_mutated(notification([alert("HighErrorRate")]), AM_PATHS),
               pdp=_mutated(pd.incident_event("incident.triggered"), PD_PATHS),
               change=_mutated({"service": "checkout", "kind": "deploy", "version": "v2",
                                "occurred_at": "2026-11-20T03:00:00Z"}, CHANGE_PATHS))
        def each(am: dict[str, Any], pdp: dict[str, Any], change: dict[str, Any]) -> None:
            send("/webhooks/alertmanager", _body(am), {"authorization": f"Bearer {AM_TOKEN}"})
            raw = _body(pdp)
            send("/webhooks/pagerduty", raw, {"x-pagerduty-signature": pd.sign(raw, PD_SECRET)})
            send("/webhooks/changes", _body(change),
                 {"authorization": f"Bearer {CHANGES_TOKEN}"})

        each()
        accepted = sum(n for key, n in answers.items() if key.endswith(" 202"))
        assert accepted > 0
        asyncio.run(_drained(db_url))
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    print(f"\nserve fuzz ({db_url.get_backend_name()}):", dict(sorted(answers.items())))


async def _drained(url: URL) -> None:
    """Wait for serve's worker to apply everything; nothing may be left failed."""
    db = open_database(url)
    try:
        for _ in range(300):
            async with db.session() as s:
                org = await get_org(s, slug="default")
                pending = await items(s, org_id=org.id or 0, status=InboxStatus.PENDING)
                failed = await items(s, org_id=org.id or 0, status=InboxStatus.FAILED)
            assert failed == [], [(i.source, i.last_error) for i in failed]
            if not pending:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{len(pending)} accepted items were never applied")
    finally:
        await db.dispose()
