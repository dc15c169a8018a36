"""However late: a pod whose claim is full, its claim's critical still firing, joins the claim's
incident half an hour on (past the lasting reach); once the critical resolved, or while only the
early warning fires, the pod's trouble is its own. And soon after an incident resolved: a
CronJob's next run failing reopens it — or, when its one failed run was a quiet one-off, makes
it a real incident after all."""

from __future__ import annotations

from dataclasses import replace

from knowledge.correlation import AlertSignal, release_held
from knowledge.db import Database
from knowledge.incidents import IncidentStatus, incidents_with_alerts
from knowledge.outbox import messages
from tests.knowledge.factories import org_id
from tests.knowledge.test_noise_intake import INTAKE, NODE, _apply, _t, alert

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


def run_failed(minute: int, at: float, **kw: str | float) -> AlertSignal:
    made = alert("KubeJobFailed", at=at, namespace="search", job="kube-state-metrics",
                 job_name=f"reindex-{minute}", **kw)  # type: ignore[arg-type]
    return replace(made, fingerprint=f"reindex-{minute}")


async def test_a_cronjobs_next_run_failing_reopens_its_incident(database: Database) -> None:
    # Runs every 30 min (Jobs named after their scheduled minute); the first failed run's
    # alert resolved 15 min before the next run's fired.
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await _apply(s, oid, run_failed(28478970, 0), now=10 * MIN)
        await _apply(s, oid, run_failed(28478970, 0, status="resolved", ends=15 * MIN),
                     now=16 * MIN)
        [(incident, _)] = await incidents_with_alerts(s, org_id=oid)
        assert incident.state is IncidentStatus.RESOLVED
        await _apply(s, oid, run_failed(28479000, 30 * MIN), now=40 * MIN)
        [(incident, alerts)] = await incidents_with_alerts(s, org_id=oid)
        assert incident.state is IncidentStatus.TRIGGERED
        assert sorted(a.labels["job_name"] for a in alerts) == ["reindex-28478970",
                                                                "reindex-28479000"]
        said = [m.text for m in await messages(s, org_id=oid)]
        assert any(t.startswith(f"🔁 {incident.ref} reopened: KubeJobFailed fired again")
                   and "next run of CronJob search/reindex" in t for t in said), said
        # It resolves again: a second resolution message, not one deduplicated away.
        await _apply(s, oid, run_failed(28479000, 30 * MIN, status="resolved", ends=45 * MIN),
                     now=46 * MIN)
        said = [m.text for m in await messages(s, org_id=oid)]
        assert sum("resolved" in t and t.startswith("✅") for t in said) == 2, said


