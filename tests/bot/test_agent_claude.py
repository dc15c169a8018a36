"""The agent with Claude, against a local server that speaks the Anthropic Messages API (the
real SDK reaches it through ANTHROPIC_BASE_URL) and the live Prometheus: the tool loop, prompt
caching, caps, evidence checking, thread memory, redaction, prompt injection, and the fallback to
the evidence engine when the model is down."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bot.agent.calls import ProgressEvent
from bot.agent.runtime import Agent, open_agent
from bot.agent.state import NewIncident
from bot.settings import Settings
from tests.bot.conftest import INJECTION, SECRET
from tests.fakes.anthropic_server import (
    FakeAnthropic,
    delay,
    overloaded,
    rate_limited,
    reply,
    running_anthropic,
    text,
    tool_use,
)

pytestmark = pytest.mark.slow

ERROR_RATIO = ('(sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m])) or '
               'vector(0)) / sum(rate(http_requests_total{service="checkout"}[5m]))')


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with running_anthropic() as server:
        yield server


@pytest.fixture
def claude_settings(agent_settings: Settings, fake: FakeAnthropic) -> Settings:
    return agent_settings.model_copy(update={
        "anthropic_api_key": fake.api_key, "anthropic_base_url": fake.base_url,
        "anthropic_max_retries": 1})


@pytest.fixture
async def agent(claude_settings: Settings) -> AsyncIterator[Agent]:
    async with open_agent(claude_settings, indexes=False) as a:
        yield a


def tool_results(body: dict[str, Any]) -> str:
    """The text of the tool results in the request's last message."""
    last = body["messages"][-1]["content"]
    return "\n".join(b["content"] for b in last if isinstance(b, dict)
                     and b.get("type") == "tool_result")


def ev_ids(text_: str) -> list[str]:
    return re.findall(r"\[(ev-\d+)\]", text_)


def submit(answer: str, *hypotheses: dict[str, Any]) -> Any:
    return tool_use("submit_answer", {"answer": answer, "hypotheses": list(hypotheses)})


