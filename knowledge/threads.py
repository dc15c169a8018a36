"""Chat threads linked to incidents: a Slack or Teams conversation (workspace, channel, thread)
↔ the incident it is about. `thread_id` is empty for a whole channel."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.types import UTCDateTime, utcnow

PLATFORMS = frozenset({"slack", "teams"})


class ChatThread(SQLModel, table=True):
    __tablename__ = "chat_thread"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "channel_id", "thread_id"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=128)
    channel_id: str = Field(max_length=256)
    thread_id: str = Field(default="", max_length=256)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


async def link_thread(session: AsyncSession, *, org_id: int, incident_id: int, platform: str,
                      workspace_id: str, channel_id: str, thread_id: str = "") -> ChatThread:
    """Link a conversation to an incident; linking it again moves it to the new incident."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; known: slack, teams")
    stmt = select(ChatThread).where(
        ChatThread.org_id == org_id, ChatThread.platform == platform,
        ChatThread.workspace_id == workspace_id, ChatThread.channel_id == channel_id,
        ChatThread.thread_id == thread_id)
    thread = (await session.exec(stmt)).first()
    if thread is None:
        thread = ChatThread(org_id=org_id, incident_id=incident_id, platform=platform,
                            workspace_id=workspace_id, channel_id=channel_id, thread_id=thread_id)
    thread.incident_id = incident_id
    session.add(thread)
    await session.flush()
    return thread


async def incident_of_thread(session: AsyncSession, *, org_id: int, platform: str,
                             workspace_id: str, channel_id: str, thread_id: str = ""
                             ) -> int | None:
    """The incident a thread is about; a thread not linked itself inherits its channel's."""
    for tid in dict.fromkeys([thread_id, ""]):
        stmt = select(ChatThread.incident_id).where(
            ChatThread.org_id == org_id, ChatThread.platform == platform,
            ChatThread.workspace_id == workspace_id, ChatThread.channel_id == channel_id,
            ChatThread.thread_id == tid)
        found = (await session.exec(stmt)).first()
        if found is not None:
            return found
    return None


async def threads_of_incident(session: AsyncSession, *, org_id: int, incident_id: int
                              ) -> list[ChatThread]:
    stmt = select(ChatThread).where(ChatThread.org_id == org_id,
                                    ChatThread.incident_id == incident_id)
    return list((await session.exec(stmt)).all())
