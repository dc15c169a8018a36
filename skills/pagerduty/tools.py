"""PagerDuty as tools (read-only, REST API v2): an incident's details and log entries — or, with
no id, the open incidents — and who is on call."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import ClassVar

from pydantic import BaseModel, Field

from skills.pagerduty.client import PagerDutyClient, PagerDutyError, PdIncident
from skills.types import Evidence, SkillContext, SkillResult, utc


def _incident_line(i: PdIncident) -> str:
    who = f", assigned to {', '.join(i.assignees)}" if i.assignees else ""
    prio = f", {i.priority}" if i.priority else ""
    return (f"#{i.number} {i.id} “{i.title}” — {i.status}, {i.urgency} urgency{prio}, "
            f"service {i.service_name}{who}, created {i.created_at:%Y-%m-%d %H:%M} UTC")


def _incident_evidence(eid: str, i: PdIncident) -> Evidence:
    return Evidence(id=eid, source="pagerduty", summary=_incident_line(i),
                    query=f"GET /incidents/{i.id}", start=i.created_at,
                    end=i.last_status_change_at, link=i.html_url,
                    labels={"incident": i.id, "status": i.status, "service": i.service_name},
                    values={"number": float(i.number)})


def _failed(exc: PagerDutyError) -> SkillResult:
    return SkillResult(summary=f"PagerDuty call failed: {exc}", error=str(exc),
                       data={"endpoint": exc.endpoint, "status": exc.status})


class PagerDutyIncident:
    name: ClassVar[str] = "pagerduty_incident"
    description: ClassVar[str] = (
        "PagerDuty incident details (status, urgency, service, assignees, priority) and its log "
        "entries (triggers, acknowledgements, escalations, notes), newest first. Without "
        "`incident_id`, lists the open (triggered or acknowledged) incidents.")

    class Input(BaseModel):
        incident_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,20}$",
                                        description="The PagerDuty incident id, e.g. PT4KHLK.")
        log_entries: int = Field(default=15, ge=0, le=100)

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult:
        assert isinstance(args, PagerDutyIncident.Input)
        pd: PagerDutyClient = ctx.client("pagerduty")
        try:
            if args.incident_id is None:
                open_ = await pd.incidents()
                lines = [f"- {_incident_line(i)}" for i in open_]
                return SkillResult(
                    summary=(f"{len(open_)} open PagerDuty incident(s):\n" + "\n".join(lines))
                    if open_ else "No open PagerDuty incidents.",
                    evidence=[_incident_evidence(f"ev-{n}", i)
                              for n, i in enumerate(open_[:10], start=1)],
                    data={"incidents": [i.model_dump(mode="json") for i in open_]})
            incident, entries = await asyncio.gather(
                pd.incident(args.incident_id),
                pd.log_entries(args.incident_id, limit=max(1, args.log_entries)))
            entries = entries[:args.log_entries]
        except PagerDutyError as exc:
            return _failed(exc)
        lines = [f"- {e.created_at:%H:%M:%S} {e.summary}" for e in entries]
        evidence = [_incident_evidence("ev-1", incident)] + [
            Evidence(id=f"ev-{n}", source="pagerduty", summary=e.summary, start=e.created_at,
                     end=e.created_at, query=f"GET /incidents/{incident.id}/log_entries",
                     labels={"type": e.type, **({"agent": e.agent} if e.agent else {})})
            for n, e in enumerate(entries, start=2)]
        return SkillResult(
            summary=_incident_line(incident) + ("\nLog (newest first):\n" + "\n".join(lines)
                                                if lines else ""),
            evidence=evidence,
            data={"incident": incident.model_dump(mode="json"),
                  "log_entries": [e.model_dump(mode="json") for e in entries]})


class PagerDutyOncall:
    name: ClassVar[str] = "pagerduty_oncall"
    description: ClassVar[str] = (
        "Who is on call now (or at `at`) in PagerDuty: each person with their escalation "
        "policy, escalation level and schedule, optionally for given escalation policy or "
        "schedule ids.")

    class Input(BaseModel):
        escalation_policy_ids: list[str] = Field(default_factory=list)
        schedule_ids: list[str] = Field(default_factory=list)
        at: datetime | None = None

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult:
        assert isinstance(args, PagerDutyOncall.Input)
        pd: PagerDutyClient = ctx.client("pagerduty")
        at = utc(args.at) if args.at else datetime.now(UTC)
        try:
            oncalls = await pd.oncalls(schedule_ids=args.schedule_ids,
                                       escalation_policy_ids=args.escalation_policy_ids, at=at)
        except PagerDutyError as exc:
            return _failed(exc)
        oncalls = sorted(oncalls, key=lambda o: (o.escalation_policy, o.escalation_level))
        lines, evidence = [], []
        for n, o in enumerate(oncalls, start=1):
            until = f" until {o.end:%Y-%m-%d %H:%M} UTC" if o.end else " (always on call)"
            text = (f"{o.user_name}" + (f" <{o.user_email}>" if o.user_email else "")
                    + f" — {o.escalation_policy}, level {o.escalation_level}"
                    + (f", schedule {o.schedule}" if o.schedule else "") + until)
            lines.append(f"- {text}")
            evidence.append(Evidence(id=f"ev-{n}", source="pagerduty", summary=text,
                                     query="GET /oncalls", start=o.start, end=o.end,
                                     labels={"user": o.user_name,
                                             "escalation_policy": o.escalation_policy},
                                     values={"escalation_level": float(o.escalation_level)}))
        summary = (f"On call at {at:%Y-%m-%d %H:%M} UTC:\n" + "\n".join(lines)) if oncalls \
            else f"Nobody is on call at {at:%Y-%m-%d %H:%M} UTC for that selection."
        return SkillResult(summary=summary, evidence=evidence,
                           data={"oncalls": [o.model_dump(mode="json") for o in oncalls]})
