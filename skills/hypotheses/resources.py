"""The resources of an alert investigation: a series that moved (`Moved`) and a resource with
the series that tie it to the alert (`Subject`) — the one the alert is about, or a neighbour
that may explain it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from skills.families import Family, name_of
from skills.shifts import Shift
from skills.types import Series


@dataclass
class Moved:
    """One series, scored against its baseline, and where it came from."""

    series: Series
    metric: str
    family: Family
    shift: Shift
    query: str
    relation: str  # breakdown | same instance | same host | pods on the node | …

    @property
    def labels(self) -> dict[str, str]:
        return self.series.labels

    @property
    def bad_delta(self) -> float:
        """How far it went the bad way, in its own unit (a fall for a `down` metric counts
        positive; idle CPU time is not busy time)."""
        d = self.shift.delta
        if self.family.direction == "down":
            return -d
        if self.labels.get("mode") in ("idle", "iowait", "steal"):
            return 0.0
        return d


@dataclass
class Subject:
    labels: dict[str, str]  # identifying labels
    drivers: list[Moved] = field(default_factory=list)  # breakdown series that drive the alert
    around: list[Moved] = field(default_factory=list)  # its own series that moved
    held: bool = False  # the rule's condition holds for it, moved or not
    explains: float = 0.0  # for a neighbour: the share of the symptom it accounts for
    why: str = ""  # for a neighbour: how it accounts for the symptom, in words

    @property
    def name(self) -> str:
        return name_of(self.labels) or "the alert's subject"

    @property
    def onset(self) -> float:
        return min((m.shift.onset for m in self.drivers + self.around
                    if m.shift.onset is not None), default=math.inf)

    @property
    def strength(self) -> float:
        return max((m.shift.z for m in self.drivers + self.around), default=0.0)

    @property
    def clear(self) -> bool:
        """Its breakdown moved, or the rule's condition holds for exactly this resource."""
        return self.held or any(m.shift.moved for m in self.drivers)
