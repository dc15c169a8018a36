"""Forecasting regular hourly series: candidate statsforecast models chosen per series by a
rolling-origin backtest (MASE), a horizon forecast with a prediction interval, and when a
forecast path crosses a threshold.

Pure computation: arrays of floats in (one value per hour, no gaps), numbers out; no I/O, no
clients. Series are forecast in batches (one statsforecast run per season length and backtest
plan), which is what makes a thousand series affordable on a small machine.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs installed
from statsforecast import StatsForecast
from statsforecast.models import (
    AutoETS,
    Naive,
    RandomWalkWithDrift,
    SeasonalNaive,
    Theta,
)

Direction = Literal["above", "below"]

DAY = 24  # hourly steps per day: the season of everything people run
MIN_POINTS = 3 * DAY  # below this a series is not forecast at all
# The candidates, by name, as statsforecast models of a non-seasonal series: a series with a
# daily cycle is first adjusted by its daily profile (`daily_profile`), forecast, and the profile
# added back, so "Drift" on it is drift plus the daily cycle and "SeasonalNaive" (season 24) is
# exactly the seasonal naive forecast of the raw series. This is the classical decomposition
# Theta uses, done once in numpy: statsforecast's seasonal AutoETS costs ~150 ms a fit here,
# MSTL ~10 ms of STL per fit, and both would repeat it for every candidate and backtest window.
# ETS is non-damped: a damped trend flattens within days, and a filling disk would never fill.
CANDIDATES: dict[str, Callable[[int], Any]] = {
    "SeasonalNaive": lambda s: (SeasonalNaive(season_length=s, alias="SeasonalNaive") if s > 1
                                else Naive(alias="SeasonalNaive")),
    "Drift": lambda s: RandomWalkWithDrift(alias="Drift"),
    "ETS": lambda s: AutoETS(season_length=1, model="AZN", damped=False, alias="ETS"),
    "Theta": lambda s: Theta(season_length=1, alias="Theta"),
}
# What `forecast_many` tries by default. Theta is left out: on the bench (tests/bench/forecast.py)
# it moved MASE by under 5% either way (NAB a little better, generated a little worse) and cost
# 70% more time.
DEFAULT_MODELS = ("SeasonalNaive", "Drift", "ETS")


@dataclass(frozen=True)
class BacktestPlan:
    """Rolling origin: `windows` forecasts of `horizon` steps, cutoffs `step` apart, the last
    ending at the series' last point."""

    horizon: int = 2 * DAY
    windows: int = 3
    step: int = DAY

    @property
    def span(self) -> int:
        """How many trailing points the backtest scores."""
        return self.horizon + (self.windows - 1) * self.step


@dataclass(frozen=True)
class Score:
    """One candidate's backtest: MASE (mean absolute error over the naive-at-lag-24 error of the
    training part) and the share of actual values inside its prediction interval."""

    mase: float
    coverage: float


@dataclass(frozen=True)
class FittedForecast:
    """The chosen model's forecast of `len(mean)` hourly steps after the last point (step k is
    k + 1 hours later), its `level`% interval, and the backtest behind the choice."""

    model: str
    season_length: int
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: int
    n_points: int
    last_value: float
    scores: dict[str, Score] = field(default_factory=dict)
    plan: BacktestPlan | None = None

    @property
    def mase(self) -> float | None:
        score = self.scores.get(self.model)
        return score.mase if score else None

    @property
    def coverage(self) -> float | None:
        score = self.scores.get(self.model)
        return score.coverage if score else None

    @property
    def label(self) -> str:
        return f"{self.model} (daily season)" if self.season_length > 1 else self.model


def has_daily_season(values: np.ndarray, season: int = DAY) -> bool:
    """A daily cycle worth modelling: at least three seasons of data, and the autocorrelation at
    lag `season` of the deviations from a centred 2×`season` moving average above the 90% bound
    of the test Hyndman's Theta method uses (Bartlett's variance from the lower lags). The
    moving average takes out trends and wandering levels alike: a plain linear detrend leaves a
    random walk so autocorrelated at every lag that it would pass for seasonal."""
    y = np.asarray(values, dtype=float)
    n = len(y)
    if n < 3 * season or np.ptp(y) == 0:
        return False
    r = _deviations(y, season)
    r = r - r.mean()
    denom = float(np.dot(r, r))
    if denom <= 0:
        return False
    m = len(r)
    acf = np.array([np.dot(r[: m - k], r[k:]) / denom for k in range(1, season + 1)])
    bound = 1.645 * math.sqrt((1 + 2 * float(np.sum(acf[:-1] ** 2))) / m)
    return bool(acf[-1] > bound and acf[-1] > 0.1)


