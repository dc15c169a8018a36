"""The agent without a model: the offline planner routes questions and commands to skills
against a live Prometheus, answers carry their evidence, and the thread's memory (the
checkpointer, on both databases) carries follow-ups — across processes, per thread."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.agent.calls import ProgressEvent
from bot.agent.runtime import Agent, open_agent, prune_charts
from bot.agent.state import NewIncident
from bot.settings import Settings
from tests.fakes.pagerduty_api import running_pagerduty

pytestmark = pytest.mark.slow


async def test_metric_now_is_the_measured_value_with_its_query(offline_agent: Agent) -> None:
    events: list[ProgressEvent] = []
    answer = await offline_agent.turn("t1", "What's the error rate of checkout right now?",
                                      progress=events.append)
    assert answer.brain == "evidence engine" and answer.route == "question"
    assert [t.name for t in answer.tools] == ["prometheus_query"]
    [ev] = answer.evidence
    assert 'service="checkout"' in (ev.query or "") and ev.source == "prometheus"
    assert ev.values["value"] == pytest.approx(0.10, abs=0.02)  # the exporter's 10 %
    assert "10" in answer.text and "%" in answer.text
    assert [(e.kind, e.tool) for e in events] == [("start", "prometheus_query"),
                                                   ("end", "prometheus_query")]
    assert events[1].ok is True


async def test_follow_up_keeps_context_across_processes(agent_settings: Settings) -> None:
    """The checkpointer is the memory: a second agent (a restarted bot) on the same database
    continues the thread; another thread knows nothing of it."""
    async with open_agent(agent_settings, indexes=False) as agent:
        first = await agent.turn("slack:C1:1.0", "error rate of checkout over the last 10 min")
        assert [t.name for t in first.tools] == ["prometheus_range"]
        [chart] = first.images
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    async with open_agent(agent_settings, indexes=False) as agent:
        follow = await agent.turn("slack:C1:1.0", "and for payments?")
        [call] = follow.tools
        assert call.name == "prometheus_range" and 'service="payments"' in call.args["query"]
        assert call.args["last"] == "10m"  # the period came from the earlier turn
        assert follow.evidence[0].values["max"] == pytest.approx(0.0, abs=1e-9)
        other = await agent.turn("slack:C1:2.0", "and for payments?")
        assert other.tools == [] and "ANTHROPIC_API_KEY" in other.text


async def test_firing_alerts_and_what_it_cannot_answer(offline_agent: Agent) -> None:
    answer = await offline_agent.turn("t", "what's firing?")
    assert "CheckoutHighErrorRate" in answer.text and "PaymentsQueueNote" in answer.text
    assert {e.labels.get("alertname") for e in answer.evidence} == {
        "CheckoutHighErrorRate", "PaymentsQueueNote"}
    joke = await offline_agent.turn("t", "write me a haiku about kubernetes")
    assert joke.tools == []
    assert "without the language model" in joke.text and "ANTHROPIC_API_KEY" in joke.text


async def test_commands_and_a_failing_query(offline_agent: Agent) -> None:
    # [5m]: the 1 h backfill fills the window (a [1m] window may span the gap between the
    # backfill and the first live scrape, which rate() counts as no traffic).
    ok = await offline_agent.turn("t", "/query sum by (service) (rate(http_requests_total[5m]))")
    assert ok.route == "command"
    by_service = {e.labels["service"]: e.values["value"] for e in ok.evidence}
    assert by_service["checkout"] == pytest.approx(50, rel=0.1)
    assert by_service["payments"] == pytest.approx(20, rel=0.1)
    bad = await offline_agent.turn("t", "/query sum(rate(http_requests_total[1m])")
    [call] = bad.tools
    assert not call.ok and "sum(rate(http_requests_total[1m])" in bad.text
    assert "parse error" in bad.text or "bad_data" in bad.text
    services = await offline_agent.turn("t", "/services")
    assert "checkout" in services.text and "payments" in services.text
    help_ = await offline_agent.turn("t", "/help")
    assert "/firing" in help_.text and help_.tools == []


async def test_new_incident_gathers_in_parallel_and_says_what_is_missing(
        offline_agent: Agent) -> None:
    answer = await offline_agent.turn("incident:1", "", incident=NewIncident(
        service="checkout", title="CheckoutHighErrorRate",
        summary="Checkout 5xx ratio above 5%"))
    assert answer.route == "incident"
    assert [t.name for t in answer.tools] == ["hypotheses", "similar_incidents",
                                              "runbook_search"]
    hyp = answer.tools[0]
    assert hyp.ok, hyp.error
    # Without the indexes (turned off here) the answer says so instead of inventing history.
    assert not answer.tools[1].ok and "not available" in answer.text
    for claim in answer.claims:
        assert claim.evidence_ids and all(i.startswith("ev-") for i in claim.evidence_ids)


@pytest.fixture
async def pd_agent(agent_settings: Settings) -> AsyncIterator[tuple[Agent, object]]:
    with running_pagerduty(token="pd-token") as pd:
        pd.add_incident("Checkout is returning 500s", incident_id="PCHK123",
                        assignees=("Ada Lovelace",))
        pd.add_log_entry("PCHK123", "trigger_log_entry", "Triggered through the API")
        pd.add_log_entry("PCHK123", "acknowledge_log_entry", "Acknowledged by Ada Lovelace",
                         agent="Ada Lovelace")
        pd.add_oncall("Ada Lovelace", "ada@example.com", "Checkout on-call", 1)
        pd.add_oncall("Grace Hopper", "grace@example.com", "Checkout on-call", 2)
        settings = agent_settings.model_copy(update={"pagerduty_api_token": "pd-token",
                                                     "pagerduty_api_url": pd.base_url})
        async with open_agent(settings, indexes=False) as agent:
            yield agent, pd


async def test_pagerduty_details_and_who_is_on_call(pd_agent: tuple[Agent, object]) -> None:
    agent, _ = pd_agent
    oncall = await agent.turn("t", "who's on call?")
    assert "Ada Lovelace" in oncall.text and "Grace Hopper" in oncall.text
    assert oncall.text.index("Ada Lovelace") < oncall.text.index("Grace Hopper")  # by level
    details = await agent.turn("t", "details of PCHK123")
    assert "Checkout is returning 500s" in details.text
    assert "Acknowledged by Ada Lovelace" in details.text
    assert all(e.source == "pagerduty" for e in details.evidence)


def test_old_charts_are_pruned(tmp_path: Path) -> None:
    old, new = tmp_path / "range-old.png", tmp_path / "range-new.png"
    old.write_bytes(b"png")
    new.write_bytes(b"png")
    week_ago = time.time() - 8 * 86400
    os.utime(old, (week_ago, week_ago))
    assert prune_charts(tmp_path) == 1
    assert not old.exists() and new.exists()
