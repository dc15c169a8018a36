"""The `hypotheses` skill: an investigation as a tool. From an alert (its labels, annotations
and expression, as Alertmanager delivers it) or from a service, or both; with the changes
pipelines posted to `/webhooks/changes` (stored), the similar past incidents and the runbook —
the alert's own `runbook_url` first — so that everything a briefing says comes from one place.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from knowledge.changes import changes_between
from skills.alert_context import AlertRef, AlertSnapshot
from skills.charts import ChartPanel, Unit, panels_for, render_signals
from skills.context import ChangeRecord
from skills.families import family_of
from skills.history.similar import find_similar
from skills.hypotheses.models import Investigation
from skills.investigation import (
    InvestigationRequest,
    combine,
    investigate_alert,
    investigate_with_snapshot,
)
from skills.prometheus.client import PrometheusClient
from skills.prometheus.links import graph_url, split_query
from skills.runbooks.search import RunbookQuery, search_async
from skills.types import Claim, SkillContext, SkillResult, parse_duration, utc


async def stored_changes(ctx: SkillContext, *, start: datetime, end: datetime
                         ) -> list[ChangeRecord]:
    """The changes pipelines posted for this org in the range (none without a database)."""
    db = ctx.clients.get("db")
    if db is None:
        return []
    async with db.session() as session:
        rows = await changes_between(session, org_id=ctx.org_id, start=start, end=end)
    return [ChangeRecord(service=c.service, kind=c.kind if c.kind != "rollback" else "deploy",
                         occurred_at=utc(c.occurred_at), source=c.source, version=c.version,
                         previous_version=c.previous_version, description=c.description,
                         link=c.link) for c in rows]


class Hypotheses:
    name: ClassVar[str] = "hypotheses"
    description: ClassVar[str] = (
        "Investigate an alert or a service around a time with the evidence engine and rank "
        "root-cause hypotheses, each with a calibrated confidence and the evidence behind it "
        "(queries, time ranges, numbers). With `alert` (name and labels; its expression is "
        "found from its generatorURL or the rules API) it breaks the alert's own expression "
        "down by its labels to the failing resource (instance, mountpoint, pod, target) and "
        "weighs what moved around it, whatever the metric names. With `service` it follows the "
        "call graph (golden signals, what callers see of their targets, deploys). Pass "
        "`symptom` (the alert text) to also weigh similar past incidents and the runbook.")

    class Input(BaseModel):
        service: str | None = Field(default=None, min_length=1,
                                    description="The service that is alerting, if any.")
        alert: AlertRef | None = Field(default=None, description="The alert, if any.")
        at: datetime | None = Field(default=None, description="ISO 8601; default now.")
        window: str = Field(default="2h", description="How far back to look, e.g. 2h.")
        symptom: str | None = Field(default=None, description="The alert's summary, if any.")

        @field_validator("window")
        @classmethod
        def _duration(cls, value: str) -> str:
            parse_duration(value)
            return value

        @model_validator(mode="after")
        def _something(self) -> Self:
            if self.service is None and self.alert is None:
                raise ValueError("give the alert or the service to investigate")
            return self

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult:
        assert isinstance(args, Hypotheses.Input)
        prom: PrometheusClient = ctx.client("prometheus")
        at = utc(args.at) if args.at else datetime.now(UTC)
        window = parse_duration(args.window)
        alert = args.alert
        history = runbooks = None
        if args.symptom or alert is not None:
            text = args.symptom or (alert.name if alert else "")
            if ctx.clients.get("history") is not None:
                history = await find_similar(ctx.clients["history"], org_id=ctx.org_id,
                                             text=text)
            if ctx.clients.get("runbooks") is not None:
                runbooks = await search_async(ctx.clients["runbooks"], RunbookQuery(
                    text=text, headline=(alert.annotations.get("summary") if alert else None)
                    or args.symptom, service=args.service,
                    alertname=alert.name if alert else None,
                    runbook_url=alert.annotations.get("runbook_url") if alert else None))
        changes = await stored_changes(ctx, start=at - window - timedelta(minutes=30), end=at)
        images: list[Path] = []
        alert_inv: Investigation | None = None
        service_inv: Investigation | None = None
        if alert is not None:
            alert_inv, asnap = await investigate_alert(prom, alert, at=at, window=window,
                                                       changes=changes, runbooks=runbooks)
            images += await _chart(ctx, alert_inv, asnap, at)
        if args.service is not None:
            service_inv, snap = await investigate_with_snapshot(prom, InvestigationRequest(
                service=args.service, at=at, window=window), changes=changes,
                history=history, runbooks=None if alert_inv else runbooks)
            panels = panels_for(service_inv, snap) if ctx.out_dir is not None else []
            if panels and ctx.out_dir is not None and service_inv.hypotheses:
                ctx.out_dir.mkdir(parents=True, exist_ok=True)
                images.append(await asyncio.to_thread(
                    render_signals, panels,
                    path=ctx.out_dir / f"signals-{_slug(args.service)}-{int(at.timestamp())}"
                                       ".png",
                    title=f"{args.service}: key signals", onset=service_inv.onset,
                    changes=snap.changes))
        if alert_inv is not None and service_inv is not None:
            inv = combine(alert_inv, service_inv)
        else:
            inv = alert_inv or service_inv  # type: ignore[assignment]
        assert inv is not None
        return investigation_result(inv, images, prometheus=prom.external_url)


def investigation_result(inv: Investigation, images: list[Path], *,
                         prometheus: str | None = None) -> SkillResult:
    """The investigation as a result. With `prometheus` (where people open it), every piece of
    evidence behind a query links to its graph, and a next step that ends in a query links to
    it instead of spelling it out."""
    lines = [f"{i}. ({h.confidence:.0%}) {h.statement} Next: {h.next_check}"
             for i, h in enumerate(inv.hypotheses, start=1)]
    summary = (f"Investigation of {inv.service} (looked at {inv.start:%H:%M}–{inv.end:%H:%M} "
               f"UTC): {inv.verdict}" + ("\n" + "\n".join(lines) if lines else ""))
    claims = [Claim(statement=h.statement, confidence=h.confidence,
                    evidence_ids=list(h.evidence_ids),
                    next_check=_linked(h.next_check, prometheus, inv),
                    cause=h.cause.model_dump())
              for h in inv.hypotheses]
    evidence = [e if e.link or not e.query or not prometheus else e.model_copy(update={
        "link": graph_url(prometheus, e.query, start=e.start, end=e.end)})
        for e in inv.evidence]
    data: dict[str, Any] = {"service": inv.service, "verdict": inv.verdict,
                            "onset": inv.onset.isoformat() if inv.onset else None,
                            "scope": inv.scope}
    return SkillResult(summary=summary, evidence=evidence, claims=claims, images=images,
                       data=data)


def _linked(next_check: str, prometheus: str | None, inv: Investigation) -> str:
    head, query = split_query(next_check)
    if query is None or prometheus is None:
        return next_check
    link = graph_url(prometheus, query, start=inv.start, end=inv.end)
    return f"{head} — [the query in Prometheus]({link})"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)[:60].strip("-")


async def _chart(ctx: SkillContext, inv: Investigation, snap: AlertSnapshot,
                 at: datetime) -> list[Path]:
    """The value the alert watches and the series that drove it, on one time axis."""
    if ctx.out_dir is None or not snap.quantity or not inv.hypotheses:
        return []
    panels = [ChartPanel(label=f"{snap.alert.name}: what the rule watches", unit="value",
                         series=[("", s) for s in snap.quantity[:3]])]
    cited = {e for h in inv.hypotheses[:1] for e in h.evidence_ids}
    shown = 0
    for sel, _, found in snap.drills:
        if shown >= 2 or not found:
            continue
        fam = family_of(sel.metric or "")
        unit: Unit = "bytes" if fam.unit == "bytes" else "value"
        resource = inv.hypotheses[0].cause.resource
        mine = [s for s in found if all(s.labels.get(k) == v for k, v in resource.items())]
        if mine and cited:
            panels.append(ChartPanel(label=sel.metric or "", unit=unit,
                                     series=[("", s) for s in mine[:3]]))
            shown += 1
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.out_dir / f"alert-{_slug(snap.alert.name)}-{int(at.timestamp())}.png"
    return [await asyncio.to_thread(render_signals, panels, path=path,
                                    title=f"{snap.alert.name}: {inv.hypotheses[0].cause.service}",
                                    onset=inv.onset, changes=[])]
