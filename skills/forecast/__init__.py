"""Capacity forecasts: `models` (statsforecast candidates chosen per series by backtest, pure
arrays in and out), `capacity` (checks against Prometheus, ranked forecasts with evidence) and
`chart` (the PNG of the worst ones)."""

from skills.forecast.capacity import (
    DEFAULT_CHECKS,
    CapacityCheck,
    CapacityForecast,
    CapacityReport,
    FailedCheck,
    SkippedSeries,
    check_capacity,
    run_checks,
)
from skills.forecast.chart import render_forecast

__all__ = ["DEFAULT_CHECKS", "CapacityCheck", "CapacityForecast", "CapacityReport",
           "FailedCheck", "SkippedSeries", "check_capacity", "render_forecast", "run_checks"]