async def test_a_run_scheduled_far_from_the_incidents_runs_is_a_new_incident(
        database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await _apply(s, oid, run_failed(28478970, 0), now=10 * MIN)
        await _apply(s, oid, run_failed(28478970, 0, status="resolved", ends=15 * MIN),
                     now=16 * MIN)
        # Scheduled twelve days on by its name: not the next run of the one that failed.
        await _apply(s, oid, run_failed(28496446, 30 * MIN), now=40 * MIN)
        assert len(await incidents_with_alerts(s, org_id=oid)) == 2


async def _one_off(s: object, oid: int, minute: int, at: float) -> None:
    """A run's failure, held, placed alone, and resolved 7 min on, before its card was due
    (the next failed Job deleted it: failedJobsHistoryLimit 1)."""
    await _apply(s, oid, run_failed(minute, at), now=at + 30)  # type: ignore[arg-type]
    await release_held(s, now=_t(at + 400), intake_of=lambda _o: INTAKE)  # type: ignore[arg-type]
    await _apply(s, oid, run_failed(minute, at, status="resolved", ends=at + 420),  # type: ignore[arg-type]
                 now=at + 450)


async def test_a_quiet_one_off_whose_cronjob_fails_again_is_a_real_incident(
        database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await _one_off(s, oid, 28478970, 0)
        [(quiet, _)] = await incidents_with_alerts(s, org_id=oid)
        assert quiet.noise and await messages(s, org_id=oid) == []
        # The next run (30 min on) fails too: not a one-off. One card, with both runs.
        await _one_off(s, oid, 28479000, 30 * MIN)
        [(incident, alerts)] = await incidents_with_alerts(s, org_id=oid)
        assert incident.id == quiet.id and not incident.noise
        assert sorted(a.labels["job_name"] for a in alerts) == ["reindex-28478970",
                                                                "reindex-28479000"]
        assert not any(a.noise for a in alerts)
        said = [(m.kind, m.text) for m in await messages(s, org_id=oid)]
        assert [k for k, _ in said].count("incident_opened") == 1, said
        assert not any("reopened" in t for _, t in said), said  # it had no card to reopen
        assert "next run of CronJob search/reindex" in (incident.reason or "")


async def test_a_quiet_one_off_stays_quiet_when_another_cronjob_fails(database: Database
                                                                      ) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await _one_off(s, oid, 28478970, 0)
        other = replace(run_failed(28479000, 30 * MIN), labels={
            **run_failed(28479000, 30 * MIN).labels, "job_name": "sitemap-28479000"},
            fingerprint="sitemap")
        await _apply(s, oid, other, now=40 * MIN)
        listed = await incidents_with_alerts(s, org_id=oid)
        assert sorted((i.noise, [a.labels["job_name"] for a in alerts]) for i, alerts in listed
                      ) == [(False, ["sitemap-28479000"]), (True, ["reindex-28478970"])]


async def test_a_backends_clients_in_other_namespaces_join_it(database: Database) -> None:
    # Critical, so nothing waits: a StatefulSet stops serving; a Deployment in another
    # namespace goes unready 90 s later (its readiness checks the database), another 7 min on.
    def mismatch(kind: str, name: str, namespace: str, at: float) -> AlertSignal:
        return alert(f"Kube{kind}ReplicasMismatch", at=at, severity="critical",
                     namespace=namespace, job="kube-state-metrics", **{kind.lower(): name})

    async with database.session() as s, s.begin():
        oid = await org_id(s)
        db = await _apply(s, oid, mismatch("StatefulSet", "postgres", "databases", 0), now=30)
        client = await _apply(s, oid, mismatch("Deployment", "payments-api", "payments", 90),
                              now=120)
        late = await _apply(s, oid, mismatch("Deployment", "catalog-api", "catalog", 420),
                            now=450)
    assert db is not None and client is not None and late is not None
    assert client.id == db.id != late.id
    assert "90 s after StatefulSet databases/postgres stopped serving" in (client.reason or "")


def burn(long: str, short: str, severity: str, at: float, **kw: str | float) -> AlertSignal:
    made = alert("KubeAPIErrorBudgetBurn", at=at, severity=severity, long=long, short=short,
                 **kw)  # type: ignore[arg-type]
    return replace(made, fingerprint=f"burn-{long}")


async def test_an_slo_burning_over_a_day_reopens_the_incident_its_shorter_burn_was(
        database: Database) -> None:
    # etcd's slow disk and the API's 1-hour burn (critical: nothing waits), all resolved by
    # 40 min; 45 min later the 1-day window burns (a warning, held, then placed): its errors
    # are the same slow writes. A day and a half on it burns again — no longer within a day
    # of that incident.
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        etcd = await _apply(s, oid, alert("etcdHighFsyncDurations", at=0, severity="critical",
                                          namespace="kube-system", job="kube-etcd"), now=30)
        await _apply(s, oid, burn("1h", "5m", "critical", 120), now=150)
        await _apply(s, oid, alert("etcdHighFsyncDurations", at=0, severity="critical",
                                   namespace="kube-system", job="kube-etcd",
                                   status="resolved", ends=35 * MIN), now=36 * MIN)
        await _apply(s, oid, burn("1h", "5m", "critical", 120, status="resolved",
                                  ends=40 * MIN), now=41 * MIN)
        [(incident, _)] = await incidents_with_alerts(s, org_id=oid)
        assert incident.state is IncidentStatus.RESOLVED
        await _apply(s, oid, burn("1d", "2h", "warning", 85 * MIN), now=85 * MIN + 30)
        await release_held(s, now=_t(85 * MIN + 400), intake_of=lambda _o: INTAKE)
        [(day, alerts)] = await incidents_with_alerts(s, org_id=oid)
        assert etcd is not None and day.id == etcd.id
        assert day.state is IncidentStatus.TRIGGERED
        assert sorted(a.labels.get("long", "") for a in alerts) == ["", "1d", "1h"]
        said = [m.text for m in await messages(s, org_id=oid)]
        assert any(t.startswith(f"🔁 {day.ref} reopened: KubeAPIErrorBudgetBurn fired again")
                   and "same SLO burning over a longer window" in t for t in said), said
        await _apply(s, oid, burn("1d", "2h", "warning", 85 * MIN, status="resolved",
                                  ends=120 * MIN), now=121 * MIN)
        await _apply(s, oid, burn("1d", "2h", "critical", 36 * 60 * MIN),
                     now=36 * 60 * MIN + 60)
        assert len(await incidents_with_alerts(s, org_id=oid)) == 2


async def test_a_shorter_window_burning_after_a_longer_one_is_not_tied_to_it(
        database: Database) -> None:
    # The 1-day burn's incident ended; an hour later the 1-hour window burns: new errors, not
    # the ones the day's window held.
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        day = await _apply(s, oid, burn("1d", "2h", "critical", 0), now=30)
        await _apply(s, oid, burn("1d", "2h", "critical", 0, status="resolved",
                                  ends=20 * MIN), now=21 * MIN)
        hour = await _apply(s, oid, burn("1h", "5m", "critical", 80 * MIN), now=81 * MIN)
    assert day is not None and hour is not None and hour.id != day.id


def root_fs(name: str, at: float, **kw: str | float) -> AlertSignal:
    made = alert(name, at=at, namespace="monitoring", job="node-exporter",
                 instance="10.0.2.12:9100", device="/dev/nvme0n1p1", mountpoint="/",
                 **kw)  # type: ignore[arg-type]
    return replace(made, fingerprint=name)


async def test_a_filesystem_almost_full_joins_its_filling_incident_while_that_fires(
        database: Database) -> None:
    # Received past the hold, so nothing waits: the root filesystem predicted to fill, and
    # seventy minutes on — past the lasting reach — almost out of space, while the first fires.
    [(alerts, reason)] = await _cards(database, [
        (root_fs("NodeFilesystemSpaceFillingUp", 0), 60 * MIN),
        (root_fs("NodeFilesystemAlmostOutOfSpace", 70 * MIN), 80 * MIN)])
    assert alerts == ["NodeFilesystemAlmostOutOfSpace/warning",
                      "NodeFilesystemSpaceFillingUp/warning"]
    assert "which an alert of it still fires on" in reason, reason


async def test_once_the_filesystems_alert_resolved_a_later_one_is_its_own(
        database: Database) -> None:
    cards = await _cards(database, [
        (root_fs("NodeFilesystemSpaceFillingUp", 0), 60 * MIN),
        (root_fs("NodeFilesystemSpaceFillingUp", 0, status="resolved", ends=61 * MIN),
         62 * MIN),
        (root_fs("NodeFilesystemAlmostOutOfSpace", 70 * MIN), 80 * MIN)])
    assert sorted(alerts for alerts, _ in cards) == [
        ["NodeFilesystemAlmostOutOfSpace/warning"], ["NodeFilesystemSpaceFillingUp/warning"]]


async def test_a_claims_critical_joins_its_warning_not_a_crash_loop_begun_between(
        database: Database) -> None:
    # The claim's warning, its pod crash-looping 8 min on (past the window: an incident of
    # its own), then the claim's critical 2 min later — within the window of the crash loop.
    # The same alert getting worse is the warning's problem, not a tie of timing.
    cards = await _cards(database, [(filling("warning", 0), 60 * MIN),
                                    (crash_loop(8 * MIN), 61 * MIN),
                                    (filling("critical", 10 * MIN), 62 * MIN)])
    claim = [alerts for alerts, _ in cards if "KubePersistentVolumeFillingUp/warning" in alerts]
    assert claim and "KubePersistentVolumeFillingUp/critical" in claim[0], cards
