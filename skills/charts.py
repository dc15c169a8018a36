"""PNG charts of the series behind an investigation: one panel per signal on a shared UTC time
axis, with the anomaly onset, the changes and each panel's baseline marked.

Drawn on a `Figure` of its own with matplotlib's Agg canvas attached explicitly: headless, no
pyplot and no global backend state, so renders may run side by side in worker threads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Literal

import numpy as np
from matplotlib import dates as mdates
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from skills.context import ChangeRecord, Snapshot
from skills.hypotheses.models import Investigation, RankedHypothesis
from skills.types import Evidence, Series

Unit = Literal["ratio", "seconds", "bytes", "cores", "rps", "value"]

WIDTH_PX, PANEL_PX, DPI = 1200, 300, 100
ONSET_COLOR, CHANGE_COLOR, BASELINE_COLOR = "#d62728", "#7b3fa0", "#555555"
LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.5}

UNIT_OF_SIGNAL: dict[str, Unit] = {
    "errors": "ratio", "client_errors": "ratio", "latency": "seconds",
    "client_latency": "seconds", "memory": "bytes", "cpu": "cores", "traffic": "rps",
}


@dataclass
class ChartPanel:
    """One subplot: a label, the unit its values are in, the series to draw (legend name,
    series) and, when known, the baseline level as a dotted line."""

    label: str
    unit: Unit
    series: list[tuple[str, Series]] = field(default_factory=list)
    baseline: float | None = None


def _scale(unit: Unit, magnitude: float) -> tuple[float, str]:
    """Multiplier and suffix for values of `unit` around `magnitude`."""
    if unit == "ratio":
        return 100.0, "%"
    if unit == "seconds":
        return (1000.0, " ms") if magnitude < 1.0 else (1.0, " s")
    if unit == "bytes":
        return 1.0 / 2**20, " MiB"
    if unit == "cores":
        return 1.0, " cores"
    if unit == "value":  # an arbitrary query: no unit is claimed
        return 1.0, ""
    return 1.0, " req/s"


def format_value(unit: Unit, value: float, *, decimals: int | None = None) -> str:
    """A value in its unit: `12.5%`, `850 ms`, `1.25 s`, `512 MiB`, `0.75 cores`, `40 req/s`,
    or a bare number for `value`."""
    if not math.isfinite(value):
        return "n/a"
    mult, suffix = _scale(unit, abs(value))
    shown = value * mult
    if decimals is None:
        decimals = 0 if abs(shown) >= 100 or shown == 0 else 1 if abs(shown) >= 10 else 2
    return f"{shown:.{decimals}f}{suffix}"


class ScaledFormatter(ticker.Formatter):
    """Tick labels of values already scaled to the display unit: the suffix, and as many
    decimals as the tick spacing needs."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.decimals = 0

    def set_locs(self, locs: list[float]) -> None:
        finite = [float(v) for v in locs if math.isfinite(v)]
        spacing = min((abs(b - a) for a, b in pairwise(finite) if b != a), default=0.0)
        # The fewest decimals that show the spacing (2.5 needs one, 0.25 two), at most three.
        self.decimals = next((d for d in range(3) if abs(round(spacing, d) - spacing)
                              <= spacing * 1e-3), 3)
        super().set_locs(locs)

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:.{self.decimals}f}{self.suffix}"


def _datenums(times: np.ndarray) -> np.ndarray:
    stamps = (np.asarray(times, dtype=float) * 1000).astype("int64").astype("datetime64[ms]")
    return np.asarray(mdates.date2num(stamps))  # type: ignore[no-untyped-call]


def _x(at: datetime) -> float:
    return float(mdates.date2num(at.astimezone(UTC)))  # type: ignore[no-untyped-call]


def _change_label(change: ChangeRecord) -> str:
    text = (f"{change.service} {change.version}" if change.version
            else f"{change.service}: {change.description or change.kind}")
    return text if len(text) <= 40 else text[:39] + "…"


def _magnitude(panel: ChartPanel) -> float:
    values = [np.abs(s.values[np.isfinite(s.values)]) for _, s in panel.series]
    peaks = [float(v.max()) for v in values if v.size]
    if panel.baseline is not None and math.isfinite(panel.baseline):
        peaks.append(abs(panel.baseline))
    return max(peaks, default=0.0)


def _draw_panel(ax: Axes, panel: ChartPanel) -> None:
    # Values are drawn in the display unit (%, ms or s, MiB) so ticks fall on round numbers.
    mult, suffix = _scale(panel.unit, _magnitude(panel))
    drawn = False
    for name, series in panel.series:
        if len(series.times):
            ax.plot(_datenums(series.times), series.values * mult, linewidth=1.6, label=name)
            drawn = drawn or bool(np.isfinite(series.values).any())
    if panel.baseline is not None and math.isfinite(panel.baseline):
        ax.axhline(panel.baseline * mult, color=BASELINE_COLOR, linestyle=":", linewidth=1.4,
                   label=f"baseline {format_value(panel.unit, panel.baseline)}")
    if not drawn:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center",
                color=BASELINE_COLOR)
    ax.set_title(panel.label, loc="left", fontsize=11)
    ax.yaxis.set_major_formatter(ScaledFormatter(suffix))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8, frameon=False)


