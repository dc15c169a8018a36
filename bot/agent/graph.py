"""The agent graph (langgraph `StateGraph`): route → gather → reason → respond, built by
`build_graph(skills, llm, checkpointer)`, never at import.

- route: a command (`/…`), feedback on a hypothesis, a new incident, or a question.
- gather: the skill calls that need no model — a command's, a new incident's standard set
  (hypotheses, similar incidents, runbook, PagerDuty), or the offline planner's when there is no
  model — run in parallel.
- reason: Claude's tool loop when there is a model (and it is up), else the evidence engine's
  composition of what was gathered. If Claude fails after its retries the turn falls back to
  the planner and says so.
- respond: drops hypotheses that cite no evidence a tool returned, and writes the turn into
  the thread's memory (kept by the checkpointer, keyed by the chat thread).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from bot.agent.calls import Executed, Progress, describe, execute
from bot.agent.claude import ClaudeBrain, ClaudeUnavailable
from bot.agent.planner import Plan, Planner
from bot.agent.safety import fence
from bot.agent.state import (
    AgentState,
    Answer,
    NewIncident,
    Route,
    ToolCall,
    ToolRecord,
    Turn,
)
from skills.registry import SkillRegistry
from skills.types import Claim, Evidence, SkillContext, SkillResult

FEEDBACK = re.compile(
    r"^\s*(?:(👍|👎|\+1|-1)|(?:hypothesis\s*#?(\d+)\s*(?:is|was)?\s*)?"
    r"(confirmed|correct|right|it|wrong|rejected|not it|incorrect))\s*[.!]*\s*$", re.I)
POSITIVE = {"👍", "+1", "confirmed", "correct", "right", "it"}
LIVE = timedelta(minutes=30)  # an incident this young is investigated up to now


@dataclass
class AgentContext:
    """Per invocation, never checkpointed: what skills may use and where progress goes."""

    skills: SkillContext
    progress: Progress | None = None


def build_graph(skills: SkillRegistry, llm: ClaudeBrain | None,
                checkpointer: BaseCheckpointSaver[Any] | None, *,
                planner: Planner | None = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """`llm` None means the evidence engine and the offline planner answer everything."""
    planner = planner or Planner()
    nodes = _Nodes(skills, llm, planner)
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("route", nodes.route)
    graph.add_node("gather", nodes.gather)
    graph.add_node("reason", nodes.reason)
    graph.add_node("respond", nodes.respond)
    graph.add_edge(START, "route")
    graph.add_edge("route", "gather")
    graph.add_edge("gather", "reason")
    graph.add_edge("reason", "respond")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpointer)


def _route_of(state: AgentState) -> Route:
    if state.get("incident"):
        return "incident"
    text = state.get("text", "").strip()
    if text.startswith("/"):
        return "command"
    if FEEDBACK.match(text):
        return "feedback"
    return "question"


def _dump(done: list[Executed]) -> list[dict[str, Any]]:
    return [{"call": d.call.model_dump(), "result": d.result.model_dump(mode="json"),
             "record": d.record.model_dump()} for d in done]


def _load(results: list[dict[str, Any]]) -> list[SkillResult]:
    return [SkillResult.model_validate(r["result"]) for r in results]


class _Nodes:
    def __init__(self, skills: SkillRegistry, llm: ClaudeBrain | None, planner: Planner
                 ) -> None:
        self.skills = skills
        self.llm = llm
        self.planner = planner

    async def route(self, state: AgentState) -> dict[str, Any]:
        return {"route": _route_of(state), "plan": None, "results": [], "answer": {}}

    async def gather(self, state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        route = state["route"]
        focus = state.get("focus") or {}
        plan: Plan | None = None
        if route == "incident":
            incident = NewIncident.model_validate(state["incident"])
            calls = incident_calls(incident)
            plan = Plan("incident", calls, focus={
                "service": incident.service, "title": incident.title,
                **({"incident": incident.incident_id} if incident.incident_id else {})})
        elif route == "command" or (route == "question" and self.llm is None):
            plan = self.planner.plan(state.get("text", ""), focus)
        if plan is None or not plan.calls:
            return {"plan": _plan_dict(plan), "results": []}
        done, seq = await execute(self.skills, runtime.context.skills, plan.calls,
                                  seq=state.get("evidence_seq", 0),
                                  progress=runtime.context.progress)
        return {"plan": _plan_dict(plan), "results": _dump(done), "evidence_seq": seq}

    async def reason(self, state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        route = state["route"]
        if route == "feedback":
            return {"answer": self._feedback(state)}
        if self.llm is not None and route in ("question", "incident"):
            try:
                return await self._claude(state, runtime.context)
            except ClaudeUnavailable as exc:
                return await self._fallback(state, runtime.context, exc.reason)
        return {"answer": compose(state, note=None)}

    async def _claude(self, state: AgentState, ctx: AgentContext) -> dict[str, Any]:
        assert self.llm is not None
        gathered = [(r["call"]["name"], SkillResult.model_validate(r["result"]))
                    for r in state.get("results", [])]
        context = "\n\n".join(
            describe(Executed(ToolCall(name=name, args={}), result, _noop_record(name)))
            for name, result in gathered) or None
        incident = state.get("incident")
        question = state.get("text") or ""
        if incident:
            question = question or ("A new incident was opened: " + fence(
                "incident", NewIncident.model_validate(incident).model_dump_json()) +
                " Explain the most likely causes with the evidence above.")
        results = list(state.get("results", []))
        seq = state.get("evidence_seq", 0)

        async def run(calls: list[ToolCall]) -> list[str]:
            nonlocal seq
            done, seq = await execute(self.skills, ctx.skills, calls, seq=seq,
                                      progress=ctx.progress)
            results.extend(_dump(done))
            return [describe(d) for d in done]

        brain = await self.llm.answer(question=question, history=state.get("turns", []),
                                      context=context, tools=self.skills.tool_definitions(),
                                      execute=run)
        answer = _answer_from(state, results, brain.text, brain.claims, "claude",
                              brain.notes)
        answer.usage = brain.usage
        return {"answer": answer.model_dump(mode="json"), "results": results,
                "evidence_seq": seq}

    async def _fallback(self, state: AgentState, ctx: AgentContext, reason: str
                        ) -> dict[str, Any]:
        note = (f"Claude was unavailable ({reason}); this answer comes from the evidence engine "
                "alone.")
        update: dict[str, Any] = {}
        if state["route"] == "question":
            plan = self.planner.plan(state.get("text", ""), state.get("focus") or {})
            done, seq = await execute(self.skills, ctx.skills, plan.calls,
                                      seq=state.get("evidence_seq", 0), progress=ctx.progress)
            update = {"plan": _plan_dict(plan), "results": _dump(done), "evidence_seq": seq}
        merged: AgentState = {**state, **update}  # type: ignore[typeddict-item]
        return {**update, "answer": compose(merged, note=note)}

    def _feedback(self, state: AgentState) -> dict[str, Any]:
        m = FEEDBACK.match(state.get("text", ""))
        assert m is not None
        claims = state.get("last_claims") or []
        number = int(m.group(2)) if m.group(2) else 1
        verdict_word = (m.group(1) or m.group(3) or "").lower()
        verdict = "confirmed" if verdict_word in POSITIVE else "rejected"
        if not claims:
            text = "There is no hypothesis in this thread yet to give feedback on."
        elif not 1 <= number <= len(claims):
            text = f"There is no hypothesis {number} here; the last answer had {len(claims)}."
        else:
            text = (f"Noted: hypothesis {number} (“{claims[number - 1]['statement']}”) "
                    f"marked {verdict}.")
        return Answer(text=text, route="feedback", brain="evidence engine"
                      ).model_dump(mode="json")

    async def respond(self, state: AgentState) -> dict[str, Any]:
        answer = Answer.model_validate(state["answer"])
        update: dict[str, Any] = {}
        if state["route"] == "feedback":
            m = FEEDBACK.match(state.get("text", ""))
            claims = state.get("last_claims") or []
            number = int(m.group(2)) if m and m.group(2) else 1
            if m and claims and 1 <= number <= len(claims):
                word = (m.group(1) or m.group(3) or "").lower()
                update["feedback"] = [{"hypothesis": number, "text": state.get("text", ""),
                                       "claim": claims[number - 1],
                                       "verdict": "confirmed" if word in POSITIVE
                                       else "rejected",
                                       "at": datetime.now(UTC).isoformat()}]
        plan = state.get("plan") or {}
        focus = {**(state.get("focus") or {}), **(plan.get("focus") or {})}
        user_text = state.get("text") or f"(new incident: {focus.get('title', '')})"
        update.update({
            "answer": answer.model_dump(mode="json"),
            "turns": [Turn(role="user", text=user_text),
                      Turn(role="assistant", text=memory_text(answer))],
            "evidence": [e.model_dump(mode="json") for e in answer.evidence],
            "focus": focus,
            "incident": None,
        })
        if answer.claims:
            update["last_claims"] = [c.model_dump(mode="json") for c in answer.claims]
        return update


def incident_calls(incident: NewIncident, *, now: datetime | None = None) -> list[ToolCall]:
    """What every new incident gets before anyone asks: an investigation that starts from its
    first alert (and its service's call graph when the alert names one), similar past
    incidents, the runbook (the alert's own `runbook_url` first), and PagerDuty's record when
    it came from PagerDuty. The investigation and the history search read the same text, and
    the runbook search the same alert, so the briefing speaks with one voice."""
    text = f"{incident.title}. {incident.summary or ''}".strip().rstrip(".") + "."
    now = now or datetime.now(UTC)
    at = incident.at or now
    # A live incident is investigated up to now (its alert has held since `at`); an old one
    # (a replay, a backfill) around its own time.
    if at <= now <= at + LIVE:
        at = now
    alert = incident.alerts[0] if incident.alerts else None
    args: dict[str, Any] = {"at": at.isoformat(), "symptom": text}
    if alert is not None:
        args["alert"] = alert
    service = incident.app_service if alert is not None else incident.service
    if service:
        args["service"] = service
    elif alert is None:
        args["service"] = incident.service
    annotations = (alert or {}).get("annotations") or {}
    calls = [ToolCall(name="hypotheses", args=args),
             ToolCall(name="similar_incidents", args={"text": text}),
             ToolCall(name="runbook_search", args={
                 "query": incident.summary or incident.title,
                 **({"service": service} if service else {}),
                 **({"alertname": incident.alertname} if incident.alertname else {}),
                 **({"runbook_url": annotations["runbook_url"]}
                    if annotations.get("runbook_url") else {})})]
    if incident.pagerduty_id:
        calls.append(ToolCall(name="pagerduty_incident",
                              args={"incident_id": incident.pagerduty_id}))
    return calls


def _plan_dict(plan: Plan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {"intent": plan.intent, "calls": [c.model_dump() for c in plan.calls],
            "reply": plan.reply, "focus": plan.focus, "matched_by": plan.matched_by}


def _noop_record(name: str) -> ToolRecord:
    return ToolRecord(name=name, args={}, ok=True, elapsed_ms=0.0, summary="")


def compose(state: AgentState, *, note: str | None) -> dict[str, Any]:
    """The evidence engine's answer: what the planner's calls returned, in order, with their
    hypotheses and evidence; or the planner's reply when it made no call."""
    plan = state.get("plan") or {}
    results = state.get("results", [])
    # A result with hypotheses contributes its verdict line: the hypotheses themselves are
    # the answer's claims, shown with their evidence.
    parts = [r.summary.split("\n", 1)[0] if r.claims else r.summary for r in _load(results)]
    if plan.get("reply") and not parts:
        parts = [plan["reply"]]
    if not parts:
        parts = ["Nothing to report."]
    claims = [c for r in _load(results) for c in r.claims]
    return _answer_from(state, results, "\n\n".join(parts), claims, "evidence engine",
                        [note] if note else []).model_dump(mode="json")


def _answer_from(state: AgentState, results: list[dict[str, Any]], text: str,
                 claims: list[Claim], brain: Literal["claude", "evidence engine"],
                 notes: list[str]) -> Answer:
    loaded = _load(results)
    evidence = [e for r in loaded for e in r.evidence]
    known = {e.id for e in evidence} | {e["id"] for e in state.get("evidence", [])}
    kept, dropped = [], 0
    for claim in claims:
        cited = [i for i in claim.evidence_ids if i in known]
        if cited:
            kept.append(claim.model_copy(update={"evidence_ids": cited}))
        else:
            dropped += 1
    notes = list(notes)
    if dropped:
        notes.append(f"{dropped} hypothesis(es) dropped: they cited no evidence a tool "
                     "returned.")
    return Answer(text=text, route=state["route"], brain=brain,
                  claims=kept, evidence=evidence,
                  images=[p for r in loaded for p in r.images], notes=notes,
                  tools=[ToolRecord.model_validate(r["record"]) for r in results])


def memory_text(answer: Answer) -> str:
    """What the thread remembers of an answer (and replays to the model next turn): its text,
    and its hypotheses with the evidence they cite."""
    lines = [answer.text]
    for i, c in enumerate(answer.claims, start=1):
        lines.append(f"Hypothesis {i}: {c.statement} [{', '.join(c.evidence_ids)}]")
    return "\n".join(lines)


def evidence_of(state: AgentState) -> list[Evidence]:
    return [Evidence.model_validate(e) for e in state.get("evidence", [])]
