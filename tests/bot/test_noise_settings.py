"""The noise rules come from settings: the capacity alerts are a comma-separated list a site
can change or empty (`SRE_COPILOT_NOISE_CAPACITY_ALERTS`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings


def test_capacity_alerts_are_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "KubeMemoryOvercommit" in Settings(data_dir=tmp_path).noise_rules().capacity
    monkeypatch.setenv("SRE_COPILOT_NOISE_CAPACITY_ALERTS", " NodeNeedsDisks, KubeCPUOvercommit ")
    assert Settings(data_dir=tmp_path).noise_rules().capacity == {"NodeNeedsDisks",
                                                                  "KubeCPUOvercommit"}
    monkeypatch.setenv("SRE_COPILOT_NOISE_CAPACITY_ALERTS", "")
    assert Settings(data_dir=tmp_path).noise_rules().capacity == frozenset()
