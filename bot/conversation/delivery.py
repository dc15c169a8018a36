"""Delivering the incident engine's queued messages to one platform, once: a new incident is
briefed where the platform places it (Slack: a channel of its own; Teams: a thread in the
incident channel), and a status change reaches every place linked to the incident — a notice in
each linked channel (in the briefing thread where the channel itself is not linked) and the
incident card at the top of each briefing thread re-rendered."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.conversation.chat import Chat
from knowledge.outbox import OutboxMessage, undelivered
from knowledge.threads import threads_of_incident

log = logging.getLogger(__name__)
WITHIN = timedelta(hours=6)  # older queued messages are news no more


async def deliver(chat: Chat, *, new_incidents: bool, wait: bool = True, limit: int = 50) -> int:
    """Post what the engine queued for this platform: status changes always, new incidents
    when `new_incidents` (the platform is set up to place them). See `Ledger.deliver_queued`
    for `wait` and the order."""
    kinds = ["incident_status"] + (["incident_opened"] if new_incidents else [])
    async with chat.db.session() as session:
        queued = await undelivered(session, platform=chat.platform, kinds=kinds, within=WITHIN,
                                   limit=limit, busy=chat.ledger.busy(),
                                   lease=timedelta(seconds=chat.settings.chat_lease_seconds))

    async def one(msg: OutboxMessage) -> bool:
        return await deliver_one(chat, msg)

    return await chat.ledger.deliver_queued(queued, one, wait=wait)


async def deliver_one(chat: Chat, msg: OutboxMessage) -> bool:
    """One queued message, claimed for this replica by its ledger marker; True if delivered.
    A failure retrying cannot fix is kept on the marker; any other hands the claim back."""
    conversation, ledger = chat.conversation, chat.ledger
    if msg.kind == "incident_opened" and not await conversation.ready_for_new_incidents(
            msg.org_id):
        return False  # kept queued until the platform can place it
    marker = ledger.marker("outbox", msg.key)
    if not await ledger.claim_delivery(msg.org_id, marker, msg.key):
        return False  # another replica is on it (or posted it)
    try:
        if msg.kind == "incident_opened":
            card_out = chat.cards.start()  # from here: its channel, then its card
            try:
                incident = await chat.incident_by_id(msg.org_id,
                                                     int(msg.payload["incident_id"]))
                channel = (await conversation.place_new_incident(msg.org_id, incident)
                           if incident is not None else None)
                if incident is not None and channel is not None:
                    await chat.brief(channel, incident, key=f"outbox:{msg.key}",
                                     card_out=card_out)
            finally:
                card_out()
        else:
            await status_update(chat, msg)
    except Exception as exc:
        if not conversation.gives_up(exc):
            await ledger.release_delivery(msg.org_id, marker)
            raise  # retried next round
        log.error("%s: %s not delivered: %s", chat.platform, msg.key, exc)
        await ledger.mark_posted(msg.org_id, marker, error=str(exc))
        return False
    except BaseException:
        await ledger.release_delivery(msg.org_id, marker)
        raise
    await ledger.mark_posted(msg.org_id, marker)
    return True


async def status_update(chat: Chat, msg: OutboxMessage) -> None:
    assert msg.incident_id is not None
    async with chat.db.session() as session:
        links = [t for t in await threads_of_incident(session, org_id=msg.org_id,
                                                      incident_id=msg.incident_id)
                 if t.platform == chat.platform]
    channels = {t.channel_id for t in links if not t.thread_id}
    for link in links:
        where = await chat.conversation.address_of(msg.org_id, link.workspace_id,
                                                   link.channel_id, link.thread_id)
        if where is None:
            continue
        if not link.thread_id or link.channel_id not in channels:
            await chat.conversation.post(where, chat.renderer.notice(msg.text))
        if link.thread_id:
            await chat.refresh_card(where, link.thread_id, msg.incident_id)
