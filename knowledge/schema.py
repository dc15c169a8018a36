"""The whole schema in one place: importing this registers every table on `metadata`, which
Alembic's migrations are compared against."""

from __future__ import annotations

from sqlmodel import SQLModel

from knowledge.alerts import Alert
from knowledge.changes import Change
from knowledge.hypotheses import Hypothesis
from knowledge.inbox import InboxItem
from knowledge.incidents import Incident
from knowledge.orgs import Org
from knowledge.outbox import OutboxMessage
from knowledge.threads import ChatThread
from knowledge.timeline import TimelineEvent

metadata = SQLModel.metadata

TABLES = (Org, Alert, Incident, TimelineEvent, Hypothesis, ChatThread, InboxItem, OutboxMessage,
          Change)
