"""Capacity checks: a PromQL expression and the threshold it must not cross, range-queried from
Prometheus at an hourly step over the last weeks, each result series forecast (`models`) to say
when it crosses, with the interval of that time and the evidence behind it; ranked worst first.

Queries are async (the Prometheus client is handed in); the forecasting is CPU-bound and runs in
a worker thread (`asyncio.to_thread`) so an event loop serving chat is never blocked by it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from skills.charts import Unit, format_value
from skills.forecast.models import (
    MIN_POINTS,
    Direction,
    FittedForecast,
    crossing_hours,
    forecast_many,
)
from skills.prometheus.client import PrometheusClient, PrometheusError
from skills.types import Evidence, Series, format_duration

log = logging.getLogger(__name__)

STEP = 3600.0  # seconds: every check is queried and forecast hourly
MAX_FILL_HOURS = 6  # gaps up to this long are interpolated; after a longer one, history restarts
MAX_STALE_HOURS = 6  # a series silent for longer than this is gone, not forecast
LEVEL = 80  # % prediction interval

_FS = 'fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs|fuse.lxcfs",mountpoint!=""'


class CapacityCheck(BaseModel):
    """What to watch: `query` (PromQL; one forecast per result series) must stay on the safe
    side of `threshold` — below it for `direction="above"` checks, above it for "below"."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    query: str = Field(min_length=1)
    threshold: float
    direction: Direction = "above"
    unit: Unit = "value"
    description: str = ""


# Disk is the share of space FREE, crossing below 10% (node_exporter's own alerts and `df` speak
# of available space); memory and CPU are shares USED, crossing above 90%. CPU is averaged over
# each hour (`[1h]`): a 5-minute rate sampled once an hour would forecast noise.
DEFAULT_CHECKS: tuple[CapacityCheck, ...] = (
    CapacityCheck(name="disk", unit="ratio", threshold=0.10, direction="below",
                  description="filesystem space free",
                  query=f"node_filesystem_avail_bytes{{{_FS}}} / "
                        f"node_filesystem_size_bytes{{{_FS}}}"),
    CapacityCheck(name="memory", unit="ratio", threshold=0.90, direction="above",
                  description="memory used",
                  query="1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes"),
    CapacityCheck(name="cpu", unit="ratio", threshold=0.90, direction="above",
                  description="CPU busy",
                  query='1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1h]))'),
)


class CapacityForecast(BaseModel):
    """One series of one check: where it is, whether and when it crosses the threshold
    (`days_to_threshold` from `now`; None: not within `horizon_days`), the interval of that time
    from the prediction interval's bounds (`lower`: the earliest bound's crossing, `upper`: the
    latest's; None where a bound does not cross within the horizon), the model and its
    backtest. `history` and `fitted` are kept for charts and left out of JSON."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    check: str
    labels: dict[str, str]
    query: str
    unit: Unit
    direction: Direction
    threshold: float
    last_value: float
    last_at: datetime
    days_to_threshold: float | None
    lower: float | None
    upper: float | None
    crossing_at: datetime | None
    horizon_days: float
    level: int
    model: str
    mase: float | None
    coverage: float | None
    evidence: Evidence
    history: Series | None = Field(default=None, exclude=True, repr=False)
    fitted: FittedForecast | None = Field(default=None, exclude=True, repr=False)

    @property
    def already_past(self) -> bool:
        return self.days_to_threshold == 0.0

    def where(self) -> str:
        """The series in a few words: its labels, `instance` and `mountpoint` first."""
        first = [k for k in ("instance", "mountpoint", "device") if k in self.labels]
        rest = sorted(k for k in self.labels if k not in first and k != "__name__")
        return ", ".join(f"{k}={self.labels[k]}" for k in first + rest) or "(no labels)"

    def outlook(self) -> str:
        """'crosses in 3.2 days (2.5–4.1)', 'already past the threshold' or 'not within 14
        days' (with the earliest bound's crossing, if any)."""
        if self.days_to_threshold is None:
            text = f"not within {self.horizon_days:g} days"
            return text + (f" (possible from {self.lower:.1f} days)"
                           if self.lower is not None else "")
        if self.already_past:
            return "already past the threshold"
        # One decimal, or two where one would print a narrow interval as "4.5–4.5".
        digits = 2 if (self.lower is not None and self.upper is not None
                       and f"{self.lower:.1f}" == f"{self.upper:.1f}") else 1
        late = (f"{self.upper:.{digits}f}" if self.upper is not None
                else f">{self.horizon_days:g}")
        early = f"{self.lower:.{digits}f}" if self.lower is not None else "?"
        return f"crosses in {self.days_to_threshold:.{digits}f} days ({early}–{late})"

    def line(self, *, with_check: bool = True) -> str:
        """One terminal line: labels, now, threshold, outlook, model and backtest MASE."""
        sign = "<" if self.direction == "below" else ">"
        mase = f"MASE {self.mase:.2f}" if self.mase is not None else "no backtest"
        head = f"{self.check} " if with_check else ""
        return (f"{head}{self.where()}: now {format_value(self.unit, self.last_value)}, "
                f"threshold {sign} {format_value(self.unit, self.threshold)}, "
                f"{self.outlook()} · {self.model}, {mase}")


class SkippedSeries(BaseModel):
    """A series that was not forecast, and why."""

    check: str
    labels: dict[str, str]
    reason: str


class FailedCheck(BaseModel):
    """A check whose query failed: the exact query and Prometheus' error."""

    check: str
    query: str
    error: str
    _exception: PrometheusError | None = PrivateAttr(default=None)


