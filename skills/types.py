"""The skill contract: what every skill takes and gives back.

A skill has a `name`, a `description` written for the model, a pydantic `Input` model and
`async run(ctx, args) -> SkillResult`. Results carry `Evidence` — where a number came from
(source, exact query, time range, values) — so nothing the copilot says is without a source.
Errors come back as results that carry the exact query and the upstream error, so a model (or a
person) can correct the call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from pydantic import BaseModel, Field, field_validator

from knowledge.incidents import parse_incident_ref


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


class Claim(BaseModel):
    """A hypothesis as a skill or the model states it: what is claimed, how sure, and the ids of
    the evidence it rests on (a claim that cites none is dropped before anyone sees it)."""

    statement: str = Field(min_length=1)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    evidence_ids: list[str] = Field(default_factory=list)
    next_check: str | None = None
    cause: dict[str, Any] | None = None  # the evidence engine's structured cause, if any


class SkillResult(BaseModel):
    summary: str
    data: dict[str, Any] = Field(default_factory=dict)
    evidence: list[Evidence] = Field(default_factory=list)
    claims: list[Claim] = Field(default_factory=list)
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


class NotConfigured(LookupError):
    """A skill needs a client the deployment has not configured; the message says which
    setting provides it."""


# Which setting brings each client, for the message a user sees when one is missing.
CLIENT_SETTINGS = {"prometheus": "PROMETHEUS_URL", "pagerduty": "PAGERDUTY_API_TOKEN",
                   "runbooks": "`sre-copilot runbooks ingest DIR`",
                   "history": "SRE_COPILOT_HISTORY=true", "db": "DATABASE_URL"}


@dataclass
class SkillContext:
    """What a skill may use: clients handed in by the caller (`prometheus`, `pagerduty`,
    `runbooks`, `history`, `db`), never imported globals; the org it acts for; and where it may
    write files (charts)."""

    clients: dict[str, Any] = field(default_factory=dict)
    org_id: int = 1
    out_dir: Path | None = None

    def client(self, name: str) -> Any:
        if self.clients.get(name) is None:
            how = CLIENT_SETTINGS.get(name)
            raise NotConfigured(f"no {name} client configured" + (f" (set {how})" if how else ""))
        return self.clients[name]


class IncidentRef(BaseModel):
    """Which incident: `INC-12`, `12`, or nothing for the newest open one."""

    incident: str | int | None = Field(
        default=None, description="The incident, e.g. INC-12; default the newest open one.")

    @field_validator("incident")
    @classmethod
    def _ref(cls, value: str | int | None) -> str | int | None:
        parse_incident_ref(value)
        return value

    @property
    def incident_id(self) -> int | None:
        return parse_incident_ref(self.incident)


class Skill(Protocol):
    name: ClassVar[str]
    description: ClassVar[str]

    @property
    def Input(self) -> type[BaseModel]:  # every skill declares it as a nested class
        ...

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


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """'2h', '90m', '1h30m', '45s', '7d' → a timedelta; anything else raises ValueError with
    the accepted form."""
    cleaned = text.strip().lower().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhdw])", cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"{text!r} is not a duration: write it like 15m, 2h, 1h30m or 7d")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def utc(at: datetime) -> datetime:
    """A naive datetime is taken as UTC."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)
