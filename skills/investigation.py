"""An investigation: assemble the context from Prometheus, then rank hypotheses with the
evidence engine — with similar past incidents and the runbook that fits, when the caller found
them. What `sre-copilot investigate` and the incident flow run, and the `hypotheses` tool."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from pydantic import BaseModel, Field, field_validator

from skills.charts import panels_for, render_signals
from skills.context import ChangeRecord, Snapshot, assemble
from skills.history.similar import SimilarIncident, find_similar
from skills.hypotheses.engine import rank
from skills.hypotheses.models import Investigation
from skills.prometheus.client import PrometheusClient
from skills.prometheus.golden import GoldenSignals
from skills.runbooks.search import RunbookAnswer, RunbookQuery, search_async
from skills.types import Claim, SkillContext, SkillResult, parse_duration, utc


class InvestigationRequest(BaseModel):
    service: str = Field(min_length=1)
    at: datetime
    window: timedelta = timedelta(hours=2)
    step: float = 15.0


async def investigate(prom: PrometheusClient, request: InvestigationRequest, *,
                      signals: GoldenSignals | None = None,
                      changes: list[ChangeRecord] | None = None,
                      history: Sequence[SimilarIncident] | None = None,
                      runbooks: RunbookAnswer | None = None) -> Investigation:
    """`history`: similar past incidents (`skills.history.similar.find_similar`); a candidate
    that was the confirmed cause of one ranks higher and cites it. `runbooks`: a runbook search
    for the alert; its best hit, unless the search abstained, is cited in the verdict."""
    investigation, _ = await investigate_with_snapshot(
        prom, request, signals=signals, changes=changes, history=history, runbooks=runbooks)
    return investigation


async def investigate_with_snapshot(prom: PrometheusClient, request: InvestigationRequest, *,
                                    signals: GoldenSignals | None = None,
                                    changes: list[ChangeRecord] | None = None,
                                    history: Sequence[SimilarIncident] | None = None,
                                    runbooks: RunbookAnswer | None = None
                                    ) -> tuple[Investigation, Snapshot]:
    """`investigate`, with the data it ranked (for charts)."""
    snap = await assemble(prom, service=request.service, at=request.at, window=request.window,
                          step=request.step, signals=signals)
    best = runbooks.results[0] if runbooks and not runbooks.abstained and runbooks.results \
        else None
    investigation = rank(snap, extra_changes=changes, history=history, runbook=best)
    if snap.errors:
        investigation.verdict += f" ({len(snap.errors)} queries failed: {snap.errors[0]})"
    return investigation, snap


class Hypotheses:
    name: ClassVar[str] = "hypotheses"
    description: ClassVar[str] = (
        "Investigate one service around a time with the evidence engine: fetch its golden "
        "signals, its dependencies' signals and recent deploys from Prometheus, and rank "
        "root-cause hypotheses, each with a calibrated confidence and the evidence behind it "
        "(queries, time ranges, numbers). Pass `symptom` (the alert text) to also weigh similar "
        "past incidents and the matching runbook.")

    class Input(BaseModel):
        service: str = Field(min_length=1, description="The service that is alerting.")
        at: datetime | None = Field(default=None, description="ISO 8601; default now.")
        window: str = Field(default="2h", description="How far back to look, e.g. 2h.")
        symptom: str | None = Field(default=None, description="The alert's summary, if any.")

        @field_validator("window")
        @classmethod
        def _duration(cls, value: str) -> str:
            parse_duration(value)
            return value

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult:
        assert isinstance(args, Hypotheses.Input)
        prom: PrometheusClient = ctx.client("prometheus")
        at = utc(args.at) if args.at else datetime.now(UTC)
        history = runbooks = None
        if args.symptom:
            text = f"{args.service}: {args.symptom}"
            if ctx.clients.get("history") is not None:
                history = await find_similar(ctx.clients["history"], org_id=ctx.org_id,
                                             text=text)
            if ctx.clients.get("runbooks") is not None:
                runbooks = await search_async(ctx.clients["runbooks"], RunbookQuery(
                    text=text, headline=args.symptom, service=args.service))
        inv, snap = await investigate_with_snapshot(prom, InvestigationRequest(
            service=args.service, at=at, window=parse_duration(args.window)),
            history=history, runbooks=runbooks)
        images = []
        panels = panels_for(inv, snap) if ctx.out_dir is not None else []
        if panels and ctx.out_dir is not None:  # the signals the hypotheses rest on
            ctx.out_dir.mkdir(parents=True, exist_ok=True)
            images.append(await asyncio.to_thread(
                render_signals, panels,
                path=ctx.out_dir / f"signals-{inv.service}-{int(at.timestamp())}.png",
                title=f"{inv.service}: key signals", onset=inv.onset, changes=snap.changes))
        lines = [f"{i}. ({h.confidence:.0%}) {h.statement} Next: {h.next_check}"
                 for i, h in enumerate(inv.hypotheses, start=1)]
        summary = (f"Investigation of {inv.service}, {inv.start:%H:%M}–{inv.end:%H:%M} UTC: "
                   f"{inv.verdict}" + ("\n" + "\n".join(lines) if lines else ""))
        claims = [Claim(statement=h.statement, confidence=h.confidence,
                        evidence_ids=list(h.evidence_ids), next_check=h.next_check,
                        cause=h.cause.model_dump())
                  for h in inv.hypotheses]
        return SkillResult(summary=summary, evidence=list(inv.evidence), claims=claims,
                           images=images,
                           data={"service": inv.service, "verdict": inv.verdict,
                                 "onset": inv.onset.isoformat() if inv.onset else None,
                                 "scope": inv.scope})
