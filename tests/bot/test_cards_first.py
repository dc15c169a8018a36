"""In an alert storm the cards go out first: deliveries under way do not hide the newest
incidents' cards from the next delivery round, and an investigation starts only once no card
is on its way (or after its limit)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.conversation.cards_first import CardsFirst
from knowledge.db import Database
from knowledge.incidents import Incident
from knowledge.outbox import enqueue_message, undelivered
from knowledge.types import utcnow
from tests.knowledge.factories import org_id


async def test_incidents_being_delivered_leave_room_for_the_newest_cards(
        database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        ids = []
        for n in range(5):
            incident = Incident(org_id=oid, title=f"storm {n}", source="alertmanager",
                                triggered_at=utcnow())
            s.add(incident)
            await s.flush()
            assert incident.id is not None
            ids.append(incident.id)
            await enqueue_message(s, org_id=oid, key=f"opened:{n}", kind="incident_opened",
                                  text=incident.title, incident_id=incident.id,
                                  payload={"incident_id": incident.id})
    async with database.session() as s:
        first = await undelivered(s, platform="slack", kinds=["incident_opened"],
                                  within=timedelta(hours=1), limit=2)
        then = await undelivered(s, platform="slack", kinds=["incident_opened"],
                                 within=timedelta(hours=1), limit=2, busy=ids[:2])
        # Another replica claimed the third a moment ago: it is on it.
        await enqueue_message(s, org_id=first[0].org_id, key="slack:outbox:opened:2",
                              kind="slack_post", text="claimed")
        await s.commit()
        after = await undelivered(s, platform="slack", kinds=["incident_opened"],
                                  within=timedelta(hours=1), limit=2, busy=ids[:2],
                                  lease=timedelta(minutes=5))
    assert [m.incident_id for m in first] == ids[:2]
    assert [m.incident_id for m in then] == ids[2:4]
    assert [m.incident_id for m in after] == ids[3:5]


async def test_an_investigation_waits_for_the_cards_on_their_way() -> None:
    cards = CardsFirst(limit_s=5)
    one, two = cards.start(), cards.start()
    waiting = asyncio.create_task(cards.wait())
    one()
    one()  # twice is harmless
    await asyncio.sleep(0.05)
    assert not waiting.done() and cards.going == 1
    two()
    await asyncio.wait_for(waiting, 1)
    assert cards.going == 0


async def test_a_storm_that_never_ends_does_not_starve_investigations() -> None:
    cards = CardsFirst(limit_s=0.1)
    cards.start()  # a card that never goes out
    await asyncio.wait_for(cards.wait(), 1)
