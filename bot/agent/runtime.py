"""The agent as a process uses it: the graph with its clients (Prometheus, PagerDuty, runbook
and history indexes, the database), its checkpointer and, when `ANTHROPIC_API_KEY` is set,
Claude — opened from settings, closed together. `Agent.turn` is what `ask`, `chat` and the chat
adapters call."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from bot.agent.calls import Progress
from bot.agent.claude import ClaudeBrain, Limits
from bot.agent.graph import AgentContext, build_graph
from bot.agent.memory import open_checkpointer
from bot.agent.planner import Planner
from bot.agent.state import Answer, NewIncident
from bot.indexes import Indexes, try_open_indexes
from bot.metrics import Metrics
from bot.settings import Settings
from bot.startup import prepare_database
from knowledge.db import Database
from knowledge.orgs import ensure_org
from skills.pagerduty.client import PagerDutyClient, PagerDutyError
from skills.prometheus.client import PrometheusClient, PrometheusError
from skills.registry import SkillRegistry, default_registry
from skills.types import SkillContext, SkillResult

log = logging.getLogger(__name__)
CHARTS_KEPT_SECONDS = 7 * 86400  # charts are posted when made; a week covers any re-read


def prune_charts(out_dir: Path, *, now: float | None = None) -> int:
    """Delete chart PNGs older than a week (every range query draws one); returns how many."""
    if not out_dir.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - CHARTS_KEPT_SECONDS
    removed = 0
    for png in out_dir.glob("*.png"):
        with contextlib.suppress(FileNotFoundError):  # another replica pruned it first
            if png.stat().st_mtime < cutoff:
                png.unlink()
                removed += 1
    return removed


@dataclass
class Agent:
    graph: CompiledStateGraph[Any, Any, Any, Any]
    skills: SkillContext
    brain: str  # "claude (<model>)" or "evidence engine"
    planner: Planner

    registry: SkillRegistry = field(default_factory=default_registry)

    async def knows(self, thread_id: str) -> bool:
        """Whether the copilot has taken part in this thread (its memory has it)."""
        saver = self.graph.checkpointer
        if not isinstance(saver, BaseCheckpointSaver):
            return False
        return await saver.aget_tuple({"configurable": {"thread_id": thread_id}}) is not None

    async def last_feedback(self, thread_id: str) -> dict[str, Any] | None:
        """The verdict last typed in this thread ("hypothesis 2 is confirmed"): `hypothesis`,
        `verdict` and the `claim` it was about; None if there is none."""
        state = await self.graph.aget_state({"configurable": {"thread_id": thread_id}})
        given = (state.values.get("feedback") or [None])[-1]
        return dict(given) if given else None

    async def use(self, skill: str, **args: Any) -> SkillResult:
        """Call a skill directly (not through a turn): what the chat needs outside a
        conversation, such as who is on call when a channel is opened."""
        return await self.registry.call(self.skills, skill, args)

    async def turn(self, thread_id: str, text: str, *, progress: Progress | None = None,
                   incident: NewIncident | None = None) -> Answer:
        """One turn of the thread `thread_id` (e.g. `slack:C123:1700000000.000100`)."""
        state = await self.graph.ainvoke(
            {"text": text, "incident": incident.model_dump(mode="json") if incident else None},
            config={"configurable": {"thread_id": thread_id}},
            context=AgentContext(skills=self.skills, progress=progress))
        return Answer.model_validate(state["answer"])


async def known_services(prom: PrometheusClient | None) -> list[str]:
    """The `service` label's values, so the planner recognises service names in questions."""
    if prom is None:
        return []
    try:
        return await prom.label_values("service")
    except PrometheusError as exc:
        log.warning("could not list services from Prometheus: %s", exc)
        return []


def prometheus_errors(metrics: Metrics | None) -> Callable[[PrometheusError], None] | None:
    """Counts Prometheus' failed calls, except a query it refused as malformed (`bad_data`):
    that is the asker's mistake, which the model corrects from the error, not Prometheus
    failing."""
    if metrics is None:
        return None

    def failed(exc: PrometheusError) -> None:
        if exc.error_type != "bad_data":
            metrics.upstream_failed("prometheus")

    return failed


def pagerduty_errors(metrics: Metrics | None) -> Callable[[PagerDutyError], None] | None:
    """Counts PagerDuty's failed calls, except 400 and 404 (a malformed request, an incident id
    that does not exist): the asker's mistakes, not PagerDuty failing."""
    if metrics is None:
        return None

    def failed(exc: PagerDutyError) -> None:
        if exc.status not in (400, 404):
            metrics.upstream_failed("pagerduty")

    return failed


@asynccontextmanager
async def open_agent(settings: Settings, *, db: Database | None = None,
                     registry: SkillRegistry | None = None, indexes: bool = True,
                     opened: Indexes | None = None,
                     metrics: Metrics | None = None) -> AsyncIterator[Agent]:
    """`indexes=False` leaves out runbooks and history (and so never loads the embedding
    model); `opened` shares the process's indexes (one model per process), else they are
    opened here. With `metrics`, failed calls to Prometheus, PagerDuty, Chroma and Anthropic are
    counted, and the model's request times and tokens measured."""
    async with AsyncExitStack() as stack:
        if db is None:
            db = await prepare_database(settings)
            stack.push_async_callback(db.dispose)
        async with db.session() as session, session.begin():
            org = await ensure_org(session, slug=settings.default_org, name=settings.default_org)
        assert org.id is not None
        clients: dict[str, Any] = {"db": db}
        if settings.prometheus_url:
            clients["prometheus"] = await stack.enter_async_context(PrometheusClient(
                settings.prometheus_url, timeout=settings.prometheus_timeout_seconds,
                on_error=prometheus_errors(metrics),
                external_url=settings.prometheus_external_url))
        if settings.pagerduty_api_token:
            clients["pagerduty"] = await stack.enter_async_context(PagerDutyClient(
                settings.pagerduty_api_token, base_url=settings.pagerduty_api_url,
                on_error=pagerduty_errors(metrics)))
        embedder = None
        idx = (opened or try_open_indexes(settings, metrics=metrics)) if indexes else None
        if idx is not None:
            clients["runbooks"] = idx.runbooks
            clients["history"] = idx.history if settings.history else None
            embedder = idx.embedder
        llm = None
        if settings.anthropic_api_key:
            llm = ClaudeBrain.from_settings(
                api_key=settings.anthropic_api_key, base_url=settings.anthropic_base_url,
                model=settings.anthropic_model, max_retries=settings.anthropic_max_retries,
                timeout=settings.anthropic_timeout_seconds,
                limits=Limits(max_rounds=settings.agent_max_rounds,
                              max_tokens=settings.agent_max_tokens,
                              token_budget=settings.agent_token_budget,
                              wall_seconds=settings.agent_wall_seconds),
                metrics=metrics)
            stack.push_async_callback(llm.aclose)
        planner = Planner(services=await known_services(clients.get("prometheus")),
                          embedder=embedder)
        checkpointer = await stack.enter_async_context(open_checkpointer(settings))
        registry = registry or default_registry()
        graph = build_graph(registry, llm, checkpointer, planner=planner)
        out_dir = settings.data_dir / "charts"
        prune_charts(out_dir)
        yield Agent(graph=graph, skills=SkillContext(clients=clients, org_id=org.id,
                                                     out_dir=out_dir),
                    brain=f"claude ({settings.anthropic_model})" if llm else "evidence engine",
                    planner=planner, registry=registry)
