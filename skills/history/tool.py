"""Similar past incidents as a tool: the org's resolved incidents closest to a description,
each with its confirmed root cause and what fixed it."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from skills.history.similar import similar_incidents
from skills.types import SkillContext, SkillResult


class SimilarIncidents:
    name: ClassVar[str] = "similar_incidents"
    description: ClassVar[str] = (
        "Search the team's resolved incidents for ones like a description (an alert's summary, "
        "symptoms, a service). Returns each similar incident's title, similarity, confirmed root "
        "cause and what fixed it; says so when none is similar enough.")

    class Input(BaseModel):
        text: str = Field(min_length=1, max_length=10_000,
                          description="What is happening, e.g. the alert summary.")
        k: int = Field(default=3, ge=1, le=10)

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult:
        assert isinstance(args, SimilarIncidents.Input)
        return await similar_incidents(ctx.client("history"), org_id=ctx.org_id,
                                       text=args.text, k=args.k)
