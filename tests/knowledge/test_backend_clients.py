"""A shared backend's clients, whose alerts reach the copilot before the backend's (each
namespace's Alertmanager group has its own clock): their incident — posted, or still waiting
for its card — joins the backend's once the backend's alerts arrive, or when the clients'
alerts arrive after the backend's, and says why. A rollout under way, a StatefulSet replica
down with its node, or clients failing long after the backend stopped stay apart. Through the
intake, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.correlation import AlertSignal, Intake, apply_alert
from knowledge.db import Database
from knowledge.incidents import Incident, incidents_with_alerts
from knowledge.noise import NoiseRules
from knowledge.outbox import messages
from knowledge.relate import Topology
from tests.knowledge.factories import T0, apply_each, merged_away, org_id
from tests.knowledge.factories import in_namespace as signal

DB_NODE, APP_NODE = "ip-10-0-3-13.ec2.internal", "ip-10-0-2-12.ec2.internal"
CLIENT_PODS = ("label-renderer-7d9f8c6b5-abcde", "label-renderer-7d9f8c6b5-fghij")
TOPOLOGY = Topology(pods={
    "databases/postgres-0": (DB_NODE, "StatefulSet", "postgres"),
    **{f"shipping/{p}": (APP_NODE, "Deployment", "label-renderer") for p in CLIENT_PODS},
})
INTAKE = Intake(window_s=300, noise=NoiseRules(hold_s=120, group_interval_s=300),
                topology=TOPOLOGY)


def _t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def backend(at: float) -> list[AlertSignal]:
    return [signal("KubePodNotReady", at, "databases", pod="postgres-0",
                   job="kube-state-metrics"),
            signal("KubeStatefulSetReplicasMismatch", at + 5, "databases",
                   statefulset="postgres", job="kube-state-metrics")]


def clients(at: float, *, rollout: bool = False) -> list[AlertSignal]:
    """The client's scrape target down first, then its pods unready (and a rollout stuck)."""
    return [signal("TargetDown", at - 120, "shipping", job="label-renderer",
                   service="label-renderer"),
            *(signal("KubePodNotReady", at + n, "shipping", pod=p, job="kube-state-metrics")
              for n, p in enumerate(CLIENT_PODS)),
            *([signal("KubeDeploymentRolloutStuck", at + 5, "shipping",
                      deployment="label-renderer", job="kube-state-metrics")] if rollout
              else [])]


async def _apply_all(s: AsyncSession, oid: int, signals: list[AlertSignal], now: float,
                     intake: Intake = INTAKE) -> list[Incident | None]:
    return await apply_each(s, oid, signals, now=now, intake=intake)


