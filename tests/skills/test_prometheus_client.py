"""PrometheusClient against a real Prometheus whose TSDB is backfilled with known series (2 h at
15 s, ending hours ago), plus the failures a skill must be able to explain: a PromQL error, a
server that never answers, nothing listening, a wrong path."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest

from skills.prometheus.client import PrometheusClient, PrometheusError, Sample
from tests.fakes.alertmanager_server import free_port
from tests.fakes.prometheus_server import MetricFamily, openmetrics, running_prometheus

pytestmark = pytest.mark.slow

STEP = 15
END = (int(time.time()) // 3600 - 3) * 3600  # on the hour, 3 to 4 hours ago
START = END - 2 * 3600
ONSET = START + 3600  # errors begin and CPU rises here
TIMES = list(range(START, END + 1, STEP))
SERVICE = {"service": "checkout"}
BUCKETS = {"0.1": 5.0, "0.5": 9.0, "+Inf": 10.0}  # cumulative observations per 15 s


def at(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


def families() -> list[MetricFamily]:
    ok = [(t, 3.0 * (t - START) / STEP) for t in TIMES]  # 0.2 req/s
    errors = [(t, max(0.0, 1.5 * (t - ONSET) / STEP)) for t in TIMES]  # 0, then 0.1 req/s
    cpu = [(t, 0.25 if t < ONSET else 0.75) for t in TIMES]
    return [
        MetricFamily("http_requests_total", "counter", "Requests by status code.", [
            ({**SERVICE, "code": "200"}, ok), ({**SERVICE, "code": "500"}, errors)]),
        MetricFamily("cpu_usage_ratio", "gauge", "CPU used / CPU limit.", [(SERVICE, cpu)]),
        MetricFamily("odd_values", "gauge", "", [
            ({"kind": "nan"}, [(t, math.nan) for t in TIMES]),
            ({"kind": "inf"}, [(t, math.inf) for t in TIMES])]),
        MetricFamily("http_request_duration_seconds_bucket", "counter", "", [
            ({**SERVICE, "le": le}, [(t, n * (t - START) / STEP) for t in TIMES])
            for le, n in BUCKETS.items()]),
    ]


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus"),
                            openmetrics(families())) as url:
        yield url


def test_openmetrics_text_names_counter_families_without_total() -> None:
    text = openmetrics(families())
    assert "# TYPE http_requests counter\n" in text
    assert '\nhttp_requests_total{code="200",service="checkout"} 0 ' in text
    assert "# TYPE http_request_duration_seconds_bucket unknown\n" in text
    assert 'odd_values{kind="nan"} NaN ' in text and 'odd_values{kind="inf"} +Inf ' in text
    assert text.endswith("# EOF\n")


async def test_query_range_rate_gives_the_written_rates(prometheus_url: str) -> None:
    async with PrometheusClient(prometheus_url) as prom:
        result = await prom.query_range(
            'rate(http_requests_total{service="checkout"}[1m])',
            start=at(START + 1800), end=at(END - 1800), step=60)
    by_code = {s.labels["code"]: s for s in result}
    assert set(by_code) == {"200", "500"}
    assert by_code["200"].labels == {**SERVICE, "code": "200"}  # rate() drops __name__
    expected_times = np.arange(START + 1800, END - 1800 + 1, 60, dtype=np.float64)
    for series in result:
        assert series.times.dtype == np.float64 and series.values.dtype == np.float64
        np.testing.assert_array_equal(series.times, expected_times)
    np.testing.assert_allclose(by_code["200"].values, 0.2)
    errors = by_code["500"]
    np.testing.assert_allclose(errors.between(START, ONSET).values, 0.0)
    np.testing.assert_allclose(errors.between(ONSET + 120, END).values, 0.1)


async def test_instant_query_at_a_time(prometheus_url: str) -> None:
    async with PrometheusClient(prometheus_url) as prom:
        before = await prom.query("cpu_usage_ratio", at=at(ONSET - 600))
        after = await prom.query("cpu_usage_ratio", at=at(ONSET + 600))
        scalar = await prom.query("scalar(sum(cpu_usage_ratio)) * 2", at=at(END))
    assert before == [Sample({"__name__": "cpu_usage_ratio", **SERVICE}, ONSET - 600, 0.25)]
    assert after == [Sample({"__name__": "cpu_usage_ratio", **SERVICE}, ONSET + 600, 0.75)]
    assert scalar == [Sample({}, END, 1.5)]


async def test_nan_and_inf_values(prometheus_url: str) -> None:
    async with PrometheusClient(prometheus_url) as prom:
        samples = await prom.query("odd_values", at=at(ONSET))
    values = {s.labels["kind"]: s.value for s in samples}
    assert math.isnan(values["nan"]) and values["inf"] == math.inf


async def test_histogram_quantile_on_backfilled_buckets(prometheus_url: str) -> None:
    async with PrometheusClient(prometheus_url) as prom:
        [p75] = await prom.query(
            "histogram_quantile(0.75, sum by (le) "
            "(rate(http_request_duration_seconds_bucket[5m])))", at=at(ONSET))
    # rank 0.75 * 10 = 7.5 falls in (0.1, 0.5], which holds observations 5..9: linear inside.
    assert p75.labels == {}
    assert p75.value == pytest.approx(0.1 + 0.4 * (7.5 - 5) / (9 - 5))


async def test_long_query_is_posted(prometheus_url: str) -> None:
    others = "|".join(f"service-{i:05d}" for i in range(2000))  # 28 kB: too long for many URLs
    promql = f'sum(cpu_usage_ratio{{service=~"checkout|{others}"}})'
    async with PrometheusClient(prometheus_url) as prom:
        [sample] = await prom.query(promql, at=at(ONSET - 600))
    assert sample.value == 0.25


async def test_series_labels_and_values(prometheus_url: str) -> None:
    async with PrometheusClient(prometheus_url) as prom:
        series = await prom.series(["http_requests_total"], start=at(START), end=at(END))
        names = await prom.labels()
        bucket_names = await prom.labels(match=["http_request_duration_seconds_bucket"])
        metrics = await prom.label_values("__name__")
        codes = await prom.label_values("code", match=['http_requests_total{code=~"5.."}'])
        les = await prom.label_values("le")
    assert sorted(series, key=lambda s: s["code"]) == [
        {"__name__": "http_requests_total", **SERVICE, "code": "200"},
        {"__name__": "http_requests_total", **SERVICE, "code": "500"}]
    assert set(names) == {"__name__", "code", "kind", "le", "service"}
    assert set(bucket_names) == {"__name__", "le", "service"}
    assert metrics == sorted(["cpu_usage_ratio", "http_request_duration_seconds_bucket",
                              "http_requests_total", "odd_values"])
    assert codes == ["500"]
    assert set(les) == set(BUCKETS)


async def test_metadata_alerts_and_rules(prometheus_url: str) -> None:
    async with PrometheusClient(prometheus_url) as prom:
        # Metadata comes from scrapes only: backfilled blocks carry none.
        assert await prom.metadata() == {}
        assert await prom.metadata("http_requests_total") == {}
        assert await prom.alerts() == []
        assert await prom.rules() == []


async def test_promql_error_names_query_range_and_upstream_text(prometheus_url: str) -> None:
    promql = 'sum(rate(http_requests_total{service="checkout"}[5m])'
    async with PrometheusClient(prometheus_url) as prom:
        with pytest.raises(PrometheusError) as caught:
            await prom.query_range(promql, start=at(START), end=at(END), step=15)
        with pytest.raises(PrometheusError) as instant:
            await prom.query(promql, at=at(ONSET))
    err = caught.value
    assert (err.endpoint, err.error_type, err.status) == ("query_range", "bad_data", 400)
    assert (err.query, err.start, err.end, err.step) == (promql, at(START), at(END), 15)
    assert "parse error" in err.message
    text = str(err)
    assert "\n" not in text
    assert text.startswith("Prometheus query_range failed (bad_data, HTTP 400): ")
    assert err.message in text and f"`{promql}`" in text
    assert f"range {at(START):%Y-%m-%dT%H:%M:%SZ}..{at(END):%Y-%m-%dT%H:%M:%SZ} step 15s" in text
    assert f"`{promql}` at {at(ONSET):%Y-%m-%dT%H:%M:%SZ}" in str(instant.value)


async def test_wrong_path_is_an_http_error(prometheus_url: str) -> None:
    async with PrometheusClient(prometheus_url + "/nowhere") as prom:
        with pytest.raises(PrometheusError) as caught:
            await prom.labels()
    assert (caught.value.error_type, caught.value.status) == ("http", 404)


async def test_timeout_when_the_server_never_answers() -> None:
    with socket.socket() as listener:  # the kernel completes handshakes; nobody reads
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        began = time.monotonic()
        async with PrometheusClient(f"http://127.0.0.1:{port}", timeout=0.5) as prom:
            with pytest.raises(PrometheusError) as caught:
                await prom.query("up", at=at(END))
        elapsed = time.monotonic() - began
    assert caught.value.error_type == "timeout" and caught.value.status is None
    assert "`up`" in str(caught.value) and "0.5 s" in str(caught.value)
    assert elapsed < 3


async def test_connection_refused() -> None:
    port = free_port()  # bound then released: nothing listens
    async with PrometheusClient(f"http://127.0.0.1:{port}", timeout=2) as prom:
        with pytest.raises(PrometheusError) as caught:
            await prom.query_range("up", start=at(START), end=at(END), step=60)
    assert caught.value.error_type == "connection"
    assert caught.value.endpoint == "query_range" and "`up` range " in str(caught.value)


async def test_shared_http_client_stays_open(prometheus_url: str) -> None:
    async with httpx.AsyncClient() as http:
        async with PrometheusClient(prometheus_url, http=http,
                                    headers={"X-Scope-OrgID": "t1"}) as prom:
            assert await prom.label_values("service") == ["checkout"]
        assert not http.is_closed
        assert await PrometheusClient(prometheus_url, http=http).labels()


def test_error_text_is_one_line_and_naive_times_are_utc() -> None:
    err = PrometheusError("x\ny", endpoint="query", error_type="timeout", query="up",
                          start=datetime(2026, 11, 20, 3, 0), end=datetime(2026, 11, 20, 5, 0),
                          step=15)
    assert str(err) == ("Prometheus query failed (timeout): x y — query: `up` "
                        "range 2026-11-20T03:00:00Z..2026-11-20T05:00:00Z step 15s")
