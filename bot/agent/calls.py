"""Running tool calls for either brain: in parallel, each announced to a progress callback as it
starts and ends, with evidence renumbered `ev-N` across the whole thread so a hypothesis in any
turn cites exactly one fact, and rendered as fenced text for a model."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.agent.safety import fence
from bot.agent.state import ToolCall, ToolRecord
from skills.registry import SkillRegistry
from skills.types import Evidence, SkillContext, SkillResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressEvent:
    """A tool starting or ending, for the chat adapters' updating message."""

    kind: Literal["start", "end"]
    tool: str
    args: dict[str, Any]
    ok: bool | None = None
    summary: str | None = None
    elapsed_ms: float | None = None


Progress = Callable[[ProgressEvent], Awaitable[None] | None]


async def announce(progress: Progress | None, event: ProgressEvent) -> None:
    """A failing progress callback must not fail the answer: progress is a courtesy."""
    if progress is None:
        return
    try:
        outcome = progress(event)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception:  # see the docstring
        pass


@dataclass
class Executed:
    call: ToolCall
    result: SkillResult
    record: ToolRecord


async def execute(registry: SkillRegistry, ctx: SkillContext, calls: Sequence[ToolCall], *,
                  seq: int, progress: Progress | None = None) -> tuple[list[Executed], int]:
    """Run `calls` concurrently; returns them in call order with evidence numbered from
    `seq + 1`, and the last number used."""

    async def one(call: ToolCall) -> tuple[SkillResult, float]:
        await announce(progress, ProgressEvent("start", call.name, call.args))
        started = time.perf_counter()
        result = await registry.call(ctx, call.name, call.args)
        elapsed = (time.perf_counter() - started) * 1000
        await announce(progress, ProgressEvent("end", call.name, call.args, ok=result.ok,
                                               summary=result.summary.split("\n", 1)[0][:200],
                                               elapsed_ms=elapsed))
        return result, elapsed

    outcomes = await asyncio.gather(*(one(c) for c in calls))
    done = []
    for call, (result, elapsed) in zip(calls, outcomes, strict=True):
        seq = renumber(result, seq)
        if result.data.get("unavailable"):
            log.warning("skill %s is not set up: %s", call.name, result.error)
        done.append(Executed(call, result, ToolRecord(
            name=call.name, args=call.args, ok=result.ok, elapsed_ms=round(elapsed, 1),
            summary=result.summary.split("\n", 1)[0][:300], error=result.error,
            evidence_ids=[e.id for e in result.evidence],
            unavailable=bool(result.data.get("unavailable")))))
    return done, seq


def renumber(result: SkillResult, seq: int) -> int:
    """Give the result's evidence thread-wide ids (in place) and point its claims at them."""
    mapping: dict[str, str] = {}
    for ev in result.evidence:
        seq += 1
        mapping[ev.id] = f"ev-{seq}"
        ev.id = mapping[ev.id] if ev.id in mapping else f"ev-{seq}"
    for claim in result.claims:
        claim.evidence_ids = [mapping[i] for i in claim.evidence_ids if i in mapping]
    return seq


def _when(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    if end is None or end == start:
        return f"{start:%Y-%m-%d %H:%M:%S} UTC"
    return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"


def evidence_line(ev: Evidence) -> str:
    parts = [f"[{ev.id}] {ev.source}: {ev.summary}"]
    if ev.query:
        parts.append(f"query `{ev.query}`")
    when = _when(ev.start, ev.end)
    if when:
        parts.append(when + (f" step {ev.step_seconds:g}s" if ev.step_seconds else ""))
    if ev.values:
        parts.append(", ".join(f"{k}={v:.6g}" for k, v in list(ev.values.items())[:8]))
    return " · ".join(parts)


def describe(executed: Executed) -> str:
    """A tool's result as the model reads it: fenced (tool output may quote alert text or
    logs, which are untrusted) and redacted, with every evidence id and claim spelled out."""
    r = executed.result
    lines = [r.summary]
    if r.evidence:
        lines += ["", "Evidence:"] + [evidence_line(e) for e in r.evidence]
    if r.claims:
        lines += ["", "Hypotheses from the evidence engine:"] + [
            f"- ({c.confidence:.0%}) {c.statement} [{', '.join(c.evidence_ids)}]"
            if c.confidence is not None else f"- {c.statement} [{', '.join(c.evidence_ids)}]"
            for c in r.claims]
    if r.images:
        lines.append(f"(A chart was attached for the user: {len(r.images)} image(s).)")
    return fence(f"tool {executed.call.name}", "\n".join(lines))
