"""The PagerDuty REST API v2 client (async, httpx, read-only): one incident, its log entries,
open incidents and who is on call, with every failure raised as one `PagerDutyError` that names
the exact request and PagerDuty's own error code and message.

The copilot never writes to PagerDuty, so only GETs exist here. Lists follow PagerDuty's classic
pagination (`offset`/`limit`/`more`). Rate limits (HTTP 429) are waited out a bounded number of
times; a 5xx is retried once. A naive `datetime` is taken as UTC.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

ACCEPT = "application/vnd.pagerduty+json;version=2"
PAGE_LIMIT = 100  # PagerDuty's largest page; fewer pages spend less of the rate limit
MAX_RECORDS = 10_000  # PagerDuty answers 400 when offset + limit exceeds this
MAX_WAIT = 5.0  # seconds: a chat answer should not hang on a long rate-limit window
DEFAULT_WAIT = 1.0  # seconds, when a 429 or 5xx says nothing about when to come back


class PagerDutyError(Exception):
    """A failed call: what was asked (`endpoint`, e.g. `GET /incidents/PXXXX`) and what came
    back: `status` (HTTP status, None when no answer came: timeout, connection refused), `code`
    (PagerDuty's numeric error code, e.g. 2100), `message` and PagerDuty's `errors` details."""

    def __init__(self, message: str, *, endpoint: str, status: int | None = None,
                 code: int | None = None, errors: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.errors = list(errors)

    def __str__(self) -> str:
        if self.status is None:
            what = "no HTTP response"
        else:
            what = f"HTTP {self.status}" + (f", code {self.code}" if self.code is not None else "")
        text = f"PagerDuty {self.endpoint} failed ({what}): {self.message}"
        if self.errors:
            text += " — " + "; ".join(self.errors)
        return " ".join(text.splitlines())


class PdIncident(BaseModel):
    """An incident as an on-call engineer reads it; `assignees` are user names (empty once
    resolved: PagerDuty clears assignments then)."""

    model_config = ConfigDict(frozen=True)

    id: str
    number: int
    title: str
    status: str  # triggered, acknowledged, resolved
    urgency: str  # high, low
    service_id: str
    service_name: str
    escalation_policy_id: str | None
    escalation_policy: str | None
    created_at: datetime
    last_status_change_at: datetime | None
    html_url: str
    assignees: list[str]
    incident_key: str | None
    priority: str | None  # e.g. "P1"; None when the account has no priorities or none is set


class PdLogEntry(BaseModel):
    """One line of an incident's log: `type` as PagerDuty names it (`trigger_log_entry`,
    `acknowledge_log_entry`, `notify_log_entry`, …), `agent` who or what acted (a user's or a
    service's name) and `channel` how (`web_trigger`, `api`, `email`, …)."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    created_at: datetime
    summary: str
    agent: str | None
    channel: str | None


class PdOncall(BaseModel):
    """Who is on call for one escalation level of one escalation policy, through `schedule`
    (None when the rule names the user directly). `start`/`end` are None for a user who is
    always on call."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    user_name: str
    user_email: str | None
    escalation_policy_id: str
    escalation_policy: str
    escalation_level: int
    schedule_id: str | None
    schedule: str | None
    start: datetime | None
    end: datetime | None


# PagerDuty's JSON as it arrives (unknown fields ignored), flattened into the Pd* models below.

class _Reference(BaseModel):
    id: str
    summary: str | None = None
    name: str | None = None  # present on full objects (include[]=…) and on priorities


class _User(_Reference):
    email: str | None = None  # only on full users (include[]=users)


class _Assignment(BaseModel):
    assignee: _Reference


class _Channel(BaseModel):
    type: str | None = None


class _Incident(BaseModel):
    id: str
    incident_number: int
    title: str
    status: str
    urgency: str
    service: _Reference
    escalation_policy: _Reference | None = None
    created_at: datetime
    last_status_change_at: datetime | None = None
    html_url: str
    assignments: list[_Assignment] = []
    incident_key: str | None = None
    priority: _Reference | None = None


class _LogEntry(BaseModel):
    id: str
    type: str
    created_at: datetime
    summary: str = ""
    agent: _Reference | None = None
    channel: _Channel | None = None


class _Oncall(BaseModel):
    user: _User
    escalation_policy: _Reference
    escalation_level: int
    schedule: _Reference | None = None
    start: datetime | None = None
    end: datetime | None = None


_M = TypeVar("_M", bound=BaseModel)


class PagerDutyClient:
    """Reads one PagerDuty account at `base_url` with a REST API `token` (account or user key).

    Pass `http` to share a connection pool; it is then left open by `aclose`. `timeout` (seconds)
    bounds every request; `max_retries` bounds how often a 429 is waited out. `on_error` is told
    of every request that failed for good (after the retries), before it is raised: the caller
    counts them, say, without this package knowing how."""

    def __init__(self, token: str, *, base_url: str = "https://api.pagerduty.com",
                 timeout: float = 10.0, http: httpx.AsyncClient | None = None,
                 max_retries: int = 2,
                 on_error: Callable[[PagerDutyError], None] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.on_error = on_error
        self._headers = {"Authorization": f"Token token={token}", "Accept": ACCEPT}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this client created it."""
        if self._owns_http:
            await self._http.aclose()

    async def incident(self, incident_id: str) -> PdIncident:
        """One incident by its id (`PT4KHLK`) — PagerDuty also accepts the incident number."""
        path = f"/incidents/{quote(incident_id, safe='')}"
        body = await self._get(path, {}, key="incident")
        return _incident(self._validate(_Incident, body["incident"], f"GET {path}"))

    async def log_entries(self, incident_id: str, *, limit: int = 25) -> list[PdLogEntry]:
        """Up to `limit` log entries of an incident, newest first as PagerDuty returns them."""
        path = f"/incidents/{quote(incident_id, safe='')}/log_entries"
        rows = await self._pages(path, {}, key="log_entries", model=_LogEntry, limit=limit)
        return [_log_entry(row) for row in rows]

    async def incidents(self, *, statuses: Iterable[str] = ("triggered", "acknowledged"),
                        limit: int = 25) -> list[PdIncident]:
        """Up to `limit` incidents in any of `statuses` (all statuses when empty)."""
        params: dict[str, str | list[str]] = {}
        if wanted := list(statuses):
            params["statuses[]"] = wanted
        rows = await self._pages("/incidents", params, key="incidents", model=_Incident,
                                 limit=limit)
        return [_incident(row) for row in rows]

    async def oncalls(self, *, schedule_ids: Iterable[str] = (),
                      escalation_policy_ids: Iterable[str] = (),
                      at: datetime | None = None) -> list[PdOncall]:
        """Who is on call now (or at `at`), optionally only for some schedules or escalation
        policies; every page is read."""
        # `include[]=users` swaps the user reference for the full user, which carries the email.
        params: dict[str, str | list[str]] = {"include[]": ["users"]}
        if schedules := list(schedule_ids):
            params["schedule_ids[]"] = schedules
        if policies := list(escalation_policy_ids):
            params["escalation_policy_ids[]"] = policies
        if at is not None:
            # A one-second window: PagerDuty returns every on-call that overlaps the range, and
            # an empty range (since == until) is not one it documents.
            params["since"] = _iso(at)
            params["until"] = _iso(at + timedelta(seconds=1))
        rows = await self._pages("/oncalls", params, key="oncalls", model=_Oncall, limit=None)
        return [_oncall(row) for row in rows]

    async def _pages(self, path: str, params: Mapping[str, str | list[str]], *, key: str,
                     model: type[_M], limit: int | None) -> list[_M]:
        """Up to `limit` (None: all) items of `key`, following `offset`/`more` page by page."""
        out: list[_M] = []
        offset = 0
        while limit is None or len(out) < limit:
            want = PAGE_LIMIT if limit is None else min(PAGE_LIMIT, limit - len(out))
            want = min(want, MAX_RECORDS - offset)
            if want <= 0:
                break
            page_params = {**params, "offset": str(offset), "limit": str(want)}
            body = await self._get(path, page_params, key=key)
            endpoint = _endpoint(path, page_params)
            page = body[key]
            if not isinstance(page, list):
                raise PagerDutyError(f"`{key}` is not a list: {str(page)[:200]!r}",
                                     endpoint=endpoint, status=200)
            out.extend(self._validate(model, item, endpoint) for item in page)
            # Step by what came back, not by what was asked: PagerDuty may cap `limit`.
            offset += len(page)
            if body.get("more") is not True or not page:
                break
        return out if limit is None else out[:limit]

    async def _get(self, path: str, params: Mapping[str, str | list[str]], *,
                   key: str) -> dict[str, Any]:
        """`_fetch`, telling `on_error` of a failure."""
        try:
            return await self._fetch(path, params, key=key)
        except PagerDutyError as exc:
            if self.on_error is not None:
                self.on_error(exc)
            raise

    async def _fetch(self, path: str, params: Mapping[str, str | list[str]], *,
                     key: str) -> dict[str, Any]:
        """One GET with its bounded retries; the decoded body, which holds `key`.

        The retry loop is written out here because no retry library is a project dependency,
        and the rules are PagerDuty's own: wait out a 429 as told (capped), retry a 5xx once."""
        endpoint = _endpoint(path, params)
        url = self.base_url + path
        rate_limited = server_errors = 0
        while True:
            try:
                response = await self._http.get(url, params=dict(params), headers=self._headers,
                                                timeout=self.timeout)
            except httpx.TimeoutException as exc:
                raise PagerDutyError(f"no answer within {self.timeout:g} s "
                                     f"({type(exc).__name__})", endpoint=endpoint) from exc
            except httpx.TransportError as exc:
                raise PagerDutyError(f"cannot reach {self.base_url}: {type(exc).__name__}: "
                                     f"{exc or 'no detail'}", endpoint=endpoint) from exc
            if response.status_code == 429 and rate_limited < self.max_retries:
                rate_limited += 1
            elif response.is_server_error and server_errors < min(1, self.max_retries):
                server_errors += 1
            else:
                break
            await asyncio.sleep(_retry_wait(response))
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_error:
            message, code, errors = _upstream_error(body)
            raise PagerDutyError(message or response.text[:300].strip()
                                 or response.reason_phrase, endpoint=endpoint,
                                 status=response.status_code, code=code, errors=errors)
        if not isinstance(body, dict) or key not in body:
            raise PagerDutyError(f"not a PagerDuty `{key}` answer: {response.text[:300]!r}",
                                 endpoint=endpoint, status=response.status_code)
        return body

    @staticmethod
    def _validate(model: type[_M], raw: Any, endpoint: str) -> _M:
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise PagerDutyError(f"unexpected {model.__name__.lstrip('_')} shape at {where}: "
                                 f"{first['msg']}", endpoint=endpoint, status=200) from exc



def _name(ref: _Reference) -> str:
    return ref.name or ref.summary or ref.id


def _incident(raw: _Incident) -> PdIncident:
    policy = raw.escalation_policy
    return PdIncident(
        id=raw.id, number=raw.incident_number, title=raw.title, status=raw.status,
        urgency=raw.urgency, service_id=raw.service.id, service_name=_name(raw.service),
        escalation_policy_id=policy.id if policy else None,
        escalation_policy=_name(policy) if policy else None,
        created_at=raw.created_at, last_status_change_at=raw.last_status_change_at,
        html_url=raw.html_url, assignees=[_name(a.assignee) for a in raw.assignments],
        incident_key=raw.incident_key, priority=_name(raw.priority) if raw.priority else None)


def _log_entry(raw: _LogEntry) -> PdLogEntry:
    return PdLogEntry(id=raw.id, type=raw.type, created_at=raw.created_at, summary=raw.summary,
                      agent=_name(raw.agent) if raw.agent else None,
                      channel=raw.channel.type if raw.channel else None)


def _oncall(raw: _Oncall) -> PdOncall:
    return PdOncall(
        user_id=raw.user.id, user_name=_name(raw.user), user_email=raw.user.email,
        escalation_policy_id=raw.escalation_policy.id,
        escalation_policy=_name(raw.escalation_policy), escalation_level=raw.escalation_level,
        schedule_id=raw.schedule.id if raw.schedule else None,
        schedule=_name(raw.schedule) if raw.schedule else None, start=raw.start, end=raw.end)


def _upstream_error(body: Any) -> tuple[str | None, int | None, list[str]]:
    """PagerDuty's `{"error": {"message", "code", "errors"}}`, as far as it is there."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        return error, None, []
    if not isinstance(error, dict):
        return None, None, []
    message = error.get("message")
    code = error.get("code")
    errors = error.get("errors")
    return (str(message) if message else None,
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            [str(e) for e in errors] if isinstance(errors, list) else [])


def _retry_wait(response: httpx.Response) -> float:
    """Seconds to wait before retrying: `Retry-After` (seconds or an HTTP date), else PagerDuty's
    own `ratelimit-reset` (seconds), else DEFAULT_WAIT; never more than MAX_WAIT."""
    for header in ("Retry-After", "ratelimit-reset"):
        value = response.headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            seconds = (_utc(when) - datetime.now(UTC)).total_seconds()
        if math.isfinite(seconds):
            return min(max(seconds, 0.0), MAX_WAIT)
    return DEFAULT_WAIT


def _endpoint(path: str, params: Mapping[str, str | list[str]]) -> str:
    """`GET /path?k=v&…`, readable (unencoded), as an error message names the request."""
    query = "&".join(f"{k}={v}" for k, vs in params.items()
                     for v in (vs if isinstance(vs, list) else [vs]))
    return f"GET {path}" + (f"?{query}" if query else "")


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _iso(t: datetime) -> str:
    return _utc(t).isoformat(timespec="seconds").replace("+00:00", "Z")
