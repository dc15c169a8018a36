"""How far a series moved from its baseline, for any metric: a robust score (median and MAD of the
baseline, with a floor relative to its level), whether the move is sustained, when it began, and
whether the series vanished or appeared. Counters are turned into per-second rates first
(`rates`), with resets handled as Prometheus's `rate()` does.

Few numbers decide here, all in robust-score units: a series has moved when the median score of
its last points is ≥ 3 (`ON`); its onset is where the run above 1.5 (`HOLD`) that reaches the end
began. A floor of 5 % of the baseline level keeps flat series (a constant `up`, a quiet gauge)
from turning a rounding change into a huge score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Direction = Literal["up", "down", "both"]
ON, HOLD = 3.0, 1.5
REL_FLOOR = 0.05
RANGE_FLOOR = 0.01
RECENT_POINTS = 5
MIN_BASE = 2  # a young series (a fresh Prometheus, a new target) still has a before


@dataclass(frozen=True)
class Shift:
    z: float  # median robust score of the last points, positive = worse
    peak_z: float  # the largest score held for 2 points in a row after the split
    onset: float | None  # unix seconds the sustained move began (None: no move)
    baseline: float  # median before the split
    current: float  # last value (NaN if vanished)
    peak: float  # the most extreme value in the bad direction after the split
    vanished: bool = False  # reported before the split, silent at the end
    appeared: bool = False  # silent before the split, reported at the end

    @property
    def moved(self) -> bool:
        return self.z >= ON or self.vanished or self.appeared

    @property
    def delta(self) -> float:
        """Current minus baseline, in the series' own unit (0 when either is missing)."""
        if not (np.isfinite(self.current) and np.isfinite(self.baseline)):
            return 0.0
        return float(self.current - self.baseline)


def rates(times: np.ndarray, values: np.ndarray, window: float) -> np.ndarray:
    """Per-second increase of a counter over about `window` seconds at each point (NaN where
    unknown); a drop is a reset, after which the counter counts from zero."""
    out = np.full(len(values), np.nan)
    if len(values) < 2:
        return out
    inc = np.diff(values)
    reset = inc < 0
    inc = np.where(reset, values[1:], inc)  # after a reset the counter restarted from 0
    dt = np.diff(times)
    step = float(np.median(dt)) if len(dt) else 1.0
    k = max(1, round(window / step))
    ok = np.isfinite(inc)
    csum = np.concatenate([[0.0], np.cumsum(np.where(ok, inc, 0.0))])
    cnt = np.concatenate([[0], np.cumsum(ok.astype(int))])
    for i in range(1, len(values)):
        j = max(0, i - k)
        n = cnt[i] - cnt[j]
        if n == 0:
            continue
        span = float(times[i] - times[j]) * n / (i - j)
        out[i] = (csum[i] - csum[j]) / span if span > 0 else np.nan
    return out


def _signed(z: np.ndarray, direction: Direction) -> np.ndarray:
    if direction == "down":
        return -z
    if direction == "both":
        out: np.ndarray = np.abs(z)
        return out
    return z


def shift(times: np.ndarray, values: np.ndarray, *, split: float,
          direction: Direction = "both", rel_floor: float = REL_FLOOR,
          abs_floor: float = 1e-9, recent_from: float | None = None) -> Shift | None:
    """The move of a series after `split` against its values before; None when there is not
    enough of either to say (fewer than `MIN_BASE` baseline points and nothing after).

    `recent_from`: when something else says the trouble began (the alert's condition held from
    then), the level "now" is judged on the points since — so a change only seconds old, seen
    in one or two points, still counts — instead of on the last few points alone."""
    ok = np.isfinite(values)
    before, after = ok & (times < split), ok & (times >= split)
    n_base, n_after = int(before.sum()), int(after.sum())
    expected_after = int((times >= split).sum())
    if n_base < MIN_BASE:
        if n_after >= 2 and expected_after:
            last = values[after]
            return Shift(z=0.0, peak_z=0.0, onset=float(times[after][0]), baseline=np.nan,
                         current=float(last[-1]), peak=float(last[-1]), appeared=True)
        return None
    base = values[before]
    center = float(np.median(base))
    mad = 1.4826 * float(np.median(np.abs(base - center)))
    # A series flat at zero before (a rare event's rate) would score any change as infinite:
    # its scale is at least a small share of the largest value it reaches in the range.
    reach = float(np.max(np.abs(values[ok])))
    scale = max(mad, rel_floor * abs(center), RANGE_FLOOR * reach, abs_floor)
    tail = ok[-max(1, min(RECENT_POINTS, expected_after)):]
    if n_after == 0 or not tail.any():
        seen = times[ok]
        return Shift(z=0.0, peak_z=0.0, onset=float(seen[-1]) if len(seen) else None,
                     baseline=center, current=np.nan, peak=np.nan, vanished=True)
    z = _signed((values - center) / scale, direction)
    za = z[after]
    recent = za[-min(RECENT_POINTS, len(za)):]
    if recent_from is not None:
        since = z[after & (times >= recent_from)]
        if len(since):
            recent = since[-RECENT_POINTS:]
    z_now = float(np.median(recent))
    pairs = np.minimum(za[1:], za[:-1]) if len(za) > 1 else za
    peak_z = float(np.max(pairs))
    onset = None
    if z_now >= ON or peak_z >= ON:
        idx = np.nonzero(after)[0]
        zs = z[idx]
        if z_now >= ON:
            i = len(zs) - 1
        else:
            i = int(np.argmax(np.concatenate([[zs[0]], np.minimum(zs[1:], zs[:-1])])))
        while i > 0 and (zs[i - 1] >= HOLD or (i > 1 and zs[i - 2] >= HOLD)):
            i -= 1
        # a run that began before the split is traced into the baseline's last points
        j = int(idx[i])
        while j > 0 and ok[j - 1] and z[j - 1] >= HOLD:
            j -= 1
        onset = float(times[j])
    bad = values[after]
    worst = {"up": np.max, "down": np.min}.get(direction)
    peak = float(worst(bad)) if worst else float(bad[np.argmax(np.abs(bad - center))])
    return Shift(z=z_now, peak_z=peak_z, onset=onset, baseline=center,
                 current=float(values[ok][-1]), peak=peak)
