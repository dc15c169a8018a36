"""Prometheus as tools: an instant query, a range query with its PNG chart, label and series
discovery, and what is firing. Each answer carries the exact query and time it ran at as
evidence; a failed query comes back as an error result naming the query and the upstream error,
so the caller (a person or the model) can correct it."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, Field, field_validator

from skills.charts import ChartPanel, Unit, format_value, render_signals
from skills.prometheus.client import PrometheusClient, PrometheusError, Sample
from skills.types import (
    Evidence,
    Series,
    SkillContext,
    SkillResult,
    format_duration,
    parse_duration,
    utc,
)

MAX_SHOWN = 20  # samples or series listed in a summary; the rest are counted
MAX_EVIDENCE = 10
TARGET_POINTS = 240  # a range query's automatic step aims at this many points


def unit_of(query: str) -> Unit:
    """What a query's numbers are, judged from its metric names (Prometheus naming
    conventions): `_seconds` durations, `_bytes` sizes, a ratio of two rates; else unitless."""
    if "histogram_quantile" in query or re.search(r"_seconds(_bucket|_sum|_count)?\b", query):
        return "seconds" if "_seconds_total" not in query else "cores"
    if re.search(r"_bytes\b", query):
        return "bytes"
    if re.search(r"\)\s*/\s*(sum|rate|\()", query) and "rate(" in query:
        return "ratio"
    return "value"


def _labels(labels: dict[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    name = labels.get("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items()))
    return f"{name}{{{inner}}}" if inner or not name else name


def _error(what: str, exc: PrometheusError) -> SkillResult:
    return SkillResult(summary=f"{what} failed: {exc}", error=str(exc),
                       data={"query": exc.query})


class PromQuery:
    name: ClassVar[str] = "prometheus_query"
    description: ClassVar[str] = (
        "Run an instant PromQL query against Prometheus and return the value of each series "
        "now (or at `at`). Use it for 'what is X right now' questions. Returns up to 20 series "
        "with their labels and values.")

    class Input(BaseModel):
        query: str = Field(min_length=1, description="A PromQL expression.")
        at: datetime | None = Field(default=None, description="ISO 8601 time; default now.")

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult:
        assert isinstance(args, PromQuery.Input)
        prom: PrometheusClient = ctx.client("prometheus")
        at = utc(args.at) if args.at else datetime.now(UTC)
        try:
            samples = await prom.query(args.query, at=at)
        except PrometheusError as exc:
            return _error("Prometheus query", exc)
        unit = unit_of(args.query)
        samples = sorted(samples, key=lambda s: -s.value if math.isfinite(s.value) else 0.0)
        evidence = [_sample_evidence(f"ev-{i}", args.query, at, s, unit)
                    for i, s in enumerate(samples[:MAX_EVIDENCE], start=1)]
        if not samples:
            summary = f"`{args.query}` returned no series at {at:%Y-%m-%d %H:%M} UTC."
        else:
            lines = [f"- {_labels(s.labels) or 'scalar'} = {format_value(unit, s.value)}"
                     for s in samples[:MAX_SHOWN]]
            more = len(samples) - MAX_SHOWN
            summary = (f"`{args.query}` at {at:%Y-%m-%d %H:%M} UTC, {len(samples)} series:\n"
                       + "\n".join(lines) + (f"\n… and {more} more" if more > 0 else ""))
        return SkillResult(summary=summary, evidence=evidence, data={
            "query": args.query, "at": at.isoformat(), "unit": unit,
            "samples": [{"labels": s.labels, "value": s.value} for s in samples[:MAX_SHOWN]]})


def _sample_evidence(eid: str, query: str, at: datetime, s: Sample, unit: Unit) -> Evidence:
    return Evidence(id=eid, source="prometheus", query=query, start=at, end=at,
                    labels={k: v for k, v in s.labels.items() if k != "__name__"},
                    values={"value": s.value},
                    summary=f"{_labels(s.labels) or 'value'} = {format_value(unit, s.value)}")


class PromRange:
    name: ClassVar[str] = "prometheus_range"
    description: ClassVar[str] = (
        "Run a PromQL range query over a period (`last` such as 1h, or `start`/`end`) and "
        "return, per series, its first, last, min, max and mean values, plus a PNG chart. Use "
        "it for 'how did X behave over the last N hours' questions.")

    class Input(BaseModel):
        query: str = Field(min_length=1, description="A PromQL expression.")
        last: str | None = Field(default=None,
                                 description="How far back from `end`, e.g. 30m, 2h, 1d.")
        start: datetime | None = None
        end: datetime | None = Field(default=None, description="Default now.")
        step_seconds: float | None = Field(default=None, gt=0,
                                           description="Default: about 240 points.")

        @field_validator("last")
        @classmethod
        def _duration(cls, value: str | None) -> str | None:
            if value is not None:
                parse_duration(value)
            return value

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult:
        assert isinstance(args, PromRange.Input)
        prom: PrometheusClient = ctx.client("prometheus")
        end = utc(args.end) if args.end else datetime.now(UTC)
        if args.start is not None:
            start = utc(args.start)
        else:
            start = end - (parse_duration(args.last) if args.last else timedelta(hours=1))
        if start >= end:
            return SkillResult(summary=f"The range {start:%H:%M}..{end:%H:%M} is empty: start "
                               "must come before end.", error="empty range")
        step = args.step_seconds or max(15.0, round((end - start).total_seconds()
                                                    / TARGET_POINTS))
        try:
            series = await prom.query_range(args.query, start=start, end=end, step=step)
        except PrometheusError as exc:
            return _error("Prometheus range query", exc)
        unit = unit_of(args.query)
        stats = [(s, st) for s in series if (st := _stats(s)) is not None]
        stats.sort(key=lambda p: -p[1]["max"])
        span = f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"
        if not stats:
            return SkillResult(summary=f"`{args.query}` returned no data over {span}.",
                               data={"query": args.query, "start": start.isoformat(),
                                     "end": end.isoformat()})
        evidence = []
        lines = []
        for i, (s, st) in enumerate(stats, start=1):
            text = (f"{_labels(s.labels) or 'value'}: {format_value(unit, st['first'])} → "
                    f"{format_value(unit, st['last'])} (min {format_value(unit, st['min'])}, "
                    f"max {format_value(unit, st['max'])}, mean {format_value(unit, st['mean'])})")
            if i <= MAX_SHOWN:
                lines.append(f"- {text}")
            if i <= MAX_EVIDENCE:
                evidence.append(Evidence(id=f"ev-{i}", source="prometheus", query=args.query,
                                         start=start, end=end, step_seconds=step, values=st,
                                         labels={k: v for k, v in s.labels.items()
                                                 if k != "__name__"}, summary=text))
        more = len(stats) - MAX_SHOWN
        summary = (f"`{args.query}` over {span} (step {step:g}s), {len(stats)} series:\n"
                   + "\n".join(lines) + (f"\n… and {more} more" if more > 0 else ""))
        images = []
        if ctx.out_dir is not None:
            panel = ChartPanel(label=args.query if len(args.query) <= 60
                               else args.query[:57] + "…", unit=unit,
                               series=[(_labels(s.labels) or "value", s)
                                       for s, _ in stats[:8]])
            ctx.out_dir.mkdir(parents=True, exist_ok=True)
            key = f"{args.query}|{start.isoformat()}|{end.isoformat()}".encode()
            path = ctx.out_dir / f"range-{hashlib.sha1(key).hexdigest()[:12]}.png"
            images.append(render_signals([panel], path=path, title=args.query[:100],
                                         window=(start, end)))
        return SkillResult(summary=summary, evidence=evidence, images=images, data={
            "query": args.query, "start": start.isoformat(), "end": end.isoformat(),
            "step": step, "unit": unit,
            "series": [{"labels": s.labels, **st} for s, st in stats[:MAX_SHOWN]]})


def _stats(s: Series) -> dict[str, float] | None:
    finite = s.values[np.isfinite(s.values)]
    if finite.size == 0:
        return None
    return {"first": float(finite[0]), "last": float(finite[-1]), "min": float(finite.min()),
            "max": float(finite.max()), "mean": float(finite.mean())}


class PromDiscover:
    name: ClassVar[str] = "prometheus_series"
    description: ClassVar[str] = (
        "Discover what Prometheus has: with `label`, the values of that label (e.g. every "
        "`service`); with `match` (a metric name or series selector), the matching series and "
        "their label sets; with neither, metric names (filtered by `search`). Use it before "
        "writing a query when the metric or label names are unknown.")

    class Input(BaseModel):
        label: str | None = Field(default=None, description="A label name, e.g. service.")
        match: str | None = Field(default=None,
                                  description='A metric name or selector, e.g. up{job="api"}.')
        search: str | None = Field(default=None,
                                   description="Substring to filter metric names by.")

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult:
        assert isinstance(args, PromDiscover.Input)
        prom: PrometheusClient = ctx.client("prometheus")
        matchers = [args.match] if args.match else None
        try:
            if args.label:
                values = await prom.label_values(args.label, match=matchers)
                what = f"values of label `{args.label}`" + (
                    f" on `{args.match}`" if args.match else "")
                return _listing(what, values, args.match or args.label)
            if args.match:
                series = await prom.series([args.match])
                names = sorted({_labels(s) for s in series})
                return _listing(f"series matching `{args.match}`", names, args.match)
            names = await prom.label_values("__name__")
        except PrometheusError as exc:
            return _error("Prometheus discovery", exc)
        if args.search:
            names = [n for n in names if args.search.lower() in n.lower()]
        return _listing("metric names" + (f" containing `{args.search}`" if args.search
                                          else ""), names, "__name__")


def _listing(what: str, items: list[str], query: str) -> SkillResult:
    shown = items[:50]
    more = len(items) - len(shown)
    summary = (f"{len(items)} {what}: " + ", ".join(shown) + (f" … and {more} more"
                                                             if more > 0 else "")
               if items else f"No {what}.")
    return SkillResult(summary=summary, data={"items": shown, "total": len(items)},
                       evidence=[Evidence(id="ev-1", source="prometheus", query=query,
                                          summary=summary[:300],
                                          values={"count": float(len(items))})])


class FiringAlerts:
    name: ClassVar[str] = "firing_alerts"
    description: ClassVar[str] = (
        "List the alerts Prometheus has firing now (and pending ones), optionally only those "
        "of one service, with their labels, summary and how long they have been active.")

    class Input(BaseModel):
        service: str | None = Field(default=None, description="Only this service's alerts.")

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult:
        assert isinstance(args, FiringAlerts.Input)
        prom: PrometheusClient = ctx.client("prometheus")
        try:
            alerts = await prom.alerts()
        except PrometheusError as exc:
            return _error("Listing Prometheus alerts", exc)
        now = datetime.now(UTC)
        if args.service:
            alerts = [a for a in alerts if _service_of(a.get("labels", {})) == args.service]
        alerts.sort(key=lambda a: (a.get("state") != "firing", a.get("activeAt") or ""))
        evidence, lines = [], []
        for i, a in enumerate(alerts, start=1):
            labels = {k: str(v) for k, v in a.get("labels", {}).items()}
            ann = a.get("annotations", {})
            since = _parse_time(a.get("activeAt"))
            age = f", for {format_duration(now - since)}" if since else ""
            text = (f"{labels.get('alertname', '?')} ({a.get('state', '?')}"
                    f"{', ' + labels['severity'] if 'severity' in labels else ''}"
                    f"{', service ' + _service_of(labels) if _service_of(labels) else ''}{age})"
                    + (f": {ann['summary']}" if ann.get("summary") else ""))
            if i <= MAX_SHOWN:
                lines.append(f"- {text}")
            if i <= MAX_EVIDENCE:
                value = _float(a.get("value"))
                evidence.append(Evidence(id=f"ev-{i}", source="alertmanager", query="ALERTS",
                                         start=since, end=now, labels=labels, summary=text,
                                         values={"value": value} if value is not None else {}))
        firing = sum(1 for a in alerts if a.get("state") == "firing")
        scope = f" for {args.service}" if args.service else ""
        summary = (f"{firing} alert(s) firing{scope}, {len(alerts) - firing} pending:\n"
                   + "\n".join(lines)) if alerts else f"Nothing is firing{scope}."
        return SkillResult(summary=summary, evidence=evidence,
                           data={"alerts": alerts[:MAX_SHOWN], "firing": firing})


def _service_of(labels: dict[str, str]) -> str:
    return labels.get("service") or labels.get("job") or ""


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _float(v: object) -> float | None:
    try:
        return float(str(v))
    except (TypeError, ValueError):
        return None
