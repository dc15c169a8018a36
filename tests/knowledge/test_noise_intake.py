"""Correlation and noise at the intake, as `incidents --json` and the chat see them: alerts that
share a cause join one incident across Alertmanager groups (by topology from kube-state-metrics)
and say why; a group holding two unrelated problems becomes two; noise — info alone, a warning
that resolves within the hold, a flapping alert, a warning alone that resolves before its card
is due — is kept on quiet noise incidents that post nothing; critical alerts are never held; a
silent Watchdog opens an incident of its own."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.correlation import (
    AlertSignal,
    Intake,
    apply_alert,
    confirm_due,
    defer_events,
    due_now,
    outlasted,
    read_ahead,
    release_held,
    write_deferred,
)
from knowledge.db import Database
from knowledge.deadman import watch_heartbeats
from knowledge.heartbeats import heard
from knowledge.incidents import Incident, IncidentStatus, incidents_with_alerts, transition
from knowledge.noise import NoiseRules, shown_firing
from knowledge.outbox import messages
from knowledge.relate import Topology
from knowledge.timeline import list_events
from tests.knowledge.factories import T0, org_id

NODE = "ip-10-0-2-12.ec2.internal"
TOPOLOGY = Topology(pods={
    "payments/payments-api-7d9f8-abcde": (NODE, "Deployment", "payments-api"),
    "search/search-api-0": (NODE, "StatefulSet", "search-api"),
    "search/search-api-1": ("ip-10-0-3-13.ec2.internal", "StatefulSet", "search-api"),
    "payments/payments-db-0": ("ip-10-0-3-13.ec2.internal", "StatefulSet", "payments-db"),
})
INTAKE = Intake(window_s=300, noise=NoiseRules(hold_s=120, group_interval_s=300),
                topology=TOPOLOGY)


def alert(name: str, *, at: float, severity: str = "warning", namespace: str = "",
          status: str = "firing", ends: float | None = None, **labels: str) -> AlertSignal:
    """An alert as kube-prometheus labels it; `at`/`ends` in seconds after T0; its group is
    its namespace (kube-prometheus's group_by)."""
    full = {"alertname": name, "severity": severity, **labels}
    if namespace:
        full["namespace"] = namespace
    return AlertSignal(group_key=f'{{}}:{{namespace="{namespace}"}}',
                       fingerprint=f"{name}-{sorted(labels.items())}-{namespace}",
                       status=status, labels=full, annotations={}, starts_at=_t(at),
                       ends_at=_t(ends) if ends is not None else None)


def _t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def _apply(s: AsyncSession, oid: int, signal: AlertSignal, *, now: float,
                 intake: Intake = INTAKE) -> Incident | None:
    return await apply_alert(s, org_id=oid, signal=signal, intake=intake, now=_t(now))


async def _listed(s: AsyncSession, oid: int) -> list[tuple[Incident, list[str]]]:
    return [(i, [a.alertname for a in alerts])
            for i, alerts in await incidents_with_alerts(s, org_id=oid)]


async def test_a_node_and_its_pods_across_namespaces_are_one_incident(database: Database
                                                                      ) -> None:
    # Critical, so nothing is held: three Alertmanager groups, one cause.
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        node = await _apply(s, oid, alert("KubeNodeNotReady", at=0, severity="critical",
                                          node=NODE, job="kube-state-metrics"), now=30)
        pay = await _apply(s, oid, alert("KubePodNotReady", at=60, severity="critical",
                                         namespace="payments", pod="payments-api-7d9f8-abcde",
                                         job="kube-state-metrics"), now=90)
        search = await _apply(s, oid, alert("KubePodNotReady", at=90, severity="critical",
                                            namespace="search", pod="search-api-0",
                                            job="kube-state-metrics"), now=120)
        # A pod on another node is not this problem, in the same namespace or not.
        other = await _apply(s, oid, alert("KubePodNotReady", at=100, severity="critical",
                                           namespace="payments", pod="payments-db-0",
                                           job="kube-state-metrics"), now=130)
    assert node is not None and pay is not None and search is not None and other is not None
    assert node.id == pay.id == search.id != other.id
    async with database.session() as s:
        [(one, names), (two, _)] = await _listed(s, oid)
        assert names == ["KubeNodeNotReady", "KubePodNotReady", "KubePodNotReady"]
        assert one.reason is not None and f"node {NODE}" in one.reason
        assert "2 on pods that run on it" in one.reason
        assert "since KubeNodeNotReady at 03:00 UTC" in one.reason
        posted = [m.incident_id for m in await messages(s, org_id=oid)
                  if m.kind == "incident_opened"]
    assert posted == [one.id, two.id]


async def test_a_node_arriving_after_its_pods_gathers_their_unposted_incidents(
        database: Database) -> None:
    # Each namespace's group reaches the copilot on its own clock: two pods on the node are
    # placed first, each a lone warning waiting for its card, then the node's alert comes.
    def unready(namespace: str, pod: str, at: float) -> AlertSignal:
        return alert("KubePodNotReady", at=at, namespace=namespace, pod=pod,
                     job="kube-state-metrics")

    async with database.session() as s, s.begin():
        oid = await org_id(s)
        pay = await _apply(s, oid, unready("payments", "payments-api-7d9f8-abcde", 0), now=200)
        search = await _apply(s, oid, unready("search", "search-api-0", 10), now=210)
        elsewhere = await _apply(s, oid, unready("payments", "payments-db-0", 20), now=220)
        waiting = [pay, search, elsewhere]
        assert all(i is not None and i.unconfirmed_until is not None for i in waiting)
        assert len({i.id for i in waiting if i is not None}) == 3
        node = await _apply(s, oid, alert("KubeNodeNotReady", at=-30, severity="critical",
                                          node=NODE, job="kube-state-metrics"), now=240)
    assert node is not None and pay is not None and search is not None
    assert elsewhere is not None
    [gathered] = [i for i in (pay, search) if i.id != node.id]
    async with database.session() as s:
        listed = {i.id: (i, names) for i, names in await _listed(s, oid)}
        posted = [m.incident_id for m in await messages(s, org_id=oid)
                  if m.kind == "incident_opened"]
        fired = [e.summary for e in await list_events(s, org_id=oid, incident_id=node.id)
                 if e.kind == "alert_fired"]
    one, names = listed[node.id]
    assert sorted(names) == ["KubeNodeNotReady", "KubePodNotReady", "KubePodNotReady"]
    assert one.triggered_at == _t(-30) and one.unconfirmed_until is None
    assert len(fired) == 3  # its timeline shows the alerts it gathered
    moved, moved_names = listed[gathered.id]
    assert moved.merged_into_id == node.id and moved_names == []
    assert moved.state is IncidentStatus.RESOLVED and moved.unconfirmed_until is None
    # The pod on another node is its own problem, still waiting; only the node was posted.
    assert listed[elsewhere.id][0].merged_into_id is None
    assert listed[elsewhere.id][0].unconfirmed_until is not None
    assert posted == [node.id]


async def test_a_node_gathers_its_scrape_targets_down_since_before_the_window(
        database: Database) -> None:
    # kube-prometheus' TargetDown fires after 10 min, KubeNodeNotReady after 15: the kubelet
    # target's alert comes more than a window before the node's, and is still firing.
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        target = await _apply(s, oid, alert("TargetDown", at=0, namespace="kube-system",
                                            job="kubelet", service="kubelet"), now=200)
        assert target is not None and target.unconfirmed_until is not None
        node = await _apply(s, oid, alert("KubeNodeNotReady", at=400, severity="critical",
                                          node=NODE, job="kube-state-metrics"), now=430)
        assert node is not None and node.id != target.id
    async with database.session() as s:
        listed = {i.id: (i, names) for i, names in await _listed(s, oid)}
    assert sorted(listed[node.id][1]) == ["KubeNodeNotReady", "TargetDown"]
    assert listed[target.id][0].merged_into_id == node.id


async def test_one_namespace_group_with_two_unrelated_problems_is_split(database: Database
                                                                        ) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        claim = await _apply(s, oid, alert(
            "KubePersistentVolumeFillingUp", at=0, severity="critical", namespace="payments",
            persistentvolumeclaim="data-payments-db-0", job="kubelet"), now=30)
        crash = await _apply(s, oid, alert(
            "KubePodCrashLooping", at=60, severity="critical", namespace="payments",
            pod="payments-api-7d9f8-abcde", job="kube-state-metrics"), now=90)
        # The claim's own pod crash-looping is the claim's problem.
        db_pod = await _apply(s, oid, alert(
            "KubePodCrashLooping", at=120, severity="critical", namespace="payments",
            pod="payments-db-0", job="kube-state-metrics"), now=150)
    assert claim is not None and crash is not None and db_pod is not None
    assert claim.id == db_pod.id != crash.id
    assert claim.group_key == crash.group_key  # one Alertmanager group, two incidents


async def test_info_alone_and_blips_are_noise_and_post_nothing(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        quota = alert("KubeQuotaAlmostFull", at=0, severity="info", namespace="search",
                      resource="requests.cpu", job="kube-state-metrics")
        assert await _apply(s, oid, quota, now=30) is None
        blip = alert("KubeContainerWaiting", at=100, namespace="search", pod="search-api-0",
                     container="api", job="kube-state-metrics")
        assert await _apply(s, oid, blip, now=130) is None  # held: a warning
        resolved = alert("KubeContainerWaiting", at=100, ends=190, status="resolved",
                         namespace="search", pod="search-api-0", container="api",
                         job="kube-state-metrics")
        assert await _apply(s, oid, resolved, now=430) is None  # lasted 90 s < the hold
        assert await release_held(s, now=_t(1000), intake_of=lambda _o: INTAKE) == []
    async with database.session() as s:
        listed = await _listed(s, oid)
        assert [(i.noise, names) for i, names in listed] == [
            (True, ["KubeQuotaAlmostFull"]), (True, ["KubeContainerWaiting"])]
        assert "info alert on its own" in (listed[0][0].reason or "")
        assert "resolved within the 120 s hold" in (listed[1][0].reason or "")
        assert listed[1][0].status == "resolved"
        assert await messages(s, org_id=oid) == []  # nothing posted, not even a resolution


async def test_a_capacity_warning_is_one_quiet_line_never_a_card(database: Database) -> None:
    # kube-prometheus' overcommit warnings say the cluster could not lose a node, not that
    # anything fails: however long one fires, and however often, it is folded, never posted.
    # Critical, or with the setting emptied, the same alert is posted like any other.
    def overcommit(name: str, at: float, severity: str = "warning") -> AlertSignal:
        return alert(name, at=at, severity=severity)

    plain = Intake(window_s=300, noise=NoiseRules(hold_s=120, group_interval_s=300,
                                                  capacity=frozenset()), topology=TOPOLOGY)
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        assert await _apply(s, oid, overcommit("KubeMemoryOvercommit", 0), now=30) is None
        assert await _apply(s, oid, overcommit("KubeCPUQuotaOvercommit", 0), now=30) is None
        assert await release_held(s, now=_t(7200), intake_of=lambda _o: INTAKE) == []
        assert await confirm_due(s, now=_t(7200)) == []
        # Back after the first resolved: the same quiet line, not a card.
        await _apply(s, oid, alert("KubeMemoryOvercommit", at=0, ends=7300, status="resolved"),
                     now=7330)
        assert await _apply(s, oid, overcommit("KubeMemoryOvercommit", 9000), now=9030) is None
        critical = await _apply(s, oid, overcommit("KubeCPUOvercommit", 9000, "critical"),
                                now=9030)
        assert critical is not None and critical.noise is False
        # A site that wants these paged empties SRE_COPILOT_NOISE_CAPACITY_ALERTS.
        other = await org_id(s, slug="other")
        assert await _apply(s, other, overcommit("KubeMemoryOvercommit", 0), now=30,
                            intake=plain) is None  # held, as any warning
        [placed] = await release_held(s, now=_t(400), intake_of=lambda _o: plain)
        [posted] = await confirm_due(s, now=_t(600 + 300 + 15))
        assert posted.id == placed.id and posted.noise is False
    async with database.session() as s:
        listed = await _listed(s, oid)
        opened = [m.incident_id for m in await messages(s, org_id=oid)
                  if m.kind == "incident_opened"]
    quiet = {names[0]: (i, names) for i, names in listed if i.noise}
    assert sorted(quiet) == ["KubeCPUQuotaOvercommit", "KubeMemoryOvercommit"]
    assert quiet["KubeMemoryOvercommit"][1] == ["KubeMemoryOvercommit"] * 2
    assert "capacity: KubeMemoryOvercommit says the cluster lacks headroom" in (
        quiet["KubeMemoryOvercommit"][0].reason or "")
    assert opened == [critical.id]


async def test_a_warning_is_held_then_posted_and_a_critical_never_waits(database: Database
                                                                        ) -> None:
    disk = alert("NodeFilesystemSpaceFillingUp", at=0, instance=f"{NODE}:9100",
                 mountpoint="/", job="node-exporter")
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        assert await _apply(s, oid, disk, now=30) is None
        # Due at the first group interval after the hold (30 + 300 s, plus a grace).
        assert await release_held(s, now=_t(300), intake_of=lambda _o: INTAKE) == []
        [held] = await release_held(s, now=_t(400), intake_of=lambda _o: INTAKE)
        assert held.noise is False
        critical = await _apply(s, oid, alert("NodeFilesystemAlmostOutOfSpace", at=420,
                                              severity="critical", instance=f"{NODE}:9100",
                                              mountpoint="/", job="node-exporter"), now=425)
    assert critical is not None and critical.id == held.id  # the same disk, worse
    async with database.session() as s:
        opened = [m for m in await messages(s, org_id=oid) if m.kind == "incident_opened"]
    assert [m.incident_id for m in opened] == [held.id]


def hpa(at: float, ends: float | None = None) -> AlertSignal:
    """An autoscaler at its maximum: firing from `at`, or resolved at `ends`."""
    return alert("KubeHpaMaxedOut", at=at, ends=ends,
                 status="resolved" if ends is not None else "firing",
                 namespace="checkout", horizontalpodautoscaler="checkout-web",
                 job="kube-state-metrics")


async def test_a_flapping_alert_is_folded_into_one_quiet_incident(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await _apply(s, oid, hpa(0), now=30)
        [first] = await release_held(s, now=_t(400), intake_of=lambda _o: INTAKE)
        assert first.unconfirmed_until is not None  # alone: its card waits
        await _apply(s, oid, hpa(0, ends=400), now=450)  # lasted 400 s: past the hold, short
        for start in (900, 1800):
            assert await _apply(s, oid, hpa(start), now=start + 30) is None
            await _apply(s, oid, hpa(start, ends=start + 300), now=start + 330)
        assert await confirm_due(s, now=_t(3000)) == []
    async with database.session() as s:
        listed = await _listed(s, oid)
        assert await messages(s, org_id=oid) == []  # not one card
    # One quiet line for all three firings, not a card and then a line.
    assert [(i.id == first.id, i.noise, names) for i, names in listed] == [
        (True, True, ["KubeHpaMaxedOut"] * 3)]
    assert "flapping" in (listed[0][0].reason or "")


async def test_a_flapping_alert_that_then_stays_on_is_posted(database: Database) -> None:
    # Flapping (back after a short firing), then firing without a break: past the short span
    # (600 s) and the group interval that would have said it resolved, it is sustained.
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await _apply(s, oid, hpa(0), now=30)
        await release_held(s, now=_t(400), intake_of=lambda _o: INTAKE)
        await _apply(s, oid, hpa(0, ends=400), now=450)
        assert await _apply(s, oid, hpa(900), now=930) is None  # folded
        assert await release_held(s, now=_t(1800), intake_of=lambda _o: INTAKE) == []
        [sustained] = await release_held(s, now=_t(900 + 600 + 300 + 15),
                                         intake_of=lambda _o: INTAKE)
        assert not sustained.noise and sustained.unconfirmed_until is None
    async with database.session() as s:
        listed = await _listed(s, oid)
        said = [(m.kind, m.incident_id) for m in await messages(s, org_id=oid)]
    assert said == [("incident_opened", sustained.id)]
    [(quiet, _), (card, names)] = sorted(listed, key=lambda x: x[0].noise, reverse=True)
    assert quiet.noise and quiet.state is IncidentStatus.RESOLVED  # the first firing's line
    assert card.id == sustained.id and names == ["KubeHpaMaxedOut"]


async def test_a_flapping_critical_gets_one_card_then_one_quiet_line(database: Database
                                                                      ) -> None:
    def burn(at: float, ends: float | None = None) -> AlertSignal:
        return alert("KubeAPIErrorBudgetBurn", at=at, ends=ends, severity="critical",
                     status="resolved" if ends is not None else "firing", long="1h",
                     short="5m", job="apiserver")

    async with database.session() as s, s.begin():
        oid = await org_id(s)
        first = await _apply(s, oid, burn(0), now=30)  # critical: posted at once
        assert first is not None and first.unconfirmed_until is None
        await _apply(s, oid, burn(0, ends=90), now=120)
        for start in (900, 1800, 2700):  # back within the hour after a short firing
            assert await _apply(s, oid, burn(start), now=start + 30) is None
            await _apply(s, oid, burn(start, ends=start + 60), now=start + 90)
    async with database.session() as s:
        listed = await _listed(s, oid)
        opened = [m.incident_id for m in await messages(s, org_id=oid)
                  if m.kind == "incident_opened"]
    assert opened == [first.id]  # one card, not four
    [(card, _), (quiet, names)] = listed
    assert card.id == first.id and not card.noise
    assert quiet.noise and names == ["KubeAPIErrorBudgetBurn"] * 3
    assert "flapping" in (quiet.reason or "")


async def test_a_warning_alone_waits_for_its_card_until_it_is_confirmed(database: Database
                                                                        ) -> None:
    def waiting(pod: str, at: float) -> AlertSignal:
        return alert("KubeContainerWaiting", at=at, namespace="search", pod=pod,
                     container="api", job="kube-state-metrics")

    async with database.session() as s, s.begin():
        oid = await org_id(s)
        # A warning that has fired past the short span (600 s) by the time it arrives is
        # posted when it is placed; one that has not waits for its due time.
        await _apply(s, oid, waiting("search-api-1", at=0), now=700)
        await _apply(s, oid, waiting("search-api-0", at=1000), now=1030)
        [lone] = await release_held(s, now=_t(1400), intake_of=lambda _o: INTAKE)
        # Due a group interval (and a grace) after it has fired 600 s: its resolution, had it
        # come before then, would have been heard.
        assert lone.unconfirmed_until == _t(1000 + 600 + 300 + 15)
        assert await confirm_due(s, now=_t(1900)) == []
        [confirmed] = await confirm_due(s, now=_t(1920))
        assert confirmed.id == lone.id and confirmed.unconfirmed_until is None
        # Another lone warning is confirmed as soon as a second alert joins it.
        disk = await _apply(s, oid, alert("NodeFilesystemSpaceFillingUp", at=3000,
                                          instance=f"{NODE}:9100", mountpoint="/",
                                          job="node-exporter"), now=3030)
        assert disk is None  # held
        [opened] = await release_held(s, now=_t(3400), intake_of=lambda _o: INTAKE)
        assert opened.unconfirmed_until is not None
        await _apply(s, oid, alert("NodeFilesystemAlmostOutOfSpace", at=3420,
                                   instance=f"{NODE}:9100", mountpoint="/",
                                   job="node-exporter"), now=3425)
        [joined] = await release_held(s, now=_t(3800), intake_of=lambda _o: INTAKE)
        assert joined.id == opened.id and opened.unconfirmed_until is None  # before 3915
    async with database.session() as s:
        posted = [m.incident_id for m in await messages(s, org_id=oid)
                  if m.kind == "incident_opened"]
        listed = await _listed(s, oid)
    assert len(listed) == 3 and posted == [i.id for i, _ in listed]
    assert not any(i.noise for i, _ in listed)


async def test_a_lone_warning_that_resolves_after_the_short_span_is_posted_not_quiet(
        database: Database) -> None:
    def disk(at: float, ends: float | None = None) -> AlertSignal:
        return alert("NodeFilesystemSpaceFillingUp", at=at, instance=f"{NODE}:9100",
                     mountpoint="/", job="node-exporter", ends=ends,
                     status="firing" if ends is None else "resolved")

    async with database.session() as s, s.begin():
        oid = await org_id(s)
        # Both wait for their card (due 915 s after they started); the notification saying
        # they resolved comes before that. One fired 540 s: a one-off, quiet. The other fired
        # 700 s, past the short span (600 s): a problem, posted now that the copilot knows.
        for org_, lasted in ((oid, 540), (await org_id(s, slug="long"), 700)):
            await _apply(s, org_, disk(0), now=5)
            [waiting] = await release_held(s, now=_t(320), intake_of=lambda _o: INTAKE)
            assert waiting.unconfirmed_until == _t(915)
            await _apply(s, org_, disk(0, ends=lasted), now=lasted + 5)
        long_org = org_
    async with database.session() as s:
        [(quiet, _)] = await _listed(s, oid)
        assert quiet.noise and quiet.status == "resolved"
        assert await messages(s, org_id=oid) == []
        [(posted, _)] = await _listed(s, long_org)
        said = [(m.kind, m.incident_id) for m in await messages(s, org_id=long_org)]
    assert not posted.noise and posted.status == "resolved"
    assert ("incident_opened", posted.id) in said


async def test_an_alert_people_acknowledged_is_never_folded(database: Database) -> None:
    def down(at: float, ends: float | None = None) -> AlertSignal:
        return alert("KubeNodeNotReady", at=at, ends=ends, node=NODE,
                     status="resolved" if ends is not None else "firing",
                     job="kube-state-metrics")

    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await _apply(s, oid, down(0), now=30)
        [first] = await release_held(s, now=_t(400), intake_of=lambda _o: INTAKE)
        await transition(s, incident=first, to=IncidentStatus.ACKNOWLEDGED, at=_t(420),
                         actor="ana", source="slack")
        await _apply(s, oid, down(0, ends=500), now=530)
        assert await _apply(s, oid, down(900), now=930) is None  # held, not folded
        [again] = await release_held(s, now=_t(1300), intake_of=lambda _o: INTAKE)
    assert again.noise is False and again.id != first.id


async def test_a_silent_watchdog_opens_an_incident_until_it_is_heard_again(
        database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await heard(s, org_id=oid, name="Watchdog", at=_t(-60))
        # Heard once: how often it comes is not known, so no silence can be told yet.
        assert await watch_heartbeats(s, allowed_s=600, now=_t(5000)) == []
        await heard(s, org_id=oid, name="Watchdog", at=_t(0))  # every minute, then silence
        assert await watch_heartbeats(s, allowed_s=600, now=_t(590)) == []
        [silent] = await watch_heartbeats(s, allowed_s=600, now=_t(700))
        assert await watch_heartbeats(s, allowed_s=600, now=_t(800)) == []  # said once
        await heard(s, org_id=oid, name="Watchdog", at=_t(900))
        [back] = await watch_heartbeats(s, allowed_s=600, now=_t(905))
    assert back.id == silent.id and back.status == "resolved"
    assert silent.title.startswith("No Watchdog for 12 min: alerting itself may be down")
    async with database.session() as s:
        kinds = [m.kind for m in await messages(s, org_id=oid, incident_id=silent.id)]
    assert kinds == ["incident_opened", "incident_status"]



def _bare(s: AsyncSession, oid: int) -> Callable[..., Awaitable[Incident | None]]:
    """Fires a critical alert (never held) `at` seconds after T0, heard 30 s later, by an intake
    with no kube-state-metrics topology: labels alone relate alerts."""
    bare = Intake(window_s=300, noise=NoiseRules(hold_s=0), topology=Topology())

    async def fire(name: str, at: float, **labels: str) -> Incident | None:
        return await _apply(s, oid, alert(name, at=at, severity="critical", **labels),
                            now=at + 30, intake=bare)
    return fire


async def test_without_kube_state_metrics_names_and_a_down_node_still_relate(
        database: Database) -> None:
    """No Prometheus topology: Kubernetes' naming ties a claim to its StatefulSet's pod, and
    pods going unready while a node is down are taken to have run there."""
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        fire = _bare(s, oid)

        node = await fire("KubeNodeNotReady", 0, node=NODE, job="kube-state-metrics")
        pods = [await fire("KubePodNotReady", 40, namespace="payments",
                           pod="payments-api-7d9f8c6b5-abcde"),
                await fire("KubeDeploymentReplicasMismatch", 60, namespace="payments",
                           deployment="payments-api", job="kube-state-metrics")]
        claim = await fire("KubePersistentVolumeFillingUp", 3000, namespace="data",
                           persistentvolumeclaim="data-kafka-1", job="kubelet")
        crash = await fire("KubePodCrashLooping", 3100, namespace="data", pod="kafka-1")
        sts = await fire("KubeStatefulSetReplicasMismatch", 3150, namespace="data",
                         statefulset="kafka", job="kube-state-metrics")
    assert node is not None and claim is not None
    assert {p.id for p in pods if p} == {node.id}
    assert crash is not None and sts is not None and crash.id == sts.id == claim.id != node.id


async def test_without_kube_state_metrics_a_workloads_own_incident_beats_a_guess_of_its_node(
        database: Database) -> None:
    """A bad rollout's pods crash-loop; fifteen minutes on a node goes down, and in the same
    minute the Deployment's rollout is reported stuck. Where its pods run is unknown, so the
    node could only be guessed: the rollout's own incident, older than the window, is the tie.
    An unready pod of another workload, with nothing else to tie to, still joins the node."""
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        fire = _bare(s, oid)

        rollout = await fire("KubePodCrashLooping", 0, namespace="orders",
                             pod="order-events-qk29x2xv5c-86n9b")
        await fire("KubePodCrashLooping", 40, namespace="orders",
                   pod="order-events-qk29x2xv5c-qqx2q")
        node = await fire("KubeNodeNotReady", 900, node=NODE, job="kube-state-metrics")
        other = await fire("KubePodNotReady", 930, namespace="search",
                           pod="search-api-hhvstw9d7c-trj58")
        stuck = await fire("KubeDeploymentRolloutStuck", 960, namespace="orders",
                           deployment="order-events", job="kube-state-metrics")
    assert rollout is not None and node is not None and rollout.id != node.id
    assert other is not None and other.id == node.id
    assert stuck is not None and stuck.id == rollout.id


async def test_a_watchdog_repeated_twice_a_day_is_not_silent_after_ten_minutes(
        database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        for hours in (0, 12, 24):  # kube-prometheus's repeat_interval: 12 h
            await heard(s, org_id=oid, name="Watchdog", at=_t(hours * 3600))
        assert await watch_heartbeats(s, allowed_s=600, now=_t(30 * 3600)) == []
        [silent] = await watch_heartbeats(s, allowed_s=600, now=_t(48 * 3600 + 60))
    assert silent.title.startswith("No Watchdog for 24")


async def test_a_card_suggests_merging_only_into_an_incident_that_was_posted(
        database: Database) -> None:
    """A pod's alert ties to its own crash loop and, less closely, to its node going down:
    the crash loop's card offers "maybe the same as" the node's incident once that one has a
    card, not while it is a lone warning still waiting for one. (Its throttling, not its
    being unready: that a node gone down takes outright, `relate.ranked_ties`.)"""
    pod = {"namespace": "payments", "pod": "payments-api-7d9f8-abcde",
           "job": "kube-state-metrics"}
    suggested = {}
    for severity in ("warning", "critical"):
        async with database.session() as s, s.begin():
            oid = await org_id(s, slug=f"org-{severity}")
            node = await _apply(s, oid, alert("KubeNodeNotReady", at=200, severity=severity,
                                              node=NODE, job="kube-state-metrics"), now=330)
            crash = await _apply(s, oid, alert("KubePodCrashLooping", at=350,
                                               severity="critical", **pod), now=360)
            ready = await _apply(s, oid, alert("CPUThrottlingHigh", at=380,
                                               severity="critical", **pod), now=390)
            assert node is not None and crash is not None and ready is not None
            assert ready.id == crash.id != node.id
            assert (node.unconfirmed_until is not None) == (severity == "warning")
            suggested[severity] = crash.related.get("maybe_same")
    assert suggested == {"warning": None, "critical": node.id}


async def test_a_warning_prometheus_shows_firing_goes_as_soon_as_its_wait_is_over(
        database: Database) -> None:
    """Prometheus' own alerts API says at once whether a firing still fires: the held warning
    goes when its hold is over and its lone incident is posted when the short span is, not at
    Alertmanager's next notification (`outlasted`, `due_now`)."""
    disk = alert("NodeFilesystemSpaceFillingUp", at=0, instance=f"{NODE}:9100",
                 mountpoint="/", job="node-exporter")
    # What Prometheus shows: the rule's labels, without the external ones Alertmanager adds.
    shown = [dict(disk.labels) | {"alertstate": "firing"}]
    rules = INTAKE.noise
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        assert await _apply(s, oid, disk, now=30) is None  # held until 345
        assert await outlasted(s, now=_t(100), rules=rules) == []  # its hold is not over
        [waiting] = await outlasted(s, now=_t(125), rules=rules)
        assert shown_firing({**waiting.labels, "prometheus": "monitoring/k8s"}, shown)
        assert not shown_firing({**waiting.labels, "mountpoint": "/var"}, shown)
        await due_now(s, alerts=[waiting], now=_t(125))
        [opened] = await release_held(s, now=_t(125), intake_of=lambda _o: INTAKE)
        assert opened.unconfirmed_until == _t(600 + 300 + 15)
        assert await outlasted(s, now=_t(590), rules=rules) == []  # not fired 600 s yet
        [lone] = await outlasted(s, now=_t(605), rules=rules)
        await due_now(s, alerts=[lone], now=_t(605))
        [posted] = await confirm_due(s, now=_t(605))
        assert posted.id == opened.id and posted.unconfirmed_until is None


async def test_a_batch_read_ahead_places_every_alert_as_one_at_a_time_would(
        database: Database) -> None:
    """The inbox worker reads a batch's stored alerts and their earlier firings up front
    (`read_ahead`); what it decides must not change, however much of the history is the
    batch's own: repeats, resolutions, a flapping rule, a cascade across namespaces."""

    node = alert("KubeNodeNotReady", at=0, severity="critical", node=NODE,
                 job="kube-state-metrics")
    pod = alert("KubePodNotReady", at=60, severity="critical", namespace="payments",
                pod="payments-api-7d9f8-abcde", job="kube-state-metrics")
    stream = [(node, 30), (hpa(0), 30), (pod, 90), (node, 120), (hpa(0, ends=400), 450),
              (hpa(900), 930), (hpa(900, ends=1200), 1230), (hpa(1800), 1830),
              (alert("KubePodNotReady", at=100, severity="critical", namespace="search",
                     pod="search-api-0", job="kube-state-metrics"), 1840),
              (hpa(1800, ends=2100), 2130)]

    def fresh() -> Intake:
        return Intake(window_s=INTAKE.window_s, noise=INTAKE.noise, topology=TOPOLOGY)

    async with database.session() as s, s.begin():
        alone, batch = await org_id(s, "one-at-a-time"), await org_id(s, "batch")
    for signal, now in stream:  # each alone, as a batch of one without reading ahead
        async with database.session() as s, s.begin():
            await _apply(s, alone, signal, now=now, intake=fresh())
    async with database.session() as s, s.begin():
        intake = fresh()
        await read_ahead(s, org_id=batch, signals=[sig for sig, _ in stream], intake=intake)
        defer_events(s, intake)  # the alerts' timeline rows, written together at the end
        for signal, now in stream:
            await _apply(s, batch, signal, now=now, intake=intake)
        await write_deferred(s, intake)

    async def outcome(oid: int) -> list[tuple[object, ...]]:
        async with database.session() as s:
            return [(i.title, i.noise, i.state, re.sub(r"INC-\d+", "INC", i.reason or ""),
                     sorted(names), sorted((e.kind, e.summary, e.occurred_at) for e in
                                           await list_events(s, org_id=oid,
                                                             incident_id=i.id or 0)))
                    for i, names in await _listed(s, oid)]

    expected = await outcome(alone)
    assert any(noise for _, noise, *_ in expected)  # the flapping rule was folded
    assert await outcome(batch) == expected
