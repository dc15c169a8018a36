"""Real faults on this machine, end to end, as the held-back check runs them: real exporters
(node_exporter, redis_exporter, the blackbox exporter) scraped by a real Prometheus with
kube-prometheus's rules, a real Alertmanager notifying a real `sre-copilot serve` (Slack fake),
and five real faults one after another — a filesystem filling, redis-server killed, its
exporter killed (TargetDown), a probed endpoint answering 500, and the CPU saturated with
`stress-ng`. For each: how long until the incident opened and its briefing was posted, whether
the failing resource is among the briefing's top 3 hypotheses (as stored for the incident), and
whether the alert's runbook is named; beside it, whether the alert's own labels already named
the resource (the naive reading).

    .venv/bin/python -m tests.bench.rca_real        (about 4 minutes; needs root for the mount)
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from knowledge.alerts import Alert
from knowledge.db import open_database
from knowledge.hypotheses import list_hypotheses
from knowledge.subjects import identity
from tests.fakes.real_copilot import Copilot, running_copilot
from tests.fakes.real_stack import RealStack

OPEN_TIMEOUT = 200.0  # the CPU alerts need their 2-minute rates to climb


@dataclass
class Fault:
    name: str
    alerts: tuple[str, ...]  # the alert(s) it should raise, any of them
    inject: Callable[[RealStack], object]
    heal: Callable[[RealStack], object]
    names: Callable[[RealStack], list[str]]  # what naming the failing resource means


FAULTS = [
    Fault("filesystem filling", ("NodeFilesystemAlmostOutOfSpace",
                                 "NodeFilesystemSpaceFillingUp"),
          lambda s: s.fill_filesystem(97), lambda s: s.free_filesystem(),
          lambda s: [str(s.mountpoint)]),
    Fault("redis-server killed", ("RedisDown",), lambda s: s.stop_redis(),
          lambda s: s.restart_redis(), lambda s: [s.redis_exporter_address]),
    Fault("its exporter killed (TargetDown)", ("TargetDown",),
          lambda s: s.stop_redis_exporter(), lambda s: s.restart_redis_exporter(),
          lambda s: [s.redis_exporter_address]),
    Fault("endpoint answering 500", ("BlackboxProbeFailed", "BlackboxProbeHttpFailure"),
          lambda s: s.fail_endpoint(500), lambda s: s.heal_endpoint(),
          lambda s: [s.endpoint_url]),
    Fault("CPU saturated (stress-ng)", ("NodeSystemSaturation", "NodeCPUHighUsage"),
          lambda s: s.saturate_cpu(OPEN_TIMEOUT, workers=4),
          lambda s: s.stop_saturating_cpu(), lambda s: [s.node_exporter_address]),
]


@dataclass
class Outcome:
    fault: str
    alert: str | None = None
    opened_s: float | None = None
    briefed_s: float | None = None
    top3: bool = False
    top1: bool = False
    runbook: bool = False
    labels_named: bool = False
    top: list[str] = field(default_factory=list)


async def _incident_of(db_url: str, alerts: tuple[str, ...], since: float
                       ) -> tuple[Alert, list[Any]] | None:
    from sqlalchemy.engine import make_url
    from sqlmodel import col, select

    db = open_database(make_url(db_url))
    try:
        async with db.session() as session:
            rows = (await session.exec(select(Alert).where(col(Alert.alertname).in_(alerts))
                                       .order_by(col(Alert.id)))).all()
            for row in rows:
                if row.incident_id is None or row.created_at.timestamp() < since:
                    continue
                found = await list_hypotheses(session, org_id=row.org_id,
                                              incident_id=row.incident_id)
                return row, list(found)
    finally:
        await db.dispose()
    return None


def run_fault(copilot: Copilot, db_url: str, fault: Fault) -> Outcome:
    stack = copilot.stack
    out = Outcome(fault.name)
    began = time.time()
    fault.inject(stack)
    try:
        deadline = time.monotonic() + OPEN_TIMEOUT
        while time.monotonic() < deadline:
            found = asyncio.run(_incident_of(db_url, fault.alerts, began - 1))
            if found is not None:
                alert, hyps = found
                out.alert = alert.alertname
                out.opened_s = out.opened_s or round(alert.created_at.timestamp() - began, 1)
                if hyps:
                    out.briefed_s = round(min(h.created_at.timestamp() for h in hyps)
                                          - began, 1)
                    wanted = fault.names(stack)
                    # What each hypothesis blames: its cause (a name and the resource's
                    # labels), not every name its statement mentions.
                    shown = [json.dumps([h.cause.get("service"), h.cause.get("resource")])
                             for h in hyps[:3]]
                    out.top = [h.statement[:110] for h in hyps[:3]]
                    out.top1 = any(n in shown[0] for n in wanted)
                    out.top3 = any(n in s for s in shown for n in wanted)
                    url = alert.annotations.get("runbook_url", "")
                    out.runbook = bool(url) and any(url in json.dumps(h.evidence) for h in hyps)
                    out.labels_named = any(n in identity(alert.labels).values()
                                           for n in wanted)
                    break
            time.sleep(1.0)
    finally:
        fault.heal(stack)
        time.sleep(8)  # the alert resolves before the next fault
    return out


def evaluate() -> list[Outcome]:
    """Run the five faults through a real stack and `serve`; print one line each."""
    work = Path(tempfile.mkdtemp(prefix="rca-real-"))
    outcomes = []
    with running_copilot(work, warm_up=20) as copilot:
        db_url = f"sqlite+aiosqlite:///{work / 'copilot.db'}"
        for fault in FAULTS:
            o = run_fault(copilot, db_url, fault)
            outcomes.append(o)
            print(f"  {'✓' if o.top3 else '✗'} {o.fault:34s} alert {o.alert or '-':32s} "
                  f"opened {o.opened_s}s  briefed {o.briefed_s}s  top-1 {o.top1}  "
                  f"runbook {o.runbook}  alert's labels named it {o.labels_named}")
            for line in o.top:
                print(f"        {line}")
    opened = sum(o.opened_s is not None for o in outcomes)
    print(f"\nreal faults: {len(outcomes)}; incidents opened {opened}; failing resource in the "
          f"top 3: {sum(o.top3 for o in outcomes)}, top 1: {sum(o.top1 for o in outcomes)}; "
          f"runbook named: {sum(o.runbook for o in outcomes)}; the alert's own labels named it: "
          f"{sum(o.labels_named for o in outcomes)}")
    return outcomes


def main() -> int:
    # Checked up front: the CPU fault comes last, after minutes of the others.
    if shutil.which("stress-ng") is None:
        print("rca_real: stress-ng is not installed (apt-get install --no-install-recommends "
              "stress-ng)", file=sys.stderr)
        return 2
    print(json.dumps([o.__dict__ for o in evaluate()], separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
