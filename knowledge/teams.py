"""What the copilot keeps about Microsoft Teams: the channels it can post to (a conversation
reference per channel, stored when the app is installed in a team or hears from a channel, per
org = Teams tenant) and the cards it posted that carry buttons (so a click can refresh the
card it came from: Teams does not send the card back with the click)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.types import UTCDateTime, utcnow


class TeamsChannel(SQLModel, table=True):
    """A Teams channel (or chat) the bot can post to. `service_url` is where the Bot Framework
    connector for its region answers; `removed_at` is set when the bot is removed."""

    __tablename__ = "teams_channel"
    __table_args__ = (UniqueConstraint("org_id", "channel_id"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    tenant_id: str = Field(max_length=64)
    team_id: str = Field(default="", max_length=256)  # the team's general channel id
    channel_id: str = Field(max_length=256)  # `19:…@thread.tacv2`, or a chat's id
    name: str = Field(default="", max_length=256)
    service_url: str = Field(max_length=500)
    bot_id: str = Field(max_length=128)  # `28:<app id>`, the bot as the channel knows it
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Chosen with `@SRE Copilot digest here`: the org's weekly digest goes here (one per org).
    digest_since: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TeamsCard(SQLModel, table=True):
    """A card the bot posted that has actions: its conversation, activity id and content."""

    __tablename__ = "teams_card"
    __table_args__ = (UniqueConstraint("org_id", "conversation_id", "activity_id"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    conversation_id: str = Field(max_length=500)
    activity_id: str = Field(max_length=128)
    content: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


async def remember_channel(session: AsyncSession, *, org_id: int, tenant_id: str,
                           channel_id: str, service_url: str, bot_id: str, team_id: str = "",
                           name: str | None = None) -> TeamsChannel:
    """Store or refresh a channel's reference (the service URL can move between regions); a
    channel the bot was removed from and hears from again is live again."""
    found = (await session.exec(select(TeamsChannel).where(
        TeamsChannel.org_id == org_id, TeamsChannel.channel_id == channel_id))).first()
    if found is None:
        found = TeamsChannel(org_id=org_id, tenant_id=tenant_id, channel_id=channel_id,
                             service_url=service_url, bot_id=bot_id, team_id=team_id)
    found.tenant_id, found.service_url, found.bot_id = tenant_id, service_url, bot_id
    found.team_id = team_id or found.team_id
    if name is not None:
        found.name = name
    found.removed_at = None
    found.updated_at = utcnow()
    session.add(found)
    await session.flush()
    return found


async def find_channel(session: AsyncSession, *, org_id: int, channel_id: str
                       ) -> TeamsChannel | None:
    """The live reference of a channel, or None (unknown, or the bot was removed)."""
    return (await session.exec(select(TeamsChannel).where(
        TeamsChannel.org_id == org_id, TeamsChannel.channel_id == channel_id,
        col(TeamsChannel.removed_at).is_(None)))).first()


async def choose_digest_channel(session: AsyncSession, *, org_id: int,
                                channel_id: str) -> TeamsChannel | None:
    """Make this channel the org's digest channel (and no other); None if it is not known."""
    chosen = await find_channel(session, org_id=org_id, channel_id=channel_id)
    if chosen is None:
        return None
    others = await session.exec(select(TeamsChannel).where(
        TeamsChannel.org_id == org_id, col(TeamsChannel.digest_since).is_not(None)))
    for row in others.all():
        row.digest_since = None
        session.add(row)
    chosen.digest_since = utcnow()
    session.add(chosen)
    await session.flush()
    return chosen


async def digest_channel(session: AsyncSession, *, org_id: int) -> TeamsChannel | None:
    """The live channel chosen for the org's digest, if any."""
    return (await session.exec(select(TeamsChannel).where(
        TeamsChannel.org_id == org_id, col(TeamsChannel.digest_since).is_not(None),
        col(TeamsChannel.removed_at).is_(None)))).first()


async def forget_channels(session: AsyncSession, *, org_id: int, team_id: str | None = None,
                          channel_id: str | None = None) -> int:
    """Mark a team's channels (the bot was removed from the team) or one channel removed."""
    stmt = select(TeamsChannel).where(TeamsChannel.org_id == org_id,
                                      col(TeamsChannel.removed_at).is_(None))
    if team_id is not None:
        stmt = stmt.where(TeamsChannel.team_id == team_id)
    if channel_id is not None:
        stmt = stmt.where(TeamsChannel.channel_id == channel_id)
    rows = list((await session.exec(stmt)).all())
    for row in rows:
        row.removed_at = utcnow()
        session.add(row)
    return len(rows)


async def keep_card(session: AsyncSession, *, org_id: int, conversation_id: str,
                    activity_id: str, content: dict[str, Any]) -> None:
    found = await find_card(session, org_id=org_id, conversation_id=conversation_id,
                            activity_id=activity_id)
    if found is None:
        found = TeamsCard(org_id=org_id, conversation_id=conversation_id,
                          activity_id=activity_id, content=content)
    found.content = content
    session.add(found)


async def find_card(session: AsyncSession, *, org_id: int, conversation_id: str,
                    activity_id: str) -> TeamsCard | None:
    return (await session.exec(select(TeamsCard).where(
        TeamsCard.org_id == org_id, TeamsCard.conversation_id == conversation_id,
        TeamsCard.activity_id == activity_id))).first()
