"""The Prometheus HTTP API client (async, httpx): queries, series, labels, metadata, alerts and
rules, with every failure raised as one `PrometheusError` that names the exact query and range.

Times go out as unix seconds; a naive `datetime` is taken as UTC. Values come back as floats
(`"NaN"`, `"+Inf"` and `"-Inf"` included). The client never retries: the caller decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
import numpy as np

from skills.types import Series


class PrometheusError(Exception):
    """A failed call: what was asked (`query`, `start`/`end`, `step`, `endpoint`) and what came
    back (`status`, `error_type` — Prometheus' `errorType`, or `timeout`, `connection`, `http`,
    `invalid_response` — and the upstream `message`). An instant query's time is `start`."""

    def __init__(self, message: str, *, endpoint: str, error_type: str,
                 query: str | None = None, start: datetime | None = None,
                 end: datetime | None = None, step: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.error_type = error_type
        self.query = query
        self.start = start
        self.end = end
        self.step = step
        self.status = status

    def __str__(self) -> str:
        http = f", HTTP {self.status}" if self.status is not None else ""
        text = f"Prometheus {self.endpoint} failed ({self.error_type}{http}): {self.message}"
        if self.query is not None:
            text += f" — query: `{self.query}`"
        if self.start is not None and self.end is not None:
            text += f" range {_rfc3339(self.start)}..{_rfc3339(self.end)}"
        elif self.start is not None:
            text += f" at {_rfc3339(self.start)}"
        if self.step is not None:
            text += f" step {self.step:g}s"
        return " ".join(text.splitlines())


@dataclass(frozen=True)
class Sample:
    """One value of an instant vector (or a scalar, with empty labels) at unix seconds `time`."""

    labels: dict[str, str]
    time: float
    value: float


class PrometheusClient:
    """Talks to one Prometheus at `base_url` (a path prefix such as `/prometheus` is kept).

    Pass `http` to share a connection pool; it is then left open by `aclose`. `timeout` (seconds)
    bounds every request; `headers` (e.g. `Authorization`) go on every request. `on_error` is
    told of every failed API call before it is raised: the caller counts them, say, without
    this package knowing how."""

    def __init__(self, base_url: str, *, timeout: float = 10.0,
                 http: httpx.AsyncClient | None = None,
                 headers: dict[str, str] | None = None,
                 on_error: Callable[[PrometheusError], None] | None = None,
                 external_url: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        # Where people open this Prometheus (links in answers); the API address by default.
        self.external_url = (external_url or base_url).rstrip("/")
        self.timeout = timeout
        self.on_error = on_error
        self._headers = dict(headers or {})
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

    async def query(self, promql: str, *, at: datetime | None = None) -> list[Sample]:
        """Evaluate `promql` at `at` (default: Prometheus' now). A scalar gives one Sample with
        empty labels; a range vector (`x[5m]`) gives one Sample per point."""
        form = {"query": promql}
        if at is not None:
            form["time"] = _unix(at)
        data = await self._call("query", form=form, query=promql, start=at)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar":
            return [Sample({}, float(result[0]), float(result[1]))]
        if kind == "vector":
            return [Sample(dict(item["metric"]), float(item["value"][0]),
                           float(item["value"][1])) for item in result]
        if kind == "matrix":
            return [Sample(dict(item["metric"]), float(t), float(v))
                    for item in result for t, v in item.get("values", [])]
        raise PrometheusError(f"result type {kind!r} is not a number", endpoint="query",
                              error_type="invalid_response", query=promql, start=at)

    async def query_range(self, promql: str, *, start: datetime, end: datetime,
                          step: float) -> list[Series]:
        """Evaluate `promql` from `start` to `end` every `step` seconds: one Series per result
        series, times in unix seconds."""
        form = {"query": promql, "start": _unix(start), "end": _unix(end), "step": f"{step:g}"}
        data = await self._call("query_range", form=form, query=promql, start=start, end=end,
                                step=step)
        if data.get("resultType") != "matrix":
            raise PrometheusError(f"result type {data.get('resultType')!r} is not a matrix",
                                  endpoint="query_range", error_type="invalid_response",
                                  query=promql, start=start, end=end, step=step)
        out: list[Series] = []
        for item in data["result"]:
            points = item.get("values", [])
            out.append(Series(labels=dict(item["metric"]),
                              times=np.array([float(t) for t, _ in points], dtype=np.float64),
                              values=np.array([float(v) for _, v in points], dtype=np.float64)))
        return out

    async def series(self, match: list[str], *, start: datetime | None = None,
                     end: datetime | None = None) -> list[dict[str, str]]:
        """Label sets of the series that match any of the `match` selectors."""
        form: dict[str, str | list[str]] = {"match[]": list(match), **_window(start, end)}
        data = await self._call("series", form=form, query=", ".join(match), start=start,
                                end=end)
        return [dict(item) for item in data]

    async def labels(self, *, match: list[str] | None = None) -> list[str]:
        """Label names, optionally only those of series matching `match`."""
        form: dict[str, str | list[str]] = {"match[]": list(match)} if match else {}
        data = await self._call("labels", form=form,
                                query=", ".join(match) if match else None)
        return [str(name) for name in data]

    async def label_values(self, name: str, *, match: list[str] | None = None) -> list[str]:
        """Values of label `name` (`__name__` lists metric names)."""
        params: dict[str, str | list[str]] = {"match[]": list(match)} if match else {}
        data = await self._call(f"label/{quote(name, safe='')}/values", params=params,
                                query=", ".join(match) if match else None)
        return [str(value) for value in data]

    async def metadata(self, metric: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Type, help and unit per metric name, as scraped (empty for backfilled-only data)."""
        params: dict[str, str | list[str]] = {"metric": metric} if metric else {}
        data = await self._call("metadata", params=params, query=metric)
        return {str(k): list(v) for k, v in data.items()}

    async def alerts(self) -> list[dict[str, Any]]:
        """Active (pending and firing) alerts."""
        data = await self._call("alerts")
        return list(data.get("alerts", []))

    async def rules(self) -> list[dict[str, Any]]:
        """Rule groups, each with its alerting and recording rules and their state."""
        data = await self._call("rules")
        return list(data.get("groups", []))

    async def _call(self, endpoint: str, *, form: dict[str, Any] | None = None,
                    params: dict[str, Any] | None = None, query: str | None = None,
                    start: datetime | None = None, end: datetime | None = None,
                    step: float | None = None) -> Any:
        """`_request`, telling `on_error` of a failure."""
        try:
            return await self._request(endpoint, form=form, params=params, query=query,
                                       start=start, end=end, step=step)
        except PrometheusError as exc:
            if self.on_error is not None:
                self.on_error(exc)
            raise

    async def _request(self, endpoint: str, *, form: dict[str, Any] | None = None,
                       params: dict[str, Any] | None = None, query: str | None = None,
                       start: datetime | None = None, end: datetime | None = None,
                       step: float | None = None) -> Any:
        """One API call: POST `form` or GET `params`; the `data` member of a success body."""

        def fail(message: str, error_type: str, status: int | None = None) -> PrometheusError:
            return PrometheusError(message, endpoint=endpoint, error_type=error_type,
                                   query=query, start=start, end=end, step=step, status=status)

        url = f"{self.base_url}/api/v1/{endpoint}"
        try:
            if form is not None:
                response = await self._http.post(url, data=form, headers=self._headers,
                                                 timeout=self.timeout)
            else:
                response = await self._http.get(url, params=params, headers=self._headers,
                                                timeout=self.timeout)
        except httpx.TimeoutException as exc:
            raise fail(f"no answer within {self.timeout:g} s ({type(exc).__name__})",
                       "timeout") from exc
        except httpx.TransportError as exc:
            raise fail(f"{type(exc).__name__}: {exc or 'no detail'} ({url})",
                       "connection") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            raise fail(str(body.get("error", "")), str(body.get("errorType") or "unknown"),
                       response.status_code)
        if response.is_error:
            raise fail(response.text[:500].strip() or response.reason_phrase, "http",
                       response.status_code)
        if not isinstance(body, dict) or body.get("status") != "success" or "data" not in body:
            raise fail(f"not a Prometheus API answer: {response.text[:300]!r}",
                       "invalid_response", response.status_code)
        return body["data"]


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _unix(t: datetime) -> str:
    return f"{_utc(t).timestamp():.3f}"


def _rfc3339(t: datetime) -> str:
    return _utc(t).isoformat(timespec="seconds").replace("+00:00", "Z")


def _window(start: datetime | None, end: datetime | None) -> dict[str, str]:
    out = {}
    if start is not None:
        out["start"] = _unix(start)
    if end is not None:
        out["end"] = _unix(end)
    return out