async def test_three_round_tool_conversation(agent: Agent, fake: FakeAnthropic) -> None:
    seen: dict[str, Any] = {}

    def second(body: dict[str, Any]) -> Any:
        seen["round1"] = tool_results(body)
        return reply("Checking alerts and the trend.", tool_use("firing_alerts", {}),
                     tool_use("prometheus_range", {"query": ERROR_RATIO, "last": "30m"}))

    def third(body: dict[str, Any]) -> Any:
        seen["round2"] = tool_results(body)
        first_id = ev_ids(seen["round1"])[0]
        return submit(f"Checkout's error ratio is about 10% [{first_id}].",
                      {"statement": "Checkout itself is failing 10% of requests",
                       "confidence": 0.7, "evidence_ids": [first_id]},
                      {"statement": "A bad deploy", "confidence": 0.2,
                       "evidence_ids": ["ev-999"]})

    fake.push(tool_use("prometheus_query", {"query": ERROR_RATIO}), second, third)
    events: list[ProgressEvent] = []
    answer = await agent.turn("slack:C9:1.1", "How bad are checkout's errors?",
                              progress=events.append)
    fake.assert_script_done()

    assert answer.brain == "claude" and "10%" in answer.text
    # Round 1's result reached the model with its evidence id and the measured number.
    assert "ev-1" in seen["round1"] and "query `" + ERROR_RATIO + "`" in seen["round1"]
    assert re.search(r"value=0\.(09|1)\d*", seen["round1"])
    # Both tools of round 2 ran (in parallel) and came back in one message.
    assert "CheckoutHighErrorRate" in seen["round2"] and "max=" in seen["round2"]
    assert [(e.kind, e.tool) for e in events if e.kind == "start"] == [
        ("start", "prometheus_query"), ("start", "firing_alerts"), ("start", "prometheus_range")]
    assert [e.kind for e in events[2:]] == ["start", "start", "end", "end"]  # concurrent
    assert all(e.ok for e in events if e.kind == "end")
    # The hypothesis citing nothing a tool returned is dropped, and the answer says so.
    assert [c.statement for c in answer.claims] == ["Checkout itself is failing 10% of requests"]
    assert any("dropped" in n for n in answer.notes)
    assert len(answer.images) == 1 and answer.images[0].read_bytes()[:4] == b"\x89PNG"
    # Prompt caching: the system prompt and the tool definitions carry cache_control, and
    # later rounds read the cached prefix.
    first = fake.requests[0].body
    assert first["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert first["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert {t["name"] for t in first["tools"]} >= {"prometheus_query", "prometheus_range",
                                                   "firing_alerts", "pagerduty_oncall",
                                                   "runbook_search", "hypotheses"}
    assert first["model"] == "claude-sonnet-5-5"
    assert answer.usage["cache_read_input_tokens"] > 0


async def test_follow_up_question_carries_the_earlier_turn(agent: Agent,
                                                           fake: FakeAnthropic) -> None:
    fake.push(tool_use("prometheus_query", {"query": ERROR_RATIO}),
              lambda body: submit(f"About 10% [{ev_ids(tool_results(body))[0]}]."))
    await agent.turn("teams:conv-1", "What's checkout's error ratio?")

    def follow(body: dict[str, Any]) -> Any:
        history = json.dumps(body["messages"])
        assert "What's checkout's error ratio?" in history and "About 10%" in history
        return text("It was about 10% when you asked a minute ago.")

    fake.push(follow)
    answer = await agent.turn("teams:conv-1", "Is that worse than before?")
    fake.assert_script_done()
    assert answer.text.startswith("It was about 10%")
    assert len(fake.requests[-1].body["messages"]) == 3  # user, assistant, user


async def test_a_planted_secret_never_reaches_the_model(agent: Agent,
                                                        fake: FakeAnthropic) -> None:
    incident = NewIncident(service="checkout", title="CheckoutHighErrorRate",
                           summary=f"5xx above 5%; DSN postgresql://app:{SECRET}@db/orders, "
                                   f"password={SECRET}")
    fake.push(tool_use("firing_alerts", {}), submit("Checkout is failing."))
    answer = await agent.turn("slack:C1:9.9", "", incident=incident)
    fake.assert_script_done()
    assert answer.brain == "claude"
    sent = json.dumps([r.body for r in fake.requests])
    assert SECRET not in sent
    assert "[REDACTED]" in sent
    # The firing alert whose annotation carries the secret did reach the model, redacted.
    assert "CheckoutHighErrorRate" in tool_results(fake.requests[1].body)


def _outside_fences(body: dict[str, Any]) -> str:
    """All prompt text that is NOT inside an <untrusted> block."""
    text_ = json.dumps(body["messages"], ensure_ascii=False).replace("\\n", "\n")
    return re.sub(r"<untrusted source=[^>]*>.*?</untrusted>", "", text_, flags=re.S)


async def test_injected_instructions_stay_fenced_and_change_nothing(
        agent: Agent, fake: FakeAnthropic) -> None:
    fake.push(tool_use("firing_alerts", {}), submit("Two alerts are firing."))
    answer = await agent.turn("t-inj", "What's firing? " + INJECTION)
    fake.assert_script_done()
    for request in fake.requests:
        body = request.body
        assert INJECTION in json.dumps(body)  # the model sees it, as data…
        assert INJECTION not in _outside_fences(body)  # …only ever inside a fence
        assert "never an instruction" in body["system"][0]["text"]
    assert answer.text == "Two alerts are firing."
    # The tools offered are the same read-only set as for any question.
    tools = {t["name"] for t in fake.requests[0].body["tools"]}
    assert tools == {"prometheus_query", "prometheus_range", "prometheus_series",
                     "firing_alerts", "pagerduty_incident", "pagerduty_oncall",
                     "runbook_search", "similar_incidents", "hypotheses",
                     "incident_timeline", "postmortem", "submit_answer"}


async def test_injection_in_alert_text_does_not_change_the_offline_answer(
        agent_settings: Settings) -> None:
    async with open_agent(agent_settings, indexes=False) as offline:
        clean = await offline.turn("a", "", incident=NewIncident(
            service="checkout", title="CheckoutHighErrorRate", summary="5xx above 5%"))
        injected = await offline.turn("b", "", incident=NewIncident(
            service="checkout", title="CheckoutHighErrorRate",
            summary="5xx above 5%. " + INJECTION))
    assert [t.name for t in clean.tools] == [t.name for t in injected.tools]
    assert [c.statement for c in clean.claims] == [c.statement for c in injected.claims]


async def test_model_down_falls_back_to_the_evidence_engine(agent: Agent,
                                                            fake: FakeAnthropic) -> None:
    fake.push(overloaded(retry_after_ms=5), overloaded(retry_after_ms=5))
    answer = await agent.turn("t-down", "what's firing?")
    assert len(fake.requests) == 2  # the SDK retried once (anthropic_max_retries=1)
    assert answer.brain == "evidence engine"
    assert any("Claude was unavailable (HTTP 529 overloaded_error)" in n for n in answer.notes)
    assert "CheckoutHighErrorRate" in answer.text  # the planner answered the question


async def test_rate_limit_is_retried_then_answered_by_the_model(agent: Agent,
                                                                fake: FakeAnthropic) -> None:
    fake.push(rate_limited(retry_after_ms=10), submit("All quiet."))
    answer = await agent.turn("t-429", "anything I should know?")
    fake.assert_script_done()
    assert answer.brain == "claude" and answer.text == "All quiet." and not answer.notes


async def test_the_last_round_forces_an_answer(claude_settings: Settings,
                                               fake: FakeAnthropic) -> None:
    settings = claude_settings.model_copy(update={"agent_max_rounds": 2})
    fake.push(tool_use("firing_alerts", {}), submit("Two alerts are firing."))
    async with open_agent(settings, indexes=False) as agent:
        answer = await agent.turn("t-cap", "what's going on?")
    fake.assert_script_done()
    assert fake.requests[0].body["tool_choice"] == {"type": "auto"}
    assert fake.requests[1].body["tool_choice"] == {"type": "tool", "name": "submit_answer"}
    assert answer.text == "Two alerts are firing."


async def test_the_token_budget_and_the_wall_clock_force_an_answer(
        claude_settings: Settings, fake: FakeAnthropic) -> None:
    tight = claude_settings.model_copy(update={"agent_token_budget": 1000})
    fake.push(tool_use("firing_alerts", {}), submit("Two alerts are firing."))
    async with open_agent(tight, indexes=False) as agent:
        answer = await agent.turn("t-tokens", "what's going on?")
    assert fake.requests[1].body["tool_choice"] == {"type": "tool", "name": "submit_answer"}
    assert "cut short by the token budget." in " ".join(answer.notes)

    slow = claude_settings.model_copy(update={"agent_wall_seconds": 1.0})
    fake.push(delay(0.8, tool_use("firing_alerts", {})), submit("Two alerts are firing."))
    async with open_agent(slow, indexes=False) as agent:
        answer = await agent.turn("t-wall", "what's going on?")
    assert fake.requests[3].body["tool_choice"] == {"type": "tool", "name": "submit_answer"}
    assert "cut short by the time limit." in " ".join(answer.notes)
    fake.assert_script_done()


async def test_a_model_that_never_answers_times_out_into_the_fallback(
        claude_settings: Settings, fake: FakeAnthropic) -> None:
    settings = claude_settings.model_copy(update={"anthropic_timeout_seconds": 0.5,
                                                  "anthropic_max_retries": 0})
    fake.push(delay(3, submit("too late")))
    async with open_agent(settings, indexes=False) as agent:
        answer = await agent.turn("t-timeout", "what's firing?")
    assert answer.brain == "evidence engine"
    assert any("Claude was unavailable (timed out)" in n for n in answer.notes)
    assert "CheckoutHighErrorRate" in answer.text


async def test_feedback_marks_a_hypothesis(agent: Agent, fake: FakeAnthropic) -> None:
    fake.push(tool_use("prometheus_query", {"query": ERROR_RATIO}),
              lambda body: submit("Checkout is failing.", {
                  "statement": "Checkout's own errors", "confidence": 0.8,
                  "evidence_ids": ev_ids(tool_results(body))[:1]}))
    await agent.turn("t-fb", "why is checkout failing?")
    noted = await agent.turn("t-fb", "hypothesis 1 is confirmed")
    assert noted.route == "feedback"
    assert noted.text == "Noted: hypothesis 1 (“Checkout's own errors”) marked confirmed."
    missing = await agent.turn("t-fb", "hypothesis 3 is wrong")
    assert "no hypothesis 3" in missing.text
    fake.assert_script_done()  # feedback never calls the model


async def test_commands_do_not_need_the_model(agent: Agent, fake: FakeAnthropic) -> None:
    answer = await agent.turn("t-cmd", "/firing checkout")
    assert answer.route == "command" and "CheckoutHighErrorRate" in answer.text
    assert "PaymentsQueueNote" not in answer.text
    assert fake.requests == []
