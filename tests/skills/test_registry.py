"""The skill registry as a model (or the planner) uses it: tool definitions generated from the
skills' pydantic schemas, argument validation and every failure returned as a result that says
what went wrong; and the incident-record tools (timeline, post-mortem) on both databases."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from knowledge.db import Database
from skills.registry import SkillRegistry, default_registry
from skills.types import SkillContext, SkillResult
from tests.skills.test_postmortem import build


def test_tool_definitions_come_from_the_input_models() -> None:
    tools = default_registry().tool_definitions()
    names = [t["name"] for t in tools]
    assert len(names) == len(set(names)) == 11
    for tool in tools:
        assert tool["input_schema"]["type"] == "object"
        assert len(tool["description"]) > 60  # written for the model, not a stub
    prom = next(t for t in tools if t["name"] == "prometheus_query")
    assert prom["input_schema"]["required"] == ["query"]


async def test_bad_arguments_and_missing_clients_come_back_as_results() -> None:
    registry, ctx = default_registry(), SkillContext()
    bad = await registry.call(ctx, "prometheus_range", {"query": "up", "last": "2 fortnights"})
    assert not bad.ok and "last" in bad.summary and "not a duration" in bad.summary
    missing = await registry.call(ctx, "pagerduty_oncall", {})
    assert not missing.ok and "PAGERDUTY_API_TOKEN" in missing.summary
    unknown = await registry.call(ctx, "restart_pod", {"name": "x"})
    assert not unknown.ok and "no skill named 'restart_pod'" in unknown.summary


class _Broken:
    name: ClassVar[str] = "broken"
    description: ClassVar[str] = "Always fails."

    class Input(BaseModel):
        pass

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult:
        raise RuntimeError("upstream exploded")


async def test_a_failing_skill_never_raises_into_the_agent() -> None:
    result = await SkillRegistry([_Broken()]).call(SkillContext(), "broken", {})
    assert not result.ok and "RuntimeError: upstream exploded" in result.summary


async def test_timeline_and_postmortem_tools(database: Database) -> None:
    built = await build(database)
    registry = default_registry()
    ctx = SkillContext(clients={"db": database}, org_id=built.org_id)
    timeline = await registry.call(ctx, "incident_timeline",
                                   {"incident": f"INC-{built.incident_id}"})
    assert timeline.ok, timeline.error
    assert "acknowledged after 4m 00s" in timeline.summary
    assert [e.source for e in timeline.evidence] == ["timeline"] * len(timeline.evidence)
    assert any("deploy" in e.summary for e in timeline.evidence)
    latest = await registry.call(ctx, "incident_timeline", {})  # the newest incident
    assert latest.data["incident_id"] == built.incident_id
    draft = await registry.call(ctx, "postmortem", {"incident": built.incident_id})
    assert draft.ok and draft.data["markdown"].startswith("# ")
    assert "v2.14.0" in draft.summary
    other_org = SkillContext(clients={"db": database}, org_id=built.org_id + 1000)
    hidden = await registry.call(other_org, "incident_timeline",
                                 {"incident": built.incident_id})
    assert not hidden.ok and "no incident" in hidden.summary
    bad_ref: dict[str, Any] = {"incident": "yesterday's"}
    invalid = await registry.call(ctx, "postmortem", bad_ref)
    assert not invalid.ok and "INC-12" in invalid.summary
