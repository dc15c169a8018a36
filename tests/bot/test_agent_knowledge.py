"""The agent's knowledge skills end to end, offline: the runbook for a problem, or a plain "none
found"; and similar past incidents with their confirmed causes — from real indexes (chromadb and
the embedding model)."""

from __future__ import annotations

from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver

from bot.agent.graph import AgentContext, build_graph
from bot.agent.planner import Planner
from bot.agent.state import Answer
from knowledge.embedding import Embedder
from skills.registry import default_registry
from skills.types import SkillContext
from tests.history_fixtures import history_index, past
from tests.runbook_fixtures import runbook_index, write_runbooks


async def _ask(graph: object, ctx: SkillContext, text: str) -> Answer:
    state = await graph.ainvoke(  # type: ignore[attr-defined]
        {"text": text}, config={"configurable": {"thread_id": "k"}},
        context=AgentContext(skills=ctx))
    return Answer.model_validate(state["answer"])


async def test_runbooks_and_similar_incidents(tmp_path: Path, embedder: Embedder) -> None:
    history = history_index(tmp_path / "h", embedder)
    history.index_many([past(1, "pool"), past(2, "deploy"), past(3, "memory")])
    with runbook_index(tmp_path / "r", embedder) as runbooks:
        runbooks.ingest(write_runbooks(tmp_path / "runbooks"))
        ctx = SkillContext(clients={"runbooks": runbooks, "history": history}, org_id=1)
        graph = build_graph(default_registry(), None, InMemorySaver(),
                            planner=Planner(services=["checkout", "search"], embedder=embedder))

        found = await _ask(graph, ctx, "runbook for checkout returning lots of 5xx errors")
        assert found.tools[0].name == "runbook_search" and found.tools[0].ok
        assert found.evidence[0].labels["path"] == "HighErrorRate.md"
        assert found.text == "Runbook: HighErrorRate — HighErrorRate.md § Meaning"

        none = await _ask(graph, ctx, "runbook for the office coffee machine descaling")
        assert none.evidence == [] and none.text.startswith("No runbook found")

        similar = await _ask(graph, ctx, "have we seen search pods getting OOM killed before?")
        assert similar.tools[0].name == "similar_incidents"
        assert similar.evidence[0].labels["incident"] == "INC-3"
        assert "memory leak" in similar.text
