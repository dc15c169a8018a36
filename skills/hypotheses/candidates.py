"""The candidates of an investigation along the call graph, and what the engine reads of the
rest of the copilot: a candidate service with its anomalies, what its callers see of it, its
calls, a change linked to it and the past incidents it matches; the evidence log that numbers
every fact; and the small protocols through which similar past incidents (`PastCause`) and
runbooks (`RunbookLead`) are read, so the engine imports neither sibling skill."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from skills.context import ChangeRecord
from skills.hypotheses.anomaly import Anomaly
from skills.types import Evidence


class PastCause(Protocol):
    """A similar past incident as the engine reads it (`skills.history.SimilarIncident`)."""

    @property
    def ref(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def similarity(self) -> float: ...
    @property
    def root_cause(self) -> str | None: ...
    @property
    def resolution(self) -> str | None: ...
    @property
    def cause_service(self) -> str | None: ...
    @property
    def cause_kind(self) -> str | None: ...


class RunbookLead(Protocol):
    """A runbook that fits the alert (`skills.runbooks.search.RunbookHit`)."""

    @property
    def path(self) -> str: ...
    @property
    def section(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def url(self) -> str | None: ...


@dataclass
class Candidate:
    service: str
    anomalies: list[tuple[Anomaly, str]] = field(default_factory=list)  # (anomaly, evidence id)
    seen_by_callers: list[tuple[Anomaly, str, str]] = field(default_factory=list)  # + caller
    calls_in: list[tuple[Anomaly, str, str]] = field(default_factory=list)  # call rate, caller
    calls_out: list[tuple[Anomaly, str, str]] = field(default_factory=list)  # … and target
    change: tuple[ChangeRecord, str] | None = None
    explained_by: str | None = None
    explains: set[str] = field(default_factory=set)
    history: list[tuple[PastCause, str]] = field(default_factory=list)  # (past, evidence id)
    measured: bool = True  # it has series of its own (an external provider has none)
    tier: int = 0  # see skills.hypotheses.propagation
    load_of: str | None = None  # for a load's origin: the service it saturated
    score: float = 0.0

    @property
    def all(self) -> list[Anomaly]:
        return [a for a, _ in self.anomalies] + [a for a, _, _ in self.seen_by_callers]

    @property
    def onset(self) -> float:
        """When its trouble began: the episode still going on, not an earlier one that has
        ended (a change is matched to the episode it may have caused)."""
        if not self.all:  # a change with no anomaly yet
            return self.change[0].occurred_at.timestamp() if self.change else math.inf
        now = [a for a in self.all if a.persistence >= 0.5 and a.current_z >= 2.0]
        return min(a.onset for a in (now or self.all))

    @property
    def strength(self) -> float:
        pushed = [a.z for a, _, _ in self.calls_out] if self.load_of else []
        return max([a.z for a in self.all] + pushed, default=0.0)

    @property
    def current(self) -> float:
        return max((a.current_z for a in self.all), default=0.0)

    @property
    def persistence(self) -> float:
        if not self.all:
            return 0.0
        best = max(self.all, key=lambda a: a.z)
        return best.persistence


class EvidenceLog:
    def __init__(self) -> None:
        self.items: list[Evidence] = []

    def add(self, **kwargs: object) -> str:
        ev = Evidence(id=f"ev-{len(self.items) + 1}", **kwargs)
        self.items.append(ev)
        return ev.id
