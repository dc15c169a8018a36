"""The skill contract: what every skill takes and gives back.

A skill has a `name`, a `description` written for the model, a pydantic `Input` model and
`async run(ctx, args) -> SkillResult`. Results carry `Evidence` — where a number came from
(source, exact query, time range, values) — so nothing the copilot says is without a source.
Errors come back as results that carry the exact query and the upstream error, so a model (or a
person) can correct the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from pydantic import BaseModel, Field


class Evidence(BaseModel):
    """One fact with its provenance. `id` is stable within an investigation (`ev-1`, …) and is
    what hypotheses cite."""

    id: str
    source: str  # prometheus | changes | alertmanager | pagerduty | history | runbooks
    summary: str
    query: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    step_seconds: float | None = None
    values: dict[str, float] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    link: str | None = None


class SkillResult(BaseModel):
    summary: str
    data: dict[str, Any] = Field(default_factory=dict)
    evidence: list[Evidence] = Field(default_factory=list)
    images: list[Path] = Field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Series:
    """One time series: its labels and aligned arrays of unix seconds and values (NaN = gap)."""

    labels: dict[str, str]
    times: np.ndarray
    values: np.ndarray

    def between(self, start: float, end: float) -> Series:
        mask = (self.times >= start) & (self.times <= end)
        return Series(self.labels, self.times[mask], self.values[mask])


@dataclass
class SkillContext:
    """What a skill may use: clients handed in by the caller, never imported globals."""

    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, name: str) -> Any:
        if name not in self.clients:
            raise LookupError(f"no {name} client configured")
        return self.clients[name]


class Skill(Protocol):
    name: ClassVar[str]
    description: ClassVar[str]
    Input: ClassVar[type[BaseModel]]

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult: ...


def format_duration(td: timedelta) -> str:
    """A duration as people say it: `45s`, `4m 00s`, `1h 05m`, `2d 03h` (truncated to the
    unit shown; negative durations get a leading minus)."""
    total = int(td.total_seconds())
    sign, total = ("-", -total) if total < 0 else ("", total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours:02d}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {seconds:02d}s"
    return f"{sign}{seconds}s"
