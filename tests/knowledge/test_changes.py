"""Changes are stored once per org, found by time and service, and put on the timelines of the
incidents they may have caused — whether the change or the incident comes first."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.change_links import link_change, link_recent_changes
from knowledge.changes import Change, changes_between, record_change
from knowledge.correlation import apply_alert, apply_pagerduty
from knowledge.db import Database
from knowledge.incidents import Incident, list_incidents
from knowledge.timeline import TimelineEvent, list_events
from tests.knowledge.factories import T0, firing, org_id, paging, resolution


async def _change(s: AsyncSession, oid: int, *, minutes: float = 0, service: str = "checkout",
                  kind: str = "deploy", version: str | None = "v2.14.0", **extra: Any
                  ) -> Change | None:
    return await record_change(s, org_id=oid, service=service, kind=kind, version=version,
                               occurred_at=T0 + timedelta(minutes=minutes), source="webhook",
                               **extra)


async def _recorded(s: AsyncSession, oid: int, **kw: Any) -> Change:
    change = await _change(s, oid, **kw)
    assert change is not None
    await link_change(s, change=change)
    return change


async def _events(s: AsyncSession, incident: Incident | None) -> list[TimelineEvent]:
    assert incident is not None and incident.id is not None
    return await list_events(s, org_id=incident.org_id, incident_id=incident.id)


def _changes_on(events: list[TimelineEvent]) -> list[tuple[str, str, datetime]]:
    return [(e.kind, e.summary, e.occurred_at) for e in events if e.kind in ("deploy", "change")]


async def test_a_change_is_recorded_once(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        first = await _change(s, oid, previous_version="v2.13.2", author="ci",
                              description="Faster cart totals", link="https://ci/1")
        assert first is not None and first.id is not None
        assert await _change(s, oid) is None  # the pipeline retried
        # The same instant in another zone is the same change.
        plus_one = timezone(timedelta(hours=1))
        assert await record_change(s, org_id=oid, service="checkout", kind="deploy",
                                   version="v2.14.0", source="webhook",
                                   occurred_at=T0.astimezone(plus_one)) is None
        # A different version, kind or time is another change.
        assert await _change(s, oid, version="v2.14.1") is not None
        assert await _change(s, oid, kind="rollback") is not None
        assert await _change(s, oid, minutes=1) is not None
    async with database.session() as s:
        stored = await changes_between(s, org_id=oid, start=T0, end=T0 + timedelta(hours=1))
    assert len(stored) == 4
    assert (stored[0].previous_version, stored[0].author, stored[0].description,
            stored[0].link, stored[0].source) == ("v2.13.2", "ci", "Faster cart totals",
                                                   "https://ci/1", "webhook")
    assert stored[0].occurred_at == T0


async def test_the_senders_id_is_the_key_when_given(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        assert await _change(s, oid, external_id="build-1234") is not None
        # Same id, even with other details: the same report.
        assert await _change(s, oid, external_id="build-1234", minutes=5,
                             version="v9") is None
        # Another pipeline numbering its builds the same way is another change.
        assert await _change(s, oid, external_id="build-1234", service="search") is not None


async def test_unknown_kinds_and_naive_times_are_refused(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        with pytest.raises(ValueError, match="unknown change kind 'restart'"):
            await _change(s, oid, kind="restart")
        with pytest.raises(ValueError, match="naive occurred_at"):
            await record_change(s, org_id=oid, service="checkout", kind="deploy",
                                source="webhook", occurred_at=datetime(2026, 11, 20, 3))


async def test_orgs_never_see_each_others_changes(database: Database) -> None:
    async with database.session() as s, s.begin():
        acme, globex = await org_id(s, "acme"), await org_id(s, "globex")
        assert await _change(s, acme) is not None
        assert await _change(s, globex) is not None  # same natural key, another org: stored
        assert await _change(s, globex, service="search") is not None
    async with database.session() as s:
        start, end = T0 - timedelta(hours=1), T0 + timedelta(hours=1)
        assert [c.org_id for c in await changes_between(s, org_id=acme, start=start, end=end)
                ] == [acme]
        assert len(await changes_between(s, org_id=globex, start=start, end=end)) == 2


async def test_changes_between_filters_by_time_and_service(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        for minutes, service in [(30, "checkout"), (-10, "search"), (0, "checkout"),
                                 (61, "checkout"), (-61, "checkout"), (60, "cart")]:
            await _change(s, oid, minutes=minutes, service=service)
    async with database.session() as s:
        found = await changes_between(s, org_id=oid, start=T0 - timedelta(hours=1),
                                      end=T0 + timedelta(hours=1))
        assert [(c.service, c.occurred_at - T0) for c in found] == [
            ("search", timedelta(minutes=-10)), ("checkout", timedelta(0)),
            ("checkout", timedelta(minutes=30)), ("cart", timedelta(minutes=60))]
        only = await changes_between(s, org_id=oid, start=T0 - timedelta(hours=1),
                                     end=T0 + timedelta(hours=1), services=["checkout", "cart"])
        assert [c.service for c in only] == ["checkout", "checkout", "cart"]
        assert await changes_between(s, org_id=oid, start=T0, end=T0 + timedelta(hours=1),
                                     services=[]) == []


async def test_a_change_joins_the_open_incidents_of_its_service(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid, other_org = await org_id(s, "acme"), await org_id(s, "globex")
        checkout = await apply_alert(s, org_id=oid, signal=firing("HighErrorRate"))
        db = await apply_alert(s, org_id=oid, signal=firing("DiskFull", group="g2", service="db"))
        # A resolved checkout incident, and one in another org: neither gets the change.
        old = firing("Old", group="g3", minutes=-30)
        done = await apply_alert(s, org_id=oid, signal=old)
        await apply_alert(s, org_id=oid, signal=resolution(old, minutes=-20))
        elsewhere = await apply_alert(s, org_id=other_org, signal=firing("HighErrorRate"))
        assert done is not None and done.status == "resolved"
        change = await _recorded(s, oid, minutes=5, previous_version="v2.13.2", author="ci",
                                 description="Faster cart totals", link="https://ci/1")
        assert await link_change(s, change=change) == []  # linking again adds nothing
        config = await _recorded(s, oid, minutes=6, kind="config", version=None,
                                 author="ana", description="pool size 20 → 40")
        assert config.id is not None
    async with database.session() as s:
        events = await _events(s, checkout)
        assert _changes_on(events) == [
            ("deploy", "Deploy checkout v2.13.2 → v2.14.0 by ci: Faster cart totals",
             T0 + timedelta(minutes=5)),
            ("change", "Config change checkout by ana: pool size 20 → 40",
             T0 + timedelta(minutes=6))]
        deploy = next(e for e in events if e.kind == "deploy")
        assert deploy.dedupe_key == f"change:{change.id}" and deploy.source == "webhook"
        assert deploy.data["change_id"] == change.id and deploy.data["link"] == "https://ci/1"
        for untouched in (db, done, elsewhere):
            assert _changes_on(await _events(s, untouched)) == []


async def test_an_old_change_is_not_evidence_for_a_later_incident(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        incident = await apply_alert(s, org_id=oid, signal=firing("HighErrorRate"))
        await _recorded(s, oid, minutes=-121, version="v1")  # reported late, long before
        await _recorded(s, oid, minutes=-120, version="v2")  # just inside the window
        assert _changes_on(await _events(s, incident)) == [
            ("deploy", "Deploy checkout v2", T0 - timedelta(minutes=120))]


async def test_an_opening_incident_gets_the_changes_before_it(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid, other_org = await org_id(s, "acme"), await org_id(s, "globex")
        await _change(s, oid, minutes=-180, version="v1")  # outside the two hours
        await _change(s, oid, minutes=-90, version="v2")
        await _change(s, oid, minutes=-10, kind="feature_flag", version=None,
                      description="new-cart on")
        await _change(s, oid, minutes=-5, service="search", version="v7")
        await _change(s, other_org, minutes=-5, version="v3")
        incident = await apply_alert(s, org_id=oid, signal=firing("HighErrorRate"))
        again = await link_recent_changes(s, incident=incident) if incident else None
        assert again == []  # idempotent
    async with database.session() as s:
        events = await _events(s, incident)
    assert [(e.kind, e.occurred_at - T0) for e in events] == [
        ("deploy", timedelta(minutes=-90)), ("change", timedelta(minutes=-10)),
        ("alert_fired", timedelta(0))]
    assert events[1].summary == "Feature flag change checkout: new-cart on"


async def test_an_earlier_alert_widens_the_window(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await _change(s, oid, minutes=0)
        incident = await apply_alert(s, org_id=oid, signal=firing("HighLatency", minutes=122))
        assert _changes_on(await _events(s, incident)) == []  # the change is 2 h 2 min before
        # A related alert that started earlier (within the correlation window) moves the
        # incident's start back, and the change into its reach.
        await apply_alert(s, org_id=oid, signal=firing("HighErrorRate", minutes=119))
        assert incident is not None and incident.triggered_at == T0 + timedelta(minutes=119)
        assert [k for k, _, _ in _changes_on(await _events(s, incident))] == ["deploy"]


async def test_a_pagerduty_incident_gets_the_changes_of_its_service(database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await _change(s, oid, minutes=-30, kind="rollback", version="v2.13.2",
                      previous_version="v2.14.0")
        incident = await apply_pagerduty(s, org_id=oid, signal=paging("incident.triggered",
                                                                      minutes=0))
        # Changes recorded while it is open join it too.
        await _recorded(s, oid, minutes=20, version="v2.14.1")
    async with database.session() as s:
        assert len(await list_incidents(s, org_id=oid)) == 1
        assert [summary for _, summary, _ in _changes_on(await _events(s, incident))] == [
            "Rollback checkout v2.14.0 → v2.13.2", "Deploy checkout v2.14.1"]


async def test_a_deploy_storm_writes_a_bounded_timeline(database: Database) -> None:
    """A service deploying every half minute, then five incidents and a change during them:
    each incident gets the LINKS changes nearest its start, each change at most LINKS
    incidents; a change hours after an incident started is not linked to it."""
    from knowledge.change_links import LINKS

    async with database.session() as s, s.begin():
        oid = await org_id(s)
        for i in range(240):  # two hours of deploys before T0
            await _change(s, oid, minutes=-120 + i * 0.5, version=f"v{i}")
        incidents = [await apply_alert(s, org_id=oid, signal=firing(f"A{i}", group=f"g{i}",
                                                                      minutes=i))
                     for i in range(5)]
        late = await _recorded(s, oid, minutes=60 * 5, version="late")
        during = await _recorded(s, oid, minutes=10, version="during")
    async with database.session() as s:
        for incident in incidents:
            changes = _changes_on(await _events(s, incident))
            assert len(changes) == LINKS + 1  # the nearest LINKS, and the one during it
            assert changes[-1][1] == "Deploy checkout during"
            # the nearest to its start: the last deploys before it, none from the first hour
            assert all(at >= T0 - timedelta(minutes=15) for _, _, at in changes)
            assert "Deploy checkout late" not in {line for _, line, _ in changes}
    assert late.id is not None and during.id is not None
