"""A fake PagerDuty REST API v2 on loopback for tests (`running_pagerduty`): a real HTTP server in
a background thread that speaks PagerDuty's protocol as its developer docs describe it, written
independently of the copilot's client.

What it implements: `Authorization: Token token=…` (401, code 2006, otherwise); GET
`/incidents/{id}` (404, code 2100, for an unknown one), `/incidents` (`statuses[]`),
`/incidents/{id}/log_entries` (newest first) and `/oncalls` (`schedule_ids[]`,
`escalation_policy_ids[]`, `since`/`until` overlap, `include[]=users` for full users with their
email); classic pagination (`offset`, `limit` default 25 and capped at `max_limit`, `more`,
`total` null unless `total=true`, 400 past 10 000 records); and injected failures (`fail_next`):
429 with `Retry-After` and PagerDuty's `ratelimit-*` headers, or a 5xx. Every request is
recorded in `requests`, failed ones included.

Payload shapes follow PagerDuty's API reference: references are `{id, type: "<kind>_reference",
summary, self, html_url}`, times are RFC 3339 UTC with a `Z`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

API = "https://api.pagerduty.com"
WEB = "https://acme.pagerduty.com"
MAX_RECORDS = 10_000
EPOCH = datetime(2024, 5, 14, 9, 0, tzinfo=UTC)  # default creation time of seeded incidents

Response = tuple[int, dict[str, str], Any]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; `headers` keys are lower-case, `query` values are
    lists (`statuses[]` repeats), `path` is still percent-encoded."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    ratelimit_reset: str | None


@dataclass
class FakePagerDuty:
    """The fake's state: seed it with `add_*`, read `requests` after the client ran."""

    token: str
    base_url: str = ""
    max_limit: int = 100
    requests: list[RecordedRequest] = field(default_factory=list)
    _incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    _log_entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _oncalls: list[dict[str, Any]] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _ids: dict[tuple[str, str], str] = field(default_factory=dict)
    _counter: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- seeding -------------------------------------------------------------------------

    def add_incident(self, title: str, *, incident_id: str | None = None,
                     status: str = "triggered", urgency: str = "high",
                     service: str = "Checkout API", escalation_policy: str = "Checkout On-Call",
                     assignees: Sequence[str] = ("Earline Greenholt",),
                     incident_key: str | None = None, priority: str | None = None,
                     created_at: datetime | None = None,
                     last_status_change_at: datetime | None = None) -> dict[str, Any]:
        """Seed an incident; returns its JSON as GET /incidents/{id} serves it. A resolved
        incident has no assignments, as in PagerDuty."""
        with self._lock:
            number = len(self._incidents) + 1
            incident_id = incident_id or self._new_id()
            created = created_at or EPOCH + timedelta(minutes=number)
            changed = last_status_change_at or created
            service_ref = self._ref("service", service)
            incident: dict[str, Any] = {
                "id": incident_id,
                "type": "incident",
                "summary": f"[#{number}] {title}",
                "self": f"{API}/incidents/{incident_id}",
                "html_url": f"{WEB}/incidents/{incident_id}",
                "incident_number": number,
                "title": title,
                "description": title,
                "created_at": _iso(created),
                "updated_at": _iso(changed),
                "status": status,
                "incident_key": incident_key or f"{service.lower().replace(' ', '-')}-{number}",
                "service": service_ref,
                "assignments": [] if status == "resolved" else [
                    {"at": _iso(created), "assignee": self._ref("user", name)}
                    for name in assignees],
                "assigned_via": "escalation_policy",
                "last_status_change_at": _iso(changed),
                "last_status_change_by": service_ref,
                "resolved_at": _iso(changed) if status == "resolved" else None,
                "first_trigger_log_entry": {
                    "id": self._new_id(), "type": "trigger_log_entry_reference",
                    "summary": "Triggered through the API",
                    "self": f"{API}/log_entries/{incident_id}T",
                    "html_url": f"{WEB}/incidents/{incident_id}/log_entries/{incident_id}T"},
                "alert_counts": {"all": 1, "triggered": 0 if status == "resolved" else 1,
                                 "resolved": 1 if status == "resolved" else 0},
                "is_mergeable": True,
                "escalation_policy": self._ref("escalation_policy", escalation_policy),
                "teams": [],
                "pending_actions": [],
                "acknowledgements": [],
                "alert_grouping": None,
                "priority": None if priority is None else {
                    **self._ref("priority", priority), "type": "priority", "name": priority,
                    "description": "", "color": "a8171c"},
                "resolve_reason": None,
                "urgency": urgency,
            }
            self._incidents[incident_id] = incident
            self._log_entries[incident_id] = []
            return incident

    def add_log_entry(self, incident_id: str, type: str, summary: str, *,
                      agent: str | None = "Earline Greenholt", at: datetime | None = None,
                      channel: str | None = "website") -> dict[str, Any]:
        """Seed a log entry (`type` e.g. `acknowledge_log_entry`) of a seeded incident; `agent`
        is a user's name. Without `at` it comes a minute after the incident's last entry."""
        with self._lock:
            incident = self._incidents[incident_id]
            entries = self._log_entries[incident_id]
            when = at or datetime.fromisoformat(incident["created_at"]) + timedelta(
                minutes=len(entries))
            entry_id = self._new_id()
            entry: dict[str, Any] = {
                "id": entry_id,
                "type": type,
                "summary": summary,
                "self": f"{API}/log_entries/{entry_id}",
                "html_url": None,
                "created_at": _iso(when),
                "agent": self._ref("user", agent) if agent else None,
                "channel": {"type": channel} if channel else None,
                "service": incident["service"],
                "incident": {"id": incident_id, "type": "incident_reference",
                             "summary": incident["summary"], "self": incident["self"],
                             "html_url": incident["html_url"]},
                "teams": [],
                "contexts": [],
                "event_details": {},
            }
            entries.append(entry)
            return entry

    def add_oncall(self, user_name: str, email: str, escalation_policy: str, level: int,
                   schedule: str | None = None, start: datetime | None = None,
                   end: datetime | None = None) -> dict[str, Any]:
        """Seed an on-call (None `start`/`end`: always on call); returns it with the full user
        (as `include[]=users` serves it). Ids come from the names: the same name, the same id."""
        with self._lock:
            user_ref = self._ref("user", user_name)
            user = {**user_ref, "type": "user", "name": user_name, "email": email,
                    "time_zone": "Etc/UTC", "color": "purple", "role": "user",
                    "description": None, "job_title": None, "invitation_sent": False,
                    "teams": [], "contact_methods": [], "notification_rules": []}
            oncall: dict[str, Any] = {
                "escalation_policy": self._ref("escalation_policy", escalation_policy),
                "escalation_level": level,
                "schedule": self._ref("schedule", schedule) if schedule else None,
                "user": user,
                "start": _iso(start) if start else None,
                "end": _iso(end) if end else None,
            }
            self._oncalls.append(oncall)
            return oncall

    def fail_next(self, n: int, status: int = 429, retry_after: str | None = "0", *,
                  ratelimit_reset: str | None = None) -> None:
        """Answer the next `n` requests with `status` (429: PagerDuty's rate-limit body and
        headers; 5xx: an internal error), with `Retry-After` unless it is None."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after, ratelimit_reset)
                                  for _ in range(n))

    def id_of(self, kind: str, name: str) -> str:
        """The id the fake gave a named `service`, `escalation_policy`, `schedule` or `user`."""
        with self._lock:
            return self._ids[(kind, name)]

    # --- serving -------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str]) -> Response:
        """Route one request; (status, extra headers, JSON body)."""
        split = urlsplit(target)
        query = parse_qs(split.query, keep_blank_values=True)
        with self._lock:
            self.requests.append(RecordedRequest(method, split.path, query, headers))
            if self._failures:
                return _failure(self._failures.pop(0))
            if headers.get("authorization") != f"Token token={self.token}":
                return _error(401, "Unauthorized", 2006)
            parts = [unquote(p) for p in split.path.strip("/").split("/")]
            if method != "GET":
                return _error(404, "Not Found", 2100)
            if parts == ["incidents"]:
                wanted = set(query.get("statuses[]", []))
                rows = [i for i in self._incidents.values() if not wanted or i["status"] in wanted]
                return self._page("incidents", rows, query)
            if len(parts) in (2, 3) and parts[0] == "incidents":
                incident = self._find_incident(parts[1])
                if incident is None:
                    return _error(404, "Not Found", 2100, [f"Incident {parts[1]} not found"])
                if len(parts) == 2:
                    return 200, {}, {"incident": incident}
                if parts[2] == "log_entries":
                    entries = sorted(self._log_entries[incident["id"]],
                                     key=lambda e: e["created_at"], reverse=True)
                    return self._page("log_entries", entries, query)
            if parts == ["oncalls"]:
                return self._serve_oncalls(query)
            return _error(404, "Not Found", 2100)

    def _serve_oncalls(self, query: dict[str, list[str]]) -> Response:
        try:
            now = datetime.now(UTC)
            since = _parse_time(query["since"][0]) if "since" in query else now
            until = _parse_time(query["until"][0]) if "until" in query else since
        except ValueError:
            return _error(400, "Invalid time values in 'since' and/or 'until' parameters", 2004)
        schedules = set(query.get("schedule_ids[]", []))
        policies = set(query.get("escalation_policy_ids[]", []))
        full_users = "users" in query.get("include[]", [])
        rows = []
        for oncall in self._oncalls:
            if schedules and (oncall["schedule"] or {}).get("id") not in schedules:
                continue
            if policies and oncall["escalation_policy"]["id"] not in policies:
                continue
            start = _parse_time(oncall["start"]) if oncall["start"] else None
            end = _parse_time(oncall["end"]) if oncall["end"] else None
            if not _overlaps(start, end, since, until):
                continue
            user = oncall["user"]
            rows.append({**oncall, "user": user if full_users else {
                k: user[k] for k in ("id", "summary", "self", "html_url")} | {
                "type": "user_reference"}})
        return self._page("oncalls", rows, query)

    def _page(self, key: str, rows: list[dict[str, Any]],
              query: dict[str, list[str]]) -> Response:
        try:
            offset = int(query.get("offset", ["0"])[0])
            limit = int(query.get("limit", ["25"])[0])
        except ValueError:
            return _error(400, "Invalid Input Provided", 2001, ["offset and limit are integers"])
        if offset < 0 or limit < 1:
            return _error(400, "Invalid Input Provided", 2001, ["offset >= 0, limit >= 1"])
        if offset + limit > MAX_RECORDS:
            return _error(400, "Invalid Input Provided", 2001,
                          [f"Offset + limit must be at most {MAX_RECORDS}"])
        limit = min(limit, self.max_limit)
        total = len(rows) if query.get("total", ["false"])[0] == "true" else None
        return 200, {}, {key: rows[offset:offset + limit], "limit": limit, "offset": offset,
                         "more": offset + limit < len(rows), "total": total}

    def _find_incident(self, key: str) -> dict[str, Any] | None:
        if key in self._incidents:
            return self._incidents[key]
        # PagerDuty also accepts the incident number in place of the id.
        return next((i for i in self._incidents.values()
                     if str(i["incident_number"]) == key), None)

    def _new_id(self) -> str:
        self._counter += 1
        n, digits = self._counter, ""
        for _ in range(6):
            n, r = divmod(n, 36)
            digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[r] + digits
        return "P" + digits

    def _ref(self, kind: str, name: str) -> dict[str, Any]:
        ref_id = self._ids.setdefault((kind, name), self._new_id())
        plural = {"escalation_policy": "escalation_policies", "priority": "priorities"}.get(
            kind, kind + "s")
        return {"id": ref_id, "type": f"{kind}_reference", "summary": name,
                "self": f"{API}/{plural}/{ref_id}", "html_url": f"{WEB}/{plural}/{ref_id}"}


@contextmanager
def running_pagerduty(token: str = "pd-test-token", *,
                      max_limit: int = 100) -> Iterator[FakePagerDuty]:
    """A sync context manager: serve a fresh FakePagerDuty on a free loopback port in a daemon
    thread (so async tests' event loops never block on it), stop it on exit. `max_limit` is the
    page size cap (PagerDuty's is 100); lower it to exercise pagination with few records."""
    fake = FakePagerDuty(token=token, max_limit=max_limit)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    server.daemon_threads = True
    host, port = server.server_address[:2]
    fake.base_url = f"http://{host!s}:{port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="fake-pagerduty", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _handler_for(fake: FakePagerDuty) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects of an API

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = fake.handle(self.command, self.path, headers)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the recorded requests are what tests look at

    return Handler


def _failure(failure: _Failure) -> Response:
    headers: dict[str, str] = {}
    if failure.retry_after is not None:
        headers["Retry-After"] = failure.retry_after
    if failure.status == 429:
        headers |= {"ratelimit-limit": "960", "ratelimit-remaining": "0"}
        if failure.ratelimit_reset is not None:
            headers["ratelimit-reset"] = failure.ratelimit_reset
        return 429, headers, {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
    status, headers_, body = _error(failure.status, "An internal error has occurred.", 2000)
    return status, headers | headers_, body


def _error(status: int, message: str, code: int,
           errors: Sequence[str] | None = None) -> Response:
    error: dict[str, Any] = {"message": message, "code": code}
    if errors:
        error["errors"] = list(errors)
    return status, {}, {"error": error}


def _overlaps(start: datetime | None, end: datetime | None, since: datetime,
              until: datetime) -> bool:
    """Whether an on-call [start, end) overlaps the range [since, until) (a point if equal)."""
    if end is not None and end <= since:
        return False
    if start is None:
        return True
    return start < until if until > since else start <= since


def _parse_time(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _iso(t: datetime) -> str:
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")
