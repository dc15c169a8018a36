"""The kubelet acting on a node (evicting pods, a pressure condition) — info in kube-prometheus —
joins an incident about what it ran short of on that node: a memory warning that fired five
minutes and resolved moments before is no one-off then, and is posted. Alone, or beside an
incident about another resource of the node, it stays info noise and posts nothing."""

from __future__ import annotations

from dataclasses import replace

from knowledge.correlation import AlertSignal, release_held
from knowledge.db import Database
from knowledge.incidents import incidents_with_alerts
from knowledge.outbox import messages
from tests.knowledge.factories import org_id
from tests.knowledge.test_noise_intake import INTAKE, NODE, _apply, _t, alert

MEMORY = {"instance": "10.0.2.12:9100", "job": "node-exporter", "namespace": "monitoring",
          "pod": "node-exporter-x7k2p"}


def memory_high(at: float, ends: float | None = None, *, named: bool = True) -> AlertSignal:
    """`named`: its node named (kube-state-metrics' `node_uname_info` joined in, as the
    topology would); else only node-exporter's address says where it is."""
    made = alert("NodeMemoryHighUtilization", at=at, ends=ends,
                 status="firing" if ends is None else "resolved",
                 **({"node": NODE} if named else {}), **MEMORY)
    return replace(made, fingerprint="memory-high")  # as Alertmanager's: by labels


def evicting(at: float, signal: str = "memory.available") -> AlertSignal:
    made = alert("KubeNodeEviction", at=at, severity="info", node=NODE,
                 instance="10.0.2.12:10250", eviction_signal=signal)
    return replace(made, fingerprint=f"eviction-{signal}")


async def _outcome(database: Database, steps: list[tuple[AlertSignal | None, float]],
                   org: str = "acme") -> tuple[list[tuple[bool, list[str], str]], list[str]]:
    """Each step applies a signal (or, with None, releases what is held) at a time; returns
    the incidents (noise?, alert names, reason) and the kinds of the messages queued."""
    async with database.session() as s, s.begin():
        oid = await org_id(s, slug=org)
        for signal, now in steps:
            if signal is None:
                await release_held(s, now=_t(now), intake_of=lambda _o: INTAKE)
            else:
                await _apply(s, oid, signal, now=now)
    async with database.session() as s:
        listed = [(i.noise, sorted(a.alertname for a in alerts), i.reason or "")
                  for i, alerts in await incidents_with_alerts(s, org_id=oid)]
        said = [m.kind for m in await messages(s, org_id=oid)]
    return listed, said


async def test_pods_evicted_after_a_short_memory_warning_make_it_an_incident(
        database: Database) -> None:
    # The warning fires 300 s: placed after its hold, waiting for its card (due at 915 s);
    # the notification saying it resolved comes at 330 s, a one-off — until the kubelet
    # evicts pods for memory 12 s after it resolved.
    # Only the addresses tie them (no kube-state-metrics): the kubelet's target on
    # 10.0.2.12 names the node that node-exporter's 10.0.2.12:9100 is.
    listed, said = await _outcome(database, [
        (memory_high(0, named=False), 5), (None, 320),
        (memory_high(0, ends=300, named=False), 330), (evicting(312), 345)])
    [(noise, alerts, reason)] = listed
    assert not noise and alerts == ["KubeNodeEviction", "NodeMemoryHighUtilization"]
    assert "the kubelet acted on node" in reason, reason
    assert "incident_opened" in said


async def test_an_eviction_while_the_memory_warning_waits_confirms_it(database: Database
                                                                      ) -> None:
    listed, said = await _outcome(database, [
        (memory_high(0), 5), (None, 320), (evicting(200), 330)])
    [(noise, alerts, _)] = listed
    assert not noise and alerts == ["KubeNodeEviction", "NodeMemoryHighUtilization"]
    assert said.count("incident_opened") == 1


async def test_an_eviction_alone_or_for_another_resource_posts_nothing(database: Database
                                                                      ) -> None:
    alone, said = await _outcome(database, [(evicting(0), 30)])
    assert [(noise, alerts) for noise, alerts, _ in alone] == [(True, ["KubeNodeEviction"])]
    assert said == []
    # Evicting for disk while the node's memory warning waits: not that problem.
    other, _ = await _outcome(database, [
        (memory_high(0), 5), (None, 320), (evicting(200, "nodefs.available"), 330)],
        org="other")
    assert sorted((noise, alerts) for noise, alerts, _ in other) == [
        (False, ["NodeMemoryHighUtilization"]), (True, ["KubeNodeEviction"])]
