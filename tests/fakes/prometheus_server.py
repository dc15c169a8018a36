"""A real Prometheus on loopback over a backfilled TSDB, for tests: series written as OpenMetrics
text (`openmetrics`), turned into blocks by `promtool tsdb create-blocks-from openmetrics`, and
served by the Debian/upstream `prometheus` binary (`running_prometheus`).

OpenMetrics rules that `openmetrics` follows (promtool 2.42 accepts more, but silently mangles
some of it, and newer versions are stricter):
- the text ends with `# EOF` (promtool fails without it);
- timestamps are unix *seconds* (milliseconds are taken as seconds, i.e. far in the future);
- a series' points are in increasing time order (promtool silently drops a point older than the
  one before it) and each family is written once, its series together;
- a counter family is named without `_total`, its samples with it: `MetricFamily(name=
  "http_requests_total", type="counter")` is written `# TYPE http_requests counter` +
  `http_requests_total{…}`. A "counter" whose name does not end in `_total` (histogram buckets:
  `…_bucket{le="0.5"}`, `…_count`, `…_sum`) cannot be an OpenMetrics counter, so it is written as
  an `unknown` family, whose samples carry the family name unchanged. The TSDB keeps no types
  anyway: `rate()` and `histogram_quantile()` work on the stored names;
- values and timestamps are Go floats: `NaN`, `+Inf`, `-Inf`; label values and HELP escape
  `\\`, `"` (label values only) and newline.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tests.conftest import need
from tests.fakes.alertmanager_server import _running, free_port

Point = tuple[float, float]  # (unix seconds, value)


@dataclass
class MetricFamily:
    """One metric: `name` is the sample name as PromQL sees it (`http_requests_total`), `samples`
    one (labels, points) pair per series."""

    name: str
    type: Literal["counter", "gauge"]
    help: str = ""
    samples: Sequence[tuple[dict[str, str], Sequence[Point]]] = field(default_factory=list)


def _number(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


def _label_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(families: Iterable[MetricFamily]) -> str:
    """OpenMetrics text of `families` for `promtool tsdb create-blocks-from openmetrics`."""
    lines: list[str] = []
    seen: set[str] = set()
    for fam in families:
        if fam.type == "counter" and fam.name.endswith("_total"):
            family, kind = fam.name.removesuffix("_total"), "counter"
        else:
            family, kind = fam.name, "gauge" if fam.type == "gauge" else "unknown"
        if family in seen:
            raise ValueError(f"metric family {family!r} given twice; merge its samples")
        seen.add(family)
        if fam.help:
            lines.append(f"# HELP {family} "
                         + fam.help.replace("\\", "\\\\").replace("\n", "\\n"))
        lines.append(f"# TYPE {family} {kind}")
        for labels, points in fam.samples:
            body = ",".join(f'{k}="{_label_value(v)}"' for k, v in sorted(labels.items()))
            series = f"{fam.name}{{{body}}}" if body else fam.name
            last = -math.inf
            for t, value in sorted(points):
                if t == last:
                    raise ValueError(f"{series} has two points at {t}")
                if t > 1e11:
                    raise ValueError(f"{series}: timestamp {t} looks like milliseconds")
                last = t
                lines.append(f"{series} {_number(value)} {_number(t)}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@contextmanager
def running_prometheus(tmp_path: Path, openmetrics_text: str, *,
                       ready_timeout: float = 30.0,
                       max_block_duration: str | None = None) -> Iterator[str]:
    """A sync context manager: backfill `openmetrics_text` into a fresh TSDB under `tmp_path`,
    start Prometheus on it on a free loopback port (no scrape targets, no rules, retention 100y
    so old backfilled blocks are kept), yield its base URL once `/-/ready` answers, and always
    stop it (SIGTERM, then SIGKILL). Skips (fails in CI) without `prometheus` and `promtool`."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    need(prometheus is not None and promtool is not None,
         "Prometheus is not installed (apt-get install prometheus: prometheus, promtool)")
    assert prometheus is not None and promtool is not None
    tmp_path.mkdir(parents=True, exist_ok=True)
    source, data = tmp_path / "backfill.om", tmp_path / "data"
    source.write_text(openmetrics_text)
    # promtool re-reads its whole input once per block (2 h by default): data spread over days
    # backfills in seconds with long blocks instead of minutes.
    extra = [f"--max-block-duration={max_block_duration}"] if max_block_duration else []
    done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", *extra,
                           str(source), str(data)], capture_output=True, text=True, timeout=600,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"promtool backfill of {source} failed ({done.returncode}):\n"
                           f"{done.stderr}{done.stdout}")
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({"global": {"evaluation_interval": "1m"}}))
    port = free_port()
    argv = [prometheus, f"--config.file={config}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y"]
    with _running("prometheus", argv, log_path=tmp_path / "prometheus.log",
                  base_url=f"http://127.0.0.1:{port}", ready_path="/-/ready",
                  ready_timeout=ready_timeout) as proc:
        yield proc.base_url
