"""The PNG of capacity forecasts: per series, its history, the forecast, the prediction interval
shaded, the threshold, "now", and where the forecast crosses (with the crossing interval).

Drawn like `skills.charts`: a `Figure` of its own on an explicit Agg canvas, never pyplot, so
renders may run side by side in worker threads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from skills.charts import DPI, LABEL_BOX, PANEL_PX, WIDTH_PX, ScaledFormatter, _scale, format_value

if TYPE_CHECKING:  # only for type hints: capacity's checks know nothing of their picture
    from skills.forecast.capacity import CapacityForecast

HISTORY_COLOR, FORECAST_COLOR, THRESHOLD_COLOR, NOW_COLOR = (
    "#1f77b4", "#ff7f0e", "#d62728", "#555555")


def _dates(times: np.ndarray) -> np.ndarray:
    stamps = (np.asarray(times, dtype=float) * 1000).astype("int64").astype("datetime64[ms]")
    return np.asarray(mdates.date2num(stamps))  # type: ignore[no-untyped-call]


def _x(at: datetime) -> float:
    return float(mdates.date2num(at.astimezone(UTC)))  # type: ignore[no-untyped-call]


def _draw(ax: Axes, fc: CapacityForecast) -> None:
    assert fc.history is not None and fc.fitted is not None
    hist, fit = fc.history, fc.fitted
    last_at = float(hist.times[-1])
    future = last_at + 3600.0 * np.arange(1, len(fit.mean) + 1)
    magnitude = float(np.nanmax(np.abs(np.r_[hist.values, fit.mean, fc.threshold])))
    mult, suffix = _scale(fc.unit, magnitude)
    # The forecast line starts at the last observation so the two join.
    fx = _dates(np.r_[last_at, future])
    ax.plot(_dates(hist.times), hist.values * mult, color=HISTORY_COLOR, linewidth=1.2,
            label="history")
    ax.plot(fx, np.r_[fc.last_value, fit.mean] * mult, color=FORECAST_COLOR, linewidth=1.4,
            linestyle="--", label=f"forecast ({fit.label})")
    ax.fill_between(fx, np.r_[fc.last_value, fit.lower] * mult,
                    np.r_[fc.last_value, fit.upper] * mult, color=FORECAST_COLOR, alpha=0.2,
                    linewidth=0, label=f"{fc.level}% interval")
    ax.axhline(fc.threshold * mult, color=THRESHOLD_COLOR, linestyle=":", linewidth=1.5,
               label=f"threshold {format_value(fc.unit, fc.threshold)}")
    now = fc.evidence.end or datetime.fromtimestamp(last_at, UTC)
    ax.axvline(_x(now), color=NOW_COLOR, linewidth=1.0)
    ax.text(_x(now), 0.03, " now", transform=ax.get_xaxis_transform(), color=NOW_COLOR,
            fontsize=8, va="bottom", ha="left", bbox=LABEL_BOX)
    if fc.days_to_threshold is not None:
        if fc.lower is not None:
            late = fc.upper if fc.upper is not None else fc.horizon_days
            ax.axvspan(_x(now + timedelta(days=fc.lower)), _x(now + timedelta(days=late)),
                       color=THRESHOLD_COLOR, alpha=0.08, linewidth=0)
        at = _x(now + timedelta(days=fc.days_to_threshold))
        ax.plot([at], [fc.threshold * mult], marker="o", markersize=7, color=THRESHOLD_COLOR,
                zorder=5)
        # The label on the side with room: left of a crossing late in the horizon.
        late = at > fx[0] + 0.6 * (fx[-1] - fx[0])
        ax.annotate(fc.outlook(), (at, fc.threshold * mult), xytext=(-8 if late else 8, 8),
                    textcoords="offset points", color=THRESHOLD_COLOR, fontsize=9,
                    ha="right" if late else "left", fontweight="bold", bbox=LABEL_BOX)
    ax.set_title(f"{fc.check}: {fc.where()} — {fc.outlook()}", loc="left", fontsize=10)
    ax.yaxis.set_major_formatter(ScaledFormatter(suffix))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8, frameon=False, ncol=2)
    if not math.isfinite(magnitude):
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")


def render_forecast(forecasts: CapacityForecast | Sequence[CapacityForecast], *, path: Path,
                    title: str = "Capacity forecast", max_panels: int = 4) -> Path:
    """One forecast, or the first `max_panels` of several (pass them worst first, as
    `run_checks` ranks them), one panel each on its own time axis, into a PNG of 1200 × (300 ×
    panels) px at `path`. Returns `path`. Forecasts without their series (`history`, `fitted`:
    built by `run_checks`, not read back from JSON) are skipped."""
    many = [forecasts] if not isinstance(forecasts, Sequence) else list(forecasts)
    shown = [fc for fc in many if fc.history is not None and fc.fitted is not None]
    shown = shown[:max_panels]
    if not shown:
        raise ValueError("render_forecast needs at least one forecast with its series")
    fig = Figure(figsize=(WIDTH_PX / DPI, PANEL_PX * len(shown) / DPI), dpi=DPI,
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(shown), 1, squeeze=False)[:, 0]
    for ax, fc in zip(axes, shown, strict=True):
        _draw(ax, fc)
        # matplotlib.dates ships no type hints.
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=12))  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d", tz=UTC))  # type: ignore[no-untyped-call]
    axes[-1].set_xlabel("date (UTC)")
    fig.suptitle(title if len(title) <= 110 else title[:109] + "…", fontsize=13, x=0.01,
                 ha="left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path