class CapacityReport(BaseModel):
    """Every check's outcome: forecasts worst first, skipped series, failed queries."""

    forecasts: list[CapacityForecast] = Field(default_factory=list)
    skipped: list[SkippedSeries] = Field(default_factory=list)
    failed: list[FailedCheck] = Field(default_factory=list)
    start: datetime
    end: datetime


def hourly(series: Series, *, start: float, end: float, step: float = STEP
           ) -> tuple[np.ndarray, np.ndarray] | str:
    """`series` on the regular grid start, start + step … end: gaps up to `MAX_FILL_HOURS`
    interpolated; after a longer gap only the part since is kept. Returns (times, values), or
    why the series cannot be forecast (too short, or silent for over `MAX_STALE_HOURS`)."""
    grid = np.arange(start, end + step / 2, step)
    values = np.full(len(grid), np.nan)
    idx = np.rint((np.asarray(series.times) - start) / step).astype(int)
    ok = (idx >= 0) & (idx < len(grid)) & np.isfinite(series.values)
    values[idx[ok]] = np.asarray(series.values)[ok]
    have = np.flatnonzero(np.isfinite(values))
    if len(have) == 0:
        return "no finite values in the range"
    silent = (len(grid) - 1 - have[-1]) * step / 3600
    if silent > MAX_STALE_HOURS:
        last = datetime.fromtimestamp(float(grid[have[-1]]), UTC)
        return f"no data since {last:%Y-%m-%d %H:%M} UTC ({silent:.0f} h before the end)"
    first = have[0]
    gaps = np.diff(have) - 1
    long = np.flatnonzero(gaps > MAX_FILL_HOURS * 3600 / step)
    note = ""
    if len(long):
        k = long[-1]
        first = have[k + 1]
        note = f" since a {gaps[k] * step / 3600:.0f}-hour gap"
    keep = slice(first, have[-1] + 1)
    times, values = grid[keep], values[keep]
    finite = np.isfinite(values)
    if len(values) < MIN_POINTS:
        return (f"only {len(values)} hours of data{note} (a forecast needs {MIN_POINTS}: "
                f"{MIN_POINTS // 24} days)")
    if not finite.all():
        values = np.interp(times, times[finite], values[finite])
    return times, values


def _crossing_days(hours: float | None, last_at: float, now: float) -> float | None:
    if hours is None:
        return None
    return max(0.0, (last_at + hours * 3600 - now) / 86400)


def _forecast_of(check: CapacityCheck, series: Series, fitted: FittedForecast, *,
                 now: datetime, horizon: timedelta, start: datetime) -> CapacityForecast:
    last_at = float(series.times[-1])
    last = float(series.values[-1])
    low_band, high_band = ((fitted.upper, fitted.lower) if check.direction == "above"
                           else (fitted.lower, fitted.upper))
    now_s, h_days = now.timestamp(), horizon.total_seconds() / 86400

    def days(path: np.ndarray) -> float | None:
        d = _crossing_days(crossing_hours(last, path, check.threshold, check.direction),
                           last_at, now_s)
        return d if d is not None and d <= h_days else None

    mid, early, late = days(fitted.mean), days(low_band), days(high_band)
    crossing_at = now + timedelta(days=mid) if mid is not None else None
    scores = fitted.scores
    values = {"last": last, "threshold": check.threshold, "horizon_days": h_days,
              "hours_of_history": float(len(series.values)), "level": float(LEVEL)}
    for key, v in (("days_to_threshold", mid), ("lower_days", early), ("upper_days", late),
                   ("backtest_mase", fitted.mase), ("backtest_coverage", fitted.coverage),
                   ("seasonal_naive_mase", scores["SeasonalNaive"].mase
                    if "SeasonalNaive" in scores else None)):
        if v is not None and math.isfinite(v):
            values[key] = v
    fc = CapacityForecast(
        check=check.name, labels=series.labels, query=check.query, unit=check.unit,
        direction=check.direction, threshold=check.threshold, last_value=last,
        last_at=datetime.fromtimestamp(last_at, UTC), days_to_threshold=mid, lower=early,
        upper=late, crossing_at=crossing_at, horizon_days=h_days, level=LEVEL,
        model=fitted.label, mase=fitted.mase, coverage=fitted.coverage, history=series,
        fitted=fitted,
        evidence=Evidence(id="cap", source="prometheus", summary="", query=check.query,
                          start=start, end=now, step_seconds=STEP, values=values,
                          labels={**series.labels, "check": check.name}))
    plan = fitted.plan
    backtest = (f"backtest MASE {fitted.mase:.2f} over {plan.windows} × {plan.horizon} h "
                f"windows, {fitted.coverage:.0%} inside the {LEVEL}% interval"
                if plan is not None and fitted.mase is not None and fitted.coverage is not None
                else "no backtest (too little history)")
    fc.evidence.summary = (
        f"{check.description or check.name} on {fc.where()}: "
        f"{format_value(check.unit, last)} now, {fc.outlook()} "
        f"(threshold {format_value(check.unit, check.threshold)}); forecast by {fitted.label} "
        f"from {len(series.values)} hourly values over "
        f"{format_duration(timedelta(hours=len(series.values) - 1))}; "
        f"{backtest}")
    return fc


