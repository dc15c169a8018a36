"""The offline planner: which skill answers which everyday question, with which arguments, and
how follow-ups reuse the thread's focus."""

from __future__ import annotations

import pytest

from bot.agent.planner import Planner, window_of

SERVICES = ["checkout", "payments", "search-api", "search"]

TYPICAL = [
    ("what's the error rate of checkout right now?", "prometheus_query", {"checkout", "5.."}),
    ("p99 latency of payments over the last 2 hours", "prometheus_range",
     {"payments", "histogram_quantile(0.99"}),
    ("how much traffic is search-api getting", "prometheus_query", {'"search-api"'}),
    ("cpu of search today", "prometheus_range", {'service="search"', "process_cpu"}),
    ("memory usage for checkout over the past 30 minutes", "prometheus_range",
     {"process_resident_memory_bytes"}),
    ("what's firing?", "firing_alerts", set()),
    ("any alerts right now?", "firing_alerts", set()),
    ("runbook for disk full on db-1", "runbook_search", {"disk full"}),
    ("how do I mitigate KafkaConsumerLag?", "runbook_search", {"KafkaConsumerLag"}),
    ("has this happened before?", "similar_incidents", set()),
    ("similar incidents to checkout 5xx after deploy", "similar_incidents", {"checkout 5xx"}),
    ("timeline of INC-12", "incident_timeline", {"12"}),
    ("show me the timeline", "incident_timeline", set()),
    ("why is checkout failing?", "hypotheses", {"checkout"}),
    ("what's the root cause of the payments latency?", "hypotheses", {"payments"}),
    ("draft the postmortem for #7", "postmortem", {"7"}),
    ("who's on call?", "pagerduty_oncall", set()),
    ("details of PT4KHLK", "pagerduty_incident", {"PT4KHLK"}),
    ("which services do you know?", "prometheus_series", {"service"}),
    ("/range sum(rate(http_requests_total[5m])) 3h", "prometheus_range", {"3h"}),
]


@pytest.mark.parametrize(("question", "tool", "expected"), TYPICAL)
def test_typical_questions_reach_the_right_skill(question: str, tool: str,
                                                 expected: set[str]) -> None:
    plan = Planner(services=SERVICES).plan(question)
    [call] = plan.calls
    assert call.name == tool
    rendered = " ".join(str(v) for v in call.args.values())
    for fragment in expected:
        assert fragment in rendered, (fragment, call.args)


def test_longest_service_name_wins_and_unknown_services_are_not_invented() -> None:
    planner = Planner(services=SERVICES)
    assert planner.service_in("latency of search-api") == "search-api"
    assert planner.service_in("latency of search") == "search"
    assert planner.service_in("latency of the frontend") is None


def test_a_question_without_a_service_asks_which() -> None:
    plan = Planner(services=SERVICES).plan("what's the error rate?")
    assert plan.calls == [] and plan.reply is not None
    assert "Which service" in plan.reply and "checkout" in plan.reply


def test_follow_ups_reuse_the_focus() -> None:
    planner = Planner(services=SERVICES)
    first = planner.plan("error rate of checkout over the last 45 minutes")
    other_service = planner.plan("and for payments?", first.focus)
    assert other_service.matched_by == "follow-up"
    assert 'service="payments"' in other_service.calls[0].args["query"]
    assert other_service.calls[0].args["last"] == "45m"
    other_window = planner.plan("over the last 6 hours?", first.focus)
    assert other_window.calls[0].args["last"] == "6h"
    assert 'service="checkout"' in other_window.calls[0].args["query"]
    other_signal = planner.plan("what about latency?", first.focus)
    assert "histogram_quantile" in other_signal.calls[0].args["query"]
    # With no focus, a bare follow-up is not guessed at.
    assert planner.plan("and for payments?").calls == []


def test_what_it_cannot_do_is_said_plainly() -> None:
    plan = Planner(services=SERVICES).plan("write a haiku about our SLOs")
    assert plan.calls == [] and plan.reply is not None
    assert "without the language model" in plan.reply and "ANTHROPIC_API_KEY" in plan.reply


@pytest.mark.parametrize(("text", "window"), [
    ("over the last 2 hours", "2h"), ("past hour", "1h"), ("in the last 15 min", "15m"),
    ("last 7 days", "7d"), ("today", "1d"), ("for 90 minutes", "90m"), ("now", None)])
def test_windows(text: str, window: str | None) -> None:
    assert window_of(text) == window


def test_similarity_routes_questions_no_pattern_catches(embedder: object) -> None:
    planner = Planner(services=SERVICES, embedder=embedder)  # type: ignore[arg-type]
    plan = planner.plan("is anything broken in production at the moment")
    assert plan.matched_by == "similarity" and plan.calls[0].name == "firing_alerts"
    assert planner.plan("recite a poem about cats").calls == []
