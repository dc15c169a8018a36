"""However late: a pod whose claim is full, its claim's critical still firing, joins the claim's
incident half an hour on (past the lasting reach); once the critical resolved, or while only the
early warning fires, the pod's trouble is its own."""

from __future__ import annotations

from dataclasses import replace

from knowledge.correlation import AlertSignal
from knowledge.db import Database
from knowledge.incidents import incidents_with_alerts
from tests.knowledge.factories import org_id
from tests.knowledge.test_noise_intake import NODE, _apply, alert

MIN = 60.0
CLAIM = {"persistentvolumeclaim": "data-search-api-0", "job": "kubelet", "node": NODE}


def filling(severity: str, at: float, **kw: str | float) -> AlertSignal:
    made = alert("KubePersistentVolumeFillingUp", at=at, severity=severity,
                 namespace="search", **CLAIM, **kw)  # type: ignore[arg-type]
    return replace(made, fingerprint=f"claim-{severity}")  # as Alertmanager's: by labels


def crash_loop(at: float) -> AlertSignal:
    made = alert("KubePodCrashLooping", at=at, namespace="search", pod="search-api-0",
                 job="kube-state-metrics", container="search")
    return replace(made, fingerprint="crash-loop")


async def _cards(database: Database, signals: list[tuple[AlertSignal, float]]
                 ) -> list[tuple[list[str], str]]:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        for signal, now in signals:
            await _apply(s, oid, signal, now=now)
        return [(sorted(f"{a.alertname}/{a.severity}" for a in alerts), i.reason or "")
                for i, alerts in await incidents_with_alerts(s, org_id=oid)]


async def test_a_pod_joins_its_full_claim_however_late(database: Database) -> None:
    # Received an hour in, so nothing waits: the warning, its critical 35 min on, and the
    # pod crash-looping 35 min after that — past the lasting reach (4 windows of 5 min) —
    # received past its hold.
    [(alerts, reason)] = await _cards(database, [
        (filling("warning", 0), 60 * MIN), (filling("critical", 35 * MIN), 61 * MIN),
        (crash_loop(70 * MIN), 75 * MIN)])
    assert alerts == ["KubePersistentVolumeFillingUp/critical",
                      "KubePersistentVolumeFillingUp/warning", "KubePodCrashLooping/warning"]
    assert "critical alert, still firing" in reason, reason


async def test_the_claims_warning_alone_does_not_take_a_late_crash_loop(database: Database
                                                                       ) -> None:
    cards = await _cards(database, [(filling("warning", 0), 60 * MIN),
                                    (crash_loop(70 * MIN), 75 * MIN)])
    assert sorted(alerts for alerts, _ in cards) == [
        ["KubePersistentVolumeFillingUp/warning"], ["KubePodCrashLooping/warning"]]


async def test_once_the_critical_resolved_a_late_crash_loop_is_its_own(database: Database
                                                                      ) -> None:
    cards = await _cards(database, [
        (filling("warning", 0), 60 * MIN), (filling("critical", 35 * MIN), 61 * MIN),
        (filling("critical", 35 * MIN, status="resolved", ends=62 * MIN), 62 * MIN),
        (crash_loop(70 * MIN), 75 * MIN)])
    assert sorted(alerts for alerts, _ in cards) == [
        ["KubePersistentVolumeFillingUp/critical", "KubePersistentVolumeFillingUp/warning"],
        ["KubePodCrashLooping/warning"]]
