"""Charts: a real PNG of the expected size with something drawn on it, onset and changes
marked; and the panels an investigation's hypotheses call for, top hypothesis first."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skills.charts import ChartPanel, Unit, format_value, panels_for, render_signals
from skills.context import ChangeRecord, SignalData, Snapshot
from skills.hypotheses.models import Cause, Investigation, RankedHypothesis
from skills.types import Evidence, Series

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
ONSET = T0 + timedelta(minutes=45)


def _series(level: float, jump: float, *, minutes: int = 60, step: float = 15.0) -> Series:
    """A noisy level that jumps at ONSET."""
    times = T0.timestamp() + np.arange(0, minutes * 60, step)
    rng = np.random.default_rng(7)
    values = np.where(times >= ONSET.timestamp(), jump, level) * (1 + rng.normal(0, 0.02,
                                                                                len(times)))
    return Series({}, times, values)


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def test_a_two_panel_chart_is_a_png_of_the_expected_size_and_not_blank(tmp_path: Path) -> None:
    deploy = ChangeRecord(service="checkout", kind="deploy", source="webhook", version="v2.14.0",
                          occurred_at=ONSET - timedelta(minutes=3))
    panels = [
        ChartPanel("checkout errors", "ratio", [("checkout", _series(0.004, 0.12))],
                   baseline=0.004),
        ChartPanel("checkout latency", "seconds", [("checkout", _series(0.12, 0.85)),
                                                   ("payments", _series(0.05, 0.4))],
                   baseline=0.12),
    ]
    path = render_signals(panels, path=tmp_path / "charts" / "inc-7.png", title="INC-7 checkout",
                          onset=ONSET, changes=[deploy])
    assert path == tmp_path / "charts" / "inc-7.png" and path.exists()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == (1200, 2 * 300)
    pixels = _rgb(path)
    assert pixels.var() > 0
    # The onset line is drawn in red (#d62728), the change marker in purple (#7b3fa0).
    red = np.all(np.abs(pixels - np.array([0xD6, 0x27, 0x28])) < 40, axis=-1)
    purple = np.all(np.abs(pixels - np.array([0x7B, 0x3F, 0xA0])) < 40, axis=-1)
    assert red.sum() > 100 and purple.sum() > 100


def test_size_follows_the_panel_count_and_a_window_clips_markers(tmp_path: Path) -> None:
    late = ChangeRecord(service="checkout", kind="config", source="webhook",
                        occurred_at=T0 + timedelta(hours=5), description="pool size")
    path = render_signals([ChartPanel("traffic", "rps", [("checkout", _series(40, 90))])],
                          path=tmp_path / "one.png", title="one", changes=[late],
                          window=(T0, T0 + timedelta(hours=1)))
    pixels = _rgb(path)
    assert pixels.shape[:2] == (300, 1200)
    purple = np.all(np.abs(pixels - np.array([0x7B, 0x3F, 0xA0])) < 40, axis=-1)
    assert purple.sum() == 0  # the change lies outside the window: not drawn


def test_a_panel_without_data_still_renders(tmp_path: Path) -> None:
    path = render_signals([ChartPanel("memory", "bytes", [])], path=tmp_path / "empty.png",
                          title="nothing yet")
    assert _rgb(path).var() > 0


async def test_renders_run_side_by_side_in_threads(tmp_path: Path) -> None:
    """No pyplot and no shared figure: worker threads may render at once."""
    panel = ChartPanel("checkout errors", "ratio", [("checkout", _series(0.004, 0.12))])
    paths = await asyncio.gather(*(asyncio.to_thread(
        render_signals, [panel] * (i % 2 + 1), path=tmp_path / f"{i}.png", title=f"chart {i}",
        onset=ONSET) for i in range(4)))
    assert [_rgb(p).shape[0] for p in paths] == [300, 600, 300, 600]
    assert "matplotlib.pyplot" not in sys.modules


def test_no_panels_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one panel"):
        render_signals([], path=tmp_path / "x.png", title="x")


@pytest.mark.parametrize(("unit", "value", "text"), [
    ("ratio", 0.1234, "12.3%"), ("ratio", 0.004, "0.40%"), ("seconds", 0.85, "850 ms"),
    ("seconds", 1.25, "1.25 s"), ("bytes", 512 * 2**20, "512 MiB"), ("cores", 0.75, "0.75 cores"),
    ("rps", 42.0, "42.0 req/s"), ("ratio", float("nan"), "n/a"),
])
def test_values_are_formatted_by_unit(unit: Unit, value: float, text: str) -> None:
    assert format_value(unit, value) == text


def _signal(service: str, signal: str, target: str | None = None) -> SignalData:
    return SignalData(service=service, signal=signal, target=target, series=_series(1, 2),
                      query=f"{signal} of {service}" + (f" → {target}" if target else ""))


def _evidence(ev_id: str, service: str, signal: str, *, z: float, baseline: float,
              target: str | None = None) -> Evidence:
    return Evidence(id=ev_id, source="prometheus", summary=f"{service} {signal}",
                    query=f"{signal} of {service}",
                    values={"baseline": baseline, "peak": baseline * 10, "robust_z": z},
                    labels={"service": service, "signal": signal,
                            **({"target": target} if target else {})})


def _investigation() -> tuple[Investigation, Snapshot]:
    snap = Snapshot(service="checkout", at=T0 + timedelta(hours=1), start=T0,
                    end=T0 + timedelta(hours=1), step=15.0,
                    scope=["checkout", "payments", "ledger"],
                    edges=[("checkout", "payments"), ("payments", "ledger")],
                    signals=[_signal("checkout", "traffic"), _signal("checkout", "errors"),
                             _signal("checkout", "latency"), _signal("payments", "errors"),
                             _signal("payments", "memory"),
                             _signal("checkout", "client_errors", target="payments")])
    evidence = [
        _evidence("ev-1", "checkout", "errors", z=9, baseline=0.004),
        _evidence("ev-2", "checkout", "latency", z=6, baseline=0.12),
        _evidence("ev-3", "payments", "errors", z=5, baseline=0.01),
        _evidence("ev-4", "payments", "memory", z=30, baseline=4e8),
        _evidence("ev-5", "checkout", "client_errors", z=12, baseline=0.0, target="payments"),
        Evidence(id="ev-6", source="webhook", summary="payments deploy v3",
                 labels={"service": "payments", "kind": "deploy", "version": "v3"}),
        _evidence("ev-7", "ledger", "latency", z=20, baseline=0.2),  # no series in snapshot
    ]
    hypotheses = [
        RankedHypothesis(statement="payments deploy", confidence=0.6,
                         cause=Cause(service="payments", kind="deploy"),
                         evidence_ids=["ev-6", "ev-3", "ev-4", "ev-5", "ev-7"],
                         next_check="diff"),
        RankedHypothesis(statement="checkout errors", confidence=0.2,
                         cause=Cause(service="checkout", kind="errors", signal="errors"),
                         evidence_ids=["ev-2", "ev-1", "ev-3"], next_check="logs"),
    ]
    inv = Investigation(service="checkout", at=snap.at, start=snap.start, end=snap.end,
                        onset=ONSET, scope=snap.scope, hypotheses=hypotheses, evidence=evidence,
                        verdict="Look at payments first.")
    return inv, snap


def test_panels_follow_the_cited_evidence_top_hypothesis_first() -> None:
    inv, snap = _investigation()
    panels = panels_for(inv, snap, max_panels=10)
    # Top hypothesis first, its evidence by robust score (the change and the series the
    # snapshot lacks are skipped); then the second one's cause signal first, no repeats.
    assert [p.label for p in panels] == [
        "payments memory", "checkout → payments client errors", "payments errors",
        "checkout errors", "checkout latency"]
    assert [p.unit for p in panels] == ["bytes", "ratio", "ratio", "ratio", "seconds"]
    assert panels[0].baseline == 4e8
    assert panels[1].series[0][0] == "checkout → payments"
    by_label = {p.label: p for p in panels}
    errors = next(s for s in snap.signals if (s.service, s.signal) == ("checkout", "errors"))
    assert by_label["checkout errors"].series == [("checkout", errors.series)]


def test_panels_are_capped_and_can_be_limited_to_services() -> None:
    inv, snap = _investigation()
    assert [p.label for p in panels_for(inv, snap, max_panels=2)] == [
        "payments memory", "checkout → payments client errors"]
    assert [p.label for p in panels_for(inv, snap, services=["checkout"])] == [
        "checkout → payments client errors", "checkout errors", "checkout latency"]
    assert panels_for(inv, snap, services=["search"]) == []


def test_panels_for_renders(tmp_path: Path) -> None:
    inv, snap = _investigation()
    path = render_signals(panels_for(inv, snap), path=tmp_path / "inv.png", title="INC-7",
                          onset=inv.onset, changes=snap.changes, window=(snap.start, snap.end))
    with Image.open(path) as img:
        assert img.size == (1200, 4 * 300)
