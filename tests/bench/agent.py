"""Agent speed: the graph's own overhead per turn, and the offline planner's answer times.

1. A scripted 3-round tool-using conversation against the fake Anthropic server (round 1: an
   instant query; round 2: firing alerts and a 30-minute range query with its chart, in
   parallel; round 3: the answer), `--turns` times, on a live Prometheus, with the SQLite
   checkpointer (the embedded default) and PostgreSQL's when reachable. Per turn it reports the
   wall time, the time inside model calls (client side), the time inside tool calls, and the
   graph's own overhead: wall − model − tools (routing, state, checkpoints, prompt building,
   redaction, evidence checking).
2. Twenty typical questions without a model: the planner's decision time alone, and the full
   answer time (plan, skills against the live Prometheus, the bundled runbooks, a fake
   PagerDuty, and the checkpointer).

    .venv/bin/python tests/bench/agent.py [--turns 50]

The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bot.agent.graph as graph_module
from bot.agent.claude import ClaudeBrain
from bot.agent.runtime import open_agent
from bot.settings import Settings
from tests.bot.conftest import RULES, SERVICES
from tests.bot.test_planner import TYPICAL
from tests.conftest import PG_BASE, _pg_reachable
from tests.fakes.anthropic_server import reply, running_anthropic, tool_use
from tests.fakes.live_prometheus import Service, live_prometheus
from tests.fakes.pagerduty_api import running_pagerduty

ROOT = Path(__file__).resolve().parents[2]
# The typical questions also name these.
MORE_SERVICES = (Service("search-api", rps=30, latency_s=0.08), Service("search", rps=10))
QUERY = ('(sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m])) or vector(0)) '
         '/ sum(rate(http_requests_total{service="checkout"}[5m]))')


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Clock:
    """Wall time spent in model calls and in tool executions (parallel calls count once)."""

    def __init__(self) -> None:
        self.model = 0.0
        self.tools = 0.0

    def install(self) -> None:
        create = ClaudeBrain._create
        execute = graph_module.execute

        async def timed_create(brain: ClaudeBrain, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return await create(brain, **kw)
            finally:
                self.model += time.perf_counter() - started

        async def timed_execute(*args: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return await execute(*args, **kw)
            finally:
                self.tools += time.perf_counter() - started

        ClaudeBrain._create = timed_create  # type: ignore[method-assign]
        graph_module.execute = timed_execute  # type: ignore[assignment]


def script() -> list[Any]:
    return [tool_use("prometheus_query", {"query": QUERY}),
            reply("Checking alerts and the trend.", tool_use("firing_alerts", {}),
                  tool_use("prometheus_range", {"query": QUERY, "last": "30m"})),
            tool_use("submit_answer", {"answer": "Checkout fails ~10% [ev-1].",
                                       "hypotheses": [{"statement": "checkout errors",
                                                       "evidence_ids": ["ev-1"]}]})]


async def conversation(settings: Settings, turns: int, clock: Clock) -> dict[str, float]:
    walls, models, tools, overheads = [], [], [], []
    with running_anthropic() as fake:
        claude = settings.model_copy(update={"anthropic_api_key": fake.api_key,
                                             "anthropic_base_url": fake.base_url})
        async with open_agent(claude, indexes=False) as agent:
            for i in range(turns + 3):  # 3 warm-up turns
                fake.push(*script())
                clock.model = clock.tools = 0.0
                started = time.perf_counter()
                answer = await agent.turn(f"bench-{i % 5}", "How bad are checkout's errors?")
                wall = time.perf_counter() - started
                assert answer.brain == "claude", answer.notes
                if i >= 3:
                    walls.append(wall * 1000)
                    models.append(clock.model * 1000)
                    tools.append(clock.tools * 1000)
                    overheads.append((wall - clock.model - clock.tools) * 1000)
    return {"wall_p50_ms": statistics.median(walls), "model_p50_ms": statistics.median(models),
            "tools_p50_ms": statistics.median(tools),
            "overhead_p50_ms": statistics.median(overheads),
            "overhead_p95_ms": pct(overheads, 0.95)}


async def questions(settings: Settings) -> list[dict[str, Any]]:
    out = []
    with running_pagerduty(token="bench") as pd:
        pd.add_incident("Checkout is returning 500s", incident_id="PT4KHLK")
        pd.add_oncall("Ada Lovelace", "ada@example.com", "Checkout on-call", 1)
        offline = settings.model_copy(update={"pagerduty_api_token": "bench",
                                              "pagerduty_api_url": pd.base_url,
                                              "anthropic_api_key": None})
        async with open_agent(offline) as agent:
            runbooks = agent.skills.clients["runbooks"]
            await asyncio.to_thread(runbooks.ingest, ROOT / "bot" / "demo" / "runbooks")
            planner = agent.planner
            await agent.turn("warm", "runbook for disk full")  # loads the model once
            for question, tool, _ in TYPICAL:
                started = time.perf_counter()
                plan = planner.plan(question)
                planned = time.perf_counter() - started
                started = time.perf_counter()
                answer = await agent.turn(f"q-{len(out)}", question)
                wall = time.perf_counter() - started
                out.append({"question": question, "tool": tool,
                            "called": [t.name for t in answer.tools],
                            "plan_ms": round(planned * 1000, 3),
                            "answer_ms": round(wall * 1000, 1),
                            "ok": all(t.ok for t in answer.tools)})
                assert [c.name for c in plan.calls] == [tool], (question, plan)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=50)
    args = parser.parse_args()
    clock = Clock()
    clock.install()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, live_prometheus(
            Path(tmp) / "prom", (*SERVICES, *MORE_SERVICES), rules=RULES,
            wait_for_alerts=2) as prom:
        base = Settings(data_dir=Path(tmp) / "data", prometheus_url=prom, history=True,
                        worker=False)
        results["sqlite"] = await conversation(base, args.turns, clock)
        print(f"3-round turn, SQLite checkpointer: {results['sqlite']}")
        if _pg_reachable() is None:
            pg = base.model_copy(update={"database_url": PG_BASE})
            results["postgres"] = await conversation(pg, args.turns, clock)
            print(f"3-round turn, PostgreSQL checkpointer: {results['postgres']}")
        answered = await questions(base.model_copy(update={"data_dir": Path(tmp) / "q"}))
        for row in answered:
            print(f"{row['answer_ms']:8.1f} ms  plan {row['plan_ms']:6.3f} ms  "
                  f"{'ok ' if row['ok'] else 'err'} {row['tool']:20} {row['question']}")
        times = [r["answer_ms"] for r in answered]
        plans = [r["plan_ms"] for r in answered]
        results["offline"] = {"questions": len(answered),
                              "answer_p50_ms": statistics.median(times),
                              "answer_p95_ms": pct(times, 0.95), "answer_max_ms": max(times),
                              "plan_p50_ms": statistics.median(plans),
                              "plan_max_ms": max(plans)}
        print(f"offline answers: {results['offline']}")
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