async def test_a_clients_posted_card_joins_its_backend_when_the_backends_alerts_come_later(
        database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        placed = await _apply_all(s, oid, clients(160), now=300)  # posted: three alerts
        client = placed[-1]
        assert client is not None and client.unconfirmed_until is None
        db = (await _apply_all(s, oid, backend(140), now=330))[-1]
    assert db is not None and db.id != client.id
    assert client.id is not None and db.id is not None
    held, names, said = await merged_away(database, oid, source=client.id, into=db.id)
    assert names == ["KubePodNotReady"] * 3 + ["KubeStatefulSetReplicasMismatch", "TargetDown"]
    why = ("KubePodNotReady on workload shipping/label-renderer 20 s after StatefulSet "
           "databases/postgres stopped serving")
    assert why in " ".join(held.related["why"])
    assert any(client.ref in t and f"merged into {held.ref}" in t and why in t for t in said)


@pytest.mark.parametrize("intake", [INTAKE, replace(INTAKE, topology=Topology())],
                         ids=["kube-state-metrics", "no-kube-state-metrics"])
async def test_clients_failing_after_their_backend_join_it_with_no_card_of_their_own(
        database: Database, intake: Intake) -> None:
    # Without kube-state-metrics, Kubernetes' pod names say which pods are a StatefulSet's
    # (postgres-0) and which a Deployment's (label-renderer-7d9f8c6b5-abcde).
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        db = (await _apply_all(s, oid, backend(0), now=200, intake=intake))[-1]
        # The clients' scrape target went down first; their pods went unready 40 s after
        # postgres stopped: when the first unready pod joins the target's waiting incident,
        # the whole of it moves to the backend's before its card is due.
        placed = await _apply_all(s, oid, clients(40), now=230, intake=intake)
    assert db is not None and all(i is not None and i.id == db.id for i in placed[1:])
    async with database.session() as s:
        opened = [m.incident_id for m in await messages(s, org_id=oid)
                  if m.kind == "incident_opened"]
        [(one, alerts)] = [(i, a) for i, a in await incidents_with_alerts(s, org_id=oid)
                           if a]
    assert opened == [db.id] and one.id == db.id and len(alerts) == 5


async def test_a_rollout_or_clients_failing_long_after_stay_apart(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        rollout = (await _apply_all(s, oid, clients(160, rollout=True), now=300))[-1]
        db = (await _apply_all(s, oid, backend(140), now=330))[-1]
        other = await org_id(s, slug="other")
        late_db = (await _apply_all(s, other, backend(0), now=200))[-1]
        # Ten minutes after the StatefulSet stopped: not its clients' readiness failing.
        late = (await _apply_all(s, other, clients(600), now=800))[-1]
    assert rollout is not None and db is not None and rollout.id != db.id
    assert late is not None and late_db is not None and late.id != late_db.id
    async with database.session() as s:
        for oid_ in (oid, other):
            assert all(i.merged_into_id is None
                       for i, _ in await incidents_with_alerts(s, org_id=oid_))


async def test_clients_join_a_claim_that_filled_hours_into_its_incident(database: Database
                                                                        ) -> None:
    # postgres' claim has been filling for three hours when it fills and the StatefulSet stops
    # serving; its clients' pods go unready 30 s later. Clients whose pods went unready
    # before the StatefulSet stopped are another problem.
    claim = signal("KubePersistentVolumeFillingUp", -10800, "databases", "critical",
                   persistentvolumeclaim="data-postgres-0", job="kubelet")
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        filling = await apply_alert(s, org_id=oid, signal=claim, intake=INTAKE,
                                    now=_t(-10770))
        db = (await _apply_all(s, oid, backend(0), now=200))[-1]
        placed = await _apply_all(s, oid, clients(30), now=330)
        other = await org_id(s, slug="other")
        await apply_alert(s, org_id=other, signal=claim, intake=INTAKE, now=_t(-10770))
        early_db = (await _apply_all(s, other, backend(0), now=200))[-1]
        early = (await _apply_all(s, other, clients(-30), now=330))[-1]
    assert filling is not None and db is not None and db.id == filling.id
    assert all(i is not None and i.id == filling.id for i in placed[1:])
    assert early is not None and early_db is not None and early.id != early_db.id
    async with database.session() as s:
        [(one, alerts)] = [(i, a) for i, a in await incidents_with_alerts(s, org_id=oid) if a]
    assert one.id == filling.id and len(alerts) == 6
    assert "30 s after StatefulSet databases/postgres stopped serving" in " ".join(
        one.related["why"])


async def _split_off_by(database: Database, trouble: AlertSignal, *, now: float, why: str
                       ) -> tuple[int, Incident, Incident, list[tuple[int | None, str]]]:
    """label-renderer's replicas go missing 40 s after postgres stopped (its client, as far as
    the copilot can tell), then `trouble` of its own arrives: the replicas leave the backend's
    incident for the one `trouble` opened, and the backend's card says so, and `why`. Returns
    the org, the backend's incident, the one `trouble` opened and the messages queued."""
    replicas = signal("KubeDeploymentReplicasMismatch", 40, "shipping",
                      deployment="label-renderer", job="kube-state-metrics")
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        db = (await _apply_all(s, oid, [*backend(0), replicas], now=300))[-1]
        own = (await _apply_all(s, oid, [trouble], now=now))[-1]
    assert db is not None and own is not None and own.id != db.id
    async with database.session() as s:
        listed = {i.id: sorted(a.alertname for a in alerts)
                  for i, alerts in await incidents_with_alerts(s, org_id=oid)}
        said = [(m.incident_id, m.text) for m in await messages(s, org_id=oid)]
    assert listed == {db.id: ["KubePodNotReady", "KubeStatefulSetReplicasMismatch"],
                      own.id: sorted(["KubeDeploymentReplicasMismatch", trouble.alertname])}
    assert any(i == db.id and f"split off {db.ref} into {own.ref}" in t and why in t
               for i, t in said), said
    return oid, db, own, said


async def test_a_client_whose_own_crash_loop_began_first_is_split_off_its_backend(
        database: Database) -> None:
    # label-renderer's replicas went missing 40 s after postgres stopped: its client, as far
    # as the copilot can tell. Then its crash loop arrives, begun 30 s *before* postgres
    # stopped: a bad rollout of its own, not postgres' doing.
    looping = signal("KubePodCrashLooping", -30, "shipping", pod=CLIENT_PODS[0],
                     job="kube-state-metrics")
    oid, db, own, said = await _split_off_by(
        database, looping, now=330,
        why="KubePodCrashLooping on workload shipping/label-renderer 30 s before StatefulSet "
            "databases/postgres stopped serving")
    assert any(i == own.id and "opened" in t for i, t in said)  # its own card
    async with database.session() as s:
        [left] = [i for i, _ in await incidents_with_alerts(s, org_id=oid) if i.id == db.id]
    # The backend's card no longer says the workload that left is its client.
    assert "label-renderer" not in (left.reason or "")
    assert "label-renderer" not in " ".join(left.related["why"])


async def test_a_client_whose_rollout_is_stuck_is_split_off_its_backend(database: Database
                                                                        ) -> None:
    # label-renderer's replicas went missing 40 s after postgres stopped: its client, as far
    # as the copilot can tell. Ten minutes on, Kubernetes says its rollout is stuck (past the
    # progress deadline): a new ReplicaSet of its own failing, not postgres' doing.
    stuck = signal("KubeDeploymentRolloutStuck", 640, "shipping",
                   deployment="label-renderer", job="kube-state-metrics")
    await _split_off_by(
        database, stuck, now=1000,
        why="KubeDeploymentRolloutStuck on workload shipping/label-renderer: a rollout under "
            "way is its own change, not StatefulSet databases/postgres's doing")
