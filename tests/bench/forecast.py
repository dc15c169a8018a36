"""Capacity forecasts, measured: out-of-sample accuracy (MASE, prediction-interval coverage) of
the per-series model choice in `skills.forecast.models` against the seasonal naive baseline, on
NAB's real series and on generated capacity series; the error of predicted threshold crossings;
the wall time to forecast 1,000 series; and Prophet on the same series where it installs.

    python -m tests.bench.forecast [--series 1000] [--jobs 2] [--prophet-python PATH]

Every accuracy figure is out of sample: the last `holdout` hours of each series are cut off,
the whole procedure (season test, backtest, choice, fit) runs on the rest, and the forecast is
scored against the cut-off part. MASE is scaled by the naive-at-lag-24 error of the history.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from skills.forecast.models import (
    DAY,
    DEFAULT_MODELS,
    FittedForecast,
    crossing_hours,
    forecast_many,
)

SHARED = Path(__file__).resolve().parents[3] / "shared"
NAB = SHARED / "data" / "nab" / "data"
NAB_GROUPS = ("realAWSCloudwatch", "realKnownCause", "realTraffic", "realAdExchange")
LEVEL = 80


@dataclass
class Case:
    name: str
    history: np.ndarray
    future: np.ndarray
    threshold: float | None = None  # generated disks: free fraction crossing below
    true_cross_hours: float | None = None  # hours after the last point; None: not in future


# -- data ----------------------------------------------------------------------------------


def nab_hourly(path: Path) -> np.ndarray:
    """A NAB CSV (timestamp,value) as hourly means; empty hours carried forward."""
    stamps, values = [], []
    with path.open() as f:
        for row in csv.DictReader(f):
            stamps.append(np.datetime64(row["timestamp"].replace(" ", "T"), "s"))
            values.append(float(row["value"]))
    hours = (np.array(stamps).astype("int64") // 3600).astype(int)
    hours -= hours.min()
    sums = np.bincount(hours, weights=np.array(values))
    counts = np.bincount(hours)
    out = np.full(len(sums), np.nan)
    out[counts > 0] = sums[counts > 0] / counts[counts > 0]
    for i in range(1, len(out)):
        if math.isnan(out[i]):
            out[i] = out[i - 1]
    return out


def nab_cases(holdout: int, origins: int = 3) -> list[Case]:
    """Each NAB series cut at `origins` points `holdout` hours apart (the last ending at its
    end): one 48-hour holdout is mostly luck on series picked for their anomalies."""
    cases = []
    for group in NAB_GROUPS:
        for path in sorted((NAB / group).glob("*.csv")):
            y = nab_hourly(path)
            for k in range(origins):
                end = len(y) - k * holdout
                cut = y[max(0, end - holdout - 28 * DAY): end]  # at most four weeks of history
                if len(cut) - holdout < 7 * DAY:
                    continue
                cases.append(Case(f"{group}/{path.stem}@-{k * holdout}h", cut[:-holdout],
                                  cut[-holdout:]))
    return cases


def generated(n: int, rng: np.random.Generator, *, history: int = 28 * DAY,
              future: int = 14 * DAY) -> list[Case]:
    """Capacity-shaped series: filling disks (free fraction, daily cycle, some with a weekly
    clean-up), flat disks, memory leaks, CPU with daily and weekly cycles, random walks."""
    t = np.arange(history + future, dtype=float)
    daily = np.sin(2 * np.pi * t / DAY)
    cases = []
    for i in range(n):
        kind = ("disk", "flat", "memory", "cpu", "walk")[i % 5]
        noise = rng.normal(0, 1, len(t))
        threshold, cross = None, None
        if kind == "disk":
            start, hours_left = rng.uniform(0.3, 0.8), rng.uniform(1, 30) * DAY
            threshold = 0.1
            rate = (start - threshold) / (history + hours_left)
            y = start - rate * t + rng.uniform(0, 0.01) * daily + rng.uniform(0.0005, 0.004) * noise
            # The truth is when the series itself first dips below, daily trough and noise
            # included: what an alert on the real value would see.
            cross = crossing_hours(float(y[history - 1]), y[history:], threshold, "below")
        elif kind == "flat":
            y = rng.uniform(0.2, 0.9) + rng.uniform(0, 0.003) * noise
        elif kind == "memory":
            y = (rng.uniform(0.3, 0.6) + rng.uniform(0, 3e-4) * t
                 + rng.uniform(0, 0.05) * daily + rng.uniform(0.002, 0.02) * noise)
        elif kind == "cpu":
            weekday = ((t // DAY) % 7 < 5).astype(float)
            y = (rng.uniform(0.1, 0.3) + rng.uniform(0.1, 0.4) * np.clip(daily, 0, None)
                 * (0.4 + 0.6 * weekday) + rng.uniform(0.01, 0.05) * noise)
        else:
            y = rng.uniform(0.3, 0.7) + np.cumsum(rng.normal(0, 0.003, len(t)))
        y = np.clip(y, 0.0, 1.0)
        cases.append(Case(f"{kind}-{i}", y[:history], y[history:], threshold, cross))
    return cases


# -- scoring -------------------------------------------------------------------------------


def mase(history: np.ndarray, future: np.ndarray, pred: np.ndarray) -> float:
    scale = float(np.mean(np.abs(history[DAY:] - history[:-DAY])))
    return float(np.mean(np.abs(future - pred))) / max(scale, 1e-12)


def coverage(future: np.ndarray, fc: FittedForecast) -> float:
    return float(np.mean((future >= fc.lower) & (future <= fc.upper)))


def summarize(cases: list[Case], fcs: list[FittedForecast]) -> dict[str, float]:
    m = np.array([mase(c.history, c.future, f.mean[: len(c.future)])
                  for c, f in zip(cases, fcs, strict=True)])
    cov = np.array([coverage(c.future, f) for c, f in zip(cases, fcs, strict=True)])
    finite = m[np.isfinite(m)]
    return {"mase_mean": float(np.mean(finite)), "mase_median": float(np.median(finite)),
            "coverage": float(np.mean(cov)), "n": float(len(cases))}


def compare(title: str, cases: list[Case], horizon: int, jobs: int) -> None:
    print(f"\n## {title}: {len(cases)} series, {horizon} h ahead, {LEVEL}% intervals")
    histories = [c.history for c in cases]
    configs: list[tuple[str, dict[str, Any]]] = [
        ("per-series choice", {}),
        ("choice incl. Theta", {"models": [*DEFAULT_MODELS, "Theta"]}),
        ("seasonal naive (24)", {"models": ["SeasonalNaive"], "season": DAY}),
    ]
    results: dict[str, list[FittedForecast]] = {}
    print(f"{'method':<22}{'MASE mean':>10}{'median':>8}{'coverage':>10}{'time':>9}")
    for name, kwargs in configs:
        t0 = time.perf_counter()
        results[name] = forecast_many(histories, horizon=horizon, level=LEVEL, n_jobs=jobs,
                                      **kwargs)
        secs = time.perf_counter() - t0
        s = summarize(cases, results[name])
        print(f"{name:<22}{s['mase_mean']:>10.3f}{s['mase_median']:>8.3f}"
              f"{s['coverage']:>9.1%}{secs:>8.1f}s")
    ours, base = results["per-series choice"], results["seasonal naive (24)"]
    wins = sum(mase(c.history, c.future, o.mean) < mase(c.history, c.future, b.mean)
               for c, o, b in zip(cases, ours, base, strict=True))
    chosen: dict[str, int] = {}
    for f in ours:
        chosen[f.label] = chosen.get(f.label, 0) + 1
    print(f"choice beats seasonal naive on {wins}/{len(cases)} series; models chosen: "
          + ", ".join(f"{k} {v}" for k, v in sorted(chosen.items(), key=lambda kv: -kv[1])))
    crossings(cases, {"per-series choice": ours, "seasonal naive": base})


def crossings(cases: list[Case], methods: dict[str, list[FittedForecast]]) -> None:
    """Generated filling disks: how far the predicted crossing is from the series' own first
    dip below the threshold, and how often that truth falls inside the crossing interval."""
    disks = [i for i, c in enumerate(cases) if c.threshold is not None]
    if not disks:
        return
    for name, fcs in methods.items():
        errors, missed, false, inside = [], 0, 0, 0
        for i in disks:
            c, f = cases[i], fcs[i]
            assert c.threshold is not None
            last = float(c.history[-1])
            got = crossing_hours(last, f.mean, c.threshold, "below")
            if c.true_cross_hours is None:
                false += got is not None
                continue
            if got is None:
                missed += 1
                continue
            errors.append(abs(got - c.true_cross_hours) / DAY)
            early = crossing_hours(last, f.lower, c.threshold, "below")
            late = crossing_hours(last, f.upper, c.threshold, "below")
            inside += (early is not None and early <= c.true_cross_hours
                       and (late is None or c.true_cross_hours <= late))
        due = sum(cases[i].true_cross_hours is not None for i in disks)
        err = (f"|error| median {np.median(errors):.2f} d, p90 {np.percentile(errors, 90):.2f} d"
               if errors else "no crossing predicted")
        print(f"filling disks, {name}: {due} cross within the horizon: {err}; missed {missed}; "
              f"truth inside the crossing interval {inside}/{due}; "
              f"{false} false alarms of {len(disks) - due} that do not cross")


# -- speed and Prophet ---------------------------------------------------------------------


def speed(n: int, jobs: int, rng: np.random.Generator) -> None:
    cases = generated(n, rng, future=0)
    for j in sorted({1, jobs}):
        t0 = time.perf_counter()
        forecast_many([c.history for c in cases], horizon=14 * DAY, level=LEVEL, n_jobs=j)
        secs = time.perf_counter() - t0
        print(f"{n} series × {28 * DAY} h, 14-day forecast, n_jobs={j}: {secs:.1f} s "
              f"({secs / n * 1000:.0f} ms a series)")


PROPHET_SCRIPT = """
import logging, sys, time, warnings
import numpy as np, pandas as pd
from prophet import Prophet
logging.getLogger("cmdstanpy").setLevel(logging.ERROR)
warnings.simplefilter("ignore")
data = np.load(sys.argv[1])
horizon, level, n = int(data["horizon"]), int(data["level"]), int(data["n"])
out = {}
t0 = time.perf_counter()
for i in range(n):
    y = data[f"h{i}"]
    ds = pd.date_range("2024-01-01", periods=len(y) + horizon, freq="h")
    model = Prophet(interval_width=level / 100, daily_seasonality=True)
    model.fit(pd.DataFrame({"ds": ds[: len(y)], "y": y}))
    pred = model.predict(pd.DataFrame({"ds": ds[len(y):]}))
    for key, col in (("m", "yhat"), ("lo", "yhat_lower"), ("hi", "yhat_upper")):
        out[f"{key}{i}"] = pred[col].to_numpy()
