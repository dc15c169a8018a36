"""A node going down, whose pods' alerts reach the copilot before the node's own (each
namespace's Alertmanager group has its own clock): the pods' incident — posted, or still
waiting for its card — joins the node's once the node's alert arrives, and says why. Pods
crash-looping, pods on another node, or pods unready long before the node went down stay
apart. Through the intake, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.correlation import AlertSignal, Intake, apply_alert
from knowledge.db import Database
from knowledge.incidents import Incident, get_incident, incidents_with_alerts
from knowledge.noise import NoiseRules
from knowledge.outbox import messages
from knowledge.relate import Related, Topology
from tests.knowledge.factories import (
    T0,
    apply_each,
    in_namespace,
    merged_away,
    org_id,
    resolution,
)

DOWN, WELL = "ip-10-0-4-7.ec2.internal", "ip-10-0-5-9.ec2.internal"
CART, WEB, CALICO = "cart-7d9f8c6b5-abcde", "web-5f6d7c8b9-klmno", "calico-node-x7k2p"
TOPOLOGY = Topology(pods={
    f"shop/{CART}": (DOWN, "Deployment", "cart"),
    f"shop/{WEB}": (WELL, "Deployment", "web"),
    f"kube-system/{CALICO}": (DOWN, "DaemonSet", "calico-node"),
})
INTAKE = Intake(window_s=300, noise=NoiseRules(hold_s=120, group_interval_s=300),
                topology=TOPOLOGY)


def _t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def signal(name: str, at: float, namespace: str, **labels: str) -> AlertSignal:
    return in_namespace(name, at, namespace, job="kube-state-metrics", **labels)


def node_down(at: float) -> AlertSignal:
    return signal("KubeNodeNotReady", at, "monitoring", node=DOWN)


def unready(at: float, pod: str, rule: str = "KubePodNotReady") -> AlertSignal:
    return signal(rule, at, "kube-system" if pod == CALICO else "shop", pod=pod)


async def _apply_all(s: AsyncSession, oid: int, signals: list[AlertSignal], now: float
                     ) -> list[Incident | None]:
    return await apply_each(s, oid, signals, now=now, intake=INTAKE)


async def test_a_posted_card_of_pods_on_the_node_joins_the_node_when_its_alert_comes_later(
        database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        # Two namespaces' groups, each a pod on the node unready for ten minutes: two cards
        # (the pods are of unrelated workloads), posted before the node's alert arrives.
        cards = await _apply_all(s, oid, [unready(10, CALICO), unready(15, CART)], now=620)
        assert all(c is not None and c.unconfirmed_until is None for c in cards)
        node = (await _apply_all(s, oid, [node_down(0)], now=650))[-1]
    assert node is not None and cards[0] is not None and cards[1] is not None
    joined, other = (cards[0], cards[1]) if node.id == cards[0].id else (cards[1], cards[0])
    assert node.id == joined.id  # the node's alert joins one of them; the other moves there
    assert other.id is not None and node.id is not None
    held, names, said = await merged_away(database, oid, source=other.id, into=node.id)
    assert names == ["KubeNodeNotReady", "KubePodNotReady", "KubePodNotReady"]
    why = f"unavailable with node {DOWN}, which went down"
    assert why in " ".join(held.related["why"])
    assert any(other.ref in t and f"merged into {held.ref}" in t and why in t for t in said)


async def test_a_waiting_pod_joins_the_node_before_its_card_is_due(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        # The pod on the node has had its card for a while; another, placed after its hold,
        # is a lone warning waiting for its card (to see whether it resolves).
        posted = await apply_alert(s, org_id=oid, signal=unready(10, CART), intake=INTAKE,
                                   now=_t(620))
        waiting = await apply_alert(s, org_id=oid, signal=unready(500, CALICO), intake=INTAKE,
                                    now=_t(630))
        assert posted is not None and posted.unconfirmed_until is None
        assert waiting is not None and waiting.unconfirmed_until is not None
        node = (await _apply_all(s, oid, [node_down(0)], now=640))[-1]
    assert node is not None
    async with database.session() as s:
        opened = [m.incident_id for m in await messages(s, org_id=oid)
                  if m.kind == "incident_opened"]
        [(one, alerts)] = [(i, a) for i, a in await incidents_with_alerts(s, org_id=oid) if a]
    assert one.id == node.id and len(alerts) == 3
    assert waiting.id not in opened  # no card was ever posted for the waiting pod


async def test_crash_loops_pods_elsewhere_and_pods_unready_long_before_stay_apart(
        database: Database) -> None:
    cases = {"looping": [unready(10, CALICO), unready(15, CART, "KubePodCrashLooping")],
             "elsewhere": [unready(10, CALICO), unready(15, WEB)],
             "before": [unready(10, CALICO), unready(-1200, CART)]}  # twenty minutes before
    async with database.session() as s, s.begin():
        orgs = {}
        for slug, pods in cases.items():
            orgs[slug] = await org_id(s, slug=slug)
            await _apply_all(s, orgs[slug], pods, now=620)
            await _apply_all(s, orgs[slug], [node_down(0)], now=650)
    async with database.session() as s:
        for slug, oid in orgs.items():
            found = await incidents_with_alerts(s, org_id=oid)
            assert len([i for i, a in found if a]) == 2, slug
            assert all(i.merged_into_id is None for i, _ in found), slug


def replicas(at: float, deployment: str) -> AlertSignal:
    return signal("KubeDeploymentReplicasMismatch", at, "shop", deployment=deployment)


async def _listed(database: Database, oid: int) -> dict[int | None, list[str]]:
    async with database.session() as s:
        return {i.id: sorted(a.alertname for a in alerts)
                for i, alerts in await incidents_with_alerts(s, org_id=oid) if alerts}


async def test_a_crash_loop_takes_its_unplaced_replicas_off_a_node_outage(
        database: Database) -> None:
    # No kube-state-metrics: web's missing replicas, while the node is down, most likely ran
    # there, so they join the node's incident. Then web's own crash loop arrives, begun 40 s
    # after them: a down node's kubelet restarts nothing, so the crash loop explains them.
    blind = replace(INTAKE, topology=Topology())
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        node = (await apply_each(s, oid, [node_down(0), unready(20, CALICO), replicas(60, "web")],
                                 now=700, intake=blind))[-1]
        looping = await apply_alert(s, org_id=oid, signal=unready(100, WEB, "KubePodCrashLooping"),
                                    intake=blind, now=_t(700))
    assert node is not None and looping is not None and looping.id != node.id
    assert await _listed(database, oid) == {
        node.id: ["KubeNodeNotReady", "KubePodNotReady"],
        looping.id: ["KubeDeploymentReplicasMismatch", "KubePodCrashLooping"]}
    async with database.session() as s:
        said = [(m.incident_id, m.text) for m in await messages(s, org_id=oid)]
        [left] = [i for i, _ in await incidents_with_alerts(s, org_id=oid) if i.id == node.id]
    why = (f"KubePodCrashLooping on workload shop/web: a down node's kubelet restarts nothing, "
           f"and nothing places its pods on node {DOWN}")
    assert any(i == node.id and f"split off {node.ref} into {looping.ref}" in t and why in t
               for i, t in said)
    assert any(i == looping.id and "opened" in t for i, t in said)  # its own card
    assert "shop/web" not in (left.reason or "") + " ".join(left.related["why"])


async def test_replicas_the_node_took_stay_with_it_when_a_crash_loop_comes_later_or_on_it(
        database: Database) -> None:
    # Web's crash loop beginning twenty minutes after its replicas went missing with the
    # node is trouble of its own; cart's replicas, which kube-state-metrics places on the
    # node, are the node's however its pod fares.
    cases = {"later": (replace(INTAKE, topology=Topology()), "web", WEB, 1260),
             "placed": (INTAKE, "cart", CART, 100)}
    async with database.session() as s, s.begin():
        orgs = {}
        for slug, (intake, workload, pod, at) in cases.items():
            orgs[slug] = oid = await org_id(s, slug=slug)
            await apply_each(s, oid, [node_down(0), unready(20, CALICO), replicas(60, workload)],
                             now=700, intake=intake)
            await apply_alert(s, org_id=oid, signal=unready(at, pod, "KubePodCrashLooping"),
                              intake=intake, now=_t(at + 600))
    for slug, oid in orgs.items():
        assert sorted((await _listed(database, oid)).values()) == [
            ["KubeDeploymentReplicasMismatch", "KubeNodeNotReady", "KubePodNotReady"],
            ["KubePodCrashLooping"]], slug


async def test_a_crash_loop_leaves_its_workloads_pod_that_went_unready_with_the_node(
        database: Database) -> None:
    # No kube-state-metrics. Web's pod on the down node goes unready with it, and web's
    # replicas go missing; then another pod of web crash-loops (on a node that is up: a down
    # node restarts nothing). The missing replicas are the crash loop's; the pod that went
    # unready with the node is not crash-looping, so it ran there and stays (our generator,
    # seeds 14, 17, 23: it had been split off with the rest).
    blind = replace(INTAKE, topology=Topology())
    other = WEB.replace("klmno", "pqrst")
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        node = (await apply_each(s, oid, [node_down(0), unready(20, CALICO), unready(40, WEB),
                                          replicas(60, "web")], now=700, intake=blind))[-1]
        looping = await apply_alert(s, org_id=oid,
                                    signal=unready(100, other, "KubePodCrashLooping"),
                                    intake=blind, now=_t(700))
    assert node is not None and looping is not None and looping.id != node.id
    assert await _listed(database, oid) == {
        node.id: ["KubeNodeNotReady", "KubePodNotReady", "KubePodNotReady"],
        looping.id: ["KubeDeploymentReplicasMismatch", "KubePodCrashLooping"]}


async def test_the_node_takes_its_pods_from_a_card_that_also_holds_a_replica_resolved_since(
        database: Database) -> None:
    # Three of cart's replicas on the node: one unready and back (a restart) minutes before
    # the node went, two unready with it — one card; four of coredns' replicas there,
    # another. The node's alert joins the larger; of cart's card, the two still firing move
    # there too, and the one resolved stays where it was, its card saying so.
    cart = {f"shop/cart-7d9f8c6b5-{s}": (DOWN, "Deployment", "cart")
            for s in ("aaaaa", "bbbbb", "ccccc")}
    system = {f"kube-system/coredns-5d78c9869d-{s}": (DOWN, "Deployment", "coredns")
              for s in ("x7k2p", "q8r4t", "m2n6v", "w9z3c")}
    intake = replace(INTAKE, topology=Topology(pods={**cart, **system}))
    restarted, *with_node = [unready(at, p.split("/")[1])
                             for at, p in zip((-120, 10, 15), cart, strict=True)]
    daemons = [signal("KubePodNotReady", 5 + n, "kube-system", pod=p.split("/")[1])
               for n, p in enumerate(system)]
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        placed = await apply_each(s, oid, [restarted, *with_node, *daemons], now=620,
                                  intake=intake)
        card, kube_system = placed[2], placed[-1]
        assert card is not None and kube_system is not None and card.id != kube_system.id
        await apply_alert(s, org_id=oid, signal=resolution(restarted, minutes=10),
                          intake=intake, now=_t(630))
        node = (await apply_each(s, oid, [node_down(0)], now=650, intake=intake))[-1]
    assert node is not None and node.id == kube_system.id
    listed = await _listed(database, oid)
    assert listed[node.id] == ["KubeNodeNotReady", *["KubePodNotReady"] * 6]
    assert listed[card.id] == ["KubePodNotReady"]
    async with database.session() as s:
        stored = await get_incident(s, org_id=oid, incident_id=node.id)
    # Its stored relations hold the pods that moved, still unready, for the alerts to come.
    assert {("pod", p) for p in list(cart)[1:]} <= set(
        Related.from_json(stored.related).unwell)
    async with database.session() as s:
        said = [m.text for m in await messages(s, org_id=oid) if m.kind == "incident_status"]
    assert any(f"2 alert(s) of a node down split off {card.ref} into {node.ref}" in t
               for t in said)
