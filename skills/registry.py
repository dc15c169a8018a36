"""The skill registry: every skill the copilot can call, by name, with its JSON schema for a
model's tool definitions, and one `call` that validates arguments and turns every failure into
a result that says what went wrong — a tool call never raises into the agent.

All skills are read-only: they query Prometheus, PagerDuty, the runbook and incident indexes
and the incident record; none changes anything.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import ValidationError

from skills.history.tool import SimilarIncidents
from skills.hypotheses_tool import Hypotheses
from skills.pagerduty.tools import PagerDutyIncident, PagerDutyOncall
from skills.postmortem import Postmortem
from skills.prometheus.client import PrometheusError
from skills.prometheus.tools import FiringAlerts, PromDiscover, PromQuery, PromRange
from skills.runbooks.tool import RunbookSearch
from skills.timeline import IncidentTimeline
from skills.types import NotConfigured, Skill, SkillContext, SkillResult


class SkillRegistry:
    def __init__(self, skills: Iterable[Skill]) -> None:
        self._skills: dict[str, Skill] = {}
        for skill in skills:
            if skill.name in self._skills:
                raise ValueError(f"two skills are named {skill.name!r}")
            self._skills[skill.name] = skill

    def __iter__(self) -> Iterator[Skill]:
        return iter(self._skills.values())

    def __contains__(self, name: object) -> bool:
        return name in self._skills

    @property
    def names(self) -> list[str]:
        return list(self._skills)

    def get(self, name: str) -> Skill:
        if name not in self._skills:
            raise KeyError(f"no skill named {name!r}; known: {', '.join(self._skills)}")
        return self._skills[name]

    def tool_definitions(self) -> list[dict[str, Any]]:
        """Anthropic Messages API tool definitions, generated from each skill's pydantic input
        model (the same schema validates the model's arguments in `call`)."""
        return [{"name": s.name, "description": s.description,
                 "input_schema": s.Input.model_json_schema()} for s in self]

    async def call(self, ctx: SkillContext, name: str, args: dict[str, Any]) -> SkillResult:
        started = time.perf_counter()
        try:
            skill = self.get(name)
        except KeyError as exc:
            return SkillResult(summary=str(exc.args[0]), error=str(exc.args[0]))
        try:
            parsed = skill.Input.model_validate(args)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}"
                                 for e in exc.errors())
            return SkillResult(summary=f"{name}: invalid arguments ({problems}).",
                               error=problems, data={"args": args})
        try:
            result = await skill.run(ctx, parsed)
        except NotConfigured as exc:  # a setup problem: for the operator, not the channel
            result = SkillResult(summary=f"{name} is not available here: {exc}.",
                                 error=str(exc), data={"unavailable": True})
        except PrometheusError as exc:
            result = SkillResult(summary=f"{name} failed: {exc}", error=str(exc))
        except Exception as exc:  # a skill bug or an upstream failure: report, don't crash
            error = f"{type(exc).__name__}: {exc}"
            result = SkillResult(summary=f"{name} failed: {error}", error=error)
        result.data.setdefault("elapsed_ms", round((time.perf_counter() - started) * 1000, 1))
        return result


def default_skills() -> list[Skill]:
    return [PromQuery(), PromRange(), PromDiscover(), FiringAlerts(), PagerDutyIncident(),
            PagerDutyOncall(), RunbookSearch(), SimilarIncidents(), Hypotheses(),
            IncidentTimeline(), Postmortem()]


def default_registry() -> SkillRegistry:
    return SkillRegistry(default_skills())