def _limits(panels: Sequence[ChartPanel], window: tuple[datetime, datetime] | None
            ) -> tuple[float, float] | None:
    if window is not None:
        return _x(window[0]), _x(window[1])
    stamps = [t for p in panels for _, s in p.series for t in s.times[np.isfinite(s.values)]]
    if not stamps:
        return None
    lo, hi = _datenums(np.array([min(stamps), max(stamps)]))
    return float(lo), float(hi)


def render_signals(panels: Sequence[ChartPanel], *, path: Path, title: str,
                   onset: datetime | None = None, changes: Sequence[ChangeRecord] = (),
                   window: tuple[datetime, datetime] | None = None) -> Path:
    """Draw the panels stacked on one time axis into a PNG of 1200 × (300 × panels) px at
    `path`; mark the onset (red dashed, "onset HH:MM") and each change inside the time range.
    Returns `path`."""
    if not panels:
        raise ValueError("render_signals needs at least one panel")
    fig = Figure(figsize=(WIDTH_PX / DPI, PANEL_PX * len(panels) / DPI), dpi=DPI,
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels, strict=True):
        _draw_panel(ax, panel)
    limits = _limits(panels, window)
    inside = (lambda x: limits[0] <= x <= limits[1]) if limits else (lambda x: True)
    top = axes[0]
    if onset is not None and inside(_x(onset)):
        for ax in axes:
            ax.axvline(_x(onset), color=ONSET_COLOR, linestyle="--", linewidth=1.5)
        top.text(_x(onset), 0.97, f"onset {onset.astimezone(UTC):%H:%M}",
                 transform=top.get_xaxis_transform(), color=ONSET_COLOR, fontsize=9,
                 va="top", ha="left", fontweight="bold", bbox=LABEL_BOX)
    for change in changes:
        x = _x(change.occurred_at)
        if not inside(x):
            continue
        for ax in axes:
            ax.axvline(x, color=CHANGE_COLOR, linestyle="-.", linewidth=1.2)
        top.text(x, 0.97, _change_label(change), transform=top.get_xaxis_transform(),
                 color=CHANGE_COLOR, fontsize=8, rotation=90, va="top", ha="right",
                 bbox=LABEL_BOX)
    if limits is not None and limits[1] > limits[0]:
        axes[-1].set_xlim(*limits)
    # matplotlib.dates ships no type hints.
    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=12)  # type: ignore[no-untyped-call]
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))  # type: ignore[no-untyped-call]
    axes[-1].set_xlabel("time (UTC)")
    fig.suptitle(title, fontsize=13, x=0.01, ha="left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def _cited(hyp: RankedHypothesis, by_id: dict[str, Evidence]) -> list[Evidence]:
    """A hypothesis's metric evidence: its cause's signal first, then by robust score."""
    found = [by_id[i] for i in hyp.evidence_ids
             if i in by_id and "signal" in by_id[i].labels and "service" in by_id[i].labels]
    return sorted(found, key=lambda e: (e.labels["signal"] != hyp.cause.signal,
                                        -e.values.get("robust_z", 0.0)))


def panels_for(investigation: Investigation, snapshot: Snapshot, *,
               services: list[str] | None = None, max_panels: int = 4) -> list[ChartPanel]:
    """The series worth a chart: those cited as evidence by the hypotheses, top hypothesis
    first, matched to the snapshot's signals by service, signal and target. With `services`,
    only evidence of (or about) those services. Evidence with no series in the snapshot is
    skipped."""
    by_id = investigation.evidence_by_id()
    wanted = set(services) if services is not None else None
    panels: list[ChartPanel] = []
    seen: set[tuple[str, str, str | None]] = set()
    for hyp in investigation.hypotheses:
        for ev in _cited(hyp, by_id):
            key = (ev.labels["service"], ev.labels["signal"], ev.labels.get("target"))
            if key in seen or (wanted is not None and not wanted & {key[0], key[2]}):
                continue
            seen.add(key)
            service, signal, target = key
            matched = [sd for sd in snapshot.signals
                       if (sd.service, sd.signal, sd.target) == key]
            if not matched:
                continue
            who = f"{service} → {target}" if target else service
            panels.append(ChartPanel(
                label=f"{who} {signal.replace('_', ' ')}",
                unit=UNIT_OF_SIGNAL.get(signal, "rps"),
                series=[(who, sd.series) for sd in matched],
                baseline=ev.values.get("baseline")))
            if len(panels) >= max_panels:
                return panels
    return panels
