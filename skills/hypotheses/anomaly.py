"""Anomaly detection on one series: robust scores against a baseline window, sustained onset
detection (a lone spike is not an onset), magnitude and persistence after onset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skills.prometheus.golden import DIRECTION
from skills.types import Series

# A change smaller than this is never anomalous, however quiet the baseline: error ratios in
# absolute terms, the others relative to their baseline level.
ABS_FLOOR = {"errors": 0.002, "client_errors": 0.002, "latency": 0.005, "client_latency": 0.005,
             "cpu": 0.01, "memory": 1e6, "traffic": 0.05, "client_traffic": 0.05}
REL_FLOOR = {"errors": 0.25, "client_errors": 0.25, "latency": 0.1, "client_latency": 0.1,
             "cpu": 0.1, "memory": 0.05, "traffic": 0.15, "client_traffic": 0.15}
Z_ON = 4.0  # smoothed robust score that starts an anomaly
Z_HOLD = 2.0  # … and that it must stay above to count as persisting
SUSTAIN = 8  # points above Z_ON in a row (2 min at 15 s): spikes do not qualify
SUSTAIN_AT_END = 3  # … or this many, if the run lasts to the end of the data
TAIL_RAW = 2  # … or, unsmoothed, the last this many points
SMOOTH = 5  # rolling-median width, in points
MIN_BASELINE = 20
RECURRING = 2  # bursts as high, this many times in the baseline: the series' usual bursts


@dataclass(frozen=True)
class Anomaly:
    signal: str
    onset: float  # unix seconds
    z: float  # median robust score after onset
    baseline: float
    peak: float
    current: float
    persistence: float  # share of points after onset still anomalous
    current_z: float  # robust score over the last minute: is it still going on?
    duration: float  # seconds from onset to the end of the series
    # The baseline held bursts at least as high, more than once: a usual burst of a bursty
    # series, not news (it is kept as evidence, but explains nothing).
    recurrent: bool = False


def _rolling_median(x: np.ndarray, width: int) -> np.ndarray:
    if len(x) < width:
        return x.copy()
    pad = width // 2
    padded = np.concatenate([np.full(pad, np.nan), x, np.full(pad, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    with np.errstate(all="ignore"):
        out: np.ndarray = np.nanmedian(windows, axis=1) if np.isfinite(windows).any() else x
    return out


def scores(series: Series, signal: str, split: float) -> tuple[np.ndarray, float, float] | None:
    """Robust scores of a series against its values before `split` (the baseline), signed so
    that bad is positive; None without enough baseline."""
    base = series.values[(series.times < split) & np.isfinite(series.values)]
    if len(base) < MIN_BASELINE:
        return None
    center = float(np.median(base))
    mad = 1.4826 * float(np.median(np.abs(base - center)))
    scale = max(mad, REL_FLOOR.get(signal, 0.1) * abs(center), ABS_FLOOR.get(signal, 1e-9))
    z = (series.values - center) / scale
    direction = DIRECTION.get(signal, "up")
    if direction == "down":
        z = -z
    elif direction == "both":
        z = np.abs(z)
    return z, center, scale


def detect(series: Series, signal: str, split: float) -> Anomaly | None:
    """The anomaly in `series` after `split`, if any: the first sustained run of high robust
    scores, traced back to where it began."""
    scored = scores(series, signal, split)
    if scored is None:
        return None
    z, center, _ = scored
    zs = _rolling_median(z, SMOOTH)
    post = np.nonzero(series.times >= split)[0]
    if len(post) == 0:
        return None
    high = np.where(np.isfinite(zs), zs, 0.0) >= Z_ON
    # The episode that matters is the one going on when the range ends (the incident being
    # investigated): take the last sustained run, not an earlier blip that came and went.
    start = None
    run = 0
    for i in post:
        run = run + 1 if high[i] else 0
        if run == SUSTAIN:
            start = int(i) - SUSTAIN + 1
    if run >= SUSTAIN_AT_END and (start is None or start < int(post[-1]) - run + 1):
        # Still rising when the data ends (an investigation at alert time sees only the first
        # minutes): a shorter run counts if it lasts to the last point.
        start = int(post[-1]) - run + 1
    if start is None:
        # The smoothed score lags at the very end of the data; a rise that is only beginning
        # when the range ends shows in the raw scores of the last points.
        tail = np.where(np.isfinite(z[-TAIL_RAW:]), z[-TAIL_RAW:], 0.0)
        if len(z) >= TAIL_RAW and bool(np.all(tail >= Z_ON)):
            start = len(z) - TAIL_RAW
    if start is None:
        return None
    while start > 0 and np.isfinite(z[start - 1]) and z[start - 1] >= Z_HOLD:
        start -= 1
    after = np.where(np.arange(len(zs) - start) >= len(zs) - start - TAIL_RAW,
                     np.maximum(zs[start:], z[start:]), zs[start:])
    finite = after[np.isfinite(after)]
    if len(finite) == 0:
        return None
    raw = series.values[start:]
    raw_ok = raw[np.isfinite(raw)]
    level = float(np.median(finite))
    before = np.nonzero(series.times < split)[0]
    recurrent = bool(len(before) >= SUSTAIN
                     and _episodes(zs[before], level, SUSTAIN) >= RECURRING)
    return Anomaly(signal=signal, onset=float(series.times[start]),
                   z=float(np.median(finite)), baseline=center,
                   peak=float(np.max(raw_ok) if DIRECTION.get(signal) != "down"
                              else np.min(raw_ok)),
                   current=float(raw_ok[-1]),
                   persistence=float(np.mean(finite >= Z_HOLD)),
                   current_z=float(np.median(finite[-4:])),
                   duration=float(series.times[-1] - series.times[start]),
                   recurrent=recurrent)


def _episodes(zs: np.ndarray, level: float, width: int) -> int:
    """How many separate times a smoothed score held `level` for `width` points in a row."""
    above = np.where(np.isfinite(zs), zs, -np.inf) >= level
    count = run = 0
    for hit in above:
        run = run + 1 if hit else 0
        if run == width:
            count += 1
    return count
