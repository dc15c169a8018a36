"""The fake Anthropic server against the real `anthropic` SDK: tool loops, the API's 400s,
retries on 429/529, prompt-cache usage, auth, timeouts and script violations."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import pytest
from anthropic import AsyncAnthropic

from tests.fakes.anthropic_server import (
    FakeAnthropic,
    InvalidRequest,
    delay,
    overloaded,
    rate_limited,
    reply,
    running_anthropic,
    text,
    tool_use,
    validate,
)

MODEL = "claude-sonnet-5-5"
TOOLS: list[Any] = [{
    "name": "firing_alerts",
    "description": "List the alerts firing for a service.",
    "input_schema": {"type": "object", "properties": {"service": {"type": "string"}},
                     "required": ["service"]},
}]
QUESTION: Any = {"role": "user", "content": "What is firing on checkout?"}


def client(fake: FakeAnthropic, *, max_retries: int = 0, api_key: str | None = None,
           timeout: float = 5.0) -> AsyncAnthropic:
    return AsyncAnthropic(base_url=fake.base_url, api_key=api_key or fake.api_key,
                          max_retries=max_retries, timeout=timeout)


async def test_tool_use_then_tool_result_then_text() -> None:
    with running_anthropic(
        reply("Let me look.", tool_use("firing_alerts", {"service": "checkout"})),
        lambda body: text("Seen: " + body["messages"][-1]["content"][0]["content"]),
    ) as fake:
        async with client(fake) as api:
            first = await api.messages.create(model=MODEL, max_tokens=256, tools=TOOLS,
                                              messages=[QUESTION])
            assert first.stop_reason == "tool_use"
            call = first.content[1]
            assert call.type == "tool_use"
            assert call.name == "firing_alerts"
            assert call.input == {"service": "checkout"}
            assert call.id.startswith("toolu_")
            result: Any = {"type": "tool_result", "tool_use_id": call.id,
                           "content": "HighErrorRate"}
            final = await api.messages.create(
                model=MODEL, max_tokens=256, tools=TOOLS,
                messages=[QUESTION, {"role": "assistant", "content": first.content},
                          {"role": "user", "content": [result]}])
    assert final.stop_reason == "end_turn"
    assert final.content[0].type == "text"
    assert final.content[0].text == "Seen: HighErrorRate"
    assert final.model == MODEL
    assert final.id.startswith("msg_")
    assert fake.requests[1].body["messages"][2]["content"] == [result]
    fake.assert_script_done()


async def test_missing_tool_result_is_a_bad_request() -> None:
    with running_anthropic(text("never served")) as fake:
        async with client(fake) as api:
            assistant: Any = {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_01abc", "name": "firing_alerts",
                 "input": {"service": "checkout"}}]}
            with pytest.raises(anthropic.BadRequestError) as caught:
                await api.messages.create(
                    model=MODEL, max_tokens=256, tools=TOOLS,
                    messages=[QUESTION, assistant, {"role": "user", "content": "and now?"}])
    assert caught.value.status_code == 400
    assert "toolu_01abc" in str(caught.value)
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert caught.value.request_id is not None
    assert fake.remaining == 1  # a refused request consumes no step


async def test_rate_limit_is_retried_after_retry_after_ms() -> None:
    with running_anthropic(rate_limited(), text("ok")) as fake:
        async with client(fake, max_retries=2) as api:
            started = time.monotonic()
            answer = await api.messages.create(model=MODEL, max_tokens=64, messages=[QUESTION])
            elapsed = time.monotonic() - started
    assert answer.content[0].type == "text"
    assert answer.content[0].text == "ok"
    assert [r.status for r in fake.requests] == [429, 200]
    assert fake.requests[1].headers["x-stainless-retry-count"] == "1"
    assert elapsed < 0.4  # 10 ms from retry-after-ms, not the SDK's 0.5 s backoff


async def test_rate_limit_without_retries_raises() -> None:
    with running_anthropic(rate_limited()) as fake:
        async with client(fake, max_retries=0) as api:
            with pytest.raises(anthropic.RateLimitError):
                await api.messages.create(model=MODEL, max_tokens=64, messages=[QUESTION])
    assert len(fake.requests) == 1


async def test_overloaded_raises_overloaded_error_after_retries() -> None:
    # No retry header, as the API sends 529: the SDK's own backoff (~0.4-0.5 s) applies.
    with running_anthropic(overloaded(), overloaded()) as fake:
        async with client(fake, max_retries=1) as api:
            with pytest.raises(anthropic.OverloadedError) as caught:
                await api.messages.create(model=MODEL, max_tokens=64, messages=[QUESTION])
    assert isinstance(caught.value, anthropic.InternalServerError)
    assert caught.value.status_code == 529
    assert [r.status for r in fake.requests] == [529, 529]


async def test_cached_system_prompt_is_written_then_read() -> None:
    system: Any = [{"type": "text", "text": "You are an SRE copilot. " * 40,
                    "cache_control": {"type": "ephemeral"}}]
    with running_anthropic(text("one"), text("two"), text("three")) as fake:
        async with client(fake) as api:
            first = await api.messages.create(model=MODEL, max_tokens=64, system=system,
                                              messages=[QUESTION])
            second = await api.messages.create(model=MODEL, max_tokens=64, system=system,
                                               messages=[QUESTION])
            uncached = await api.messages.create(model=MODEL, max_tokens=64,
                                                 system=system[0]["text"], messages=[QUESTION])
    assert first.usage.cache_creation_input_tokens and first.usage.cache_creation_input_tokens > 0
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == first.usage.input_tokens > 0
    assert uncached.usage.cache_creation_input_tokens == 0
    assert uncached.usage.cache_read_input_tokens == 0
    assert first.usage.output_tokens >= 1


async def test_growing_conversation_reads_the_earlier_prefix() -> None:
    # The breakpoint moves to the newest message each turn; the API still finds the old prefix.
    def turn(messages: list[Any]) -> list[Any]:
        *rest, last = messages
        return [*rest, {"role": last["role"], "content": [
            {"type": "text", "text": last["content"], "cache_control": {"type": "ephemeral"}}]}]

    history: list[Any] = [{"role": "user", "content": "checkout is slow " * 30}]
    with running_anthropic(text("looking"), text("found it")) as fake:
        async with client(fake) as api:
            first = await api.messages.create(model=MODEL, max_tokens=64, messages=turn(history))
            history += [{"role": "assistant", "content": "looking"},
                        {"role": "user", "content": "and the database?"}]
            second = await api.messages.create(model=MODEL, max_tokens=64, messages=turn(history))
    written = first.usage.cache_creation_input_tokens
    assert written and second.usage.cache_read_input_tokens == written
    assert second.usage.cache_creation_input_tokens and second.usage.cache_creation_input_tokens > 0


async def test_wrong_key_is_an_authentication_error() -> None:
    with running_anthropic(text("never served")) as fake:
        async with client(fake, api_key="wrong") as api:
            with pytest.raises(anthropic.AuthenticationError) as caught:
                await api.messages.create(model=MODEL, max_tokens=64, messages=[QUESTION])
    assert caught.value.body == {"type": "error", "error": {
        "type": "authentication_error", "message": "invalid x-api-key"}}
    # anthropic 2.14 sends the key as a bearer token, with the API version.
    assert fake.requests[0].headers["authorization"] == "Bearer wrong"
    assert "anthropic-version" in fake.requests[0].headers
    assert fake.remaining == 1


async def test_delay_trips_the_client_timeout() -> None:
    with running_anthropic(delay(5, text("late"))) as fake:
        async with client(fake, timeout=0.2) as api:
            with pytest.raises(anthropic.APITimeoutError):
                await api.messages.create(model=MODEL, max_tokens=64, messages=[QUESTION])
    # Leaving the block stopped the server and cut the delay short.


async def test_script_mistakes_are_served_and_recorded() -> None:
    forced: Any = {"type": "tool", "name": "firing_alerts"}
    with running_anthropic(text("no tool")) as fake:
        async with client(fake) as api:
            answer = await api.messages.create(model=MODEL, max_tokens=64, tools=TOOLS,
                                               tool_choice=forced, messages=[QUESTION])
            with pytest.raises(anthropic.InternalServerError, match="script exhausted"):
                await api.messages.create(model=MODEL, max_tokens=64, messages=[QUESTION])
    assert answer.stop_reason == "end_turn"
    assert len(fake.violations) == 2
    assert "forces 'firing_alerts'" in fake.violations[0]
    assert "script exhausted" in fake.violations[1]
    with pytest.raises(AssertionError):
        fake.assert_script_done()


async def test_push_adds_steps_and_streaming_is_refused() -> None:
    with running_anthropic() as fake:
        fake.push(text("pushed"))
        assert fake.remaining == 1
        async with client(fake) as api:
            with pytest.raises(anthropic.BadRequestError, match="streaming"):
                await api.messages.create(model=MODEL, max_tokens=64, messages=[QUESTION],
                                          stream=True)
            answer = await api.messages.create(model=MODEL, max_tokens=64, messages=[QUESTION])
    assert answer.content[0].type == "text"
    assert answer.content[0].text == "pushed"
    fake.assert_script_done()


def _body(messages: list[Any], **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 64, "messages": messages, **extra}


ASSISTANT_CALL: Any = {"role": "assistant", "content": [
    {"type": "tool_use", "id": "toolu_1", "name": "firing_alerts", "input": {}}]}


@pytest.mark.parametrize(("body", "message"), [
    ({"model": MODEL, "messages": [QUESTION]}, "max_tokens: Field required"),
    (_body([QUESTION], max_tokens=0), "greater than or equal to 1"),
    (_body([]), "at least one message"),
    (_body([{"role": "assistant", "content": "hi"}]), "first message"),
    (_body([QUESTION, QUESTION]), "must alternate"),
    (_body([QUESTION, ASSISTANT_CALL]), "without `tool_result`"),
    (_body([QUESTION, {"role": "assistant", "content": "hm"}, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}]), "unexpected"),
    (_body([QUESTION, ASSISTANT_CALL, {"role": "user", "content": [
        {"type": "text", "text": "first"},
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}]}]), "must come first"),
    (_body([QUESTION], tools=[{"name": "x"}]), "input_schema"),
    (_body([QUESTION], tools=TOOLS, tool_choice={"type": "tool", "name": "nope"}), "not found"),
    (_body([QUESTION], tools=TOOLS, tool_choice={"type": "maybe"}), "tool_choice"),
])
def test_validate_refuses_what_the_api_refuses(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        validate(body)


def test_validate_accepts_parallel_tool_results() -> None:
    calls: Any = {"role": "assistant", "content": [
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "toolu_1", "name": "firing_alerts", "input": {}},
        {"type": "tool_use", "id": "toolu_2", "name": "firing_alerts", "input": {}}]}
    results: Any = {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "b"},
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a"},
        {"type": "text", "text": "go on"}]}
    validate(_body([QUESTION, calls, results], tools=TOOLS, tool_choice={"type": "auto"}))
