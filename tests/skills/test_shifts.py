"""How far a series moved from its baseline: robust, sustained, dated, and honest about
series that vanished or appeared."""

from __future__ import annotations

import numpy as np

from skills.shifts import rates, shift

T = np.arange(0.0, 600.0, 10.0)  # ten minutes at 10 s
SPLIT = 400.0


def test_a_step_down_is_a_move_dated_where_it_began() -> None:
    up = np.where(T < 450, 1.0, 0.0)
    s = shift(T, up, split=SPLIT, direction="down")
    assert s is not None and s.moved and s.z >= 3 and s.onset == 450.0
    assert s.baseline == 1.0 and s.current == 0.0 and s.delta == -1.0


def test_a_lone_spike_and_the_wrong_direction_are_not_moves() -> None:
    noisy = 100 + np.random.default_rng(1).normal(0, 2, len(T))
    spike = noisy.copy()
    spike[50] = 400.0
    assert not shift(T, spike, split=SPLIT, direction="up").moved  # type: ignore[union-attr]
    fall = np.where(T < 450, 100.0, 20.0)
    assert not shift(T, fall, split=SPLIT, direction="up").moved  # type: ignore[union-attr]


def test_a_series_that_stops_reporting_vanished() -> None:
    gone = np.where(T < 450, 5.0, np.nan)
    s = shift(T, gone, split=SPLIT)
    assert s is not None and s.vanished and s.moved and s.onset == 440.0


def test_a_change_seconds_old_counts_when_the_alert_says_it_began() -> None:
    fresh = np.where(T < 590, 1.0, 0.0)  # one bad point at the end
    assert not shift(T, fresh, split=SPLIT, direction="down").moved  # type: ignore[union-attr]
    told = shift(T, fresh, split=SPLIT, direction="down", recent_from=585.0)
    assert told is not None and told.moved


def test_counters_become_rates_through_a_reset() -> None:
    counter = np.concatenate([np.arange(0.0, 300.0, 10.0), np.arange(0.0, 300.0, 10.0)])
    r = rates(T, counter, 30.0)
    assert np.allclose(r[5:25], 1.0) and np.allclose(r[40:], 1.0)
    assert np.all(r[np.isfinite(r)] >= 0)
