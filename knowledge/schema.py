"""The whole schema in one place: importing this registers every table on `metadata`, which
Alembic's migrations are compared against."""

from __future__ import annotations

from sqlmodel import SQLModel

from knowledge.alerts import Alert
from knowledge.changes import Change
from knowledge.digests import DigestRun
from knowledge.heartbeats import Heartbeat
from knowledge.hypotheses import Hypothesis
from knowledge.inbox import InboxItem
from knowledge.incidents import Incident
from knowledge.orgs import Org
from knowledge.outbox import OutboxMessage
from knowledge.teams import TeamsCard, TeamsChannel
from knowledge.threads import ChatThread
from knowledge.timeline import TimelineEvent

metadata = SQLModel.metadata

TABLES = (Org, Alert, Incident, TimelineEvent, Hypothesis, ChatThread, InboxItem, OutboxMessage,
          Change, TeamsChannel, TeamsCard, DigestRun, Heartbeat)

# Libraries create and migrate these in the same database — langgraph's checkpointer
# (bot.agent.memory) and slack_sdk's OAuth installation and state stores (bot.slack.service);
# Alembic neither drops them nor reports them as differences (migrations/env.py).
LANGGRAPH_TABLES = frozenset({"checkpoints", "checkpoint_blobs", "checkpoint_writes",
                              "checkpoint_migrations"})
SLACK_SDK_TABLES = frozenset({"slack_bots", "slack_installations", "slack_oauth_states"})
LIBRARY_TABLES = LANGGRAPH_TABLES | SLACK_SDK_TABLES


def owned_by_alembic(obj: object, name: str | None, type_: str, reflected: bool,
                     compare_to: object) -> bool:
    """Alembic's `include_object` hook: everything but the libraries' own tables."""
    return not (type_ == "table" and name in LIBRARY_TABLES)
