"""Runbook search as a tool: the runbook (and section) that fits a question or an alert, or a
plain "none found" when nothing fits — never a near miss passed off as an answer."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from skills.runbooks.search import RunbookQuery, search_async
from skills.types import Evidence, SkillContext, SkillResult


class RunbookSearch:
    name: ClassVar[str] = "runbook_search"
    description: ClassVar[str] = (
        "Find the runbook for an alert or a problem among the team's ingested runbooks. Give "
        "the alert's summary or the problem in words, and the alert name and service when "
        "known. Returns the best runbooks with the section to read and a score; when nothing "
        "fits it says so (abstains) rather than offering an unrelated runbook.")

    class Input(BaseModel):
        query: str = Field(min_length=1, max_length=10_000,
                           description="The alert summary or the problem, in words.")
        alertname: str | None = None
        runbook_url: str | None = Field(default=None, max_length=2000,
                                        description="The alert's runbook_url annotation.")
        service: str | None = None
        k: int = Field(default=3, ge=1, le=10)

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult:
        assert isinstance(args, RunbookSearch.Input)
        # The same search and the same abstention rule as `runbooks search`, the incident
        # briefing and the evidence engine: one decision, whoever asks.
        answer = await search_async(ctx.client("runbooks"), RunbookQuery(
            text=args.query, alertname=args.alertname, service=args.service,
            runbook_url=args.runbook_url), k=args.k)
        # When it abstains nothing is offered as evidence: the message still names the closest.
        # When it answers, its first runbook is the answer; the others stay out unless the alert
        # itself names them (runbook_url, alert name): near misses are noise at 3 a.m.
        fits = [] if answer.abstained else [
            h for i, h in enumerate(answer.results) if i == 0 or h.reason != "similarity"]
        evidence = [
            Evidence(id=f"ev-{i}", source="runbooks", query=args.query,
                     summary=f"{h.title} — {h.path}" + (f" § {h.section}" if h.section else ""),
                     values={"score": h.score}, labels={"path": h.path, "reason": h.reason},
                     link=h.url or (h.path if h.path.startswith(("http://", "https://"))
                                    else None))
            for i, h in enumerate(fits, start=1)]
        summary = answer.message + "".join(
            f"\n- also: {h.title} — {h.path}" + (f" § {h.section}" if h.section else "")
            + f" (score {h.score:.2f})" for h in fits[1:])
        data = answer.as_json_line()
        if answer.reason == "no runbooks indexed":  # a setup problem, for the operator
            data["unavailable"] = True
        return SkillResult(summary=summary, evidence=evidence, data=data)
