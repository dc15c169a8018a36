"""Capacity forecasts: the models on generated series with known answers, the hourly grid under
gaps, and the checks end to end against a real Prometheus backfilled with four weeks of
node_exporter filesystem series — through `run_checks`, the chart and `sre-copilot forecast`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from skills.forecast import (
    DEFAULT_CHECKS,
    CapacityCheck,
    check_capacity,
    render_forecast,
    run_checks,
)
from skills.forecast.capacity import hourly
from skills.forecast.models import (
    DAY,
    crossing_hours,
    forecast,
    forecast_many,
    has_daily_season,
)
from skills.prometheus.client import PrometheusClient, PrometheusError
from skills.types import Series
from tests.fakes.alertmanager_server import free_port
from tests.fakes.prometheus_server import MetricFamily, openmetrics, running_prometheus

ROOT = Path(__file__).resolve().parents[2]
HISTORY, HORIZON = 28 * DAY, 14 * DAY


def filling(hours_to_empty: float, *, amplitude: float = 0.01, noise: float = 0.002,
            seed: int = 1, start: float = 0.5, n: int = HISTORY) -> tuple[np.ndarray, float]:
    """A disk's free fraction falling linearly to 10% `hours_to_empty` after the last of `n`
    hourly points, with a daily cycle and noise; and the hours after the last point at which
    the noise-free curve first reaches 10% (scanned minute by minute)."""
    rate = (start - 0.10) / (n - 1 + hours_to_empty)

    def curve(t: np.ndarray) -> np.ndarray:
        return np.asarray(start - rate * t + amplitude * np.sin(2 * np.pi * t / DAY))

    t = np.arange(n, dtype=float)
    y = curve(t) + np.random.default_rng(seed).normal(0, noise, n)
    later = (n - 1) + np.arange(1, 60 * HORIZON) / 60
    first = int(np.argmax(curve(later) <= 0.10))
    return y, float(later[first] - (n - 1))


# -- models ------------------------------------------------------------------------------------


def test_crossing_hours_interpolates_and_knows_both_directions() -> None:
    assert crossing_hours(0.0, np.array([0.5, 1.5]), 1.0, "above") == pytest.approx(1.5)
    assert crossing_hours(0.5, np.array([0.3, 0.1]), 0.2, "below") == pytest.approx(1.5)
    assert crossing_hours(1.2, np.array([2.0]), 1.0, "above") == 0.0  # already past
    assert crossing_hours(0.0, np.array([0.2, 0.4]), 1.0, "above") is None


def test_daily_cycle_is_detected_only_where_there_is_one() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(HISTORY)
    assert has_daily_season(0.5 + 0.05 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 0.02, HISTORY))
    assert not has_daily_season(0.5 + rng.normal(0, 0.02, HISTORY))
    assert not has_daily_season(np.cumsum(rng.normal(0, 0.01, HISTORY)))  # a random walk
    assert not has_daily_season(0.5 + 0.05 * np.sin(2 * np.pi * t[:48] / DAY))  # two days


def test_filling_disk_crossing_is_predicted_within_half_a_day() -> None:
    for seed, days in ((1, 3.0), (2, 6.5), (3, 11.0)):
        y, truth = filling(days * DAY, seed=seed)
        fc = forecast(y, horizon=HORIZON)
        got = crossing_hours(float(y[-1]), fc.mean, 0.10, "below")
        early = crossing_hours(float(y[-1]), fc.lower, 0.10, "below")
        late = crossing_hours(float(y[-1]), fc.upper, 0.10, "below")
        assert got is not None and abs(got - truth) < 12, (seed, days, got, truth, fc.label)
        assert early is not None and early <= truth
        assert late is None or truth <= late
        assert fc.season_length == DAY  # the daily cycle was modelled
        # The backtest saw the trend: the choice beat the seasonal naive forecast.
        assert fc.mase is not None and fc.mase < fc.scores["SeasonalNaive"].mase


def test_flat_disk_does_not_cross_within_the_horizon() -> None:
    y = 0.55 + np.random.default_rng(4).normal(0, 0.002, HISTORY)
    fc = forecast(y, horizon=HORIZON)
    assert crossing_hours(float(y[-1]), fc.mean, 0.10, "below") is None
    assert crossing_hours(float(y[-1]), fc.lower, 0.10, "below") is None
    assert abs(float(fc.mean[-1]) - 0.55) < 0.01


def test_noisy_series_intervals_hold_the_truth_about_as_often_as_they_say() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(HISTORY + HORIZON)
    full = [0.4 + 0.03 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 0.03, len(t))
            for _ in range(30)]
    fcs = forecast_many([y[:HISTORY] for y in full], horizon=HORIZON, level=80)
    inside = np.mean([np.mean((y[HISTORY:] >= f.lower) & (y[HISTORY:] <= f.upper))
                      for y, f in zip(full, fcs, strict=True)])
    assert 0.70 <= inside <= 0.92, inside
    assert all(f.coverage is not None for f in fcs)  # and the backtest measured it too


def test_constant_and_too_short_series() -> None:
    fc = forecast(np.full(HISTORY, 0.3), horizon=24)
    assert fc.model == "Constant" and np.all(fc.mean == 0.3) and np.all(fc.upper == 0.3)
    with pytest.raises(ValueError, match="need 72"):
        forecast(np.linspace(0, 1, 48), horizon=24)


# -- the hourly grid ---------------------------------------------------------------------------


def _series(hours: list[int], values: list[float] | None = None) -> Series:
    times = np.array(hours, dtype=float) * 3600
    return Series({"mountpoint": "/x"}, times,
                  np.array(values if values is not None else [0.5] * len(hours), dtype=float))


def test_hourly_fills_short_gaps_and_restarts_after_long_ones() -> None:
    hours = [h for h in range(200) if not 50 <= h < 54]  # 4 hours missing
    filled = hourly(_series(hours, [float(h) for h in hours]), start=0, end=199 * 3600)
    assert not isinstance(filled, str)
    assert len(filled[0]) == 200 and filled[1][51] == pytest.approx(51.0)  # interpolated
    hours = [h for h in range(200) if not 50 <= h < 70]  # 20 hours missing
    restarted = hourly(_series(hours), start=0, end=199 * 3600)
    assert not isinstance(restarted, str)
    assert restarted[0][0] == 70 * 3600 and len(restarted[1]) == 130


def test_hourly_says_why_a_series_is_not_forecast() -> None:
    assert hourly(_series(list(range(150, 200))), start=0, end=199 * 3600) == (
        "only 50 hours of data (a forecast needs 72: 3 days)")
    stale = hourly(_series(list(range(0, 150))), start=0, end=199 * 3600)
    assert isinstance(stale, str) and stale.startswith("no data since 1970-01-07 05:00 UTC (50 h")
    short = hourly(_series([*range(0, 100), *range(150, 200)]), start=0, end=199 * 3600)
    assert short == "only 50 hours of data since a 50-hour gap (a forecast needs 72: 3 days)"


# -- against a real Prometheus -----------------------------------------------------------------

END = (int(time.time()) // 3600 - 2) * 3600  # on the hour, 2 to 3 hours ago
START = END - HISTORY * 3600
SIZE = 100 * 2**30
DISK_QUERY = DEFAULT_CHECKS[0].query
VAR_DAYS = 5.0  # /var's trend reaches 10% free this long after END


def _disk_families() -> tuple[list[MetricFamily], float]:
    """node_exporter filesystem series every 15 min: /var filling with a daily cycle, / flat,
    /data noisy, /run a filling tmpfs (excluded by the check), /new mounted a day ago. Returns
    them and /var's true crossing, in hours after END."""
    t = np.arange(START, END + 1, 900, dtype=float)
    hours = (t - START) / 3600
    rng = np.random.default_rng(11)
    var_hours_left = VAR_DAYS * DAY
    rate = 0.40 / (hours[-1] + var_hours_left)

    def var_curve(h: np.ndarray) -> np.ndarray:
        return np.asarray(0.50 - rate * h + 0.01 * np.sin(2 * np.pi * h / DAY))

    later = hours[-1] + np.arange(1, 60 * HORIZON) / 60
    truth = float(later[int(np.argmax(var_curve(later) <= 0.10))] - hours[-1])
    free = {
        ("/var", "ext4"): var_curve(hours) + rng.normal(0, 0.001, len(t)),
        ("/", "ext4"): 0.55 + rng.normal(0, 0.001, len(t)),
        ("/data", "xfs"): 0.40 + rng.normal(0, 0.03, len(t)),
        ("/run", "tmpfs"): np.linspace(0.9, 0.12, len(t)),
    }
    avail, size = [], []
    for (mount, fstype), frac in free.items():
        labels = {"instance": "node-1:9100", "job": "node", "mountpoint": mount,
                  "fstype": fstype, "device": f"/dev/{mount.strip('/') or 'root'}"}
        points = list(zip(t.tolist(), (frac * SIZE).round().tolist(), strict=True))
        avail.append((labels, points))
        size.append((labels, [(ts, float(SIZE)) for ts in t.tolist()]))
    new = {"instance": "node-1:9100", "job": "node", "mountpoint": "/new", "fstype": "ext4",
           "device": "/dev/new"}
    recent = [ts for ts in t.tolist() if ts > END - DAY * 3600]
    avail.append((new, [(ts, 0.9 * SIZE) for ts in recent]))
    size.append((new, [(ts, float(SIZE)) for ts in recent]))
    return [MetricFamily("node_filesystem_avail_bytes", "gauge", "Free for non-root.", avail),
            MetricFamily("node_filesystem_size_bytes", "gauge", "Size in bytes.", size)], truth


