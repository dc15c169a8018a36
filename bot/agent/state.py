"""What the agent graph carries: the thread's memory (turns, the evidence cited so far, what the
conversation is about) kept by the checkpointer, and one turn's working data.

Everything in the state is plain JSON (dicts, lists, strings) so any checkpointer can store it
and a newer version of the bot can read an older thread.
"""

from __future__ import annotations

import operator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, Field

from skills.types import Claim, Evidence

Route = Literal["command", "question", "feedback", "incident"]
MAX_TURNS_KEPT = 20  # turns replayed to the model; older ones stay in the checkpoint only
MAX_EVIDENCE_KEPT = 200


class Turn(TypedDict):
    role: Literal["user", "assistant"]
    text: str


class NewIncident(BaseModel):
    """A new incident the worker hands to the graph (route `incident`). `service` is what the
    incident is about (its subject); `app_service` the application service its alerts name,
    if any, for the call-graph investigation; `alerts` the alerts as Alertmanager sent them
    (name, labels, annotations, generator_url, starts_at), the first the one to start from."""

    service: str
    title: str
    app_service: str | None = None
    alerts: list[dict[str, Any]] = Field(default_factory=list)
    summary: str | None = None
    alertname: str | None = None
    at: datetime | None = None
    incident_id: int | None = None
    pagerduty_id: str | None = None


class ToolCall(BaseModel):
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class ToolRecord(BaseModel):
    """One executed tool call as the answer reports it."""

    name: str
    args: dict[str, Any]
    ok: bool
    elapsed_ms: float
    summary: str
    error: str | None = None
    evidence_ids: list[str] = Field(default_factory=list)
    # The skill is not set up here (no client configured): a problem for the operator's logs,
    # never for the incident channel.
    unavailable: bool = False


class Answer(BaseModel):
    """What the copilot says for one turn. `claims` cite `evidence` by id; `notes` say how the
    answer was made when that matters (the model was unavailable, a cap was hit, a hypothesis
    was dropped)."""

    text: str
    route: Route
    brain: Literal["claude", "evidence engine"]
    claims: list[Claim] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    images: list[Path] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    tools: list[ToolRecord] = Field(default_factory=list)
    usage: dict[str, int] = Field(default_factory=dict)


def _keep_last(limit: int) -> Any:
    def reduce(old: list[Any], new: list[Any]) -> list[Any]:
        return (old + new)[-limit:]
    return reduce


class AgentState(TypedDict, total=False):
    # The thread's memory, across turns.
    turns: Annotated[list[Turn], _keep_last(2 * MAX_TURNS_KEPT)]
    evidence: Annotated[list[dict[str, Any]], _keep_last(MAX_EVIDENCE_KEPT)]
    evidence_seq: int  # the last evidence number handed out in this thread (ev-N)
    focus: dict[str, Any]  # service, incident, signal, window, intent of the last answer
    last_claims: list[dict[str, Any]]  # the last answer's hypotheses, for feedback
    feedback: Annotated[list[dict[str, Any]], operator.add]
    # This turn.
    text: str
    incident: dict[str, Any] | None
    route: Route
    plan: dict[str, Any] | None
    results: list[dict[str, Any]]
    answer: dict[str, Any]