def rank_key(fc: CapacityForecast) -> tuple[float, float, float]:
    """Worst first: the soonest crossing; then the soonest possible one (interval bound); then
    the least headroom left, relative to the threshold."""
    inf = math.inf
    headroom = (fc.threshold - fc.last_value if fc.direction == "above"
                else fc.last_value - fc.threshold) / (abs(fc.threshold) or 1.0)
    return (fc.days_to_threshold if fc.days_to_threshold is not None else inf,
            fc.lower if fc.lower is not None else inf, headroom)


async def check_capacity(client: PrometheusClient, checks: Sequence[CapacityCheck],
                         now: datetime, history: timedelta = timedelta(days=28),
                         horizon: timedelta = timedelta(days=14), *,
                         n_jobs: int = 1) -> CapacityReport:
    """Range-query every check hourly over `history` up to `now` (aligned to the hour), forecast
    each result series `horizon` ahead, and rank the forecasts worst first. A failing query is
    reported in `failed` with Prometheus' error; the other checks still run. `n_jobs` > 1 fits
    in that many processes (worth it from a few hundred series)."""
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    end = datetime.fromtimestamp(now.timestamp() // STEP * STEP, UTC)
    start = end - history
    report = CapacityReport(start=start, end=now)
    results = await asyncio.gather(
        *(client.query_range(c.query, start=start, end=end, step=STEP) for c in checks),
        return_exceptions=True)
    todo: list[tuple[CapacityCheck, Series]] = []
    for check, result in zip(checks, results, strict=True):
        if isinstance(result, PrometheusError):
            failed = FailedCheck(check=check.name, query=check.query, error=str(result))
            failed._exception = result
            report.failed.append(failed)
            continue
        if isinstance(result, BaseException):
            raise result
        for series in result:
            grid = hourly(series, start=start.timestamp(), end=end.timestamp())
            if isinstance(grid, str):
                report.skipped.append(SkippedSeries(check=check.name, labels=series.labels,
                                                    reason=grid))
            else:
                todo.append((check, Series(series.labels, *grid)))
    steps = math.ceil((now + horizon - end).total_seconds() / STEP)
    fitted = await asyncio.to_thread(
        forecast_many, [s.values for _, s in todo], horizon=steps, level=LEVEL, n_jobs=n_jobs)
    forecasts = [_forecast_of(check, series, fit, now=now, horizon=horizon, start=start)
                 for (check, series), fit in zip(todo, fitted, strict=True)]
    report.forecasts = sorted(forecasts, key=rank_key)
    for rank, fc in enumerate(report.forecasts, start=1):
        fc.evidence.id = f"cap-{rank}"  # cap-1 is the worst
    return report


async def run_checks(client: PrometheusClient, checks: Sequence[CapacityCheck], now: datetime,
                     history: timedelta = timedelta(days=28),
                     horizon: timedelta = timedelta(days=14), *,
                     n_jobs: int = 1) -> list[CapacityForecast]:
    """`check_capacity`'s forecasts, worst first; raises the `PrometheusError` of the first
    check whose query failed (a digest should not call a failed check fine). Skipped series
    are logged with the reason; `check_capacity` returns them."""
    report = await check_capacity(client, checks, now, history, horizon, n_jobs=n_jobs)
    for failed in report.failed:
        if failed._exception is not None:
            raise failed._exception
    for skipped in report.skipped:
        log.info("capacity check %s: skipped %s: %s", skipped.check, skipped.labels,
                 skipped.reason)
    return report.forecasts


# The picture of the checks is `skills.forecast.chart` (which reads this module's types).
__all__ = ["DEFAULT_CHECKS", "CapacityCheck", "CapacityForecast", "CapacityReport",
           "FailedCheck", "SkippedSeries", "check_capacity", "hourly", "rank_key", "run_checks"]