out["seconds"] = np.array(time.perf_counter() - t0)
np.savez(sys.argv[2], **out)
"""


def prophet_python(given: str | None) -> tuple[str | None, str]:
    """The interpreter that has Prophet: `--prophet-python`/PROPHET_PYTHON, else this one."""
    if given:
        return given, "ok"
    if importlib.util.find_spec("prophet") is not None:
        return sys.executable, "ok"
    return None, ("prophet is not installed here; it needs pandas/cmdstanpy versions of its own, "
                  "so install it in a throwaway venv (python -m venv /tmp/prophet-venv && "
                  "/tmp/prophet-venv/bin/pip install prophet) and pass --prophet-python "
                  "/tmp/prophet-venv/bin/python")


def prophet_forecasts(cases: list[Case], horizon: int, python: str
                      ) -> tuple[list[FittedForecast] | None, float, str]:
    """Prophet (defaults, daily seasonality, the same interval level) on each case, in a
    subprocess running `python`; (forecasts, seconds fitting, why not)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        arrays: dict[str, Any] = {f"h{i}": c.history for i, c in enumerate(cases)}
        np.savez(src, horizon=horizon, level=LEVEL, n=len(cases), **arrays)
        try:
            done = subprocess.run([python, "-c", PROPHET_SCRIPT, str(src), str(dst)],
                                  capture_output=True, text=True, timeout=1800, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, 0.0, f"{type(exc).__name__}: {exc}"
        if done.returncode != 0:
            return None, 0.0, "Prophet failed: " + done.stderr.strip().splitlines()[-1]
        res = np.load(dst)
        fcs = [FittedForecast(model="Prophet", season_length=DAY, level=LEVEL,
                              n_points=len(c.history), last_value=float(c.history[-1]),
                              mean=res[f"m{i}"], lower=res[f"lo{i}"], upper=res[f"hi{i}"])
               for i, c in enumerate(cases)]
        return fcs, float(res["seconds"]), "ok"


def against_prophet(title: str, cases: list[Case], horizon: int, python: str | None,
                    why: str) -> None:
    print(f"\n## Prophet against the per-series choice: {title}, {len(cases)} series, "
          f"{horizon} h ahead")
    if python is None:
        print(f"not run: {why}")
        return
    fcs, prophet_secs, why = prophet_forecasts(cases, horizon, python)
    if fcs is None:
        print(f"not run: {why}")
        return
    t0 = time.perf_counter()
    ours = forecast_many([c.history for c in cases], horizon=horizon, level=LEVEL)
    ours_secs = time.perf_counter() - t0
    print(f"{'method':<22}{'MASE mean':>10}{'median':>8}{'coverage':>10}{'time':>9}")
    for name, got, secs in (("per-series choice", ours, ours_secs),
                            ("Prophet", fcs, prophet_secs)):
        s = summarize(cases, got)
        print(f"{name:<22}{s['mase_mean']:>10.3f}{s['mase_median']:>8.3f}"
              f"{s['coverage']:>9.1%}{secs:>8.1f}s")
    crossings(cases, {"per-series choice": ours, "Prophet": fcs})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--series", type=int, default=1000, help="series in the speed test")
    ap.add_argument("--jobs", type=int, default=2, help="also time statsforecast n_jobs=JOBS")
    ap.add_argument("--generated", type=int, default=200, help="generated series scored")
    ap.add_argument("--prophet-python", default=os.environ.get("PROPHET_PYTHON"),
                    help="a Python with prophet installed (default: $PROPHET_PYTHON)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(7)
    nab: list[Case] = []
    if NAB.is_dir():
        nab = nab_cases(holdout=2 * DAY)
        compare("NAB real series (hourly means, 3 origins each)", nab, 2 * DAY, 1)
    else:
        print(f"NAB data not found at {NAB}: scoring generated series only")
    gen = generated(args.generated, rng)
    compare("generated capacity series", gen, 14 * DAY, 1)
    print("\n## speed")
    speed(args.series, args.jobs, rng)
    python, why = prophet_python(args.prophet_python)
    if nab:
        against_prophet("NAB", nab, 2 * DAY, python, why)
    against_prophet("generated", gen[:100], 14 * DAY, python, why)


if __name__ == "__main__":
    main()