def plan_for(n: int) -> BacktestPlan | None:
    """The backtest a series of `n` points affords: three two-day windows from a week of data,
    one day-ahead window from three days, none below."""
    full = BacktestPlan()
    if n >= full.span + MIN_POINTS:
        return full
    if n >= DAY + 2 * DAY:
        return BacktestPlan(horizon=DAY, windows=1, step=DAY)
    return None


def _deviations(y: np.ndarray, season: int) -> np.ndarray:
    """`y` less its centred 2×`season` moving average, for the points where that exists
    (the first is point season // 2)."""
    kernel = np.r_[0.5, np.ones(season - 1), 0.5] / season
    trend = np.convolve(y, kernel, mode="valid")
    half = season // 2
    return np.asarray(y[half: half + len(trend)] - trend)


def daily_profile(values: np.ndarray, season: int = DAY) -> np.ndarray:
    """The daily cycle as `season` offsets (value i of a series belongs to offset i % season):
    the median deviation from a centred 2×`season` moving average at each offset, centred on
    zero. Medians keep one bad day from printing itself on every day after it."""
    y = np.asarray(values, dtype=float)
    if season <= 1 or len(y) < 2 * season + 1:
        return np.zeros(max(season, 1))
    dev = _deviations(y, season)
    offset = (np.arange(len(dev)) + season // 2) % season
    profile = np.array([np.median(dev[offset == k]) for k in range(season)])
    return np.asarray(profile - profile.mean())


def _adjusted(values: np.ndarray, fit_on: np.ndarray, season: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """`values` less the daily profile estimated on `fit_on` (a prefix of it), and the
    profile."""
    profile = daily_profile(fit_on, season) if season > 1 else np.zeros(1)
    return values - profile[np.arange(len(values)) % len(profile)], profile


def _frame(series: dict[int, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({
        "unique_id": np.concatenate([np.full(len(y), i) for i, y in series.items()]),
        "ds": np.concatenate([np.arange(len(y)) for y in series.values()]),
        "y": np.concatenate(list(series.values())),
    })


def _scale(train: np.ndarray) -> float:
    """MASE's denominator: the mean absolute error of the naive forecast at lag 24 (lag 1 on
    less than two days) on the training part; never zero."""
    lag = DAY if len(train) > 2 * DAY else 1
    diffs = np.abs(train[lag:] - train[:-lag])
    scale = float(np.mean(diffs)) if len(diffs) else 0.0
    floor = 1e-9 * max(1.0, float(np.mean(np.abs(train))))
    return max(scale, floor)


def _backtest(sf: StatsForecast, df: pd.DataFrame, series: Sequence[np.ndarray],
              names: list[str], plan: BacktestPlan, level: int
              ) -> dict[int, dict[str, Score]]:
    cv = sf.cross_validation(h=plan.horizon, df=df, n_windows=plan.windows, step_size=plan.step,
                             level=[level])
    out: dict[int, dict[str, Score]] = {}
    for uid, part in cv.groupby("unique_id", sort=False):
        i = int(uid)
        y = part["y"].to_numpy(dtype=float)
        scale = _scale(np.asarray(series[i], dtype=float)[: len(series[i]) - plan.span])
        scores = {}
        for name in names:
            pred = part[name].to_numpy(dtype=float)
            lo = part[f"{name}-lo-{level}"].to_numpy(dtype=float)
            hi = part[f"{name}-hi-{level}"].to_numpy(dtype=float)
            err = np.abs(y - pred)
            mase = float(np.mean(err)) / scale if np.all(np.isfinite(err)) else math.inf
            scores[name] = Score(mase=mase, coverage=float(np.mean((y >= lo) & (y <= hi))))
        out[i] = scores
    return out


def _choose(scores: dict[str, Score], names: list[str]) -> str:
    """The lowest backtest MASE; ties go to the earlier (simpler) candidate."""
    return min(names, key=lambda name: (scores[name].mase, names.index(name)))


def _unscored(names: list[str]) -> str:
    """Without a backtest: the drift model, which at least carries a trend on."""
    return "Drift" if "Drift" in names else names[0]


def _constant(values: np.ndarray, horizon: int, level: int) -> FittedForecast:
    flat = np.full(horizon, float(values[-1]))
    return FittedForecast(model="Constant", season_length=1, mean=flat, lower=flat.copy(),
                          upper=flat.copy(), level=level, n_points=len(values),
                          last_value=float(values[-1]))


def forecast_many(series: Sequence[np.ndarray], *, horizon: int, level: int = 80,
                  models: Sequence[str] | None = None, n_jobs: int = 1,
                  season: int | None = None) -> list[FittedForecast]:
    """Forecast each series `horizon` hourly steps ahead with the candidate (`models`, default
    `DEFAULT_MODELS`) that scored the lowest backtest MASE on it. Each series needs at least
    `MIN_POINTS` finite values and no gaps; `season` forces a season length (default: 24 where
    `has_daily_season`). Same order as `series`."""
    names = list(models or DEFAULT_MODELS)
    unknown = set(names) - set(CANDIDATES)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; known: {sorted(CANDIDATES)}")
    arrays = [np.asarray(s, dtype=float) for s in series]
    for i, y in enumerate(arrays):
        if len(y) < MIN_POINTS or not np.all(np.isfinite(y)):
            raise ValueError(f"series {i}: need {MIN_POINTS}+ finite hourly values, got "
                             f"{int(np.isfinite(y).sum())} of {len(y)}")
    out: dict[int, FittedForecast] = {}
    groups: dict[tuple[int, BacktestPlan | None], list[int]] = {}
    for i, y in enumerate(arrays):
        if np.ptp(y) == 0:
            out[i] = _constant(y, horizon, level)
            continue
        s = season if season is not None else (DAY if has_daily_season(y) else 1)
        groups.setdefault((s, plan_for(len(y))), []).append(i)
    # statsmodels' acf divides by zero on a constant stretch inside Theta's own season test.
    # (Filters are process-wide: only touched when Theta is asked for.)
    quiet = warnings.catch_warnings() if "Theta" in names else contextlib.nullcontext()
    with quiet:
        if "Theta" in names:
            warnings.simplefilter("ignore", RuntimeWarning)
        for (s, plan), ids in groups.items():
            scores: dict[int, dict[str, Score]] = {}
            if plan is not None:
                # The daily profile from the part before the first backtest cutoff only.
                train = {i: _adjusted(arrays[i], arrays[i][: len(arrays[i]) - plan.span], s)[0]
                         for i in ids}
                sf = StatsForecast(models=[CANDIDATES[name](s) for name in names], freq=1,
                                   n_jobs=n_jobs)
                scores = _backtest(sf, _frame(train), arrays, names, plan, level)
            by_model: dict[str, list[int]] = {}
            for i in ids:
                chosen = _choose(scores[i], names) if i in scores else _unscored(names)
                by_model.setdefault(chosen, []).append(i)
            for name, members in by_model.items():
                adjusted = {i: _adjusted(arrays[i], arrays[i], s) for i in members}
                fc = StatsForecast(models=[CANDIDATES[name](s)], freq=1, n_jobs=n_jobs
                                   ).forecast(h=horizon, level=[level],
                                              df=_frame({i: a for i, (a, _) in adjusted.items()}))
                for uid, part in fc.groupby("unique_id", sort=False):
                    i = int(uid)
                    profile = adjusted[i][1]
                    cycle = profile[(len(arrays[i]) + np.arange(horizon)) % len(profile)]
                    out[i] = FittedForecast(
                        model=name, season_length=s, level=level,
                        mean=part[name].to_numpy(dtype=float) + cycle,
                        lower=part[f"{name}-lo-{level}"].to_numpy(dtype=float) + cycle,
                        upper=part[f"{name}-hi-{level}"].to_numpy(dtype=float) + cycle,
                        n_points=len(arrays[i]), last_value=float(arrays[i][-1]),
                        scores=scores.get(i, {}), plan=plan)
    return [out[i] for i in range(len(arrays))]


def forecast(values: np.ndarray, *, horizon: int, level: int = 80,
             models: Sequence[str] | None = None) -> FittedForecast:
    """`forecast_many` for one series."""
    return forecast_many([values], horizon=horizon, level=level, models=models)[0]


def crossing_hours(last: float, path: np.ndarray, threshold: float,
                   direction: Direction) -> float | None:
    """Hours until `path` (hourly steps after a last value `last`, step k at k + 1 hours) first
    reaches `threshold` from the safe side, interpolated between steps; 0 when `last` is already
    past it; None when it does not within the path."""

    def past(v: float) -> bool:
        return v >= threshold if direction == "above" else v <= threshold

    if past(last):
        return 0.0
    prev = last
    for k, value in enumerate(np.asarray(path, dtype=float)):
        if math.isfinite(value) and past(value):
            frac = (threshold - prev) / (value - prev) if value != prev else 1.0
            return k + min(max(frac, 0.0), 1.0)
        if math.isfinite(value):
            prev = value
    return None