MEMORY_DAYS = 9.0  # node-2 leaks memory: 90% used this long after END


def _memory_families() -> list[MetricFamily]:
    """node-2's memory: used share rising in a straight line from 50% to 90% at END +
    MEMORY_DAYS (no cycle), so the crossing is known exactly."""
    t = np.arange(START, END + 1, 900, dtype=float)
    used = 0.5 + 0.4 * (t - START) / (END + MEMORY_DAYS * 86400 - START)
    used += np.random.default_rng(12).normal(0, 0.002, len(t))
    total = 64 * 2**30
    labels = {"instance": "node-2:9100", "job": "node"}
    return [
        MetricFamily("node_memory_MemAvailable_bytes", "gauge", "", [
            (labels, list(zip(t.tolist(), ((1 - used) * total).round().tolist(), strict=True)))]),
        MetricFamily("node_memory_MemTotal_bytes", "gauge", "", [
            (labels, [(ts, float(total)) for ts in t.tolist()])]),
    ]


DISK_FAMILIES, VAR_TRUTH_HOURS = _disk_families()
FAMILIES = [*DISK_FAMILIES, *_memory_families()]


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), openmetrics(FAMILIES),
                            max_block_duration="720h") as url:
        yield url


def _at(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


@pytest.mark.slow
async def test_default_checks_rank_the_filling_disk_first(prometheus_url: str,
                                                          tmp_path: Path) -> None:
    bad = CapacityCheck(name="typo", query="rate(node_filesystem_avail_bytes[5m", threshold=1)
    async with PrometheusClient(prometheus_url) as prom:
        report = await check_capacity(prom, [*DEFAULT_CHECKS, bad], _at(END))
        # The list-only form: the same ranking, and a failed check is an error, not silence.
        assert [f.labels for f in await run_checks(prom, DEFAULT_CHECKS, _at(END))] == [
            f.labels for f in report.forecasts]
        with pytest.raises(PrometheusError, match="parse error"):
            await run_checks(prom, [*DEFAULT_CHECKS, bad], _at(END))
    # Worst first across checks: /var (disk) fills before node-2's memory does; no tmpfs.
    ranked = [(f.check, f.labels.get("mountpoint", f.labels["instance"]))
              for f in report.forecasts]
    assert ranked[:2] == [("disk", "/var"), ("memory", "node-2:9100")]
    assert sorted(ranked[2:]) == [("disk", "/"), ("disk", "/data")]
    memory = report.forecasts[1]
    assert memory.direction == "above" and memory.days_to_threshold is not None
    assert abs(memory.days_to_threshold - MEMORY_DAYS) < 0.5
    assert memory.lower is not None and memory.lower <= MEMORY_DAYS
    assert memory.upper is None or MEMORY_DAYS <= memory.upper
    mounts = [f.labels.get("mountpoint") for f in report.forecasts]
    var, root, data = (report.forecasts[mounts.index(m)] for m in ("/var", "/", "/data"))
    truth = VAR_TRUTH_HOURS / 24
    assert var.days_to_threshold is not None and abs(var.days_to_threshold - truth) < 0.5
    assert var.lower is not None and var.lower <= truth
    assert var.upper is None or truth <= var.upper
    assert var.crossing_at is not None and var.last_value == pytest.approx(
        float(FAMILIES[0].samples[0][1][-1][1]) / SIZE, abs=1e-6)
    assert root.days_to_threshold is None and root.upper is None
    assert root.outlook() == "not within 14 days"
    assert data.days_to_threshold is None
    # Every statement carries its evidence: the query, the range, the numbers.
    ev = var.evidence
    assert ev.query == DISK_QUERY and ev.start == _at(START) and ev.end == _at(END)
    assert ev.values["days_to_threshold"] == var.days_to_threshold
    assert ev.values["backtest_mase"] == var.mase and var.mase is not None
    assert var.outlook().startswith("crosses in ") and var.outlook() in ev.summary
    assert "filesystem space free on instance=node-1:9100, mountpoint=/var" in ev.summary
    # The mount made yesterday is named, with the reason; the typo comes back with
    # Prometheus' own error; CPU found no series, which is not a failure.
    assert [(s.labels["mountpoint"], s.reason) for s in report.skipped] == [
        ("/new", "only 24 hours of data (a forecast needs 72: 3 days)")]
    assert [f.check for f in report.failed] == ["typo"]
    assert "parse error" in report.failed[0].error
    assert "rate(node_filesystem_avail_bytes[5m" in report.failed[0].error

    png = render_forecast(report.forecasts, path=tmp_path / "capacity.png", max_panels=2)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one = render_forecast(var, path=tmp_path / "var.png")
    assert one.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "matplotlib.pyplot" not in sys.modules


def _cli(args: list[str], cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SRE_COPILOT_", "DATABASE"))}
    env.update(PYTHONPATH=str(ROOT), PROMETHEUS_URL=url, COLUMNS="120")
    return subprocess.run([sys.executable, "-m", "bot.cli", "forecast", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_cli_forecast_json_and_text(prometheus_url: str, tmp_path: Path) -> None:
    started = time.time()
    result = _cli(["--query", DISK_QUERY, "--threshold", "0.1", "--below", "--json"],
                  tmp_path, prometheus_url)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 3 and rows[0]["labels"]["mountpoint"] == "/var"
    var = rows[0]
    truth = VAR_TRUTH_HOURS / 24 - (started - END) / 86400  # the CLI counts from its now
    assert abs(var["days_to_threshold"] - truth) < 0.5
    assert var["lower"] <= truth and (var["upper"] is None or truth <= var["upper"])
    assert var["model"] and var["mase"] > 0 and var["evidence"]["query"] == DISK_QUERY
    assert [r["days_to_threshold"] for r in rows[1:]] == [None, None]
    assert "skipped" in result.stderr and "/new" in result.stderr

    chart = tmp_path / "disk.png"
    text = _cli(["--query", DISK_QUERY, "--threshold", "0.1", "--below", "--chart", str(chart)],
                tmp_path, prometheus_url)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith("instance=node-1:9100, mountpoint=/var, device=/dev/var")
    assert "threshold < 0.10, crosses in" in lines[0] and "MASE" in lines[0]
    assert any("mountpoint=/, " in line and "not within 14 days" in line for line in lines)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_cli_forecast_fails_clearly(prometheus_url: str, tmp_path: Path) -> None:
    bad = _cli(["--query", "node_filesystem_avail_bytes{", "--threshold", "1"], tmp_path,
               prometheus_url)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "sre-copilot forecast: Prometheus query_range failed (bad_data" in bad.stderr
    assert "parse error" in bad.stderr and "node_filesystem_avail_bytes{" in bad.stderr
    down = _cli(["--query", "up", "--threshold", "1"], tmp_path,
                f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 2 and "(connection" in down.stderr
    assert "Traceback" not in bad.stderr + down.stderr


@pytest.mark.slow
def test_digest_json_and_post_carry_the_capacity_forecasts(prometheus_url: str,
                                                          tmp_path: Path) -> None:
    """`sre-copilot digest` for the week ending at END, against the same Prometheus: the
    forecasts ranked worst first with their crossing and interval; `--post` puts them in
    Block Kit and uploads the worst ones' charts to DIGEST_SLACK_CHANNEL."""
    from tests.fakes.slack_api import running_slack

    since, until = _at(END - 7 * 86400).isoformat(), _at(END).isoformat()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SRE_COPILOT_", "DATABASE", "DIGEST_", "SLACK_", "TEAMS_"))}
    env.update(PYTHONPATH=str(ROOT), PROMETHEUS_URL=prometheus_url, COLUMNS="120",
               SRE_COPILOT_DATA_DIR=str(tmp_path / "data"), SRE_COPILOT_HISTORY="false")

    def digest(*args: str, **more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot.cli", "digest", "--since", since,
                               "--until", until, *args], cwd=tmp_path, env={**env, **more},
                              capture_output=True, text=True, timeout=180, check=False)

    done = digest("--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    forecasts = data["forecasts"]
    assert [(f["check"], f["labels"].get("mountpoint", f["labels"]["instance"]))
            for f in forecasts[:2]] == [("disk", "/var"), ("memory", "node-2:9100")]
    var, truth = forecasts[0], VAR_TRUTH_HOURS / 24
    assert abs(var["days_to_threshold"] - truth) < 0.5
    assert var["lower"] <= truth and (var["upper"] is None or truth <= var["upper"])
    assert {f["labels"].get("mountpoint") for f in forecasts if f["days_to_threshold"] is None
            } >= {"/", "/data"}
    assert len(data["charts"]) == 2  # the two that cross within the horizon
    assert all(Path(c).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for c in data["charts"])

    with running_slack() as slack:
        channel = slack.add_channel("sre-weekly").id
        posted = digest("--post", DIGEST_SLACK_CHANNEL=channel, SLACK_BOT_TOKEN="xoxb-test",
                        SLACK_API_URL=slack.base_url + "/api/")
        assert posted.returncode == 0, posted.stderr
        [message] = [c for c in slack.calls_to("chat.postMessage")
                     if (c.params or {}).get("channel") == channel]
        blocks = json.dumps((message.params or {}).get("blocks"))
        assert "Weekly digest" in blocks and "Capacity" in blocks
        assert "mountpoint=/var" in blocks and "crosses 0.1 in" in blocks
        charts = [f for f in slack.files.values() if f.data and f.data.startswith(b"\x89PNG")]
        assert len(charts) == 2
